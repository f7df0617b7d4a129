//! Test filter: keeps elements whose sequence number is even.

use torvyn_sdk::{Element, Error, Filter};

#[derive(Default)]
struct EvenFilter;

impl Filter for EvenFilter {
    fn evaluate(&mut self, element: &Element<'_>) -> Result<bool, Error> {
        Ok(element.sequence().is_multiple_of(2))
    }
}

torvyn_sdk::export_filter!(EvenFilter);
