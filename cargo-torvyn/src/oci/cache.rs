//! The content-addressed store of pulled artifacts: blobs by digest, tags by reference.
//!
//! Every file is written beside its final place and renamed into it only once its digest
//! has been checked, so a failed or interrupted pull leaves nothing half written. Blobs are
//! checked again when read; a corrupt one is removed and fetched anew.

use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, WrapErr};
use oci_client::Reference;

use super::sha256_hex;

/// The store under `<cache>/oci`.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    /// The user's store: `oci` in the `cache-dir` setting's folder.
    pub(crate) fn open() -> miette::Result<Store> {
        let Some(cache) = crate::commands::cache_root()? else {
            miette::bail!(
                help = "set `cache-dir` (or TORVYN_CACHE_DIR) to a writable folder",
                "no cache folder for pulled components: this user has no cache directory"
            );
        };
        Ok(Store {
            root: cache.join("oci"),
        })
    }

    fn blob_path(&self, digest: &str) -> miette::Result<PathBuf> {
        let Some(hex) = sha256_hex(digest) else {
            miette::bail!("`{digest}` is not a sha256 digest (sha256: and 64 hex digits)");
        };
        Ok(self.root.join("blobs").join("sha256").join(hex))
    }

    /// Stores `data` as the blob `digest`, which it must hash to.
    pub(crate) fn put(&self, digest: &str, data: &[u8]) -> miette::Result<PathBuf> {
        let found = super::digest(data);
        if found != digest {
            miette::bail!(
                help = "the registry or the network corrupted it; nothing was stored",
                "blob {digest} arrived with content that hashes to {found}"
            );
        }
        let path = self.blob_path(digest)?;
        write_atomically(&path, data)?;
        Ok(path)
    }

    /// The blob `digest`, if the store has it intact. A corrupt copy is removed.
    pub(crate) fn get(&self, digest: &str) -> miette::Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest)?;
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot read `{}`", path.display()));
            }
        };
        if super::digest(&data) == digest {
            return Ok(Some(data));
        }
        crate::output::status(
            "Removing",
            format!("corrupt cached blob {digest} (its content no longer matches its digest)"),
        );
        std::fs::remove_file(&path).into_diagnostic()?;
        Ok(None)
    }

    /// The file of the blob `digest`, checked intact, if the store has it.
    pub(crate) fn file(&self, digest: &str) -> miette::Result<Option<PathBuf>> {
        Ok(match self.get(digest)? {
            Some(_) => Some(self.blob_path(digest)?),
            None => None,
        })
    }

    fn tag_path(&self, reference: &Reference) -> Option<PathBuf> {
        let tag = reference.tag()?;
        let mut path = self.root.join("tags").join(reference.resolve_registry());
        path.extend(reference.repository().split('/'));
        Some(path.join(tag))
    }

    /// The manifest digest `reference`'s tag had when last pulled.
    pub(crate) fn tag(&self, reference: &Reference) -> Option<String> {
        let text = std::fs::read_to_string(self.tag_path(reference)?).ok()?;
        sha256_hex(text.trim()).map(|_| text.trim().to_owned())
    }

    /// Records that `reference`'s tag names the manifest `digest`.
    pub(crate) fn set_tag(&self, reference: &Reference, digest: &str) -> miette::Result<()> {
        match self.tag_path(reference) {
            Some(path) => write_atomically(&path, digest.as_bytes()),
            None => Ok(()),
        }
    }

    /// Where the `Torvyn.toml` of the pipeline with manifest `digest` is unpacked.
    pub(crate) fn pipeline_manifest(&self, digest: &str) -> miette::Result<PathBuf> {
        let Some(hex) = sha256_hex(digest) else {
            miette::bail!("`{digest}` is not a sha256 digest");
        };
        Ok(self
            .root
            .join("pipelines")
            .join(hex)
            .join(torvyn_runtime::MANIFEST_FILE))
    }

    /// Writes the unpacked `Torvyn.toml` of a pipeline.
    pub(crate) fn put_pipeline_manifest(
        &self,
        digest: &str,
        text: &[u8],
    ) -> miette::Result<PathBuf> {
        let path = self.pipeline_manifest(digest)?;
        write_atomically(&path, text)?;
        Ok(path)
    }
}

/// Writes `data` to a temporary file beside `path`, then renames it into place.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> miette::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let context = || format!("cannot write `{}`", path.display());
    std::fs::create_dir_all(dir)
        .into_diagnostic()
        .wrap_err_with(context)?;
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = tempfile::Builder::new();
    // Readable by all, as files written directly would be (a temporary file is not).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut file = builder
        .tempfile_in(dir)
        .into_diagnostic()
        .wrap_err_with(context)?;
    std::io::Write::write_all(&mut file, data)
        .into_diagnostic()
        .wrap_err_with(context)?;
    file.persist(path)
        .into_diagnostic()
        .wrap_err_with(context)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::digest;
    use super::*;

    #[test]
    fn a_blob_is_stored_only_under_its_own_digest_and_checked_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store {
            root: dir.path().to_owned(),
        };
        let path = store.put(&digest(b"component"), b"component").unwrap();
        let wrong = digest(b"another");
        assert!(store.put(&wrong, b"component").is_err());
        assert_eq!(store.get(&wrong).unwrap(), None);
        assert_eq!(
            store.get(&digest(b"component")).unwrap().as_deref(),
            Some(&b"component"[..])
        );
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(store.get(&digest(b"component")).unwrap(), None);
        assert!(!path.exists(), "a corrupt blob is removed");
    }
}
