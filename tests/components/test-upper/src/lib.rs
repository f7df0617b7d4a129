//! Test processor: upper-cases payloads; traps or fails at a chosen sequence number.
//!
//! Config (JSON, every field optional): `{"trap_at": 3, "fail_at": 5}`. At teardown it
//! says so on stderr, with the number of elements it handled.

use serde::Deserialize;
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    trap_at: Option<u64>,
    fail_at: Option<u64>,
}

#[derive(Default)]
struct TestUpper {
    config: Config,
    handled: u64,
}

impl Processor for TestUpper {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let sequence = input.sequence();
        if self.config.trap_at == Some(sequence) {
            panic!("trap requested at sequence {sequence}");
        }
        if self.config.fail_at == Some(sequence) {
            return Err(Error::Internal(format!(
                "failure requested at sequence {sequence}"
            )));
        }
        self.handled += 1;
        let text = input.bytes().to_ascii_uppercase();
        Ok(Some(
            Output::bytes(&text)?.with_content_type(input.content_type()),
        ))
    }

    fn teardown(&mut self) {
        eprintln!("test-upper: teardown after {} elements", self.handled);
    }
}

torvyn_sdk::export_processor!(TestUpper);
