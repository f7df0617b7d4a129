//! `wasi:filesystem/types`, with `descriptor.open-at` wrapped so that the host sees every
//! refused open: each stage has the root (`/`) preopened on an empty, read-only folder of
//! the host's, so that a path outside the directories it was granted reaches the host
//! (instead of failing inside the guest's libc), is refused with `not-permitted`, and is
//! recorded as an audit event. wasmtime-wasi does the rest; an open it refuses in a
//! granted directory is audited too. Each audit event says why it was refused: no
//! directory granted, a path outside those granted, a path that leads out of a granted
//! directory, or a write where only reading is granted.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

use crate::engine::state::StageState;

/// The interface as wasmtime-wasi defines it; the end-to-end tests check that a refused
/// open is still audited, so a wasmtime-wasi upgrade that changes it cannot go unnoticed.
const TYPES: &str = "wasi:filesystem/types@0.2.12";

type OpenAt = (
    Resource<Descriptor>,
    PathFlags,
    String,
    OpenFlags,
    DescriptorFlags,
);

pub(super) fn add_to_linker(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(TYPES)?.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, StageState>,
         (fd, path_flags, path, oflags, flags): OpenAt| {
            Box::new(async move {
                let state = store.data_mut();
                let writes = flags.contains(DescriptorFlags::WRITE)
                    || oflags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE);
                let capability = if writes {
                    "filesystem:write"
                } else {
                    "filesystem:read"
                };
                if state.is_denied_root(&fd)? {
                    let why = state.outside_every_grant();
                    state.audit_denied(capability, format!("open `/{path}`"), why);
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                let read_only = state.is_read_only(&fd)?;
                let opened = HostDescriptor::open_at(
                    &mut state.filesystem(),
                    fd,
                    path_flags,
                    path.clone(),
                    oflags,
                    flags,
                )
                .await;
                match opened {
                    Ok(descriptor) => Ok((Ok(descriptor),)),
                    Err(error) => {
                        let code = error.downcast()?;
                        if matches!(code, ErrorCode::NotPermitted | ErrorCode::ReadOnly) {
                            // wasmtime-wasi refuses a write under a read-only grant, and
                            // cap-std any path that leads out of the directory.
                            let why = if writes && read_only {
                                "the directory is granted read-only"
                            } else {
                                "the path leads out of that directory, through `..` or a symbolic link"
                            };
                            state.audit_denied(
                                capability,
                                format!("open `{path}` in a granted directory"),
                                why.to_owned(),
                            );
                        }
                        Ok((Err(code),))
                    }
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

impl StageState {
    /// Whether `fd` is the empty folder preopened as `/`.
    fn is_denied_root(&self, fd: &Resource<Descriptor>) -> wasmtime::Result<bool> {
        Ok(match self.resources.get(fd)? {
            Descriptor::Dir(dir) => self.denied_root.is(&dir.dir),
            Descriptor::File(_) => false,
        })
    }

    /// Whether `fd` is a directory the component may not write in.
    fn is_read_only(&self, fd: &Resource<Descriptor>) -> wasmtime::Result<bool> {
        Ok(match self.resources.get(fd)? {
            Descriptor::Dir(dir) => dir.perms.write_not_permitted(),
            Descriptor::File(_) => false,
        })
    }

    /// Why a path that reached the empty root is refused: it lies outside every
    /// directory granted, or none is.
    fn outside_every_grant(&self) -> String {
        let granted: Vec<String> = (self.grants.dirs.iter())
            .map(|dir| format!("`{}`", dir.guest))
            .collect();
        if granted.is_empty() {
            "no directory is granted to it".to_owned()
        } else {
            format!(
                "the path is outside the directories granted to it ({})",
                granted.join(", ")
            )
        }
    }

    fn audit_denied(&self, capability: &str, detail: String, reason: String) {
        (self.audit).record(&self.node, capability.to_owned(), detail, reason);
    }
}
