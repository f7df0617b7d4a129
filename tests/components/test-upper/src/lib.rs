//! Test processor: upper-cases payloads; traps or fails at a chosen sequence number.
//!
//! Config (JSON, every field optional): `{"trap_at": 3, "fail_at": 5}`.

use serde_json::Value;
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default)]
struct TestUpper {
    trap_at: Option<u64>,
    fail_at: Option<u64>,
}

impl Processor for TestUpper {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config = parse_config(config)?;
        self.trap_at = config["trap_at"].as_u64();
        self.fail_at = config["fail_at"].as_u64();
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let sequence = input.sequence();
        if self.trap_at == Some(sequence) {
            panic!("trap requested at sequence {sequence}");
        }
        if self.fail_at == Some(sequence) {
            return Err(Error::Internal(format!(
                "failure requested at sequence {sequence}"
            )));
        }
        let text = input.bytes().to_ascii_uppercase();
        Ok(Some(
            Output::bytes(&text)?.with_content_type(input.content_type()),
        ))
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

torvyn_sdk::export_processor!(TestUpper);
