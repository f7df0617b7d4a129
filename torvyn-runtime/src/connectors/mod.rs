//! Built-in connectors: sources and sinks the host plays itself, reading and writing real
//! data (files, standard input and output). They are nodes like any other (the same
//! queues, policies, accounting, metrics and traces), and they are called through the
//! same batch path as a batch component, with no component call: a source copies what
//! it reads into host buffers once, and a sink copies elements out once into what it
//! writes, both counted by the copy ledger.
//!
//! The reactor knows them through [`Connector`]: a source is asked whether it has
//! something now ([`Connector::ready`]), for a batch of elements, and told the final fate
//! of each element it emitted ([`Connector::settled`], from the end-to-end
//! acknowledgements of `reactor::acks`); a sink is handed batches; both are ticked about
//! once a second and closed at the end of the flow, whatever its outcome.
//!
//! One connector per file: `file_source` (with `checkpoint`), `file_sink`, `stdio`, and
//! the NATS JetStream source and sink in `nats`; `framing` cuts bytes into elements for
//! the file and standard input sources.

mod checkpoint;
mod file_sink;
mod file_source;
mod framing;
mod nats;
mod stdio;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub(crate) use self::file_source::glob_others;
pub use self::file_source::{glob_files, glob_in};
pub(crate) use self::nats::Connection;
pub use self::nats::{NatsSinkSpec, NatsSourceSpec, SinkSubject, StreamSpec};
use crate::attributes::Attributes;
use crate::config::{Framing, Oversize};
use crate::contracts::Role;
use crate::engine::ProcessError;
use crate::observability::ConnectorReport;
use crate::reactor::{CallError, Deliveries, Handled, Made, Queued};
use crate::resources::BufferTable;

/// A built-in connector as the manifest declares it, ready to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorSpec {
    /// Reads the files matching `include`.
    FileSource(FileSourceSpec),
    /// Reads standard input.
    Stdin(FramingSpec),
    /// Reads a JetStream stream through a durable pull consumer.
    NatsSource(NatsSourceSpec),
    /// Appends to a file.
    FileSink(FileSinkSpec),
    /// Writes to standard output.
    Stdout(Framing),
    /// Publishes to JetStream.
    NatsSink(NatsSinkSpec),
}

impl ConnectorSpec {
    /// The role the connector plays.
    pub fn role(&self) -> Role {
        match self {
            ConnectorSpec::FileSource(_)
            | ConnectorSpec::Stdin(_)
            | ConnectorSpec::NatsSource(_) => Role::Source,
            ConnectorSpec::FileSink(_) | ConnectorSpec::Stdout(_) | ConnectorSpec::NatsSink(_) => {
                Role::Sink
            }
        }
    }
}

/// How a source cuts what it reads into elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingSpec {
    /// Lines, NDJSON lines, or the whole input.
    pub framing: Framing,
    /// The longest element, in bytes.
    pub max_element_size: u64,
    /// What a longer element becomes.
    pub oversize: Oversize,
}

/// A `file` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSourceSpec {
    /// Absolute glob patterns, read in this order, each one's matches sorted by path.
    pub include: Vec<String>,
    /// How what is read is cut into elements.
    pub framing: FramingSpec,
    /// Keep reading appends, rotated and truncated files (`tail -F`) until stopped.
    pub follow: bool,
    /// The checkpoint file: `STATE/FLOW/NODE.json`.
    pub checkpoint: PathBuf,
}

/// A `file` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkSpec {
    /// The file appended to.
    pub path: PathBuf,
    /// `lines` and `ndjson` write a newline after each element; `whole` writes the bytes
    /// as they are.
    pub framing: Framing,
    /// `fsync` each batch before it counts delivered.
    pub fsync: bool,
}

/// A running connector.
pub(crate) enum Connector {
    FileSource(Box<file_source::FileSource>),
    Stdin(stdio::StdinSource),
    NatsSource(Box<nats::NatsSource>),
    FileSink(file_sink::FileSink),
    Stdout(file_sink::FileSink),
    NatsSink(Box<nats::NatsSink>),
}

/// What a source's batch call gives: each result as a component's batch pull would, with
/// the acknowledgement ticket of each element or error (none for the end of the stream).
pub(crate) type Pulled = Vec<Result<Option<Made>, ProcessError>>;

impl Connector {
    /// Opens the connector of node `index`: its files, its checkpoints, its reader.
    /// `wake` is notified when a source that was not ready may have become so.
    pub(crate) fn open(
        spec: &ConnectorSpec,
        index: usize,
        wake: &Arc<Notify>,
    ) -> Result<Connector, String> {
        Ok(match spec {
            ConnectorSpec::FileSource(spec) => {
                Connector::FileSource(Box::new(file_source::FileSource::open(spec, index)?))
            }
            ConnectorSpec::Stdin(framing) => {
                Connector::Stdin(stdio::StdinSource::open(*framing, index, wake.clone())?)
            }
            ConnectorSpec::FileSink(spec) => {
                Connector::FileSink(file_sink::FileSink::open_file(spec, index)?)
            }
            ConnectorSpec::Stdout(framing) => {
                Connector::Stdout(file_sink::FileSink::stdout(*framing, index))
            }
            ConnectorSpec::NatsSource(spec) => {
                Connector::NatsSource(Box::new(nats::NatsSource::open(spec, index, wake.clone())?))
            }
            ConnectorSpec::NatsSink(spec) => {
                Connector::NatsSink(Box::new(nats::NatsSink::open(spec, index)?))
            }
        })
    }

    /// A source: whether a pull now would give something (an element, an error or the
    /// end of its stream) without waiting. When not, it is polled again by
    /// [`Connector::poll_at`], or `wake` is notified.
    pub(crate) fn ready(&mut self) -> bool {
        match self {
            Connector::FileSource(source) => source.ready(),
            Connector::Stdin(source) => source.ready(),
            Connector::NatsSource(source) => source.ready(),
            _ => false,
        }
    }

    /// When a source that is not ready should be asked again (a file followed for
    /// appends is looked at a few times a second).
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        match self {
            Connector::FileSource(source) => source.poll_at(),
            _ => None,
        }
    }

    /// A source: up to `max` results, in order; an error or the end of the stream only
    /// last. Each element and error has a ticket, taken with [`Connector::take_ticket`].
    pub(crate) fn pull_batch(
        &mut self,
        table: &mut BufferTable,
        max: u32,
    ) -> Result<Pulled, CallError> {
        match self {
            Connector::FileSource(source) => source.pull_batch(table, max),
            Connector::Stdin(source) => source.pull_batch(table, max),
            Connector::NatsSource(source) => source.pull_batch(table, max),
            _ => unreachable!("pull on a sink connector"),
        }
    }

    /// The acknowledgement ticket of the next element or error pulled, in order; `None`
    /// for a source that does not need to learn its elements' fate.
    pub(crate) fn take_ticket(&mut self) -> Option<u64> {
        match self {
            Connector::FileSource(source) => source.take_ticket(),
            Connector::NatsSource(source) => source.take_ticket(),
            _ => None,
        }
    }

    /// The attributes of the next element pulled, in order: where it was read.
    pub(crate) fn take_attributes(&mut self) -> Attributes {
        match self {
            Connector::FileSource(source) => source.take_attributes(),
            Connector::Stdin(source) => source.take_attributes(),
            Connector::NatsSource(source) => source.take_attributes(),
            _ => Attributes::default(),
        }
    }

    /// No stage of the flow reads attributes: a file or stdin source makes none (a NATS
    /// source's are few, and kept).
    pub(crate) fn omit_attributes(&mut self) {
        match self {
            Connector::FileSource(source) => source.omit_attributes(),
            Connector::Stdin(source) => source.omit_attributes(),
            _ => {}
        }
    }

    /// The element (or error) of `ticket` has reached its final fate: settled, or failed
    /// under a policy that went on, or (a source that can deliver it again) to be
    /// delivered again after `redeliver`.
    pub(crate) fn settled(&mut self, ticket: u64, failed: bool, redeliver: Option<Duration>) {
        match self {
            // A file cannot be read again but from its checkpoint: a redelivery asked of it
            // is a failure.
            Connector::FileSource(source) => source.settled(ticket, failed),
            Connector::NatsSource(source) => source.settled(ticket, failed, redeliver),
            _ => {}
        }
    }

    /// How many times a source has delivered the element of `ticket` and the most it
    /// will; `None` for a source that cannot deliver an element again.
    pub(crate) fn deliveries(&self, ticket: u64) -> Option<Deliveries> {
        match self {
            Connector::NatsSource(source) => source.deliveries(ticket),
            _ => None,
        }
    }

    /// Its connection to a server, which the flow watches for losses and returns; `None`
    /// for a connector without one.
    pub(crate) fn connection(&self) -> Option<Connection> {
        match self {
            Connector::NatsSource(source) => Some(source.connection()),
            Connector::NatsSink(sink) => Some(sink.connection()),
            _ => None,
        }
    }

    /// A source told to stop: it asks for nothing more, and says whether it can drain,
    /// ending its own stream once what it was already sent is out (a NATS source's last
    /// pull request), rather than at once.
    pub(crate) fn stop(&mut self) -> bool {
        match self {
            Connector::NatsSource(source) => {
                source.stop();
                true
            }
            _ => false,
        }
    }

    /// A sink: writes `elements` in one go; each result says what became of one.
    pub(crate) fn handle_batch(
        &mut self,
        table: &mut BufferTable,
        elements: &[Queued],
    ) -> Vec<Result<Handled, CallError>> {
        match self {
            Connector::FileSink(sink) | Connector::Stdout(sink) => sink.write(table, elements),
            Connector::NatsSink(sink) => sink.write(table, elements),
            _ => unreachable!("a batch of elements handed to a source connector"),
        }
    }

    /// A sink whose writes may wait for as long as a reader pleases: one writing to a
    /// pipe, a terminal or a socket rather than a regular file, or one that waits for a
    /// server's acknowledgements.
    pub(crate) fn may_block(&self) -> bool {
        match self {
            Connector::FileSink(sink) | Connector::Stdout(sink) => sink.may_block(),
            Connector::NatsSink(_) => true,
            _ => false,
        }
    }

    /// How long a sink's latest batch took to write; zero for a source.
    pub(crate) fn last_call(&self) -> Duration {
        match self {
            Connector::FileSink(sink) | Connector::Stdout(sink) => sink.last_write(),
            Connector::NatsSink(sink) => sink.last_write(),
            _ => Duration::ZERO,
        }
    }

    /// A few times a second: a file source stores its checkpoints when they moved (and a
    /// second has passed); a NATS source reports the messages it has held long in
    /// progress. An error fails the flow: a checkpoint that cannot be stored, a NATS
    /// consumer deleted under the flow.
    pub(crate) fn tick(&mut self) -> Result<(), String> {
        match self {
            Connector::FileSource(source) => source.tick(false),
            Connector::NatsSource(source) => source.tick(),
            _ => Ok(()),
        }
    }

    /// The flow has ended, however: a file source stores its checkpoints, a sink flushes,
    /// a NATS source gives back what did not settle and flushes its acknowledgements.
    pub(crate) fn close(&mut self) -> Result<(), String> {
        match self {
            Connector::FileSource(source) => source.tick(true),
            Connector::FileSink(sink) | Connector::Stdout(sink) => sink.close(),
            Connector::NatsSource(source) => source.close(),
            Connector::NatsSink(sink) => sink.close(),
            Connector::Stdin(_) => Ok(()),
        }
    }

    /// What it has done so far.
    pub(crate) fn report(&self) -> ConnectorReport {
        match self {
            Connector::FileSource(source) => source.report(),
            Connector::Stdin(source) => source.report(),
            Connector::NatsSource(source) => source.report(),
            Connector::FileSink(sink) | Connector::Stdout(sink) => sink.report(),
            Connector::NatsSink(sink) => sink.report(),
        }
    }
}
