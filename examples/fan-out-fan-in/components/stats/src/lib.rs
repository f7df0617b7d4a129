//! Summarises readings `{"sensor":"greenhouse","celsius":21.5}`: when the stream ends it
//! emits `{"count":4,"min_celsius":18.0,"max_celsius":23.5,"mean_celsius":20.5}` (the mean
//! rounded to two decimals), or nothing if no reading came. No config.

use serde::{Deserialize, Serialize};
use torvyn_sdk::{Aggregator, Element, Error, Output};

/// The part of an input element it reads.
#[derive(Deserialize)]
struct Reading {
    celsius: f64,
}

/// The output element.
#[derive(Serialize)]
struct Summary {
    count: u64,
    min_celsius: f64,
    max_celsius: f64,
    mean_celsius: f64,
}

#[derive(Default)]
struct Stats {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Aggregator for Stats {
    fn ingest(&mut self, element: &Element<'_>) -> Result<Option<Output>, Error> {
        let reading: Reading = serde_json::from_slice(&element.bytes())
            .map_err(|error| Error::InvalidInput(format!("not a reading: {error}")))?;
        let celsius = reading.celsius;
        if self.count == 0 {
            (self.min, self.max) = (celsius, celsius);
        } else {
            (self.min, self.max) = (self.min.min(celsius), self.max.max(celsius));
        }
        self.count += 1;
        self.sum += celsius;
        Ok(None)
    }

    fn flush(&mut self) -> Result<Vec<Output>, Error> {
        if self.count == 0 {
            return Ok(Vec::new());
        }
        let mean = self.sum / self.count as f64;
        let summary = Summary {
            count: self.count,
            min_celsius: self.min,
            max_celsius: self.max,
            mean_celsius: (mean * 100.0).round() / 100.0,
        };
        let json = serde_json::to_vec(&summary)
            .map_err(|error| Error::Internal(format!("cannot serialise JSON: {error}")))?;
        Ok(vec![
            Output::bytes(&json)?.with_content_type("application/json"),
        ])
    }
}

torvyn_sdk::export_aggregator!(Stats);
