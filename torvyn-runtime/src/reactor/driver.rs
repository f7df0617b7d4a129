//! The flow driver: the loop described in the module docs, and the report it leaves.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

mod ending;
mod recovery;

use self::recovery::{Recovery, describe_call_error};
use super::control::Control;
use super::fixture::{Stage, StageBody};
use super::queue::{Queue, Queued, Traced};
use super::stage::{CallError, Handled};
use crate::config::Overflow;
use crate::config::bounds::SINK_PAUSE;
use crate::contracts::Role;
use crate::engine::{BackpressureSignal, FlowIdentity, OutputElement};
use crate::observability::{
    Accounting, BufferReport, Call, CallStats, EdgeReport, ErrorCounts, ErrorEvent, EventKind,
    EventSink, Events, Fate, FlowReport, LatencyReport, NodeReport, ObservabilityLevel, Outcome,
    PUBLISH_EVERY, QueueWait, SpanId, SpanSink, StageSpan, TraceId, printable,
};
use crate::resources::{BufferTable, CopyStats};
use crate::security::{AuditLog, Grants, Limits};
use crate::topology::{EdgePlan, FlowPlan, NodePlan};

/// Elements a flow handles between two yields to tokio: the most a busy flow runs while
/// another flow on the same thread waits.
pub const YIELD_EVERY: u32 = 32;
/// The most elements a stage that exports a batch interface takes or makes in one call.
pub const MAX_BATCH: usize = 32;
/// The most payload bytes handed to a batch processor or sink in one call (its first
/// element goes whatever its size). The payloads of a batch are copied into the
/// component with the call, which pays off for small elements only: a large one goes
/// alone, as a single call.
pub const MAX_BATCH_BYTES: u64 = 32 * 1024;
/// Longest a flow runs between two yields to tokio.
const YIELD_AFTER: Duration = Duration::from_micros(100);

/// What plays a node, and its configuration.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// The node's name.
    pub name: String,
    /// What plays the node: its component, or the host when testing.
    pub body: StageBody,
    /// Handed to the component's `init`.
    pub config: String,
    /// What each instance of it may use.
    pub limits: Limits,
    /// What it may reach outside its sandbox.
    pub grants: Arc<Grants>,
}

/// A flow ready to run: its checked plan and a component for each of its nodes.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    /// The flow's shape.
    pub plan: FlowPlan,
    /// One per node of the plan, in the same order.
    pub stages: Vec<StageSpec>,
    /// How long the host holds off a sink that answered `pause`; at most
    /// [`SINK_PAUSE`]`.max` is used.
    pub sink_pause: Duration,
}

/// Bounds on one run of a flow.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop the sources after this many elements in all.
    pub limit: Option<u64>,
    /// Stop the sources after this long.
    pub timeout: Option<Duration>,
    /// Stop the sources when cancelled; what is in flight is still delivered.
    pub cancel: CancellationToken,
    /// Measure: each delivered element's end-to-end latency, into a histogram allocated
    /// once at the start, and the calls components make into the host, through a call
    /// hook. Both cost a few per cent of throughput, so they are off unless asked for.
    pub measure: bool,
    /// What the flow records about itself while it runs.
    pub observability: ObservabilityLevel,
    /// Where the flow hands the spans of the elements it traces (every element at
    /// [`ObservabilityLevel::Diagnostic`], a sample at production); without one, nothing
    /// is traced.
    pub spans: Option<Arc<dyn SpanSink>>,
    /// Where the flow reports its lifecycle events: started, paused, resumed, a component
    /// restarted or refused a capability, ended.
    pub events: Option<Arc<dyn EventSink>>,
}

/// How a flow failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowErrorKind {
    /// The component could not be instantiated.
    Instantiate(String),
    /// `init` returned an error or trapped.
    Init(String),
    /// The component returned a `process-error`.
    Process(String),
    /// The component trapped (or misused a buffer, which traps it).
    Trap(String),
    /// The node trapped more often than its flow's restart budget allows.
    RestartLimit {
        /// The restarts the budget allows within `period`.
        max: u32,
        /// The period over which restarts are counted.
        period: Duration,
        /// The error of its latest trap.
        error: String,
    },
    /// A queue with `overflow = "error"` was full.
    Overflow {
        /// The node the queue feeds.
        to: String,
        /// Its capacity.
        capacity: usize,
    },
}

/// A flow that ended in failure, naming where, with what it counted until then.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("flow `{flow}`: node `{stage}` {what}", what = self.describe())]
#[diagnostic(code(torvyn::flow::failed))]
pub struct FlowError {
    /// The flow.
    pub flow: String,
    /// The node that failed.
    pub stage: String,
    /// The call into it that failed, when a call did (not for a queue's overflow or the
    /// restart budget).
    pub call: Option<Call>,
    /// The element it was handling, if any.
    pub sequence: Option<u64>,
    /// What happened.
    pub kind: FlowErrorKind,
    /// The flow's counts when it stopped; its outcome is [`Outcome::Failed`].
    pub report: Box<FlowReport>,
}

impl FlowError {
    fn describe(&self) -> String {
        let call = match self.call {
            Some(call) => format!(" in `{}`", call.name()),
            None => String::new(),
        };
        let at = match self.sequence {
            Some(sequence) => format!(" on element {sequence}"),
            None => String::new(),
        };
        match &self.kind {
            FlowErrorKind::Instantiate(why) => format!("could not be instantiated: {why}"),
            FlowErrorKind::Init(why) => format!("failed in init: {why}"),
            FlowErrorKind::Process(why) => format!("returned an error{call}{at}: {why}"),
            FlowErrorKind::Trap(why) => format!("trapped{call}{at}: {why}"),
            FlowErrorKind::RestartLimit { max, period, error } => format!(
                "trapped again after {max} restarts within {} (the flow's `max-restarts` in \
                 `restart-period`), so it is not restarted: {error}",
                humantime::format_duration(*period)
            ),
            FlowErrorKind::Overflow { to, capacity } => format!(
                "overflowed its queue to `{to}`{at}: all {capacity} places were taken and the edge says `overflow = \"error\"`"
            ),
        }
    }
}

/// Where a flow failed, before the report is attached.
struct Failure {
    node: usize,
    /// The call that failed, when a call did.
    call: Option<Call>,
    sequence: Option<u64>,
    kind: FlowErrorKind,
}

/// Counts of one node while the flow runs.
#[derive(Debug, Default)]
struct Counts {
    received: u64,
    emitted: u64,
    delivered: u64,
    filtered: u64,
    absorbed: u64,
    errors: u64,
    errors_by_kind: ErrorCounts,
    failed: u64,
    dead_lettered: u64,
    retries: u64,
    restarts: u64,
    pauses: u64,
    resumes: u64,
    unknown_ports: u64,
    first_unknown_port: Option<String>,
    first_error: Option<String>,
    /// Calls into the instances this node had before its latest restart.
    earlier_calls: CallStats,
}

/// A node's place in the flow and its running state; its instance is in `Driver::stages`.
struct Node {
    plan: NodePlan,
    counts: Counts,
    /// Which input edge to look at first, for fair fan-in.
    next_input: usize,
    /// Nothing more will happen here: a source ended or was stopped, or every input ended
    /// and the node passed on all it had.
    finished: bool,
    /// A source told to pause.
    paused: bool,
    /// A sink that asked to pause gets nothing before this.
    resume_at: Option<Instant>,
    /// An aggregator's flushed elements waiting for room downstream.
    flushed: Option<VecDeque<Queued>>,
    /// Trapped and not restarted: must not be entered again.
    poisoned: bool,
    /// When it was restarted, within the flow's restart period; `None` until the first.
    restarted: Option<VecDeque<Instant>>,
    /// A batch source: the payload bytes per element of its latest batch, which bounds the
    /// next one.
    batch_element_bytes: Option<u64>,
}

struct Edge {
    plan: EdgePlan,
    queue: Queue,
    dropped: u64,
    /// Time it held its upstream back, up to `blocked_since`.
    blocked: Duration,
    /// Since when it has been holding its upstream back, if it is.
    blocked_since: Option<Instant>,
}

impl Edge {
    /// Time it has held its upstream back, up to now.
    fn blocked(&self) -> Duration {
        self.blocked
            + self
                .blocked_since
                .map_or(Duration::ZERO, |since| since.elapsed())
    }
}

struct Driver<'a> {
    engine: &'a wasmtime::Engine,
    spec: &'a FlowSpec,
    identity: Arc<FlowIdentity>,
    audit: AuditLog,
    control: &'a Control,
    stages: Vec<Stage>,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    sources: Vec<usize>,
    next_source: usize,
    /// The edges a router's element goes down, kept to save an allocation per element.
    routed: Vec<usize>,
    /// The elements of a batch call, kept to save an allocation per batch.
    batch: Vec<Queued>,
    /// The sources stop once this many elements have entered the flow.
    limit: Option<u64>,
    table: BufferTable,
    next_sequence: u64,
    outcome: Outcome,
    accounting: Accounting,
    source_pauses: u64,
    sink_pauses: u64,
    /// Whether the flow publishes live snapshots and measures blocking
    /// ([`ObservabilityLevel::Production`]).
    observed: bool,
    /// When the flow started running, and when it last published a snapshot.
    started: Instant,
    published: Instant,
    /// The latest errors, oldest first.
    recent_errors: VecDeque<ErrorEvent>,
    /// End-to-end latencies in nanoseconds, when measured.
    latency: Option<Histogram<u64>>,
    /// Spans of traced elements, when the run collects them.
    tracing: Option<Tracing>,
    /// Where its lifecycle events go, when the run records them.
    events: Option<Events>,
}

/// What a flow that traces elements keeps.
struct Tracing {
    sink: Arc<dyn SpanSink>,
    /// One element in `every` is traced.
    every: u64,
    /// Elements that entered the flow, traced or not.
    entered: u64,
    /// Spans finished since they were last handed to the sink.
    finished: Vec<StageSpan>,
}

/// The span of a call, if its element is traced: boxed, so that an untraced element's
/// calls carry a null pointer.
type Span = Option<Box<OpenSpan>>;

/// A span begun: a stage's call on a traced element, in progress.
struct OpenSpan {
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanId>,
    call: Call,
    start_ns: u64,
    /// The flow's copies when the call began.
    copies: CopyStats,
    wait: Option<QueueWait>,
    batch: usize,
}

impl Driver<'_> {
    /// Whether the next element to enter the flow is traced.
    fn sampled(&mut self) -> bool {
        let Some(tracing) = &mut self.tracing else {
            return false;
        };
        let sampled = tracing.entered.is_multiple_of(tracing.every);
        tracing.entered += 1;
        sampled
    }

    /// Begins the span of node `n`'s call on an element of trace `trace_id`, sent on by
    /// span `parent`: the stage's `flow-context` names the span until it ends.
    fn open_span(
        &mut self,
        n: usize,
        trace_id: TraceId,
        parent: Option<SpanId>,
        wait: Option<QueueWait>,
        batch: usize,
    ) -> Box<OpenSpan> {
        let span_id = SpanId::random();
        self.stages[n].set_trace(Some((trace_id, span_id)));
        Box::new(OpenSpan {
            trace_id,
            span_id,
            parent,
            call: call_of(self.nodes[n].plan.role),
            start_ns: super::now_ns(),
            copies: self.table.copies(),
            wait,
            batch,
        })
    }

    /// Begins the span of node `n`'s call on `element`, when it is traced.
    fn open_element_span(&mut self, n: usize, element: &Queued, batch: usize) -> Span {
        let traced = element.trace.as_deref()?;
        let edge = &self.edges[traced.edge];
        let wait = QueueWait {
            from: self.nodes[edge.plan.from].plan.name.clone(),
            wait_ns: super::now_ns().saturating_sub(traced.queued_ns),
            depth: traced.depth,
            capacity: edge.plan.capacity,
        };
        let (trace_id, parent) = (traced.trace_id, traced.parent);
        Some(self.open_span(n, trace_id, Some(parent), Some(wait), batch))
    }

    /// A new trace for an element a call that `began` (time and copies) made, one of
    /// `batch`, when the element is sampled: a batch source's or a flush's elements.
    fn begun_span(&mut self, call: Call, began: Option<(u64, CopyStats)>, batch: usize) -> Span {
        let (start_ns, copies) = began?;
        self.sampled().then(|| {
            Box::new(OpenSpan {
                trace_id: TraceId::random(),
                span_id: SpanId::random(),
                parent: None,
                call,
                start_ns,
                copies,
                wait: None,
                batch,
            })
        })
    }

    /// Ends node `n`'s span on `element`, which goes on (if it does) as its child.
    fn end_span(&mut self, n: usize, span: Span, element: &mut Queued, retries: u32, fate: Fate) {
        let Some(span) = span else {
            return;
        };
        self.stages[n].set_trace(None);
        let (now, copies) = (super::now_ns(), self.table.copies());
        let node = self.nodes[n].plan.name.clone();
        let Some(tracing) = &mut self.tracing else {
            return;
        };
        tracing.finished.push(StageSpan {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent: span.parent,
            node,
            call: span.call,
            sequence: element.sequence,
            start_ns: span.start_ns,
            duration_ns: now.saturating_sub(span.start_ns),
            batch: span.batch,
            wait: span.wait,
            copies: CopyStats {
                copies: copies.copies - span.copies.copies,
                bytes: copies.bytes - span.copies.bytes,
            },
            retries,
            fate,
        });
        let trace = element.trace.get_or_insert_with(|| {
            Box::new(Traced {
                trace_id: span.trace_id,
                parent: span.span_id,
                queued_ns: 0,
                edge: 0,
                depth: 0,
            })
        });
        trace.parent = span.span_id;
    }

    /// A span begun for a call that made no element (an error skipped, the end of a
    /// stream) is not kept.
    fn drop_span(&mut self, n: usize, span: Span) {
        if span.is_some() {
            self.stages[n].set_trace(None);
        }
    }

    /// Hands the spans finished since the last time to the run's sink.
    fn hand_over_spans(&mut self) {
        if let Some(tracing) = &mut self.tracing
            && !tracing.finished.is_empty()
        {
            let spans = std::mem::take(&mut tracing.finished);
            tracing.sink.record(&self.spec.plan.flow, spans);
        }
    }

    /// Reports a lifecycle event, when the run records them.
    fn emit(&self, kind: impl FnOnce(&Self) -> EventKind) {
        if let Some(events) = &self.events {
            events.emit(kind(self));
        }
    }

    fn total_emitted(&self) -> u64 {
        self.accounting.emitted
    }

    /// Whether every block edge out of `n` (and its dead-letter edge) has room.
    fn room_downstream(&self, n: usize) -> bool {
        let node = &self.nodes[n].plan;
        node.outputs
            .iter()
            .chain(&node.dead_letter)
            .map(|&e| &self.edges[e])
            .all(|edge| edge.plan.overflow != Overflow::Block || !edge.queue.is_full())
    }

    /// How many elements node `n` may take or make in one batch call: at most
    /// [`MAX_BATCH`], and no more than every edge out of it that must not overflow (`block`
    /// and `error`, and its dead-letter edge) has room for, since each element sends at
    /// most one down each. Then nothing it sends in a batch can overflow an edge.
    fn batch_room(&self, n: usize) -> usize {
        let node = &self.nodes[n].plan;
        node.outputs
            .iter()
            .chain(&node.dead_letter)
            .map(|&e| &self.edges[e])
            .filter(|edge| matches!(edge.plan.overflow, Overflow::Block | Overflow::Error))
            .map(|edge| edge.queue.room())
            .fold(MAX_BATCH, usize::min)
    }

    /// How many elements batch source `s` is asked for: as many as `batch_room` allows,
    /// the element limit leaves, and `MAX_BATCH_BYTES` holds at the size of its latest
    /// batch, so that a source of large elements does not fill memory in one call. The
    /// first batch is of one element, to learn their size.
    fn source_batch(&self, s: usize) -> u32 {
        let Some(bytes) = self.nodes[s].batch_element_bytes else {
            return 1;
        };
        let left = (self.limit).map_or(u64::MAX, |l| l.saturating_sub(self.total_emitted()));
        let fits = (MAX_BATCH_BYTES / bytes.max(1)).max(1);
        // At least one: a full `error` edge fails the flow on the element, as it would
        // after a single pull.
        (self.batch_room(s) as u64).min(left).min(fits).max(1) as u32
    }

    /// How many of the elements waiting on input edge `e` batch stage `n` takes in one
    /// call: as many as `batch_room` allows and [`MAX_BATCH_BYTES`] holds.
    fn batch_len(&self, n: usize, e: usize) -> usize {
        let mut bytes = 0;
        let fitting = self.edges[e].queue.iter().take_while(|element| {
            bytes += self.table.size(element.buffer).unwrap_or(0);
            bytes <= MAX_BATCH_BYTES
        });
        fitting.count().max(1).min(self.batch_room(n))
    }

    /// The next input edge of `n` with an element waiting, taking turns between inputs.
    fn next_input(&mut self, n: usize) -> Option<usize> {
        let node = &mut self.nodes[n];
        let inputs = &node.plan.inputs;
        for k in 0..inputs.len() {
            let i = (node.next_input + k) % inputs.len();
            if !self.edges[inputs[i]].queue.is_empty() {
                node.next_input = (i + 1) % inputs.len();
                return Some(inputs[i]);
            }
        }
        None
    }

    /// Whether an element waits on an input of `n`.
    fn has_input(&self, n: usize) -> bool {
        let inputs = &self.nodes[n].plan.inputs;
        inputs.iter().any(|&e| !self.edges[e].queue.is_empty())
    }

    /// Node `n` has an element to send but a full `block` edge holds it back: the edge's
    /// time blocked starts, unless it already runs.
    fn held_back(&mut self, n: usize) {
        let node = &self.nodes[n].plan;
        for &e in node.outputs.iter().chain(&node.dead_letter) {
            let edge = &mut self.edges[e];
            if edge.plan.overflow == Overflow::Block
                && edge.queue.is_full()
                && edge.blocked_since.is_none()
            {
                edge.blocked_since = Some(Instant::now());
            }
        }
    }

    /// Elements left edge `e`: if it was holding its upstream back, it no longer is.
    fn drained(&mut self, e: usize) {
        let edge = &mut self.edges[e];
        if let Some(since) = edge.blocked_since.take() {
            edge.blocked += since.elapsed();
        }
    }

    /// Whether every input of `n` is empty and its upstream finished.
    fn inputs_ended(&self, n: usize) -> bool {
        self.nodes[n].plan.inputs.iter().all(|&e| {
            let edge = &self.edges[e];
            edge.queue.is_empty() && self.nodes[edge.plan.from].finished
        })
    }

    fn sink_ready(&mut self, n: usize) -> bool {
        let node = &mut self.nodes[n];
        match node.resume_at {
            Some(at) if Instant::now() < at => false,
            Some(_) => {
                node.resume_at = None;
                true
            }
            None => true,
        }
    }

    /// Does one unit of work; `false` when nothing could run right now.
    async fn turn(&mut self) -> Result<bool, Failure> {
        // Downstream first: elements already in the flow go on before new ones come in.
        for i in (0..self.spec.plan.order.len()).rev() {
            let n = self.spec.plan.order[i];
            let node = &self.nodes[n];
            if node.finished || node.plan.role == Role::Source {
                continue;
            }
            let role = node.plan.role;
            let ready = match role {
                Role::Sink => self.sink_ready(n),
                _ => self.room_downstream(n),
            };
            if !ready {
                if self.observed && role != Role::Sink && self.has_input(n) {
                    self.held_back(n);
                }
                continue;
            }
            if let Some(e) = self.next_input(n) {
                let batch = match self.stages[n].batched() {
                    true => self.batch_len(n, e),
                    false => 1,
                };
                if batch > 1 {
                    self.step_batch(n, e, batch).await?;
                } else {
                    self.step(n, e).await?;
                }
                return Ok(true);
            }
            if self.inputs_ended(n) {
                self.wind_down(n).await?;
                return Ok(true);
            }
        }
        // Then the sources, taking turns.
        for k in 0..self.sources.len() {
            let i = (self.next_source + k) % self.sources.len();
            let s = self.sources[i];
            if self.nodes[s].finished {
                continue;
            }
            if self.nodes[s].paused {
                if !self.below_low_watermarks(s) {
                    continue;
                }
                self.signal(s, BackpressureSignal::Ready).await?;
            }
            if !self.room_downstream(s) {
                if self.observed {
                    self.held_back(s);
                }
            } else {
                self.next_source = (i + 1) % self.sources.len();
                if self.stages[s].batched() {
                    let max = self.source_batch(s);
                    self.pull_batch(s, max).await?;
                } else {
                    self.pull(s).await?;
                }
                if self.above_high_watermark(s) {
                    self.signal(s, BackpressureSignal::Pause).await?;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn below_low_watermarks(&self, s: usize) -> bool {
        self.nodes[s].plan.outputs.iter().all(|&e| {
            let edge = &self.edges[e];
            edge.plan.overflow != Overflow::Block || edge.queue.len() <= edge.plan.low_watermark
        })
    }

    fn above_high_watermark(&self, s: usize) -> bool {
        self.nodes[s].plan.outputs.iter().any(|&e| {
            let edge = &self.edges[e];
            edge.plan.overflow == Overflow::Block && edge.queue.len() >= edge.plan.high_watermark
        })
    }

    async fn signal(&mut self, s: usize, signal: BackpressureSignal) -> Result<(), Failure> {
        let pause = signal == BackpressureSignal::Pause;
        self.nodes[s].paused = pause;
        if pause {
            self.source_pauses += 1;
            self.nodes[s].counts.pauses += 1;
        } else {
            self.nodes[s].counts.resumes += 1;
        }
        let result = self.stages[s].notify(&mut self.table, signal).await;
        result.map_err(|error| self.fail(s, Call::Notify, None, error))
    }

    /// Pulls one element from source `s` and sends it on.
    async fn pull(&mut self, s: usize) -> Result<(), Failure> {
        let span = match self.sampled() {
            true => Some(self.open_span(s, TraceId::random(), None, None, 1)),
            false => None,
        };
        let result = self.stages[s].pull(&mut self.table).await;
        self.settle_pull(s, result, span).await
    }

    /// Pulls up to `max` elements from batch source `s` in one call, and goes on with each
    /// result as with that of a single `pull`.
    async fn pull_batch(&mut self, s: usize, max: u32) -> Result<(), Failure> {
        let began = (self.tracing.is_some()).then(|| (super::now_ns(), self.table.copies()));
        let results = match self.stages[s].pull_batch(&mut self.table, max).await {
            Ok(results) => results,
            // The call trapped (the errors of single pulls are among the results): the
            // policy decides, and a retry or a skip are the next turn's pull.
            Err(error) => {
                return self
                    .recover(s, Call::Pull, error, u32::MAX, None)
                    .await
                    .map(drop);
            }
        };
        let (mut elements, mut bytes) = (0, 0);
        for output in results.iter().flatten().flatten() {
            elements += 1;
            bytes += self.table.size(output.payload.rep()).unwrap_or(0);
        }
        if let Some(per_element) = bytes.checked_div(elements) {
            self.nodes[s].batch_element_bytes = Some(per_element);
        }
        // Only the last result may end the stream or be an error (checked by the stage),
        // and `batch_room` left room for every element: nothing fails before the last.
        let batch = results.len();
        for result in results {
            let span = self.begun_span(Call::Pull, began, batch);
            self.settle_pull(s, result.map_err(CallError::Process), span)
                .await?;
        }
        Ok(())
    }

    /// Goes on with what source `s` answered to a pull: sends an element on, applies the
    /// error policy (calling `pull` again for a retry), or marks the end of its stream.
    /// A traced element's trace begins with `span`.
    async fn settle_pull(
        &mut self,
        s: usize,
        mut result: Result<Option<OutputElement>, CallError>,
        span: Span,
    ) -> Result<(), Failure> {
        let mut attempt = 0;
        let output = loop {
            match result {
                Ok(output) => break output,
                Err(error) => match self.recover(s, Call::Pull, error, attempt, None).await? {
                    Recovery::Retry => {
                        attempt += 1;
                        result = self.stages[s].pull(&mut self.table).await;
                    }
                    // Topology planning refuses dead letters for sources.
                    Recovery::Skip | Recovery::DeadLetter(_) => {
                        self.drop_span(s, span);
                        return Ok(());
                    }
                },
            }
        };
        let Some(output) = output else {
            self.drop_span(s, span);
            self.nodes[s].finished = true;
            return Ok(());
        };
        let mut element = self.admit(output);
        self.end_span(s, span, &mut element, attempt, Fate::Sent);
        self.accounting.emitted += 1;
        self.control
            .emitted
            .store(self.accounting.emitted, Ordering::Relaxed);
        self.nodes[s].counts.emitted += 1;
        self.send(s, element)
    }

    /// A new element enters the flow: the host stamps its sequence number and time.
    fn admit(&mut self, output: OutputElement) -> Queued {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        Queued {
            sequence,
            timestamp_ns: super::now_ns(),
            content_type: output.meta.content_type,
            buffer: output.payload.rep(),
            trace: None,
        }
    }

    /// Hands node `n` the head of input edge `e`, applying its error policy.
    async fn step(&mut self, n: usize, e: usize) -> Result<(), Failure> {
        let Some(mut element) = self.edges[e].queue.pop() else {
            return Ok(());
        };
        self.drained(e);
        let dead_letter = self.edges[e].plan.dead_letter;
        self.nodes[n].counts.received += 1;
        let span = self.open_element_span(n, &element, 1);
        let result = self.stages[n].handle(&mut self.table, &mut element).await;
        self.settle(n, element, result, dead_letter, span).await
    }

    /// Hands batch stage `n` the first `count` elements of input edge `e` in one call
    /// (`batch_room` leaves room for them downstream), and goes on with each result as
    /// with that of a single call.
    async fn step_batch(&mut self, n: usize, e: usize, count: usize) -> Result<(), Failure> {
        let mut batch = std::mem::take(&mut self.batch);
        let queue = &mut self.edges[e].queue;
        batch.extend(std::iter::from_fn(|| queue.pop()).take(count));
        self.drained(e);
        let dead_letter = self.edges[e].plan.dead_letter;
        self.nodes[n].counts.received += batch.len() as u64;
        let spans: Vec<_> = match self.tracing {
            Some(_) => (batch.iter())
                .map(|element| self.open_element_span(n, element, batch.len()))
                .collect(),
            None => Vec::new(),
        };
        let settled = match self.stages[n]
            .handle_batch(&mut self.table, &mut batch)
            .await
        {
            Ok(results) => (self.settle_batch(n, &mut batch, results, dead_letter, spans)).await,
            Err(error) => (self.replay_batch(n, &mut batch, error, dead_letter, spans)).await,
        };
        batch.clear();
        self.batch = batch;
        settled
    }

    /// Goes on with the result of each element of a batch. Once one fails the flow, the
    /// rest only go where their results send them: no call is made for them.
    async fn settle_batch(
        &mut self,
        n: usize,
        batch: &mut Vec<Queued>,
        results: Vec<Result<Handled, CallError>>,
        dead_letter: bool,
        spans: Vec<Span>,
    ) -> Result<(), Failure> {
        let mut failure = None;
        let mut spans = spans.into_iter();
        for (element, result) in batch.drain(..).zip(results) {
            let span = spans.next().flatten();
            let settled = match (&failure, result) {
                (None, result) => self.settle(n, element, result, dead_letter, span).await,
                (Some(_), Ok(handled)) => self.dispatch(n, element, handled, dead_letter),
                (Some(_), Err(_)) => {
                    self.table.release(element.buffer);
                    self.nodes[n].counts.failed += 1;
                    self.accounting.failed += 1;
                    Ok(())
                }
            };
            if let Err(later) = settled {
                failure.get_or_insert(later);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// A batch call trapped, and which element it trapped on is unknown. Unless the policy
    /// fails the flow, a fresh instance takes each element of the batch again in a single
    /// call, so that the policy applies to the element that traps.
    async fn replay_batch(
        &mut self,
        n: usize,
        batch: &mut Vec<Queued>,
        error: CallError,
        dead_letter: bool,
        spans: Vec<Span>,
    ) -> Result<(), Failure> {
        let call = call_of(self.nodes[n].plan.role);
        if let Err(failure) = self.recover(n, call, error, u32::MAX, None).await {
            for element in batch.drain(..) {
                self.table.release(element.buffer);
                self.nodes[n].counts.failed += 1;
                self.accounting.failed += 1;
            }
            return Err(failure);
        }
        let mut elements = batch.drain(..);
        let mut spans = spans.into_iter();
        while let Some(mut element) = elements.next() {
            // The fresh instance's context names the element's span again.
            let span = spans.next().flatten();
            if let Some(span) = &span {
                self.stages[n].set_trace(Some((span.trace_id, span.span_id)));
            }
            let result = self.stages[n].handle(&mut self.table, &mut element).await;
            if let Err(failure) = self.settle(n, element, result, dead_letter, span).await {
                // What the batch still holds would have waited in the queue.
                for element in elements {
                    self.table.release(element.buffer);
                    self.accounting.abandoned += 1;
                }
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Goes on with what node `n` answered for `element`: sends on what it made, or
    /// applies its error policy (calling it again with the element for a retry). The
    /// element's span, if it is traced, ends with what became of it.
    async fn settle(
        &mut self,
        n: usize,
        mut element: Queued,
        mut result: Result<Handled, CallError>,
        dead_letter: bool,
        span: Span,
    ) -> Result<(), Failure> {
        let mut attempt = 0;
        loop {
            let error = match result {
                Ok(handled) => {
                    if span.is_some() {
                        let fate = self.fate(n, &handled);
                        self.end_span(n, span, &mut element, attempt, fate);
                    }
                    return self.dispatch(n, element, handled, dead_letter);
                }
                Err(error) => error,
            };
            let call = call_of(self.nodes[n].plan.role);
            match (self.recover(n, call, error, attempt, Some(element.sequence))).await {
                Ok(Recovery::Retry) => {
                    attempt += 1;
                    result = self.stages[n].handle(&mut self.table, &mut element).await;
                }
                Ok(Recovery::Skip) => {
                    self.end_span(n, span, &mut element, attempt, Fate::Failed);
                    self.table.release(element.buffer);
                    self.nodes[n].counts.failed += 1;
                    self.accounting.failed += 1;
                    return Ok(());
                }
                Ok(Recovery::DeadLetter(why)) => {
                    self.end_span(n, span, &mut element, attempt, Fate::DeadLettered);
                    let node = &mut self.nodes[n];
                    node.counts.dead_lettered += 1;
                    mark_dead_letter(&mut element.content_type, &node.plan.name, &why);
                    let edge = node
                        .plan
                        .dead_letter
                        .expect("planned with its dead-letter edge");
                    return self.offer(edge, element);
                }
                Err(failure) => {
                    self.end_span(n, span, &mut element, attempt, Fate::Failed);
                    self.table.release(element.buffer);
                    self.accounting.failed += 1;
                    return Err(failure);
                }
            }
        }
    }

    /// What becomes of an element node `n` handled so.
    fn fate(&self, n: usize, handled: &Handled) -> Fate {
        let aggregator = self.nodes[n].plan.role == Role::Aggregator;
        match handled {
            Handled::Emit(_) | Handled::Consumed if aggregator => Fate::Absorbed,
            Handled::Emit(_) | Handled::Keep => Fate::Sent,
            Handled::Consumed => Fate::Filtered,
            Handled::Route(ports) if ports.is_empty() => Fate::Filtered,
            Handled::Route(_) => Fate::Sent,
            Handled::Delivered(_) => Fate::Delivered,
        }
    }

    /// Sends on what node `n` made of `element`.
    fn dispatch(
        &mut self,
        n: usize,
        mut element: Queued,
        handled: Handled,
        dead_letter: bool,
    ) -> Result<(), Failure> {
        let aggregator = self.nodes[n].plan.role == Role::Aggregator;
        match handled {
            Handled::Emit(output) => {
                self.table.release(element.buffer);
                let next = if aggregator {
                    self.nodes[n].counts.absorbed += 1;
                    self.accounting.absorbed += 1;
                    self.accounting.produced += 1;
                    // The new element goes on in the trace of the one it completed.
                    let mut made = self.admit(output);
                    made.trace = element.trace.take();
                    made
                } else {
                    Queued {
                        content_type: output.meta.content_type,
                        buffer: output.payload.rep(),
                        ..element
                    }
                };
                self.nodes[n].counts.emitted += 1;
                self.send(n, next)
            }
            Handled::Keep => {
                self.nodes[n].counts.emitted += 1;
                self.send(n, element)
            }
            Handled::Consumed => {
                self.table.release(element.buffer);
                if aggregator {
                    self.nodes[n].counts.absorbed += 1;
                    self.accounting.absorbed += 1;
                } else {
                    self.nodes[n].counts.filtered += 1;
                    self.accounting.filtered += 1;
                }
                Ok(())
            }
            Handled::Route(ports) => self.route(n, element, &ports),
            Handled::Delivered(signal) => {
                self.table.release(element.buffer);
                self.nodes[n].counts.delivered += 1;
                if dead_letter {
                    self.accounting.dead_lettered += 1;
                } else {
                    self.accounting.delivered += 1;
                    let delivered = self.accounting.delivered;
                    self.control.delivered.store(delivered, Ordering::Relaxed);
                    if let Some(latency) = &mut self.latency {
                        let took = super::now_ns().saturating_sub(element.timestamp_ns);
                        latency.saturating_record(took.max(1));
                    }
                }
                if signal == BackpressureSignal::Pause {
                    self.sink_pauses += 1;
                    self.nodes[n].counts.pauses += 1;
                    let pause = self.spec.sink_pause.min(SINK_PAUSE.max);
                    self.nodes[n].resume_at = Some(Instant::now() + pause);
                }
                Ok(())
            }
        }
    }

    /// Sends `element` down every data edge of node `n`, sharing its buffer.
    fn send(&mut self, n: usize, element: Queued) -> Result<(), Failure> {
        let outputs = self.nodes[n].plan.outputs.len();
        self.fan_out(n, element, outputs, |node, i| node.outputs[i])
    }

    /// Sends `element` down `count` edges of node `n`, the `i`th given by `edge`. When an
    /// edge fails the flow, the branches not sent yet are counted failed with it.
    fn fan_out(
        &mut self,
        n: usize,
        element: Queued,
        count: usize,
        edge: impl Fn(&NodePlan, usize) -> usize,
    ) -> Result<(), Failure> {
        let buffer = element.buffer;
        if count == 0 {
            self.table.release(buffer);
            return Ok(());
        }
        self.accounting.fanned_out += count as u64 - 1;
        self.table.share(buffer, count as u32 - 1);
        let mut element = Some(element);
        for i in 0..count {
            let e = edge(&self.nodes[n].plan, i);
            let branch = match element.take() {
                Some(last) if i + 1 == count => last,
                Some(shared) => {
                    let branch = shared.clone();
                    element = Some(shared);
                    branch
                }
                None => unreachable!("every branch but the last leaves the element"),
            };
            if let Err(failure) = self.offer(e, branch) {
                let unsent = count - i - 1;
                self.accounting.failed += unsent as u64;
                for _ in 0..unsent {
                    self.table.release(buffer);
                }
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Sends `element` to the ports router `n` named; unknown names are counted as failed.
    fn route(&mut self, n: usize, element: Queued, names: &[String]) -> Result<(), Failure> {
        // Reused from element to element: no allocation once it has grown.
        let mut edges = std::mem::take(&mut self.routed);
        edges.clear();
        let mut unknown = 0u64;
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                continue;
            }
            let node = &mut self.nodes[n];
            match node.plan.ports.iter().find(|p| &p.name == name) {
                Some(port) => edges.extend(&port.edges),
                None => {
                    unknown += 1;
                    node.counts.unknown_ports += 1;
                    // The router's own words, shown in reports: on one line.
                    node.counts
                        .first_unknown_port
                        .get_or_insert_with(|| printable(name, false).into_owned());
                }
            }
        }
        let node = &mut self.nodes[n];
        if edges.is_empty() && unknown == 0 {
            node.counts.filtered += 1;
            self.accounting.filtered += 1;
            self.table.release(element.buffer);
            self.routed = edges;
            return Ok(());
        }
        node.counts.emitted += 1;
        // Each unknown port is a branch that ends here, as a failure.
        self.accounting.fanned_out += unknown;
        self.accounting.failed += unknown;
        if edges.is_empty() {
            self.accounting.fanned_out -= 1;
            self.table.release(element.buffer);
            self.routed = edges;
            return Ok(());
        }
        let sent = self.fan_out(n, element, edges.len(), |_, i| edges[i]);
        self.routed = edges;
        sent
    }

    /// Puts `element` on edge `e`, applying its overflow policy when it is full.
    fn offer(&mut self, e: usize, mut element: Queued) -> Result<(), Failure> {
        let edge = &mut self.edges[e];
        if let Some(trace) = &mut element.trace {
            trace.queued_ns = super::now_ns();
            trace.edge = e;
            trace.depth = edge.queue.len();
        }
        if !edge.queue.is_full() {
            edge.queue.push(element);
            return Ok(());
        }
        match edge.plan.overflow {
            // The scheduler runs a node only when its block edges have room.
            Overflow::Block => unreachable!("a block edge overflowed"),
            Overflow::DropOldest => {
                let oldest = edge.queue.pop().expect("a full queue has a head");
                edge.queue.push(element);
                edge.dropped += 1;
                self.accounting.dropped += 1;
                self.table.release(oldest.buffer);
                Ok(())
            }
            Overflow::DropNewest => {
                edge.dropped += 1;
                self.accounting.dropped += 1;
                self.table.release(element.buffer);
                Ok(())
            }
            Overflow::Error => {
                let (from, to, capacity) = (edge.plan.from, edge.plan.to, edge.plan.capacity);
                self.accounting.failed += 1;
                self.table.release(element.buffer);
                Err(Failure {
                    node: from,
                    call: None,
                    sequence: Some(element.sequence),
                    kind: FlowErrorKind::Overflow {
                        to: self.nodes[to].plan.name.clone(),
                        capacity,
                    },
                })
            }
        }
    }

    /// Node `n`'s inputs have all ended: a sink completes, an aggregator flushes and then
    /// passes on what it flushed, and every node is finished once it has nothing left.
    async fn wind_down(&mut self, n: usize) -> Result<(), Failure> {
        match self.nodes[n].plan.role {
            Role::Sink => {
                // A sink gets one `complete`, whatever it answers.
                self.nodes[n].finished = true;
                let completed = self.stages[n].complete(&mut self.table).await;
                return completed.map_err(|error| self.fail(n, Call::Complete, None, error));
            }
            Role::Aggregator => {
                if self.nodes[n].flushed.is_none() {
                    let flushed = self.flush(n).await?;
                    self.nodes[n].flushed = Some(flushed);
                    return Ok(());
                }
                let next = self.nodes[n].flushed.as_mut().and_then(VecDeque::pop_front);
                if let Some(element) = next {
                    self.nodes[n].counts.emitted += 1;
                    return self.send(n, element);
                }
            }
            _ => {}
        }
        self.nodes[n].finished = true;
        Ok(())
    }

    async fn flush(&mut self, n: usize) -> Result<VecDeque<Queued>, Failure> {
        let began = (self.tracing.is_some()).then(|| (super::now_ns(), self.table.copies()));
        let outputs = match self.stages[n].flush(&mut self.table).await {
            Ok(outputs) => outputs,
            Err(error) => {
                // Under any policy but `fail-flow`, the flow goes on without what the
                // aggregator held: those elements stay counted as absorbed. A flush is
                // not retried, since it has no element to retry with.
                self.recover(n, Call::Flush, error, u32::MAX, None).await?;
                Vec::new()
            }
        };
        self.accounting.produced += outputs.len() as u64;
        let batch = outputs.len();
        let flushed = outputs.into_iter().map(|output| {
            let mut element = self.admit(output);
            let span = self.begun_span(Call::Flush, began, batch);
            self.end_span(n, span, &mut element, 0, Fate::Sent);
            element
        });
        Ok(flushed.collect())
    }

    fn finished(&self) -> bool {
        self.nodes.iter().all(|n| n.finished)
    }

    fn stop_sources(&mut self, outcome: Outcome) {
        let mut stopped = false;
        for &s in &self.sources {
            let node = &mut self.nodes[s];
            stopped |= !node.finished;
            node.finished = true;
        }
        if stopped {
            self.outcome = outcome;
        }
    }

    /// When the next sink on hold may take elements again.
    fn next_wake(&self) -> Option<Instant> {
        self.nodes.iter().filter_map(|n| n.resume_at).min()
    }

    /// What the flow counted so far; `outcome` is `Running` for a live snapshot.
    fn report(&self, duration: Duration, outcome: Outcome) -> FlowReport {
        let per_stage = self.table.copies_per_stage();
        let nodes = self
            .nodes
            .iter()
            .zip(per_stage)
            .enumerate()
            .map(|(n, (node, copies))| {
                let counts = &node.counts;
                let mut calls = counts.earlier_calls;
                // A node whose stage never started has made no calls.
                calls += self.stages.get(n).map(Stage::stats).unwrap_or_default();
                NodeReport {
                    name: node.plan.name.clone(),
                    role: node.plan.role,
                    received: counts.received,
                    emitted: counts.emitted,
                    delivered: counts.delivered,
                    filtered: counts.filtered,
                    absorbed: counts.absorbed,
                    errors: counts.errors,
                    errors_by_kind: counts.errors_by_kind,
                    failed: counts.failed,
                    dead_lettered: counts.dead_lettered,
                    retries: counts.retries,
                    pauses: counts.pauses,
                    resumes: counts.resumes,
                    restarts: counts.restarts,
                    unknown_ports: counts.unknown_ports,
                    first_unknown_port: counts.first_unknown_port.clone(),
                    first_error: counts.first_error.clone(),
                    copies: *copies,
                    calls,
                    handles_held: self.table.handles_held(n),
                }
            })
            .collect();
        let mut accounting = self.accounting;
        // Elements left in a batch when the flow failed are counted already. While the
        // flow runs, what its queues hold is in flight, not abandoned.
        accounting.abandoned += if outcome == Outcome::Running {
            0
        } else {
            self.edges.iter().map(|e| e.queue.len() as u64).sum::<u64>()
                + self
                    .nodes
                    .iter()
                    .filter_map(|n| n.flushed.as_ref())
                    .map(|f| f.len() as u64)
                    .sum::<u64>()
        };
        FlowReport {
            flow: self.spec.plan.flow.clone(),
            outcome,
            emitted: accounting.emitted,
            delivered: accounting.delivered,
            accounting,
            duration,
            copies: self.table.copies(),
            source_pauses: self.source_pauses,
            sink_pauses: self.sink_pauses,
            nodes,
            edges: self
                .edges
                .iter()
                .map(|edge| EdgeReport {
                    from: self.nodes[edge.plan.from].plan.name.clone(),
                    to: self.nodes[edge.plan.to].plan.name.clone(),
                    port: edge.plan.port.clone(),
                    dead_letter: edge.plan.dead_letter,
                    capacity: edge.plan.capacity,
                    overflow: edge.plan.overflow,
                    max_depth: edge.queue.max_depth(),
                    depth: edge.queue.len(),
                    dropped: edge.dropped,
                    blocked: edge.blocked(),
                })
                .collect(),
            buffers: BufferReport {
                live: self.table.live(),
                high_water: self.table.slots(),
                pool: self.table.pool_stats(),
            },
            audit: self.audit.events(),
            recent_errors: self.recent_errors.iter().cloned().collect(),
            latency: self.latency.as_ref().map(LatencyReport::of),
        }
    }

    /// Publishes a live snapshot when one is due; `now` is the time, read by the caller.
    fn publish_due(&mut self, now: Instant) {
        if self.observed && now.duration_since(self.published) >= PUBLISH_EVERY {
            self.published = now;
            let snapshot = self.report(now.duration_since(self.started), Outcome::Running);
            self.control.publish(snapshot);
            self.hand_over_spans();
        }
    }

    fn into_error(mut self, failure: Failure, duration: Duration) -> FlowError {
        let report = self.finish(duration, Outcome::Failed);
        FlowError {
            flow: self.spec.plan.flow.clone(),
            stage: self.nodes[failure.node].plan.name.clone(),
            call: failure.call,
            sequence: failure.sequence,
            kind: failure.kind,
            report: Box::new(report),
        }
    }

    /// The flow's final report, also published as its last snapshot when observed.
    fn finish(&mut self, duration: Duration, outcome: Outcome) -> FlowReport {
        self.hand_over_spans();
        let report = self.report(duration, outcome);
        if self.observed {
            self.control.publish(report.clone());
        }
        self.control.ended.store(true, Ordering::Release);
        report
    }
}

/// The call a node of `role` is traced in.
fn call_of(role: Role) -> Call {
    match role {
        Role::Source => Call::Pull,
        Role::Processor => Call::Process,
        Role::Filter => Call::Evaluate,
        Role::Router => Call::Route,
        Role::Aggregator => Call::Ingest,
        Role::Sink => Call::Push,
    }
}

/// Appends the failure to a dead letter's content type as a MIME parameter.
fn mark_dead_letter(content_type: &mut String, node: &str, why: &str) {
    let quoted: String = format!("{node}: {why}")
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            '\n' | '\r' => vec![' '],
            c => vec![c],
        })
        .collect();
    if content_type.is_empty() {
        content_type.push_str("application/octet-stream");
    }
    content_type.push_str("; torvyn-error=\"");
    content_type.push_str(&quoted);
    content_type.push('"');
}

/// Instantiates every stage, calls `init`, runs the flow to its end and tears it down;
/// reports its end as an event when the run records them.
pub(crate) async fn run_flow(
    engine: &wasmtime::Engine,
    spec: FlowSpec,
    options: RunOptions,
    control: &Control,
) -> Result<FlowReport, FlowError> {
    let events = (options.events.clone()).map(|sink| Events::new(spec.plan.flow.clone(), sink));
    let ended = run_to_end(engine, spec, options, control, events.clone()).await;
    if let Some(events) = events {
        let (report, error) = match &ended {
            Ok(report) => (report, None),
            Err(error) => (&*error.report, Some(error.to_string())),
        };
        events.emit(EventKind::Ended {
            outcome: report.outcome,
            emitted: report.emitted,
            delivered: report.delivered,
            error,
        });
    }
    ended
}

async fn run_to_end(
    engine: &wasmtime::Engine,
    spec: FlowSpec,
    options: RunOptions,
    control: &Control,
    events: Option<Events>,
) -> Result<FlowReport, FlowError> {
    let plan = &spec.plan;
    let identity = Arc::new(FlowIdentity {
        flow_id: plan.flow.clone(),
        count_host_calls: options.measure,
        time_calls: options.observability.observed(),
        watch: (options.observability.observed()).then(|| control.call.clone()),
        stop: control.cancel.clone(),
    });
    let mut driver = Driver {
        engine,
        spec: &spec,
        identity,
        audit: AuditLog::new(events.clone()),
        control,
        stages: Vec::with_capacity(plan.nodes.len()),
        nodes: plan
            .nodes
            .iter()
            .map(|plan| Node {
                plan: plan.clone(),
                counts: Counts::default(),
                next_input: 0,
                finished: false,
                paused: false,
                resume_at: None,
                flushed: None,
                poisoned: false,
                restarted: None,
                batch_element_bytes: None,
            })
            .collect(),
        edges: plan
            .edges
            .iter()
            .map(|plan| Edge {
                plan: plan.clone(),
                queue: Queue::new(plan.capacity),
                dropped: 0,
                blocked: Duration::ZERO,
                blocked_since: None,
            })
            .collect(),
        sources: (plan.order.iter().copied())
            .filter(|&n| plan.nodes[n].role == Role::Source)
            .collect(),
        next_source: 0,
        routed: Vec::new(),
        batch: Vec::new(),
        limit: options.limit,
        table: BufferTable::new(spec.stages.iter().map(|s| s.limits.budget).collect()),
        next_sequence: 0,
        outcome: Outcome::Completed,
        accounting: Accounting::default(),
        source_pauses: 0,
        sink_pauses: 0,
        observed: options.observability.observed(),
        started: Instant::now(),
        published: Instant::now(),
        recent_errors: VecDeque::new(),
        // One hour at three significant digits; values beyond are recorded as the maximum.
        latency: (options.measure)
            .then(|| Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds")),
        tracing: (options.spans.clone())
            .zip(options.observability.sampling())
            .map(|(sink, every)| Tracing {
                sink,
                every,
                entered: 0,
                finished: Vec::new(),
            }),
        events,
    };
    for index in 0..spec.stages.len() {
        let (identity, audit) = (driver.identity.clone(), driver.audit.clone());
        match start_stage(engine, &spec, index, identity, &audit, true).await {
            Ok(Some(instance)) => driver.stages.push(instance),
            Ok(None) => {
                // Stopped before it ran: the stages started end as after a failure, and
                // nothing was lost, since no element entered the flow.
                driver.stop_sources(Outcome::Cancelled);
                driver.wind_down_after_failure().await;
                let _ = driver.teardown().await;
                return Ok(driver.finish(Duration::ZERO, Outcome::Cancelled));
            }
            Err(kind) => {
                // Stages already started get their last calls; this one never started.
                driver.wind_down_after_failure().await;
                let _ = driver.teardown().await;
                let failure = Failure {
                    node: index,
                    call: None,
                    sequence: None,
                    kind,
                };
                return Err(driver.into_error(failure, Duration::ZERO));
            }
        }
    }
    driver.emit(|driver| EventKind::Started {
        nodes: driver.nodes.len(),
        edges: driver.edges.len(),
    });
    let started = Instant::now();
    driver.started = started;
    // The first snapshot, all zeros, shows the flow as soon as it runs.
    driver.published = started - PUBLISH_EVERY;
    driver.publish_due(started);
    // A timeout too long to reckon is none.
    let deadline = options.timeout.and_then(|t| started.checked_add(t));
    let mut result = drive(&mut driver, deadline).await;
    if result.is_err() {
        driver.wind_down_after_failure().await;
    }
    let torn_down = driver.teardown().await;
    if result.is_ok() {
        result = torn_down;
    }
    let duration = started.elapsed();
    match result {
        Ok(()) => {
            let outcome = driver.outcome;
            Ok(driver.finish(duration, outcome))
        }
        Err(failure) => Err(driver.into_error(failure, duration)),
    }
}

/// Instantiates node `n`'s component and calls its `init`: the stage, or `None` when
/// `interruptible` and a stop cut `init` short.
async fn start_stage(
    engine: &wasmtime::Engine,
    spec: &FlowSpec,
    n: usize,
    identity: Arc<FlowIdentity>,
    audit: &AuditLog,
    interruptible: bool,
) -> Result<Option<Stage>, FlowErrorKind> {
    let stage = &spec.stages[n];
    let deadline = spec.plan.invocation_deadline;
    let mut instance = Stage::instantiate(engine, n, identity, deadline, stage, audit)
        .await
        .map_err(|e| FlowErrorKind::Instantiate(format!("{e:?}")))?;
    match instance.init(&stage.config, interruptible).await {
        Ok(()) => Ok(Some(instance)),
        Err(error) if error.is_stop() => Ok(None),
        Err(error) => Err(FlowErrorKind::Init(describe_call_error(&error))),
    }
}

async fn drive(driver: &mut Driver<'_>, deadline: Option<Instant>) -> Result<(), Failure> {
    let control = driver.control;
    let mut since_yield = 0u32;
    let mut last_yield = Instant::now();
    loop {
        if control.cancel.is_cancelled() {
            driver.stop_sources(Outcome::Cancelled);
        }
        if (driver.limit).is_some_and(|limit| driver.total_emitted() >= limit) {
            driver.stop_sources(Outcome::LimitReached);
        }
        if control.is_paused() {
            driver.publish_due(Instant::now());
            driver.emit(|_| EventKind::Paused);
            control.wait_while_paused().await;
            driver.emit(|_| EventKind::Resumed);
            last_yield = Instant::now();
        }
        if driver.turn().await? {
            since_yield += 1;
            if since_yield >= YIELD_EVERY || last_yield.elapsed() >= YIELD_AFTER {
                tokio::task::yield_now().await;
                since_yield = 0;
                last_yield = Instant::now();
                driver.publish_due(last_yield);
                if deadline.is_some_and(|at| last_yield >= at) {
                    driver.stop_sources(Outcome::TimedOut);
                }
            }
            continue;
        }
        if driver.finished() {
            return Ok(());
        }
        // Nothing can run: a sink asked to pause and the queues before it are full (or
        // the sources are paused waiting for them to drain).
        let mut wake = driver.next_wake().unwrap_or_else(Instant::now);
        if driver.observed {
            // Wake in time to publish the next snapshot, however long the wait.
            wake = wake.min(driver.published + PUBLISH_EVERY);
        }
        let sources_running = driver.sources.iter().any(|&s| !driver.nodes[s].finished);
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => {}
            () = control.cancel.cancelled(), if sources_running => {}
            () = tokio::time::sleep_until(deadline.unwrap_or(wake).into()), if sources_running => {}
        }
        since_yield = 0;
        last_yield = Instant::now();
        driver.publish_due(last_yield);
        if deadline.is_some_and(|at| last_yield >= at) {
            driver.stop_sources(Outcome::TimedOut);
        }
    }
}
