//! Renames one field of each JSON object; config `{"from": "name", "to": "user"}`.

use serde::Deserialize;
use serde_json::Value;
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    from: String,
    to: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            from: "name".to_owned(),
            to: "user".to_owned(),
        }
    }
}

#[derive(Default)]
struct Rename {
    config: Config,
}

impl Processor for Rename {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let mut value: Value = serde_json::from_slice(&input.bytes())
            .map_err(|error| Error::InvalidInput(format!("payload is not JSON: {error}")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| Error::InvalidInput("payload is not a JSON object".to_owned()))?;
        if let Some(field) = object.remove(&self.config.from) {
            object.insert(self.config.to.clone(), field);
        }
        let json = serde_json::to_vec(&value)
            .map_err(|error| Error::Internal(format!("cannot serialise JSON: {error}")))?;
        Ok(Some(
            Output::bytes(&json)?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_processor!(Rename);
