//! Test processor built without the SDK, on the plain `transform` world (no lifecycle): it
//! stands for a component made by another toolchain.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    path: "../../../wit/streaming",
    world: "torvyn:streaming/transform@0.1.0",
});

use exports::torvyn::streaming::processor::Guest;
use torvyn::streaming::buffer_allocator;
use torvyn::streaming::types::{
    BufferError, OutputElement, ProcessError, ProcessResult, StreamElement,
};

struct RawUpper;

impl Guest for RawUpper {
    fn process(input: StreamElement<'_>) -> Result<ProcessResult, ProcessError> {
        let bytes = input.payload.read_all().to_ascii_uppercase();
        let buffer = buffer_allocator::allocate(bytes.len() as u64).map_err(internal)?;
        buffer.append(&bytes).map_err(internal)?;
        let payload = buffer.freeze();
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
