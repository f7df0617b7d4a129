//! Stages the host plays itself: a feed that emits given elements like a source and a
//! recorder that keeps what reaches it like a sink, for testing components; and plain Rust
//! stages, for baselines and embedders. They go through the same buffer table, copies,
//! queues and accounting as components do.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::StageSpec;
use super::queue::{ContentType, Made, Queued};
use super::stage::{CallError, Handled, Instance};
use crate::attributes::Attributes;
use crate::connectors::{Connector, ConnectorSpec};
use crate::contracts::Role;
use crate::engine::{BackpressureSignal, FlowIdentity, LoadedComponent, ProcessError};
use crate::observability::{CallStats, ConnectorReport, SpanId, TraceId};
use crate::resources::{BufferError, BufferTable, append_bytes};
use crate::security::AuditLog;

/// An element given to, or recorded from, a flow under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestElement {
    /// The payload's bytes.
    pub payload: Vec<u8>,
    /// Its content type.
    pub content_type: String,
    /// Its attributes as keys and values, in order (see `torvyn:attributes`).
    pub attributes: Vec<(String, String)>,
}

/// Where recording stages keep what reaches them: the node's name and the element, in
/// arrival order. Clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<(String, TestElement)>>>);

impl Recorder {
    /// Everything recorded so far, taken out.
    pub fn take(&self) -> Vec<(String, TestElement)> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, node: &str, element: TestElement) {
        let mut record = self.0.lock().unwrap_or_else(|e| e.into_inner());
        record.push((node.to_owned(), element));
    }
}

/// A node played by plain Rust code in the host, outside any sandbox. It sees payloads as
/// bytes, copied out of and into host buffers as a component's would be (one copy to read
/// an element, one to write one), so a flow of native stages is the baseline a flow of
/// components is measured against.
pub trait NativeStage: Send {
    /// As a source: writes the next payload into `out` (empty on entry), or says the
    /// stream has ended.
    fn pull(&mut self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }

    /// As a processor: writes the output for `input` into `out` (empty on entry), or
    /// says the element is dropped.
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        append_bytes(out, input);
        true
    }

    /// As a sink: takes `input`.
    fn push(&mut self, input: &[u8]) {
        let _ = input;
    }
}

/// Makes a fresh [`NativeStage`] each time its node starts (or restarts).
pub type NativeFactory = Arc<dyn Fn() -> Box<dyn NativeStage> + Send + Sync>;

/// A native node: a source, processor or sink, and how to make it.
#[derive(Clone)]
pub struct Native {
    role: Role,
    make: NativeFactory,
}

impl Native {
    /// A source: [`NativeStage::pull`] is called.
    pub fn source(make: NativeFactory) -> Native {
        Native {
            role: Role::Source,
            make,
        }
    }

    /// A processor: [`NativeStage::process`] is called.
    pub fn processor(make: NativeFactory) -> Native {
        Native {
            role: Role::Processor,
            make,
        }
    }

    /// A sink: [`NativeStage::push`] is called.
    pub fn sink(make: NativeFactory) -> Native {
        Native {
            role: Role::Sink,
            make,
        }
    }
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Native({})", self.role)
    }
}

/// What plays a node: a component, or the host.
#[derive(Debug, Clone)]
pub enum StageBody {
    /// A loaded component.
    Component(LoadedComponent),
    /// The host, emitting these elements in order and then ending its stream (a source).
    Feed(Vec<TestElement>),
    /// The host, recording every element that reaches it (a sink).
    Record(Recorder),
    /// Plain Rust code run by the host.
    Native(Native),
    /// A built-in connector: a file, standard input or output.
    Connector(ConnectorSpec),
}

impl StageBody {
    /// The role the body plays.
    pub fn role(&self) -> Role {
        match self {
            StageBody::Component(component) => component.role(),
            StageBody::Feed(_) => Role::Source,
            StageBody::Record(_) => Role::Sink,
            StageBody::Native(native) => native.role,
            StageBody::Connector(connector) => connector.role(),
        }
    }

    /// Whether the body may read its elements' attributes: a component, a fixture or
    /// native code may; of the connectors, only a NATS sink does (its headers).
    pub(crate) fn reads_attributes(&self) -> bool {
        match self {
            StageBody::Connector(connector) => match connector {
                ConnectorSpec::NatsSink(_) => true,
                ConnectorSpec::FileSource(_)
                | ConnectorSpec::Stdin(_)
                | ConnectorSpec::NatsSource(_)
                | ConnectorSpec::FileSink(_)
                | ConnectorSpec::Stdout(_) => false,
            },
            StageBody::Component(_)
            | StageBody::Feed(_)
            | StageBody::Record(_)
            | StageBody::Native(_) => true,
        }
    }
}

type CallResult<T> = Result<T, CallError>;

/// A node of a running flow.
pub(crate) enum Stage {
    Component(Box<Instance>),
    Feed {
        index: usize,
        items: VecDeque<TestElement>,
        /// The attributes of the element fed last, until the driver takes them.
        fed: Attributes,
    },
    Record {
        index: usize,
        node: String,
        recorder: Recorder,
    },
    Native {
        index: usize,
        role: Role,
        body: Box<dyn NativeStage>,
        /// Where outputs are written before they are copied into a buffer, kept to save
        /// an allocation per element.
        scratch: Vec<u8>,
        /// Where inputs are read into, kept for the same reason.
        input: Vec<u8>,
    },
    Connector(Box<Connector>),
    /// Stands in for a stage whose call runs on its own task (`driver/detached.rs`): what
    /// the stage had done when it left, for the flow's snapshots.
    Away {
        stats: Box<CallStats>,
        connector: Option<Box<ConnectorReport>>,
    },
}

impl Stage {
    /// What stands in for this stage while a call of it runs on its own task.
    pub(crate) fn stand_in(&self) -> Stage {
        Stage::Away {
            stats: Box::new(self.stats()),
            connector: self.connector_report().map(Box::new),
        }
    }

    /// Starts node `index` as `spec` says (without `init`); a connector is opened, and
    /// notifies `wake` when it may have become ready.
    pub(crate) async fn instantiate(
        engine: &wasmtime::Engine,
        index: usize,
        flow: Arc<FlowIdentity>,
        deadline: Option<Duration>,
        spec: &StageSpec,
        audit: &AuditLog,
        wake: &Arc<Notify>,
    ) -> wasmtime::Result<Self> {
        Ok(match &spec.body {
            StageBody::Component(component) => {
                let instance =
                    Instance::instantiate(engine, index, flow, deadline, spec, component, audit)
                        .await?;
                Stage::Component(Box::new(instance))
            }
            StageBody::Feed(items) => Stage::Feed {
                index,
                items: items.iter().cloned().collect(),
                fed: Attributes::default(),
            },
            StageBody::Record(recorder) => Stage::Record {
                index,
                node: spec.name.clone(),
                recorder: recorder.clone(),
            },
            StageBody::Native(native) => Stage::Native {
                index,
                role: native.role,
                body: (native.make)(),
                scratch: Vec::new(),
                input: Vec::new(),
            },
            StageBody::Connector(connector) => Stage::Connector(Box::new(
                Connector::open(connector, index, wake).map_err(wasmtime::Error::msg)?,
            )),
        })
    }

    /// The connector playing this stage, if a connector does.
    pub(crate) fn connector(&mut self) -> Option<&mut Connector> {
        match self {
            Stage::Connector(connector) => Some(connector),
            _ => None,
        }
    }

    /// The acknowledgement ticket of the element (or error) the last pull gave, in order,
    /// for a source that learns its elements' fate.
    pub(crate) fn take_ticket(&mut self) -> Option<u64> {
        self.connector().and_then(Connector::take_ticket)
    }

    /// The attributes of the next element the last pulls or flush made, in order (none
    /// for an element a native stage made).
    pub(crate) fn take_attributes(&mut self) -> Attributes {
        match self {
            Stage::Component(instance) => instance.take_attributes(),
            Stage::Connector(connector) => connector.take_attributes(),
            Stage::Feed { fed, .. } => std::mem::take(fed),
            _ => Attributes::default(),
        }
    }

    /// The calls made into this stage so far (none for the host's own stages).
    pub(crate) fn stats(&self) -> CallStats {
        match self {
            Stage::Component(instance) => instance.stats(),
            Stage::Away { stats, .. } => **stats,
            _ => CallStats::default(),
        }
    }

    /// Calls a component's `init`; when `interruptible`, a stop cuts it short.
    pub(crate) async fn init(&mut self, config: &str, interruptible: bool) -> CallResult<()> {
        match self {
            Stage::Component(instance) => instance.init(config, interruptible).await,
            _ => Ok(()),
        }
    }

    /// A component's `teardown`; a connector is closed (a file source stores its
    /// checkpoints).
    pub(crate) async fn teardown(&mut self, table: &mut BufferTable) -> CallResult<()> {
        match self {
            Stage::Component(instance) => instance.teardown(table).await,
            Stage::Connector(connector) => {
                (connector.close()).map_err(|why| CallError::Process(ProcessError::Internal(why)))
            }
            _ => Ok(()),
        }
    }

    /// What a connector did so far; `None` for any other stage.
    pub(crate) fn connector_report(&self) -> Option<ConnectorReport> {
        match self {
            Stage::Connector(connector) => Some(connector.report()),
            Stage::Away { connector, .. } => connector.as_deref().cloned(),
            _ => None,
        }
    }

    pub(crate) async fn pull(&mut self, table: &mut BufferTable) -> CallResult<Option<Made>> {
        match self {
            Stage::Component(instance) => instance.pull(table).await,
            Stage::Feed { index, items, fed } => match items.pop_front() {
                Some(item) => {
                    *fed = Attributes::from_pairs(&item.attributes).map_err(|why| {
                        let why = format!("the fed element's attributes do not fit: {why}");
                        CallError::Process(ProcessError::InvalidInput(why))
                    })?;
                    Ok(Some(feed(table, *index, item)?))
                }
                None => Ok(None),
            },
            Stage::Native {
                index,
                body,
                scratch,
                ..
            } => {
                scratch.clear();
                if !body.pull(scratch) {
                    return Ok(None);
                }
                Ok(Some(host_output(table, *index, scratch, "".into())?))
            }
            // A batch of one: whatever ended the batch is the result.
            Stage::Connector(connector) => {
                match connector.pull_batch(table, 1)?.into_iter().next() {
                    Some(result) => result.map_err(CallError::Process),
                    // Only a retry pulls a connector singly, and it may be early.
                    None => Err(CallError::Process(ProcessError::Unavailable(
                        "nothing to read yet".into(),
                    ))),
                }
            }
            Stage::Record { .. } | Stage::Away { .. } => {
                unreachable!("pull on a recording stage, or one away")
            }
        }
    }

    pub(crate) async fn notify(
        &mut self,
        table: &mut BufferTable,
        signal: BackpressureSignal,
    ) -> CallResult<()> {
        match self {
            Stage::Component(instance) => instance.notify(table, signal).await,
            _ => Ok(()),
        }
    }

    pub(crate) async fn handle(
        &mut self,
        table: &mut BufferTable,
        element: &mut Queued,
    ) -> CallResult<Handled> {
        match self {
            Stage::Component(instance) => instance.handle(table, element).await,
            Stage::Record {
                index,
                node,
                recorder,
            } => {
                let mut payload = Vec::new();
                host_read_onto(table, *index, element.buffer, &mut payload)?;
                let content_type = element.content_type.to_string();
                recorder.push(
                    node,
                    TestElement {
                        payload,
                        content_type,
                        attributes: element.attributes.to_vec(),
                    },
                );
                Ok(Handled::Delivered(BackpressureSignal::Ready))
            }
            Stage::Native {
                index,
                role,
                body,
                scratch,
                input,
            } => {
                input.clear();
                host_read_onto(table, *index, element.buffer, input)?;
                if *role == Role::Sink {
                    body.push(input);
                    return Ok(Handled::Delivered(BackpressureSignal::Ready));
                }
                scratch.clear();
                if !body.process(input, scratch) {
                    return Ok(Handled::Consumed);
                }
                let content_type = element.content_type.clone();
                Ok(Handled::Emit(host_output(
                    table,
                    *index,
                    scratch,
                    content_type,
                )?))
            }
            Stage::Connector(connector) => {
                let handled = connector.handle_batch(table, std::slice::from_ref(element));
                handled.into_iter().next().expect("a result per element")
            }
            Stage::Feed { .. } | Stage::Away { .. } => {
                unreachable!("handle on a feeding stage, or one away")
            }
        }
    }

    /// What a component's `flow-context` tells its next calls of their element's trace.
    pub(crate) fn set_trace(&mut self, trace: Option<(TraceId, SpanId)>) {
        if let Stage::Component(instance) = self {
            instance.set_trace(trace);
        }
    }

    /// How long a component's latest call, or a sink connector's latest write, took;
    /// zero for the host's other stages.
    pub(crate) fn last_call(&self) -> Duration {
        match self {
            Stage::Component(instance) => instance.last_call(),
            Stage::Connector(connector) => connector.last_call(),
            _ => Duration::ZERO,
        }
    }

    /// Whether the stage takes or makes elements in batches ([`Stage::pull_batch`],
    /// [`Stage::handle_batch`]).
    pub(crate) fn batched(&self) -> bool {
        match self {
            Stage::Component(instance) => instance.batched(),
            Stage::Connector(_) => true,
            _ => false,
        }
    }

    pub(crate) async fn pull_batch(
        &mut self,
        table: &mut BufferTable,
        max: u32,
    ) -> CallResult<Vec<Result<Option<Made>, ProcessError>>> {
        match self {
            Stage::Component(instance) => instance.pull_batch(table, max).await,
            Stage::Connector(connector) => connector.pull_batch(table, max),
            _ => unreachable!("pull-batch on a stage that is not a batch source"),
        }
    }

    pub(crate) async fn handle_batch(
        &mut self,
        table: &mut BufferTable,
        elements: &mut [Queued],
    ) -> CallResult<Vec<CallResult<Handled>>> {
        match self {
            Stage::Component(instance) => instance.handle_batch(table, elements).await,
            Stage::Connector(connector) => Ok(connector.handle_batch(table, elements)),
            _ => unreachable!("a batch call on a stage that does not take batches"),
        }
    }

    pub(crate) async fn flush(&mut self, table: &mut BufferTable) -> CallResult<Vec<Made>> {
        match self {
            Stage::Component(instance) => instance.flush(table).await,
            _ => unreachable!("flush on a stage that is not an aggregator"),
        }
    }

    pub(crate) async fn complete(&mut self, table: &mut BufferTable) -> CallResult<()> {
        match self {
            Stage::Component(instance) => instance.complete(table).await,
            _ => Ok(()),
        }
    }
}

/// Reads the whole of `buffer` as stage `index`, lent to it for the read as a component
/// would be lent it for a call: its bytes, shared with it, for the caller to make the one
/// copy that the ledger counts ([`BufferTable::read`]).
pub(crate) fn read_lent(
    table: &mut BufferTable,
    index: usize,
    buffer: u32,
) -> Result<Bytes, BufferError> {
    table.lend(buffer, index);
    let bytes = table.read(index, buffer, 0, u64::MAX);
    table.give_back(buffer);
    bytes
}

/// Appends the whole of `buffer` to `out` as stage `index`, lent to it for the read as a
/// component would be lent it for a call: one copy, counted by the ledger.
pub(crate) fn host_read_onto(
    table: &mut BufferTable,
    index: usize,
    buffer: u32,
    out: &mut Vec<u8>,
) -> Result<(), BufferError> {
    table.lend(buffer, index);
    let read = table.read_onto(index, buffer, out);
    table.give_back(buffer);
    read
}

/// Puts `item` in a buffer the host owns, as a source's output would be.
fn feed(table: &mut BufferTable, index: usize, item: TestElement) -> Result<Made, BufferError> {
    host_output(table, index, &item.payload, item.content_type.into())
}

/// Copies `payload` into a new buffer of stage `index` of `content_type`, handed over to
/// the host as a component's output is: one copy, counted by the ledger. A constant
/// content type (a connector's) costs no allocation.
pub(crate) fn host_output(
    table: &mut BufferTable,
    index: usize,
    payload: &[u8],
    content_type: ContentType,
) -> Result<Made, BufferError> {
    let buffer = table.host_output(index, payload, &content_type)?;
    Ok(Made {
        buffer,
        content_type,
    })
}
