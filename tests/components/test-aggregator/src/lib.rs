//! Test aggregator: counts elements and sums their payload sizes, and emits
//! `count={n} bytes={b}` (text/plain) for the elements since its last output.
//!
//! Config (JSON, optional): `{"every": 3}` emits after every 3rd element; 0 (the default)
//! emits only when the stream ends, at `flush`. `flush` emits nothing when no element
//! arrived since the last output. `"tag": true` gives each output the attribute `count`.

use serde::Deserialize;
use torvyn_sdk::{Aggregator, Element, Error, Output};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    every: u64,
    tag: bool,
}

#[derive(Default)]
struct TestAggregator {
    config: Config,
    count: u64,
    bytes: u64,
}

impl TestAggregator {
    /// The summary of the elements since the last one, which starts a new count.
    fn summary(&mut self) -> Result<Output, Error> {
        let text = format!("count={} bytes={}", self.count, self.bytes);
        let output = Output::text(&text)?;
        let count = std::mem::take(&mut self.count);
        self.bytes = 0;
        Ok(match self.config.tag {
            true => output.with_attribute("count", count.to_string()),
            false => output,
        })
    }
}

impl Aggregator for TestAggregator {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn ingest(&mut self, element: &Element<'_>) -> Result<Option<Output>, Error> {
        self.count += 1;
        self.bytes += element.size();
        if self.config.every > 0 && self.count == self.config.every {
            return Ok(Some(self.summary()?));
        }
        Ok(None)
    }

    fn flush(&mut self) -> Result<Vec<Output>, Error> {
        if self.count == 0 {
            return Ok(Vec::new());
        }
        Ok(vec![self.summary()?])
    }
}

torvyn_sdk::export_aggregator!(TestAggregator);
