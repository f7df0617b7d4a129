//! The folder every stage sees as `/`: empty and read-only, so that a path outside the
//! directories a component was granted reaches the host, which refuses and audits it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An empty folder of the host's, removed when dropped.
#[derive(Debug)]
pub(crate) struct DeniedRoot {
    path: PathBuf,
    #[cfg(unix)]
    id: (u64, u64),
}

impl DeniedRoot {
    /// Creates a fresh empty folder in the system's temporary folder.
    pub(crate) fn create() -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "torvyn-root-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o500))?;
            let metadata = std::fs::metadata(&path)?;
            Ok(Self {
                id: (metadata.dev(), metadata.ino()),
                path,
            })
        }
        #[cfg(not(unix))]
        Ok(Self { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `dir` is this folder, opened.
    pub(crate) fn is(&self, dir: &std::fs::File) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            dir.metadata().is_ok_and(|m| (m.dev(), m.ino()) == self.id)
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            false
        }
    }
}

impl Drop for DeniedRoot {
    fn drop(&mut self) {
        // Best effort: it is empty, and the system cleans its temporary folder anyway.
        let _ = std::fs::remove_dir(&self.path);
    }
}
