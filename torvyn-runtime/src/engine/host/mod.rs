//! Host implementations of the interfaces components import, one file per interface.

mod attributes;
mod buffer_allocator;
mod buffer_builder;
mod capability_query;
mod filesystem;
mod metrics;
mod types;

use wasmtime::component::{HasSelf, Linker};

use super::bindings;
use super::state::StageState;
use crate::resources::BufferError;

pub(super) fn add_to_linker(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    filesystem::add_to_linker(linker)?;
    bindings::Host_::add_to_linker::<_, HasSelf<StageState>>(linker, |state| state)?;
    types::add_to_linker(linker)?;
    buffer_builder::add_to_linker(linker)
}

/// Splits a buffer-table result into what the component sees (the operation's value, or a
/// WIT `buffer-error`) and what traps it (misuse of a handle, a content type too long).
fn answer<T>(
    result: Result<T, BufferError>,
) -> wasmtime::Result<Result<T, bindings::torvyn::streaming::types::BufferError>> {
    use bindings::torvyn::streaming::types::BufferError as Wit;
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(BufferError::CapacityExceeded) => Ok(Err(Wit::CapacityExceeded)),
        Err(BufferError::OutOfBounds) => Ok(Err(Wit::OutOfBounds)),
        Err(BufferError::AllocationFailed(why)) => Ok(Err(Wit::AllocationFailed(why))),
        Err(BufferError::Misuse(why)) => Err(wasmtime::Error::msg(why)),
        Err(error @ BufferError::ContentTypeTooLong(_)) => Err(trap(error)),
    }
}

/// A table failure that the interface has no error channel for: it traps.
fn trap(error: BufferError) -> wasmtime::Error {
    wasmtime::Error::msg(error.to_string())
}
