//! Traces of elements: one span per call a stage makes on a traced element, linked from
//! stage to stage, in the W3C trace-context model that OTLP and `flow-context` share.
//!
//! A flow traces every element at [`ObservabilityLevel::Diagnostic`] and one element in
//! [`PRODUCTION_SAMPLING`] at [`ObservabilityLevel::Production`], and only when the run
//! gives it a [`SpanSink`] to hand the spans to. An untraced element costs one `None`
//! check per stage; a traced one an allocation for its context and one for its span.
//!
//! [`ObservabilityLevel::Diagnostic`]: super::ObservabilityLevel::Diagnostic
//! [`ObservabilityLevel::Production`]: super::ObservabilityLevel::Production

use std::fmt;

use crate::resources::CopyStats;

/// At production level, one element in this many is traced (when spans are collected).
pub const PRODUCTION_SAMPLING: u64 = 1024;

/// A W3C trace id: 16 bytes, never all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub u128);

/// A W3C span id: 8 bytes, never all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub u64);

impl TraceId {
    pub(crate) fn random() -> Self {
        TraceId(fastrand::u128(1..))
    }
}

impl SpanId {
    pub(crate) fn random() -> Self {
        SpanId(fastrand::u64(1..))
    }
}

/// 32 lowercase hex digits, as `traceparent` and `flow-context.trace-id` carry it.
impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// 16 lowercase hex digits, as `traceparent` and `flow-context.span-id` carry it.
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The call a span stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Call {
    /// A source's `pull` (or `pull-batch`).
    Pull,
    /// A processor's `process` (or `process-batch`).
    Process,
    /// A filter's `evaluate`.
    Evaluate,
    /// A router's `route`.
    Route,
    /// An aggregator's `ingest`.
    Ingest,
    /// An aggregator's `flush`, which made the element.
    Flush,
    /// A sink's `push` (or `push-batch`).
    Push,
    /// `init`, before the first element.
    Init,
    /// A source's `notify-backpressure`.
    Notify,
    /// A sink's `complete`, after the last element.
    Complete,
    /// `teardown`, at the end.
    Teardown,
}

impl Call {
    /// The function's name in the contract.
    pub fn name(self) -> &'static str {
        match self {
            Call::Pull => "pull",
            Call::Process => "process",
            Call::Evaluate => "evaluate",
            Call::Route => "route",
            Call::Ingest => "ingest",
            Call::Flush => "flush",
            Call::Push => "push",
            Call::Init => "init",
            Call::Notify => "notify-backpressure",
            Call::Complete => "complete",
            Call::Teardown => "teardown",
        }
    }
}

/// What became of the element at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    /// It went on: pulled, processed into a new element, kept or routed.
    Sent,
    /// Dropped by a processor, rejected by a filter or routed to no port.
    Filtered,
    /// Taken in by an aggregator.
    Absorbed,
    /// Accepted by a sink.
    Delivered,
    /// Given up on after an error, or the element that failed the flow.
    Failed,
    /// Sent to the node's dead-letter sink after an error.
    DeadLettered,
    /// Not written: its sink's output had closed.
    Abandoned,
}

impl Fate {
    /// Its name, as it is serialised.
    pub fn name(self) -> &'static str {
        match self {
            Fate::Sent => "sent",
            Fate::Filtered => "filtered",
            Fate::Absorbed => "absorbed",
            Fate::Delivered => "delivered",
            Fate::Failed => "failed",
            Fate::DeadLettered => "dead-lettered",
            Fate::Abandoned => "abandoned",
        }
    }
}

/// How long a traced element waited in the queue in front of a stage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueWait {
    /// The upstream node of the queue.
    pub from: String,
    /// From joining the queue to the call starting.
    pub wait_ns: u64,
    /// Elements ahead of it when it joined.
    pub depth: usize,
    /// The queue's capacity: a wait behind a full queue is backpressure.
    pub capacity: usize,
}

/// One stage's call on one traced element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSpan {
    /// The element's trace: the same from its source to its sinks.
    pub trace_id: TraceId,
    /// This call's span.
    pub span_id: SpanId,
    /// The span of the stage before, none for the stage the element started at.
    pub parent: Option<SpanId>,
    /// The node called.
    pub node: String,
    /// What was called.
    pub call: Call,
    /// The element's sequence number.
    pub sequence: u64,
    /// When the call began, in nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// How long it took, retries included.
    pub duration_ns: u64,
    /// Elements handled by the same call: more than one for a batch call, whose time and
    /// copies every element of the batch shows.
    pub batch: usize,
    /// The queue it waited in before the call, none at a source.
    pub wait: Option<QueueWait>,
    /// Payload copies made during the call.
    pub copies: CopyStats,
    /// Calls made again under `retry`.
    pub retries: u32,
    /// What became of it.
    pub fate: Fate,
}

/// Where a flow hands its spans: a collector for `cargo torvyn trace`, an OTLP exporter.
/// Called from the flow's task every [`PUBLISH_EVERY`](super::PUBLISH_EVERY) and at the
/// end with the spans finished since, in the order they finished; it must not block.
pub trait SpanSink: Send + Sync + fmt::Debug {
    /// Takes spans of flow `flow`.
    fn record(&self, flow: &str, spans: Vec<StageSpan>);
}
