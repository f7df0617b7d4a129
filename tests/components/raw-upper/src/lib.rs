//! Test processor built without the SDK, on the plain `transform` world (no lifecycle): it
//! stands for a component made by another toolchain. Like a component in a
//! garbage-collected language, it keeps each mutable buffer it froze until its "collector"
//! runs, every [`COLLECT_EVERY`] elements.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    path: "../../../wit/streaming",
    world: "torvyn:streaming/transform@0.1.0",
});

use exports::torvyn::streaming::processor::Guest;
use torvyn::streaming::buffer_allocator;
use torvyn::streaming::types::{
    BufferError, MutableBuffer, OutputElement, ProcessError, ProcessResult, StreamElement,
};

/// Elements between two runs of the "collector", which drops the frozen mutable buffers.
const COLLECT_EVERY: usize = 5000;

thread_local! {
    /// Frozen mutable buffers not dropped yet.
    static HUSKS: std::cell::RefCell<Vec<MutableBuffer>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct RawUpper;

impl Guest for RawUpper {
    fn process(input: StreamElement<'_>) -> Result<ProcessResult, ProcessError> {
        let bytes = input.payload.read_all().to_ascii_uppercase();
        let buffer = buffer_allocator::allocate(bytes.len() as u64).map_err(internal)?;
        buffer.append(&bytes).map_err(internal)?;
        let payload = buffer.freeze();
        HUSKS.with_borrow_mut(|husks| {
            husks.push(buffer);
            if husks.len() == COLLECT_EVERY {
                husks.clear();
            }
        });
        Ok(ProcessResult::Emit(OutputElement {
            meta: input.meta,
            payload,
        }))
    }
}

fn internal(error: BufferError) -> ProcessError {
    ProcessError::Internal(format!("buffer error: {error:?}"))
}

export!(RawUpper);
