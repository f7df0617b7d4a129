//! Test sink: prints `seq={sequence} len={size} {payload}` for each element to stdout.
//!
//! Config (JSON, every field optional): `{"pause_every": 0}` returns `pause` on every Nth
//! push (0 = never); `{"quiet": true}` reads each payload but prints nothing.

use serde::Deserialize;
use torvyn_sdk::{Backpressure, Element, Error, Sink};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    pause_every: u64,
    quiet: bool,
}

#[derive(Default)]
struct TestSink {
    config: Config,
    pushed: u64,
}

impl Sink for TestSink {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn push(&mut self, element: &Element<'_>) -> Result<Backpressure, Error> {
        let payload = element.bytes();
        if !self.config.quiet {
            println!(
                "seq={} len={} {}",
                element.sequence(),
                element.size(),
                String::from_utf8_lossy(&payload)
            );
        }
        self.pushed += 1;
        let every = self.config.pause_every;
        if every > 0 && self.pushed.is_multiple_of(every) {
            Ok(Backpressure::Pause)
        } else {
            Ok(Backpressure::Ready)
        }
    }
}

torvyn_sdk::export_sink!(TestSink);
