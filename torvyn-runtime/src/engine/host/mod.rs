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

/// Splits a buffer-table failure into what the component sees (a WIT `buffer-error`) and
/// what traps it (misuse of a handle).
fn to_wit(error: BufferError) -> wasmtime::Result<bindings::torvyn::streaming::types::BufferError> {
    use bindings::torvyn::streaming::types::BufferError as Wit;
    match error {
        BufferError::CapacityExceeded => Ok(Wit::CapacityExceeded),
        BufferError::OutOfBounds => Ok(Wit::OutOfBounds),
        BufferError::AllocationFailed(why) => Ok(Wit::AllocationFailed(why)),
        BufferError::Misuse(why) => Err(wasmtime::Error::msg(why)),
        error @ BufferError::ContentTypeTooLong(_) => Err(trap(error)),
    }
}

/// A table failure that the interface has no error channel for: it traps.
fn trap(error: BufferError) -> wasmtime::Error {
    wasmtime::Error::msg(error.to_string())
}
