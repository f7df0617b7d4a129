//! Test source: emits `count` elements, either `"{text} {i}"` or `size` bytes each.
//!
//! Config (JSON, every field optional): `{"count": 10, "size": 0, "text": "item"}`;
//! `"tag": true` gives each element the attribute `n`, its number from 0; `"flood_at": 3`
//! gives element 3 more attributes than the host allows, which fails its pull.
//! At teardown it reports on stderr the backpressure signals it received, if any.

use serde::Deserialize;
use torvyn_sdk::{Backpressure, Error, Output, Source};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    count: u64,
    size: usize,
    text: String,
    tag: bool,
    flood_at: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            count: 10,
            size: 0,
            text: "item".to_owned(),
            tag: false,
            flood_at: None,
        }
    }
}

#[derive(Default)]
pub(crate) struct TestSource {
    config: Config,
    next: u64,
    pauses: u64,
    resumes: u64,
}

impl Source for TestSource {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn pull(&mut self) -> Result<Option<Output>, Error> {
        if self.next >= self.config.count {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        let payload = if self.config.size > 0 {
            vec![b'x'; self.config.size]
        } else {
            format!("{} {i}", self.config.text).into_bytes()
        };
        let mut output = Output::bytes(&payload)?.with_content_type("text/plain");
        if self.config.tag {
            output = output.with_attribute("n", i.to_string());
        }
        if self.config.flood_at == Some(i) {
            for k in 0..65 {
                output = output.with_attribute(format!("k{k}"), "v");
            }
        }
        Ok(Some(output))
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
