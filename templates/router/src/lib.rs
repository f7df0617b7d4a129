//! A Torvyn router that sends each element to port `even` or `odd` by its sequence number.

use torvyn_sdk::{Element, Error, Router};

#[derive(Default)]
struct EvenOdd;

impl Router for EvenOdd {
    fn route(&mut self, element: &Element<'_>) -> Result<Vec<String>, Error> {
        let port = if element.sequence().is_multiple_of(2) {
            "even"
        } else {
            "odd"
        };
        Ok(vec![port.to_owned()])
    }
}

torvyn_sdk::export_router!(EvenOdd);
