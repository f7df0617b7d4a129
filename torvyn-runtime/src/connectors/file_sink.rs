//! The `file` and `stdout` sinks: each batch of elements is written in one `write` (a
//! newline after each element under line framing), and counts delivered once the OS has
//! it (and, with `fsync`, once it is on disk). A closed standard output (a broken pipe:
//! `… | head`) is not an error: the sink says it is closed, and the flow stops its sources
//! and counts what could not be written. A write that fails part way delivers the
//! elements written whole and cuts a piece of the next off a file again, so that a retry
//! writes whole lines. A named pipe (FIFO) is opened at the first write, so that waiting
//! for its reader holds only the sink, on the thread it writes from.
//!
//! A file deleted under the sink (its folder removed, or the file itself) would take
//! every later write with it, unreadable, each counted delivered: after each write,
//! whole or not, the sink looks at the open file's link count, and a file no longer
//! linked is made again at its path (its folders too) and the batch written into it
//! again. A file renamed (rotated by `mv`) still has a name: the sink writes on into it,
//! as most programs do until told to reopen; nothing is lost.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::FileSinkSpec;
use crate::config::Framing;
use crate::engine::{BackpressureSignal, ProcessError};
use crate::observability::ConnectorReport;
use crate::reactor::{CallError, Handled, Queued, host_read_onto};
use crate::resources::BufferTable;

/// Where a sink writes.
enum Output {
    File {
        path: PathBuf,
        file: File,
        /// Its file system counts links: the file showed one when it was opened.
        links_counted: bool,
    },
    /// A named pipe, opened at the first write: opening one waits for a reader.
    Fifo {
        path: PathBuf,
        pipe: Option<File>,
    },
    Stdout(io::Stdout),
}

/// A write that stopped short: how many bytes went out, and why.
struct ShortWrite {
    written: usize,
    error: io::Error,
    /// The bytes were all written, but could not be flushed to disk.
    in_sync: bool,
}

impl ShortWrite {
    /// Nothing went out: the output could not be opened.
    fn unopened(error: io::Error) -> ShortWrite {
        ShortWrite {
            written: 0,
            error,
            in_sync: false,
        }
    }
}

/// Where a whole write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrote {
    /// Into the output as it was.
    Through,
    /// Into the sink's file made again at its path: the one it had was deleted.
    IntoFileMadeAgain,
}

/// The folder `path` is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Opens the file at `path` to append to, making it and its folders when missing. With
/// `sync`, the names it made are on disk too (each in the folder that holds it), so
/// that a crash does not take the file away with what was synced into it; a file that
/// was there is opened as it is (its folder may be one the sink cannot read).
fn open_to_append(path: &Path, sync: bool) -> io::Result<File> {
    let dir = folder_of(path);
    let missing: Vec<&Path> = (dir.ancestors())
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    let made = !path.exists();
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    if sync && made {
        for holder in std::iter::once(dir).chain(missing.iter().map(|d| folder_of(d))) {
            File::open(holder)?.sync_all()?;
        }
    }
    Ok(file)
}

/// How many names `file` has in its file system, if that can be read.
fn links(file: &File) -> Option<u64> {
    file.metadata().ok().map(|m| m.nlink())
}

/// Writes all of `bytes` to `file`; with `sync`, to disk too.
fn write_to_file(file: &mut File, bytes: &[u8], sync: bool) -> Result<(), ShortWrite> {
    let written = write_fully(file, bytes)?;
    match sync {
        true => file.sync_data().map_err(|error| ShortWrite {
            written,
            error,
            in_sync: true,
        }),
        false => Ok(()),
    }
}

impl Output {
    /// Writes all of `bytes` through to the OS; with `sync`, to disk too.
    fn write_all(&mut self, bytes: &[u8], sync: bool) -> Result<Wrote, ShortWrite> {
        match self {
            Output::File {
                path,
                file,
                links_counted,
            } => {
                let written = write_to_file(file, bytes, sync);
                // Linked nowhere: what was written, whole or in part, is lost with it.
                // Where the link count cannot be read, the write stands as it went.
                if !*links_counted || links(file).is_none_or(|n| n > 0) {
                    return written.map(|()| Wrote::Through);
                }
                *file = open_to_append(path, sync).map_err(ShortWrite::unopened)?;
                write_to_file(file, bytes, sync).map(|()| Wrote::IntoFileMadeAgain)
            }
            Output::Fifo { path, pipe } => {
                let pipe = match pipe {
                    Some(pipe) => pipe,
                    None => pipe.insert(
                        (OpenOptions::new().write(true).open(path))
                            .map_err(ShortWrite::unopened)?,
                    ),
                };
                write_fully(pipe, bytes).map(|_| Wrote::Through)
            }
            Output::Stdout(stdout) => {
                let mut stdout = stdout.lock();
                let written = write_fully(&mut stdout, bytes)?;
                stdout.flush().map_err(|error| ShortWrite {
                    written,
                    error,
                    in_sync: false,
                })?;
                Ok(Wrote::Through)
            }
        }
    }

    /// Whether a write may wait for as long as someone else pleases: the output is not a
    /// regular file but a pipe, a terminal or a socket (or cannot be told).
    fn may_block(&self) -> bool {
        let fd = match self {
            Output::File { file, .. } => file.as_fd(),
            Output::Fifo { .. } => return true,
            Output::Stdout(stdout) => stdout.as_fd(),
        };
        let regular = (fd.try_clone_to_owned())
            .and_then(|fd| File::from(fd).metadata())
            .is_ok_and(|metadata| metadata.file_type().is_file());
        !regular
    }

    /// Drops the last `bytes` written to a file: a piece of an element a failed write left.
    fn cut(&mut self, bytes: usize) -> io::Result<()> {
        match self {
            Output::File { file, .. } if bytes > 0 => {
                let len = file.metadata()?.len();
                file.set_len(len.saturating_sub(bytes as u64))
            }
            _ => Ok(()),
        }
    }
}

/// Writes all of `bytes` to `out`, saying how far it got when it could not.
fn write_fully(out: &mut impl Write, bytes: &[u8]) -> Result<usize, ShortWrite> {
    let mut written = 0;
    while written < bytes.len() {
        let error = match out.write(&bytes[written..]) {
            Ok(0) => io::ErrorKind::WriteZero.into(),
            Ok(n) => {
                written += n;
                continue;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => error,
        };
        return Err(ShortWrite {
            written,
            error,
            in_sync: false,
        });
    }
    Ok(written)
}

pub(crate) struct FileSink {
    index: usize,
    output: Output,
    what: String,
    framing: Framing,
    fsync: bool,
    /// A batch as written, and where each element of it ends, kept to save allocations.
    scratch: Vec<u8>,
    ends: Vec<usize>,
    closed: bool,
    report: ConnectorReport,
    /// How long the latest batch took to write.
    last_write: Duration,
}

impl FileSink {
    pub(crate) fn open_file(spec: &FileSinkSpec, index: usize) -> Result<Self, String> {
        let what = format!("`{}`", spec.path.display());
        let describe = |e: io::Error| format!("cannot open {what} to append to: {e}");
        let fifo = std::fs::metadata(&spec.path).is_ok_and(|m| m.file_type().is_fifo());
        let output = match fifo {
            true => Output::Fifo {
                path: spec.path.clone(),
                pipe: None,
            },
            false => {
                let file = open_to_append(&spec.path, spec.fsync).map_err(describe)?;
                Output::File {
                    path: spec.path.clone(),
                    links_counted: links(&file).is_some_and(|n| n > 0),
                    file,
                }
            }
        };
        Ok(Self::new(
            index,
            output,
            what,
            spec.framing,
            spec.fsync,
            "file",
        ))
    }

    pub(crate) fn stdout(framing: Framing, index: usize) -> Self {
        let output = Output::Stdout(io::stdout());
        Self::new(
            index,
            output,
            "standard output".into(),
            framing,
            false,
            "stdout",
        )
    }

    fn new(
        index: usize,
        output: Output,
        what: String,
        framing: Framing,
        fsync: bool,
        kind: &str,
    ) -> Self {
        FileSink {
            index,
            output,
            what,
            framing,
            fsync,
            scratch: Vec::new(),
            ends: Vec::new(),
            closed: false,
            report: ConnectorReport::new(kind),
            last_write: Duration::ZERO,
        }
    }

    /// Whether its writes may wait for as long as a reader pleases (see `Output`).
    pub(crate) fn may_block(&self) -> bool {
        self.output.may_block()
    }

    /// How long the latest batch took to write.
    pub(crate) fn last_write(&self) -> Duration {
        self.last_write
    }

    /// Writes `elements` in one go.
    pub(crate) fn write(
        &mut self,
        table: &mut BufferTable,
        elements: &[Queued],
    ) -> Vec<Result<Handled, CallError>> {
        let each = |result: &dyn Fn() -> Result<Handled, CallError>| {
            elements.iter().map(|_| result()).collect()
        };
        if self.closed {
            self.report.unwritten += elements.len() as u64;
            return each(&|| Ok(Handled::Closed));
        }
        self.scratch.clear();
        self.ends.clear();
        for element in elements {
            if let Err(error) = host_read_onto(table, self.index, element.buffer, &mut self.scratch)
            {
                let why = error.to_string();
                return each(&|| Err(CallError::Trap(wasmtime::Error::msg(why.clone()))));
            }
            if self.framing != Framing::Whole {
                self.scratch.push(b'\n');
            }
            self.ends.push(self.scratch.len());
        }
        let began = Instant::now();
        let written = self.output.write_all(&self.scratch, self.fsync);
        self.last_write = began.elapsed();
        let short = match written {
            Ok(wrote) => {
                self.report.bytes += self.scratch.len() as u64;
                self.report.files_made_again += u64::from(wrote == Wrote::IntoFileMadeAgain);
                return each(&|| Ok(Handled::Delivered(BackpressureSignal::Ready)));
            }
            Err(short) => short,
        };
        // The elements written whole are delivered (unless they could not be flushed to
        // disk as asked); a piece of the next is cut off again, so that a retry does not
        // leave half a line behind.
        let whole = match short.in_sync {
            true => 0,
            false => self
                .ends
                .iter()
                .take_while(|&&end| end <= short.written)
                .count(),
        };
        let kept = whole.checked_sub(1).map_or(0, |last| self.ends[last]);
        let cut = self.output.cut(short.written.saturating_sub(kept));
        self.report.bytes += kept as u64;
        let closed = short.error.kind() == io::ErrorKind::BrokenPipe;
        if closed {
            self.closed = true;
            self.report.closed = true;
            self.report.unwritten += (elements.len() - whole) as u64;
        }
        let why = match cut {
            Ok(()) => format!("cannot write to {}: {}", self.what, short.error),
            Err(error) => format!(
                "cannot write to {}: {}; and the piece of an element written could not be cut off: {error}",
                self.what, short.error
            ),
        };
        let delivered =
            std::iter::repeat_with(|| Ok(Handled::Delivered(BackpressureSignal::Ready)));
        let rest = std::iter::repeat_with(|| match closed {
            true => Ok(Handled::Closed),
            false => Err(CallError::Process(ProcessError::Unavailable(why.clone()))),
        });
        delivered
            .take(whole)
            .chain(rest)
            .take(elements.len())
            .collect()
    }

    /// Flushes what the OS holds for a file, when asked to (`fsync`).
    pub(crate) fn close(&mut self) -> Result<(), String> {
        if let Output::File { file, .. } = &self.output
            && self.fsync
        {
            (file.sync_all()).map_err(|e| format!("cannot flush {}: {e}", self.what))?;
        }
        Ok(())
    }

    pub(crate) fn report(&self) -> ConnectorReport {
        self.report.clone()
    }
}
