//! Emits one order per entry of its config, `{"orders": [{"id": 1, "item": "valve"}, "oops"]}`:
//! a JSON string as its text, which lets malformed orders be written, any other value as
//! compact JSON with the keys of objects in alphabetical order. The content type is
//! `application/json` either way.

use serde::Deserialize;
use serde_json::Value;
use torvyn_sdk::{Error, Output, Source};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    orders: Vec<Value>,
}

#[derive(Default)]
struct Orders {
    config: Config,
    next: usize,
}

impl Source for Orders {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        let Some(order) = self.config.orders.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let payload = match order {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        Ok(Some(
            Output::bytes(payload.as_bytes())?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_source!(Orders);
