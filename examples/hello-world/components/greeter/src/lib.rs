//! Emits `hello, world {i}` for `i` in `0..count`; config `{"count": 5}`.

use torvyn_sdk::{Error, Output, Source};

struct Greeter {
    count: u64,
    next: u64,
}

impl Default for Greeter {
    fn default() -> Self {
        Greeter { count: 5, next: 0 }
    }
}

impl Source for Greeter {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        if !config.trim().is_empty() {
            let config: serde_json::Value = serde_json::from_str(config)
                .map_err(|error| Error::InvalidInput(format!("bad config: {error}")))?;
            if let Some(count) = config["count"].as_u64() {
                self.count = count;
            }
        }
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        if self.next == self.count {
            return Ok(None);
        }
        let greeting = format!("hello, world {}", self.next);
        self.next += 1;
        Ok(Some(Output::text(&greeting)?))
    }
}

torvyn_sdk::export_source!(Greeter);
