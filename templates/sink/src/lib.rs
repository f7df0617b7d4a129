//! A Torvyn sink that prints each payload as a line.

use torvyn_sdk::{Backpressure, Element, Error, Sink};

#[derive(Default)]
struct Printer;

impl Sink for Printer {
    fn push(&mut self, element: &Element<'_>) -> Result<Backpressure, Error> {
        println!("{}", String::from_utf8_lossy(&element.bytes()));
        Ok(Backpressure::Ready)
    }
}

torvyn_sdk::export_sink!(Printer);
