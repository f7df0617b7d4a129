//! Emits people as JSON lines, `{"id":0,"name":"Ada"}`, …; config `{"count": 5}`.

use torvyn_sdk::{Error, Output, Source};

const NAMES: [&str; 5] = ["Ada", "Grace", "Linus", "Barbara", "Ken"];

struct People {
    count: u64,
    next: u64,
}

impl Default for People {
    fn default() -> Self {
        People { count: 5, next: 0 }
    }
}

impl Source for People {
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
