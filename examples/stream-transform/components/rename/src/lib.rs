//! Renames one field of each JSON object; config `{"from": "name", "to": "user"}`.

use serde_json::Value;
use torvyn_sdk::{Element, Error, Output, Processor};

struct Rename {
    from: String,
    to: String,
}

impl Default for Rename {
    fn default() -> Self {
        Rename {
            from: "name".to_owned(),
            to: "user".to_owned(),
        }
    }
}

impl Processor for Rename {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        if !config.trim().is_empty() {
            let config: Value = serde_json::from_str(config)
                .map_err(|error| Error::InvalidInput(format!("bad config: {error}")))?;
            if let Some(from) = config["from"].as_str() {
                self.from = from.to_owned();
            }
            if let Some(to) = config["to"].as_str() {
                self.to = to.to_owned();
            }
        }
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let mut value: Value = serde_json::from_slice(&input.bytes())
            .map_err(|error| Error::InvalidInput(format!("payload is not JSON: {error}")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| Error::InvalidInput("payload is not a JSON object".to_owned()))?;
        if let Some(field) = object.remove(&self.from) {
            object.insert(self.to.clone(), field);
        }
        let json = serde_json::to_vec(&value)
            .map_err(|error| Error::Internal(format!("cannot serialise JSON: {error}")))?;
        Ok(Some(
            Output::bytes(&json)?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_processor!(Rename);
