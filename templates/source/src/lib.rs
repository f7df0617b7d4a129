//! A Torvyn source that emits five lines of text.

use torvyn_sdk::{Error, Output, Source};

#[derive(Default)]
struct Hello {
    next: u32,
}

impl Source for Hello {
    fn pull(&mut self) -> Result<Option<Output>, Error> {
        if self.next == 5 {
            return Ok(None);
        }
        let line = format!("hello {}", self.next);
        self.next += 1;
        Ok(Some(Output::text(&line)?))
    }
}

torvyn_sdk::export_source!(Hello);
