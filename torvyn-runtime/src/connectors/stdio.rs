//! The `stdin` source: a thread reads standard input in chunks and hands them to the
//! flow through a small bounded channel (so a flow that is held back stops reading, and
//! the writer of the pipe is held back in turn); the flow cuts them into elements. The end
//! of input ends the source's stream, and the flow drains. The reading thread is not
//! joined: it ends with the input, or with the process.

use std::io::Read;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::sync::mpsc::{self, Receiver, error::TryRecvError};

use super::framing::{Frame, Framer, place};
use super::{FramingSpec, Pulled};
use crate::attributes::{Attributes, ReadAt, ReadAtQueue};
use crate::engine::ProcessError;
use crate::observability::ConnectorReport;
use crate::reactor::{CallError, host_output};
use crate::resources::BufferTable;

/// Chunks read ahead of the flow.
const CHUNKS_AHEAD: usize = 4;
/// The most read at once.
const CHUNK: usize = 64 * 1024;

pub(crate) struct StdinSource {
    index: usize,
    spec: FramingSpec,
    framer: Framer,
    chunks: Receiver<std::io::Result<Vec<u8>>>,
    /// Standard input has ended (or failed to be read).
    ended: bool,
    /// The last pull stopped at its most elements: more may be framed already.
    more: bool,
    /// Attributes of the elements handed out and not yet taken by the driver.
    attributes: ReadAtQueue,
    report: ConnectorReport,
}

impl StdinSource {
    pub(crate) fn open(spec: FramingSpec, index: usize, wake: Arc<Notify>) -> Result<Self, String> {
        let (sender, chunks) = mpsc::channel(CHUNKS_AHEAD);
        std::thread::Builder::new()
            .name("torvyn-stdin".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                loop {
                    let mut chunk = vec![0; CHUNK];
                    let read = stdin.read(&mut chunk).map(|n| {
                        chunk.truncate(n);
                        chunk
                    });
                    let last = !matches!(&read, Ok(chunk) if !chunk.is_empty());
                    if sender.blocking_send(read).is_err() {
                        return;
                    }
                    wake.notify_one();
                    if last {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start reading standard input: {e}"))?;
        Ok(StdinSource {
            index,
            spec,
            framer: Framer::new(spec.framing, spec.max_element_size, spec.oversize),
            chunks,
            ended: false,
            more: false,
            attributes: ReadAtQueue::default(),
            report: ConnectorReport::new("stdin"),
        })
    }

    /// Whether input has come (or ended) that no element has taken yet.
    pub(crate) fn ready(&mut self) -> bool {
        self.ended || self.more || !self.chunks.is_empty()
    }

    pub(crate) fn pull_batch(
        &mut self,
        table: &mut BufferTable,
        max: u32,
    ) -> Result<Pulled, CallError> {
        let mut results = Vec::new();
        while results.len() < max as usize {
            let Some(framed) = self.framer.next(self.ended) else {
                if self.ended {
                    results.push(Ok(None));
                    break;
                }
                match self.chunks.try_recv() {
                    Ok(Ok(chunk)) if !chunk.is_empty() => {
                        self.report.bytes += chunk.len() as u64;
                        self.framer.feed(&chunk);
                    }
                    Ok(Ok(_)) | Err(TryRecvError::Disconnected) => self.ended = true,
                    Ok(Err(error)) => {
                        self.ended = true;
                        let why = format!("cannot read standard input: {error}");
                        results.push(Err(ProcessError::Unavailable(why)));
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                }
                continue;
            };
            let (line, start) = (framed.line, framed.start);
            results.push(match framed.frame {
                Frame::Element { range, truncated } => {
                    self.report.oversize_truncated += truncated as u64;
                    let content_type = self.spec.framing.content_type();
                    let bytes = self.framer.bytes(range);
                    let output = host_output(table, self.index, bytes, content_type.into())?;
                    self.attributes.push(|| ReadAt {
                        path: None,
                        version: None,
                        line: framed.line,
                        offset: framed.start,
                    });
                    Ok(Some(output))
                }
                Frame::Skipped => {
                    self.report.oversize_skipped += 1;
                    continue;
                }
                Frame::NotJson(why) => Err(ProcessError::InvalidInput(format!(
                    "standard input, {}, is not JSON: {why}",
                    place(line, start, true)
                ))),
                Frame::TooLong(length) => Err(ProcessError::InvalidInput(format!(
                    "standard input: {} is {length} bytes, more than max-element-size ({} bytes)",
                    place(line, start, true),
                    self.spec.max_element_size
                ))),
            });
            if results.last().is_some_and(Result::is_err) {
                break;
            }
        }
        // A batch ended by its size or by an error may leave complete elements framed.
        self.more = results.len() == max as usize || results.last().is_some_and(Result::is_err);
        Ok(results)
    }

    pub(crate) fn take_attributes(&mut self) -> Attributes {
        self.attributes.take()
    }

    pub(crate) fn omit_attributes(&mut self) {
        self.attributes.omit();
    }

    pub(crate) fn report(&self) -> ConnectorReport {
        self.report.clone()
    }
}
