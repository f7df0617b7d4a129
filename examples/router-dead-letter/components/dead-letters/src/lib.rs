//! Prints each element that failed upstream as `dead letter: {payload} [{content type}]` on
//! stdout. The host appends the error to the content type of a dead letter, as in
//! `application/json; torvyn-error="validate: …"`. No config.

use torvyn_sdk::{Backpressure, Element, Error, Sink};

#[derive(Default)]
struct DeadLetters;

impl Sink for DeadLetters {
    fn push(&mut self, element: &Element<'_>) -> Result<Backpressure, Error> {
        println!(
            "dead letter: {} [{}]",
            String::from_utf8_lossy(&element.bytes()),
            element.content_type()
        );
        Ok(Backpressure::Ready)
    }
}

torvyn_sdk::export_sink!(DeadLetters);
