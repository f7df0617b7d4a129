//! The folder every stage sees as `/`: empty and read-only, so that a path outside the
//! directories a component was granted reaches the host, which refuses and audits it.

use std::path::Path;

/// An empty folder of the host's, removed when dropped.
#[derive(Debug)]
pub(crate) struct DeniedRoot {
    dir: tempfile::TempDir,
    #[cfg(unix)]
    id: (u64, u64),
}

impl DeniedRoot {
    /// Creates a fresh empty folder in the system's temporary folder, under a random name:
    /// a folder left behind by a host that was killed never stands in the way.
    pub(crate) fn create() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("torvyn-root-").tempdir()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let path = dir.path();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o500))?;
            let metadata = std::fs::metadata(path)?;
            Ok(Self {
                id: (metadata.dev(), metadata.ino()),
                dir,
            })
        }
        #[cfg(not(unix))]
        Ok(Self { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
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
