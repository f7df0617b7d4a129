//! Test router: sends the element with sequence `n` to port `ports[n % ports.len()]`.
//!
//! Config (JSON, every field optional):
//!
//! - `ports: ["even", "odd"]` (the default) names the ports, in turn; it must not be empty;
//! - `all: true` sends every element to every port instead (a fan-out);
//! - `unknown_every: 4` sends every 4th element, i.e. when `(sequence + 1) % 4 == 0`, to
//!   the port `nowhere` alone, which a flow is not expected to declare (0, the default,
//!   never). It overrides `all`.

use serde::Deserialize;
use torvyn_sdk::{Element, Error, Router};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    ports: Vec<String>,
    all: bool,
    unknown_every: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ports: vec!["even".to_owned(), "odd".to_owned()],
            all: false,
            unknown_every: 0,
        }
    }
}

#[derive(Default)]
struct TestRouter {
    config: Config,
}

impl Router for TestRouter {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config: Config = torvyn_sdk::json_config(config)?;
        if config.ports.is_empty() {
            return Err(Error::InvalidInput("config: `ports` is empty".to_owned()));
        }
        self.config = config;
        Ok(())
    }

    fn route(&mut self, element: &Element<'_>) -> Result<Vec<String>, Error> {
        let sequence = element.sequence();
        let every = self.config.unknown_every;
        if every > 0 && (sequence + 1).is_multiple_of(every) {
            return Ok(vec!["nowhere".to_owned()]);
        }
        let ports = &self.config.ports;
        if self.config.all {
            return Ok(ports.clone());
        }
        // The remainder is below `ports.len()`, so it fits a `usize`.
        let index = (sequence % ports.len() as u64) as usize;
        Ok(vec![ports[index].clone()])
    }
}

torvyn_sdk::export_router!(TestRouter);
