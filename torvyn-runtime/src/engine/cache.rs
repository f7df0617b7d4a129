//! On-disk cache of compiled components, keyed by the SHA-256 of the component bytes and
//! the engine's compatibility hash, so a changed component or a new wasmtime never reuses
//! stale machine code.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

pub(super) struct CompileCache {
    dir: PathBuf,
    engine_key: u64,
}

impl CompileCache {
    pub(super) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: hasher.finish(),
        }
    }

    fn entry(&self, bytes: &[u8]) -> PathBuf {
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(format!("{:016x}", self.engine_key))
            .join(format!("{hex}.cwasm"))
    }

    /// The compiled component for `bytes`, from the cache when present; `compiling` is
    /// called just before a compile. A cache that cannot be read or written is skipped: it
    /// only ever costs a recompile.
    pub(super) fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
        compiling: impl FnOnce(),
    ) -> wasmtime::Result<Component> {
        let entry = self.entry(bytes);
        if entry.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same compatibility hash (it is in the path), under a name derived from the
            // source bytes; wasmtime still checks the header before using it.
            #[allow(unsafe_code)]
            if let Ok(component) = unsafe { Component::deserialize_file(engine, &entry) } {
                return Ok(component);
            }
        }
        compiling();
        let component = Component::new(engine, bytes)?;
        if let Ok(serialized) = component.serialize() {
            store_atomically(&entry, &serialized);
        }
        Ok(component)
    }
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn store_atomically(entry: &std::path::Path, bytes: &[u8]) {
    let Some(dir) = entry.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, entry).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
