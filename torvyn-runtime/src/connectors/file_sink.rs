//! The `file` and `stdout` sinks: each batch of elements is written in one `write` (a
//! newline after each element under line framing), and counts delivered once the OS has
//! it (and, with `fsync`, once it is on disk). A closed standard output (a broken pipe:
//! `… | head`) is not an error: the sink says it is closed, and the flow stops its sources
//! and counts what could not be written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};

use super::FileSinkSpec;
use crate::config::Framing;
use crate::engine::{BackpressureSignal, ProcessError};
use crate::observability::ConnectorReport;
use crate::reactor::{CallError, Handled, Queued, host_read_onto};
use crate::resources::BufferTable;

/// Where a sink writes.
enum Output {
    File(File),
    Stdout(io::Stdout),
}

impl Output {
    /// Writes all of `bytes` through to the OS; with `sync`, to disk too.
    fn write_all(&mut self, bytes: &[u8], sync: bool) -> io::Result<()> {
        match self {
            Output::File(file) => {
                file.write_all(bytes)?;
                if sync {
                    file.sync_data()?;
                }
                Ok(())
            }
            Output::Stdout(stdout) => {
                let mut stdout = stdout.lock();
                stdout.write_all(bytes)?;
                stdout.flush()
            }
        }
    }
}

pub(crate) struct FileSink {
    index: usize,
    output: Output,
    what: String,
    framing: Framing,
    fsync: bool,
    /// A batch as written, kept to save an allocation per batch.
    scratch: Vec<u8>,
    closed: bool,
    report: ConnectorReport,
}

impl FileSink {
    pub(crate) fn open_file(spec: &FileSinkSpec, index: usize) -> Result<Self, String> {
        let what = format!("`{}`", spec.path.display());
        let describe = |e: io::Error| format!("cannot open {what} to append to: {e}");
        if let Some(dir) = spec.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(describe)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.path)
            .map_err(describe)?;
        let output = Output::File(file);
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
            closed: false,
            report: ConnectorReport::new(kind),
        }
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
        for element in elements {
            if let Err(error) = host_read_onto(table, self.index, element.buffer, &mut self.scratch)
            {
                let why = error.to_string();
                return each(&|| Err(CallError::Trap(wasmtime::Error::msg(why.clone()))));
            }
            if self.framing != Framing::Whole {
                self.scratch.push(b'\n');
            }
        }
        let written = self.output.write_all(&self.scratch, self.fsync);
        match written {
            Ok(()) => {
                self.report.bytes += self.scratch.len() as u64;
                each(&|| Ok(Handled::Delivered(BackpressureSignal::Ready)))
            }
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                self.report.closed = true;
                self.report.unwritten += elements.len() as u64;
                each(&|| Ok(Handled::Closed))
            }
            Err(error) => {
                let why = format!("cannot write to {}: {error}", self.what);
                each(&|| Err(CallError::Process(ProcessError::Unavailable(why.clone()))))
            }
        }
    }

    /// Flushes what the OS holds for a file, when asked to (`fsync`).
    pub(crate) fn close(&mut self) -> Result<(), String> {
        if let Output::File(file) = &self.output
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
