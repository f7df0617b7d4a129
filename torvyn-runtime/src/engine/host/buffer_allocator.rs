//! `torvyn:streaming/buffer-allocator`: hands out host buffers from the flow's pools.

use wasmtime::component::Resource;

use super::answer;
use crate::engine::bindings::torvyn::streaming::buffer_allocator::Host;
use crate::engine::bindings::torvyn::streaming::types::{Buffer, BufferError, MutableBuffer};
use crate::engine::state::StageState;

impl Host for StageState {
    fn allocate(
        &mut self,
        capacity_hint: u64,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        answer(
            self.buffers
                .allocate(self.stage, capacity_hint)
                .map(Resource::new_own),
        )
    }

    fn clone_into_mutable(
        &mut self,
        source: Resource<Buffer>,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        let cloned = self.buffers.clone_into_mutable(self.stage, source.rep());
        answer(cloned.map(Resource::new_own))
    }
}
