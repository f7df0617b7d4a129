//! `torvyn:streaming/types`: the `buffer`, `mutable-buffer` and `flow-context` resources.

use bytes::Bytes;
use wasmtime::component::{Linker, Resource, WasmList};
use wasmtime::{AsContext, StoreContextMut};

use super::{answer, trap};
use crate::engine::bindings::torvyn::streaming::types::{
    Buffer, BufferError, FlowContext, Host, HostBuffer, HostFlowContext, HostMutableBuffer,
    MutableBuffer,
};
use crate::engine::state::StageState;
use crate::resources::BufferTable;

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

    // `read` and `read-all` are shadowed in the linker by versions that lower the bytes
    // straight from the buffer (see `add_to_linker`); these serve only the generated trait,
    // and would copy twice where the ledger counts once.
    fn read(&mut self, this: Resource<Buffer>, offset: u64, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.read_bytes(&this, offset, len).map(Vec::from)
    }

    fn read_all(&mut self, this: Resource<Buffer>) -> wasmtime::Result<Vec<u8>> {
        self.read(this, 0, u64::MAX)
    }

    fn drop(&mut self, this: Resource<Buffer>) -> wasmtime::Result<()> {
        self.buffers
            .drop_buffer(self.stage, this.rep())
            .map_err(trap)
    }
}

impl HostMutableBuffer for StageState {
    // `write` and `append` are shadowed in the linker by versions that read the bytes in
    // place (see `add_to_linker`); these serve only the generated trait.
    fn write(
        &mut self,
        this: Resource<MutableBuffer>,
        offset: u64,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        answer(self.buffers.write(self.stage, this.rep(), offset, &bytes))
    }

    fn append(
        &mut self,
        this: Resource<MutableBuffer>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        answer(self.buffers.append(self.stage, this.rep(), &bytes))
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
        Ok(self
            .trace
            .map_or_else(String::new, |(trace, _)| trace.to_string()))
    }

    fn span_id(&mut self, _: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self
            .trace
            .map_or_else(String::new, |(_, span)| span.to_string()))
    }

    fn deadline_ns(&mut self, _: Resource<FlowContext>) -> wasmtime::Result<u64> {
        Ok(self.deadline.map_or(0, |deadline| {
            let left = deadline.saturating_sub(self.call_started.elapsed());
            let left = crate::config::bounds::saturating_nanos(left);
            crate::reactor::now_ns().saturating_add(left)
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

/// The interface the in-place versions below replace functions of.
const TYPES: &str = "torvyn:streaming/types@0.1.0";

/// Replaces `mutable-buffer.write` and `.append` with versions that copy the bytes straight
/// out of the component's memory (a `WasmList<u8>`) into the buffer, and `buffer.read` and
/// `.read-all` with versions whose result wasmtime lowers straight from the buffer's
/// memory (a `Bytes` sharing it), rather than through a `Vec` as the generated bindings
/// would: one copy of each payload byte instead of two, and no allocation of its size.
pub(super) fn add_to_linker(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]buffer.read",
        |mut store: StoreContextMut<'_, StageState>,
         (this, offset, len): (Resource<Buffer>, u64, u64)| {
            Ok((store.data_mut().read_bytes(&this, offset, len)?,))
        },
    )?;
    types.func_wrap(
        "[method]buffer.read-all",
        |mut store: StoreContextMut<'_, StageState>, (this,): (Resource<Buffer>,)| {
            Ok((store.data_mut().read_bytes(&this, 0, u64::MAX)?,))
        },
    )?;
    types.func_wrap(
        "[method]mutable-buffer.write",
        |mut store: StoreContextMut<'_, StageState>,
         (this, offset, bytes): (Resource<MutableBuffer>, u64, WasmList<u8>)| {
            let written = in_place(&mut store, &bytes, |table, stage, src| {
                table.write(stage, this.rep(), offset, src)
            });
            Ok((answer(written)?,))
        },
    )?;
    types.func_wrap(
        "[method]mutable-buffer.append",
        |mut store: StoreContextMut<'_, StageState>,
         (this, bytes): (Resource<MutableBuffer>, WasmList<u8>)| {
            let appended = in_place(&mut store, &bytes, |table, stage, src| {
                table.append(stage, this.rep(), src)
            });
            Ok((answer(appended)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

impl StageState {
    /// Up to `len` bytes from `offset` of the buffer `this`, shared with it, for wasmtime
    /// to lower into the component's memory ([`BufferTable::read`]); a trap for a misused
    /// handle.
    fn read_bytes(
        &mut self,
        this: &Resource<Buffer>,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Bytes> {
        (self.buffers)
            .read(self.stage, this.rep(), offset, len)
            .map_err(trap)
    }
}

/// Runs `op` on the flow's buffer table with the bytes of `list`, read where they lie in
/// the component's memory. The table is taken out of the store for the call, since the
/// bytes borrow the store.
pub(super) fn in_place<T>(
    store: &mut StoreContextMut<'_, StageState>,
    list: &WasmList<u8>,
    op: impl FnOnce(&mut BufferTable, usize, &[u8]) -> Result<T, crate::resources::BufferError>,
) -> Result<T, crate::resources::BufferError> {
    let mut table = std::mem::take(&mut store.data_mut().buffers);
    let stage = store.data().stage;
    let result = op(&mut table, stage, list.as_le_slice(store.as_context()));
    store.data_mut().buffers = table;
    result
}
