//! `torvyn:buffers/buffer-builder`: a filled, frozen buffer in one call.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};

use super::answer;
use super::types::in_place;
use crate::engine::bindings::torvyn::buffers::buffer_builder::Host;
use crate::engine::bindings::torvyn::streaming::types::{Buffer, BufferError};
use crate::engine::state::StageState;

impl Host for StageState {
    // `from-bytes` is shadowed in the linker by a version that reads the bytes in place
    // (see `add_to_linker`); this serves only the generated trait.
    fn from_bytes(
        &mut self,
        bytes: Vec<u8>,
        content_type: String,
    ) -> wasmtime::Result<Result<Resource<Buffer>, BufferError>> {
        answer((self.buffers.filled(self.stage, &bytes, &content_type)).map(Resource::new_own))
    }
}

/// The interface whose function the in-place version below replaces.
const BUFFER_BUILDER: &str = "torvyn:buffers/buffer-builder@0.1.0";

/// Replaces `from-bytes` with a version that copies the bytes straight out of the
/// component's memory into the new buffer, as `mutable-buffer.append` does.
pub(super) fn add_to_linker(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(BUFFER_BUILDER)?.func_wrap(
        "from-bytes",
        |mut store: StoreContextMut<'_, StageState>,
         (bytes, content_type): (WasmList<u8>, String)| {
            let filled = in_place(&mut store, &bytes, |table, stage, src| {
                table.filled(stage, src, &content_type)
            });
            Ok((answer(filled.map(Resource::<Buffer>::new_own))?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
