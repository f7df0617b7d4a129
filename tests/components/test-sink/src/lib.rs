//! Test sink: prints `seq={sequence} len={size} {payload}` for each element to stdout.
//!
//! Config (JSON, every field optional): `{"pause_every": 0}` returns `pause` on every Nth
//! push (0 = never); `{"quiet": true}` reads each payload but prints nothing.

use serde_json::Value;
use torvyn_sdk::{Backpressure, Element, Error, Sink};

#[derive(Default)]
struct TestSink {
    pause_every: u64,
    quiet: bool,
    pushed: u64,
}

impl Sink for TestSink {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config = parse_config(config)?;
        self.pause_every = config["pause_every"].as_u64().unwrap_or(0);
        self.quiet = config["quiet"].as_bool().unwrap_or(false);
        Ok(())
    }

    fn push(&mut self, element: &Element<'_>) -> Result<Backpressure, Error> {
        let payload = element.bytes();
        if !self.quiet {
            println!(
                "seq={} len={} {}",
                element.sequence(),
                element.size(),
                String::from_utf8_lossy(&payload)
            );
        }
        self.pushed += 1;
        if self.pause_every > 0 && self.pushed.is_multiple_of(self.pause_every) {
            Ok(Backpressure::Pause)
        } else {
            Ok(Backpressure::Ready)
        }
    }
}

/// An empty config means "all defaults".
fn parse_config(config: &str) -> Result<Value, Error> {
    if config.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(config)
        .map_err(|error| Error::InvalidInput(format!("bad config: {error}")))
}

torvyn_sdk::export_sink!(TestSink);
