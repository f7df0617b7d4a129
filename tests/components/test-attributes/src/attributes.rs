//! Test processor of element attributes (`torvyn:attributes`): writes the ones it is asked
//! for in front of the payload, then sets and removes some on its output.
//!
//! Config (JSON, every field optional):
//!
//! - `show: ["path", "line"]` writes `path=… line=… ` in front of each payload, `-` for
//!   an attribute the element does not have; `show_all: true` writes every attribute
//!   as `key=value;…|` instead.
//! - `set: {"stage": "tagged"}` sets those attributes on the output, through
//!   `Output::with_attribute`; `remove: ["offset"]` removes those.
//! - `set_on_input: {"k": "v"}` sets them through `Element::set_attribute`.
//! - `many: 70` sets that many more attributes (`k0` … `k69`): past the host's bound of
//!   64, the call fails.

use std::collections::BTreeMap;

use serde::Deserialize;
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    show: Vec<String>,
    show_all: bool,
    set: BTreeMap<String, String>,
    remove: Vec<String>,
    set_on_input: BTreeMap<String, String>,
    many: usize,
}

#[derive(Default)]
pub(crate) struct TestAttributes {
    config: Config,
}

impl Processor for TestAttributes {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let mut text = String::new();
        for key in &self.config.show {
            let value = input.attribute(key).unwrap_or_else(|| "-".into());
            text.push_str(&format!("{key}={value} "));
        }
        if self.config.show_all {
            for (key, value) in input.attributes() {
                text.push_str(&format!("{key}={value};"));
            }
            text.push('|');
        }
        for (key, value) in &self.config.set_on_input {
            input.set_attribute(key, value)?;
        }
        let mut payload = text.into_bytes();
        payload.extend_from_slice(&input.bytes());
        let mut output = Output::bytes(&payload)?.with_content_type(input.content_type());
        for (key, value) in &self.config.set {
            output = output.with_attribute(key, value);
        }
        for key in &self.config.remove {
            output = output.without_attribute(key);
        }
        for i in 0..self.config.many {
            output = output.with_attribute(format!("k{i}"), "v");
        }
        Ok(Some(output))
    }
}
