//! Emits one JSON record per configured name, `{"id":0,"name":"Ada"}`, …; config
//! `{"names": ["Ada", "Grace"]}`.

use serde::Deserialize;
use torvyn_sdk::{Error, Output, Source};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    names: Vec<String>,
}

#[derive(Default)]
struct People {
    config: Config,
    next: usize,
}

impl Source for People {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        let Some(name) = self.config.names.get(self.next) else {
            return Ok(None);
        };
        let id = self.next;
        self.next += 1;
        let person = serde_json::json!({ "id": id, "name": name }).to_string();
        Ok(Some(
            Output::bytes(person.as_bytes())?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_source!(People);
