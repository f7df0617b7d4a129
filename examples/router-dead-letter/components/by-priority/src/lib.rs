//! Routes orders whose `priority` is `"high"` to port `urgent` and every other element,
//! malformed ones included, to port `normal`, where they are validated. No config.

use serde_json::Value;
use torvyn_sdk::{Element, Error, Router};

#[derive(Default)]
struct ByPriority;

impl Router for ByPriority {
    fn route(&mut self, element: &Element<'_>) -> Result<Vec<String>, Error> {
        let order: Option<Value> = serde_json::from_slice(&element.bytes()).ok();
        let priority = order.as_ref().and_then(|order| order.get("priority"));
        let port = if priority.and_then(Value::as_str) == Some("high") {
            "urgent"
        } else {
            "normal"
        };
        Ok(vec![port.to_owned()])
    }
}

torvyn_sdk::export_router!(ByPriority);
