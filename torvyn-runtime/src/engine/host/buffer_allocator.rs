//! `torvyn:streaming/buffer-allocator`: hands out host buffers from the flow's pools.

use wasmtime::component::Resource;

use super::to_wit;
use crate::engine::bindings::torvyn::streaming::buffer_allocator::Host;
use crate::engine::bindings::torvyn::streaming::types::{Buffer, BufferError, MutableBuffer};
use crate::engine::state::StageState;

impl Host for StageState {
    fn allocate(
        &mut self,
        capacity_hint: u64,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        match self.buffers.allocate(self.stage, capacity_hint) {
            Ok(rep) => Ok(Ok(Resource::new_own(rep))),
            Err(error) => to_wit(error).map(Err),
        }
    }

    fn clone_into_mutable(
        &mut self,
        source: Resource<Buffer>,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        match self.buffers.clone_into_mutable(self.stage, source.rep()) {
            Ok(rep) => Ok(Ok(Resource::new_own(rep))),
            Err(error) => to_wit(error).map(Err),
        }
    }
}
