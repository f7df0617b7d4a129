//! Prints each payload as a line on stdout, after a label: `urgent: {payload}`; config
//! `{"label": "urgent"}` (no label, the default, prints the payload alone).

use serde::Deserialize;
use torvyn_sdk::{Backpressure, Element, Error, Sink};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    label: String,
}

#[derive(Default)]
struct Printer {
    config: Config,
}

impl Sink for Printer {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn push(&mut self, element: &Element<'_>) -> Result<Backpressure, Error> {
        let payload = element.bytes();
        let payload = String::from_utf8_lossy(&payload);
        match self.config.label.as_str() {
            "" => println!("{payload}"),
            label => println!("{label}: {payload}"),
        }
        Ok(Backpressure::Ready)
    }
}

torvyn_sdk::export_sink!(Printer);
