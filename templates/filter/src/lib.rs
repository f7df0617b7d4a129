//! A Torvyn filter that keeps elements with a non-empty payload.

use torvyn_sdk::{Element, Error, Filter};

#[derive(Default)]
struct NonEmpty;

impl Filter for NonEmpty {
    fn evaluate(&mut self, element: &Element<'_>) -> Result<bool, Error> {
        Ok(element.size() > 0)
    }
}

torvyn_sdk::export_filter!(NonEmpty);
