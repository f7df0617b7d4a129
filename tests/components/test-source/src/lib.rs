//! Test source: emits `count` elements, either `"{text} {i}"` or `size` bytes each.
//!
//! Config (JSON, every field optional): `{"count": 10, "size": 0, "text": "item"}`.
//! At teardown it reports on stderr the backpressure signals it received, if any.

use serde_json::Value;
use torvyn_sdk::{Backpressure, Error, Output, Source};

struct TestSource {
    count: u64,
    size: u64,
    text: String,
    next: u64,
    pauses: u64,
    resumes: u64,
}

impl Default for TestSource {
    fn default() -> Self {
        TestSource {
            count: 10,
            size: 0,
            text: "item".to_owned(),
            next: 0,
            pauses: 0,
            resumes: 0,
        }
    }
}

impl Source for TestSource {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config = parse_config(config)?;
        if let Some(count) = config["count"].as_u64() {
            self.count = count;
        }
        if let Some(size) = config["size"].as_u64() {
            self.size = size;
        }
        if let Some(text) = config["text"].as_str() {
            self.text = text.to_owned();
        }
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        if self.next >= self.count {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        let payload = if self.size > 0 {
            vec![b'x'; self.size as usize]
        } else {
            format!("{} {i}", self.text).into_bytes()
        };
        Ok(Some(
            Output::bytes(&payload)?.with_content_type("text/plain"),
        ))
    }

    fn on_backpressure(&mut self, signal: Backpressure) {
        // Counted, not acted on: the host decides when to call `pull`.
        match signal {
            Backpressure::Pause => self.pauses += 1,
            Backpressure::Ready => self.resumes += 1,
        }
    }

    fn teardown(&mut self) {
        if self.pauses > 0 {
            eprintln!(
                "test-source: paused {} times, resumed {} times",
                self.pauses, self.resumes
            );
        }
    }
}

/// An empty config means "all defaults".
fn parse_config(config: &str) -> Result<Value, Error> {
    if config.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(config)
        .map_err(|error| Error::InvalidInput(format!("bad config: {error}")))
}

torvyn_sdk::export_source!(TestSource);
