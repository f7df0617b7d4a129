//! Emits one JSON reading per configured temperature, `{"sensor":"greenhouse","celsius":21.5}`,
//! …; config `{"sensor": "greenhouse", "celsius": [21.5, 19.0]}`.

use serde::{Deserialize, Serialize};
use torvyn_sdk::{Error, Output, Source};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    sensor: String,
    celsius: Vec<f64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sensor: "sensor".to_owned(),
            celsius: Vec::new(),
        }
    }
}

/// One emitted element.
#[derive(Serialize)]
struct Reading<'a> {
    sensor: &'a str,
    celsius: f64,
}

#[derive(Default)]
struct Readings {
    config: Config,
    next: usize,
}

impl Source for Readings {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        let Some(&celsius) = self.config.celsius.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let reading = Reading {
            sensor: &self.config.sensor,
            celsius,
        };
        let json = serde_json::to_vec(&reading)
            .map_err(|error| Error::Internal(format!("cannot serialise JSON: {error}")))?;
        Ok(Some(
            Output::bytes(&json)?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_source!(Readings);
