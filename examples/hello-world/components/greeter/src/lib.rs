//! Emits `hello, world {i}` for `i` in `0..count`; config `{"count": 5}`.

use serde::Deserialize;
use torvyn_sdk::{Error, Output, Source};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    count: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { count: 5 }
    }
}

#[derive(Default)]
struct Greeter {
    config: Config,
    next: u64,
}

impl Source for Greeter {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        if self.next == self.config.count {
            return Ok(None);
        }
        let greeting = format!("hello, world {}", self.next);
        self.next += 1;
        Ok(Some(Output::text(&greeting)?))
    }
}

torvyn_sdk::export_source!(Greeter);
