//! Emits people as JSON lines, `{"id":0,"name":"Ada"}`, …; config `{"count": 5}`.

use serde::Deserialize;
use torvyn_sdk::{Error, Output, Source};

const NAMES: [&str; 5] = ["Ada", "Grace", "Linus", "Barbara", "Ken"];

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
struct People {
    config: Config,
    next: u64,
}

impl Source for People {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        if self.next == self.config.count {
            return Ok(None);
        }
        let id = self.next;
        self.next += 1;
        let name = NAMES[(id % NAMES.len() as u64) as usize];
        let person = serde_json::json!({ "id": id, "name": name }).to_string();
        Ok(Some(
            Output::bytes(person.as_bytes())?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_source!(People);
