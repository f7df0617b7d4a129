//! A Torvyn processor that upper-cases text.

use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default)]
struct Upper;

impl Processor for Upper {
    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let text = input.bytes().to_ascii_uppercase();
        let output = Output::bytes(&text)?.with_content_type(input.content_type());
        Ok(Some(output))
    }
}

torvyn_sdk::export_processor!(Upper);
