//! A Torvyn aggregator that counts the elements of a stream and emits the count at its end.

use torvyn_sdk::{Aggregator, Element, Error, Output};

#[derive(Default)]
struct Count {
    elements: u64,
}

impl Aggregator for Count {
    fn ingest(&mut self, _element: &Element<'_>) -> Result<Option<Output>, Error> {
        self.elements += 1;
        Ok(None)
    }

    fn flush(&mut self) -> Result<Vec<Output>, Error> {
        Ok(vec![Output::text(&format!("{} elements", self.elements))?])
    }
}

torvyn_sdk::export_aggregator!(Count);
