//! A file source's checkpoints: for each file, the position after the contiguous prefix
//! of its elements whose fate is known, kept in a JSON file of the state folder
//! (`STATE/FLOW/NODE.json`), replaced atomically (written beside it, then renamed over it).
//!
//! A file is known by its device and inode and by a fingerprint (SHA-256) of its first
//! bytes (up to [`FINGERPRINT_BYTES`]), so that a file that took the inode of another, or
//! was replaced in place, is read from its start instead of at a stranger's offset. The
//! fingerprint covers the bytes the file had when it was last checkpointed: the start of
//! a file that is only appended to does not change.
//!
//! A file's first bytes alone miss a file written again in place with the same start (a
//! header longer than the fingerprint, a file generated again): so a checkpoint also
//! keeps a digest of the last bytes read before it was stored (up to where the file had
//! been read, [`Before`]), and a file whose bytes there changed is read from its start too.
//! A file only appended to keeps them.
//!
//! Each reading of a file from its start has a version (random, [`new_version`]), kept in
//! its checkpoint, so that what names an element downstream (a NATS message id) is the
//! same when a restart reads it again and new when the file at that path was replaced or
//! truncated and written again: offsets alone repeat across a file's versions.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many of a file's first bytes its fingerprint covers, at most.
pub(crate) const FINGERPRINT_BYTES: u64 = 1024;

/// Who a file is: device, inode and the fingerprint of its first `length` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) device: u64,
    pub(crate) inode: u64,
    /// How many bytes the fingerprint covers.
    pub(crate) length: u64,
    /// SHA-256 of those bytes, in hex.
    pub(crate) fingerprint: String,
}

impl Identity {
    /// The identity of the open `file`, fingerprinting up to [`FINGERPRINT_BYTES`].
    pub(crate) fn of(file: &File) -> io::Result<Identity> {
        let meta = file.metadata()?;
        let length = meta.len().min(FINGERPRINT_BYTES);
        Ok(Identity {
            device: meta.dev(),
            inode: meta.ino(),
            length,
            fingerprint: fingerprint(file, length)?.unwrap_or_default(),
        })
    }

    /// The identity of a file on `device` and `inode` whose first bytes, as read, are
    /// `head` (at most [`FINGERPRINT_BYTES`]).
    pub(crate) fn of_head(device: u64, inode: u64, head: &[u8]) -> Identity {
        Identity {
            device,
            inode,
            length: head.len() as u64,
            fingerprint: digest(head),
        }
    }

    /// Whether `file` is this file: the same device and inode, and the same first bytes.
    pub(crate) fn matches(&self, file: &File) -> io::Result<bool> {
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != (self.device, self.inode) {
            return Ok(false);
        }
        Ok(fingerprint(file, self.length)?.is_some_and(|f| f == self.fingerprint))
    }
}

/// SHA-256 of the first `length` bytes of `file`, or `None` when it is shorter.
fn fingerprint(file: &File, length: u64) -> io::Result<Option<String>> {
    Ok(read_head(file, length)?.map(|bytes| digest(&bytes)))
}

/// The first `length` bytes of `file`, or `None` when it is shorter.
fn read_head(file: &File, length: u64) -> io::Result<Option<Vec<u8>>> {
    read_range(file, 0, length)
}

/// `length` bytes of `file` from `start`, or `None` when it ends before them.
fn read_range(file: &File, start: u64, length: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = vec![0; length as usize];
    let mut read = 0;
    while read < bytes.len() {
        match file.read_at(&mut bytes[read..], start + read as u64)? {
            0 => return Ok(None),
            n => read += n,
        }
    }
    Ok(Some(bytes))
}

/// Whether `file` still starts with `head`, the bytes read from its start.
pub(crate) fn starts_with(file: &File, head: &[u8]) -> io::Result<bool> {
    Ok(read_head(file, head.len() as u64)?.is_some_and(|bytes| bytes == head))
}

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of the bytes just before a position of a file (up to [`FINGERPRINT_BYTES`]
/// of them): where a run had read it to when it stored a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Before {
    /// The offset the bytes end at.
    pub(crate) offset: u64,
    /// SHA-256 of `[offset - min(offset, FINGERPRINT_BYTES), offset)`, in hex.
    pub(crate) digest: String,
}

impl Before {
    /// The bytes of `file` before `offset`, as they are now; `None` when the file is
    /// shorter.
    pub(crate) fn of(file: &File, offset: u64) -> io::Result<Option<Before>> {
        let start = offset.saturating_sub(FINGERPRINT_BYTES);
        Ok(
            read_range(file, start, offset - start)?.map(|bytes| Before {
                offset,
                digest: digest(&bytes),
            }),
        )
    }

    /// The bytes that end at `offset`, as read: all of them up to [`FINGERPRINT_BYTES`]
    /// (fewer only when `offset` is smaller).
    pub(crate) fn of_bytes(offset: u64, bytes: &[u8]) -> Before {
        Before {
            offset,
            digest: digest(bytes),
        }
    }

    /// Whether `file` still holds these bytes before `offset`.
    pub(crate) fn matches(&self, file: &File) -> io::Result<bool> {
        Ok(Before::of(file, self.offset)?.is_some_and(|now| now == *self))
    }
}

/// One file's checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileCheckpoint {
    /// The path it was read by, for people reading the state file.
    pub(crate) path: PathBuf,
    #[serde(flatten)]
    pub(crate) identity: Identity,
    /// Every element that ends at or before this byte has settled (or failed under a
    /// policy that went on): a restart reads from here.
    pub(crate) offset: u64,
    /// How far the file had been read when this checkpoint was written: elements between
    /// `offset` and `read` may have been delivered already, and are read again after a
    /// restart (replayed).
    pub(crate) read: u64,
    /// How many lines end at or before `offset`, so that a restart numbers the next line
    /// right. Absent where lines were not counted (`whole` framing, or a checkpoint written
    /// before they were): that file's lines then go unnumbered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lines: Option<u64>,
    /// Which reading of the file this is: 16 hex digits, made when it was first read from
    /// its start (the `file-version` attribute of its elements). Absent in a checkpoint
    /// written before versions were kept: the file then takes a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    /// The last bytes read before the checkpoint was stored, as read, ending where the file
    /// had been read to (at or past `offset`). Absent in a checkpoint written before they
    /// were kept: the first bytes alone then say whether it is the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) before: Option<Before>,
}

/// A new file version: 16 random hex digits.
pub(crate) fn new_version() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The contents of a checkpoint file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkpoints {
    pub(crate) files: Vec<FileCheckpoint>,
}

impl Checkpoints {
    /// The checkpoints at `path`; none when it does not exist. A file that cannot be
    /// parsed is an error: the host does not start over silently.
    pub(crate) fn load(path: &Path) -> io::Result<Checkpoints> {
        let mut text = String::new();
        match File::open(path) {
            Ok(mut file) => file.read_to_string(&mut text)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(error) => return Err(error),
        };
        serde_json::from_str(&text).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("checkpoint file `{}` is damaged: {error}", path.display()),
            )
        })
    }

    /// Writes the checkpoints to `path` atomically: to a file beside it, then renamed.
    pub(crate) fn store(&self, path: &Path) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer_pretty(&mut file, self)?;
        // On disk before it replaces the old one: a crash leaves one or the other whole.
        file.as_file().sync_all()?;
        file.persist(path).map_err(|error| error.error)?;
        Ok(())
    }

    /// The checkpoint of `file`, if one is this file: the same device, inode and first
    /// bytes, and the same bytes before the position its [`Before`] names.
    pub(crate) fn find(&self, file: &File) -> io::Result<Option<&FileCheckpoint>> {
        for checkpoint in &self.files {
            if checkpoint.identity.matches(file)?
                && (checkpoint.before.as_ref()).map_or(Ok(true), |b| b.matches(file))?
            {
                return Ok(Some(checkpoint));
            }
        }
        Ok(None)
    }
}

/// The lock that keeps two runs from reading the same files with the same checkpoints at
/// once: an exclusive lock on `CHECKPOINT.lock`, beside the checkpoint file, held while the
/// source is open. Taking it also shows, before anything is read, that the state folder can
/// be written to.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

impl StateLock {
    pub(crate) fn take(checkpoint: &Path) -> Result<StateLock, String> {
        let path = checkpoint.with_extension("lock");
        let describe = |e: io::Error| format!("cannot lock `{}`: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(describe)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(describe)?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "another run reads these files with these checkpoints (`{}` is locked): two would each deliver everything",
                path.display()
            )),
            Err(std::fs::TryLockError::Error(error)) => Err(describe(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_in_place_is_not_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "first line\n").unwrap();
        let file = File::open(&path).unwrap();
        let identity = Identity::of(&file).unwrap();
        assert!(identity.matches(&file).unwrap());
        // The same inode and size, other bytes.
        std::fs::write(&path, "other line\n").unwrap();
        assert!(!identity.matches(&File::open(&path).unwrap()).unwrap());
        // Appends keep it the same file.
        std::fs::write(&path, "first line\nmore\n").unwrap();
        assert!(identity.matches(&File::open(&path).unwrap()).unwrap());

        let state = dir.path().join("state/flow/node.json");
        let checkpoints = Checkpoints {
            files: vec![FileCheckpoint {
                path: path.clone(),
                identity,
                offset: 11,
                read: 16,
                lines: Some(1),
                version: Some(new_version()),
                before: Before::of(&File::open(&path).unwrap(), 11).unwrap(),
            }],
        };
        checkpoints.store(&state).unwrap();
        let loaded = Checkpoints::load(&state).unwrap();
        let found = loaded.find(&File::open(&path).unwrap()).unwrap().unwrap();
        assert_eq!((found.offset, found.read, found.lines), (11, 16, Some(1)));
        assert_eq!(found.version, checkpoints.files[0].version);
        // The bytes before where `first line\nmore\n` was read to: appended to, the same
        // file; the same first bytes (all the fingerprint has) and others there, another.
        let mut read_to_16 = loaded.files[0].clone();
        read_to_16.before = Before::of(&File::open(&path).unwrap(), 16).unwrap();
        let read_to_16 = Checkpoints {
            files: vec![read_to_16],
        };
        let found = |checkpoints: &Checkpoints| {
            let file = File::open(&path).unwrap();
            checkpoints.find(&file).unwrap().is_some()
        };
        std::fs::write(&path, "first line\nmore\nand more\n").unwrap();
        assert!(found(&read_to_16));
        std::fs::write(&path, "first line\nmire\nand more\n").unwrap();
        assert!(!found(&read_to_16));
        // A checkpoint written before they were kept compares the first bytes only.
        let mut older = read_to_16.files[0].clone();
        older.before = None;
        assert!(found(&Checkpoints { files: vec![older] }));
        std::fs::write(&state, "{").unwrap();
        assert!(Checkpoints::load(&state).is_err());

        let lock = StateLock::take(&state).unwrap();
        assert!(StateLock::take(&state).unwrap_err().contains("is locked"));
        drop(lock);
        StateLock::take(&state).unwrap();
    }
}
