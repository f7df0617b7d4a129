//! `torvyn:streaming/types`: the `buffer`, `mutable-buffer` and `flow-context` resources.

use wasmtime::component::Resource;

use super::{to_wit, trap};
use crate::engine::bindings::torvyn::streaming::types::{
    Buffer, BufferError, FlowContext, Host, HostBuffer, HostFlowContext, HostMutableBuffer,
    MutableBuffer,
};
use crate::engine::state::StageState;

impl Host for StageState {}

impl HostBuffer for StageState {
    fn size(&mut self, this: Resource<Buffer>) -> wasmtime::Result<u64> {
        self.buffers.size(this.rep()).map_err(trap)
    }

    fn content_type(&mut self, this: Resource<Buffer>) -> wasmtime::Result<String> {
        Ok(self
            .buffers
            .content_type(this.rep())
            .map_err(trap)?
            .to_owned())
    }

    fn read(&mut self, this: Resource<Buffer>, offset: u64, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.buffers
            .read(self.stage, this.rep(), offset, len)
            .map_err(trap)
    }

    fn read_all(&mut self, this: Resource<Buffer>) -> wasmtime::Result<Vec<u8>> {
        self.buffers
            .read(self.stage, this.rep(), 0, u64::MAX)
            .map_err(trap)
    }

    fn drop(&mut self, this: Resource<Buffer>) -> wasmtime::Result<()> {
        self.buffers
            .drop_buffer(self.stage, this.rep())
            .map_err(trap)
    }
}

impl HostMutableBuffer for StageState {
    fn write(
        &mut self,
        this: Resource<MutableBuffer>,
        offset: u64,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        match self.buffers.write(self.stage, this.rep(), offset, &bytes) {
            Ok(()) => Ok(Ok(())),
            Err(error) => to_wit(error).map(Err),
        }
    }

    fn append(
        &mut self,
        this: Resource<MutableBuffer>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        match self.buffers.append(self.stage, this.rep(), &bytes) {
            Ok(()) => Ok(Ok(())),
            Err(error) => to_wit(error).map(Err),
        }
    }

    fn size(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<u64> {
        self.buffers.size(this.rep()).map_err(trap)
    }

    fn capacity(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<u64> {
        self.buffers.capacity(this.rep()).map_err(trap)
    }

    fn set_content_type(
        &mut self,
        this: Resource<MutableBuffer>,
        content_type: String,
    ) -> wasmtime::Result<()> {
        self.buffers
            .set_content_type(self.stage, this.rep(), &content_type)
            .map_err(trap)
    }

    fn freeze(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<Resource<Buffer>> {
        let rep = self.buffers.freeze(self.stage, this.rep()).map_err(trap)?;
        Ok(Resource::new_own(rep))
    }

    fn drop(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<()> {
        self.buffers
            .drop_mutable(self.stage, this.rep())
            .map_err(trap)
    }
}

impl HostFlowContext for StageState {
    fn trace_id(&mut self, _: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(String::new())
    }

    fn span_id(&mut self, _: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(String::new())
    }

    fn deadline_ns(&mut self, _: Resource<FlowContext>) -> wasmtime::Result<u64> {
        Ok(self.deadline.map_or(0, |deadline| {
            let left = deadline.saturating_sub(self.call_started.elapsed());
            crate::reactor::now_ns().saturating_add(left.as_nanos() as u64)
        }))
    }

    fn flow_id(&mut self, _: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self.flow.flow_id.clone())
    }

    fn drop(&mut self, _: Resource<FlowContext>) -> wasmtime::Result<()> {
        // The host never hands out an owned flow context, only borrows.
        Ok(())
    }
}
