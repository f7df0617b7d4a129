//! The flow driver: its state, one turn of the scheduling described in the module docs,
//! and how a flow starts. One concern a file beside it: `drive` (the loop of turns, yields
//! and waits), `dispatch` (where an element goes after a call), `batching`, `tracing`,
//! `recovery` (error policies and restarts), `acknowledging` (end-to-end acknowledgements
//! and connectors), `detached` (sinks that wait, called apart), `ending` (the last calls
//! of every stage), `pulling` (how elements enter the flow), `report`, and the types a
//! flow is run with (`spec`) and fails with (`failure`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Notify;

mod acknowledging;
mod batching;
mod detached;
mod dispatch;
mod drive;
mod ending;
mod failure;
mod pulling;
mod recovery;
mod report;
mod spec;
mod tracing;

use self::acknowledging::Watched;
use self::detached::Placement;
pub use self::detached::{SLOW_CALL, SLOW_CALLS};
use self::failure::Failure;
pub use self::failure::{FlowError, FlowErrorKind};
pub use self::spec::{FlowSpec, RunOptions, StageSpec};

use self::recovery::describe_call_error;
use self::tracing::Tracing;
use super::acks::{Acks, Resolved};
use super::control::Control;
use super::fixture::Stage;
use super::queue::{Queue, Queued};
use crate::config::Overflow;
use crate::contracts::Role;
use crate::engine::{BackpressureSignal, FlowIdentity};
use crate::observability::{
    Accounting, Call, CallStats, ErrorCounts, ErrorEvent, EventKind, Events, Fate, FlowReport,
    Outcome, PUBLISH_EVERY,
};
use crate::resources::BufferTable;
use crate::security::AuditLog;
use crate::topology::{EdgePlan, NodePlan};

/// Turns a flow takes between two yields to tokio (a turn is one unit of work: mostly a
/// call or a batch call, or a wind-down): the most a busy flow runs while another flow on
/// the same thread waits, as 100 µs (`YIELD_AFTER`) bounds it in time. Tokio's own
/// cooperative budget per task poll is the same 128 (`tokio::task::coop`). A yield costs
/// the runtime a poll of its I/O driver (an `epoll_wait`): at 32, that was about 5 % of a
/// native flow's time.
pub const YIELD_EVERY: u32 = 128;
/// The most elements a stage that exports a batch interface takes or makes in one call.
pub const MAX_BATCH: usize = 32;
/// The most payload bytes handed to a batch processor or sink in one call (its first
/// element goes whatever its size). The payloads of a batch are copied into the
/// component with the call, which pays off for small elements only: a large one goes
/// alone, as a single call.
pub const MAX_BATCH_BYTES: u64 = 32 * 1024;
/// The most elements a built-in connector takes or makes in one batch call. Its elements
/// cross no component boundary, so its batches are bounded by the room its queues have
/// ([`crate::DEFAULT_QUEUE_CAPACITY`] by default) rather than by [`MAX_BATCH`]; this bounds
/// them where no queue does (edges that drop).
pub const MAX_CONNECTOR_BATCH: usize = 1024;
/// The most payload bytes a built-in connector takes or makes in one batch: enough for a
/// file sink's write to be large, small enough for one batch's memory to stay small.
pub const MAX_CONNECTOR_BATCH_BYTES: u64 = 256 * 1024;
/// Longest a flow runs between two yields to tokio, looked at every [`CLOCK_EVERY`] turns.
const YIELD_AFTER: Duration = Duration::from_micros(100);
/// Turns between two looks at the clock for [`YIELD_AFTER`], and at the flow's stop: how
/// many turns late a stop can be seen.
const CLOCK_EVERY: u32 = 8;

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
    /// A source stopped that ends its stream by itself once it has drained.
    draining: bool,
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
    /// An aggregator: the acks of the elements it absorbed since it last emitted.
    absorbed: Vec<super::acks::Ack>,
    /// Where its calls run: a sink that waits runs on its own task.
    placement: Placement,
    /// A connector's connection to its server, watched wherever its calls run.
    connection: Option<Watched>,
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
    /// The acknowledgements of elements whose source awaits their fate.
    acks: Acks,
    /// Source elements whose fate just became known, kept to save an allocation.
    resolved: Vec<Resolved>,
    /// Notified when a source connector that was not ready may have become so.
    wake: Arc<Notify>,
    /// When the connectors were last ticked.
    ticked: Instant,
    /// The calls of detached sinks in progress, on blocking threads (returned ones too,
    /// until they are landed).
    calls: tokio::task::JoinSet<detached::Landed>,
}

impl Driver<'_> {
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
        if !self.calls.is_empty() {
            self.land_returned().await?;
        }
        // Downstream first: elements already in the flow go on before new ones come in.
        for i in (0..self.spec.plan.order.len()).rev() {
            let n = self.spec.plan.order[i];
            let node = &self.nodes[n];
            if node.finished || node.plan.role == Role::Source {
                continue;
            }
            let role = node.plan.role;
            let ready = match role {
                // A sink's only edge out is its dead-letter edge.
                Role::Sink => !self.is_away(n) && self.room_downstream(n) && self.sink_ready(n),
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
                if self.detached(n) {
                    self.send_away(n, e, batch);
                    return Ok(true);
                }
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
            if self.nodes[s].finished || !self.source_ready(s) {
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
        self.timed(n);
        match result {
            // Most calls succeed: they go on without the error policy's future.
            Ok(handled) => self.handled(n, element, handled, dead_letter, span, 0),
            result => self.settle(n, element, result, dead_letter, span).await,
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
                self.recover(n, Call::Flush, error, u32::MAX, None, None)
                    .await?;
                self.lose_absorbed(n);
                Vec::new()
            }
        };
        self.accounting.produced += outputs.len() as u64;
        let at = super::now_ns();
        let batch = outputs.len();
        let ack = self.made_from_absorbed(n, batch as u32);
        let flushed = outputs.into_iter().map(|output| {
            let mut element = self.admit(output, at);
            element.ack = ack;
            element.attributes = self.stages[n].take_attributes();
            let span = self.begun_span(Call::Flush, began, batch);
            self.end_span(n, span, &mut element, 0, Fate::Sent);
            element
        });
        Ok(flushed.collect())
    }

    fn finished(&self) -> bool {
        self.nodes.iter().all(|n| n.finished)
    }

    /// Stops every source that has not finished, and records why: at once, or (a source
    /// connector that drains, on a stop or a time limit) once what it was already sent is
    /// out, which it ends its stream after. `--limit` and a closed output stop it at once:
    /// nothing more may enter the flow, and what it was sent goes back.
    fn stop_sources(&mut self, outcome: Outcome) {
        let mut stopped = false;
        let drain = matches!(outcome, Outcome::Cancelled | Outcome::TimedOut);
        for &s in &self.sources {
            let node = &mut self.nodes[s];
            if node.finished || node.draining {
                continue;
            }
            stopped = true;
            // A stop before every stage started finds some of them missing.
            let connector = self.stages.get_mut(s).and_then(Stage::connector);
            if connector.is_some_and(|c| c.stop()) && drain {
                node.draining = true;
            } else {
                node.finished = true;
            }
        }
        if stopped {
            self.outcome = outcome;
        }
    }

    /// When the next sink on hold may take elements again.
    fn next_wake(&self) -> Option<Instant> {
        self.nodes.iter().filter_map(|n| n.resume_at).min()
    }
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
        metrics: plan.nodes.iter().map(|_| Default::default()).collect(),
    });
    let mut driver = Driver {
        engine,
        spec: &spec,
        identity,
        audit: AuditLog::new(events.clone()),
        control,
        stages: Vec::with_capacity(plan.nodes.len()),
        nodes: (plan.nodes.iter().enumerate())
            .map(|(n, plan)| Node {
                plan: plan.clone(),
                counts: Counts::default(),
                next_input: 0,
                finished: false,
                paused: false,
                draining: false,
                resume_at: None,
                flushed: None,
                poisoned: false,
                restarted: None,
                batch_element_bytes: None,
                absorbed: Vec::new(),
                placement: Placement::start(&spec, n),
                connection: None,
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
        acks: Acks::default(),
        resolved: Vec::new(),
        wake: Arc::new(Notify::new()),
        ticked: Instant::now(),
        calls: tokio::task::JoinSet::new(),
    };
    for index in 0..spec.stages.len() {
        let (identity, audit) = (driver.identity.clone(), driver.audit.clone());
        let wake = driver.wake.clone();
        match start_stage(engine, &spec, index, identity, &audit, &wake, true).await {
            Ok(Some(mut instance)) => {
                let connection = instance.connector().and_then(|c| c.connection());
                driver.nodes[index].connection = connection.map(Watched::new);
                driver.stages.push(instance);
            }
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
    driver.omit_unread_attributes();
    driver.detach_blocking_sinks();
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
    let mut result = drive::drive(&mut driver, deadline).await;
    if result.is_err() {
        driver.land_all_after_failure().await;
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

/// Instantiates node `n`'s component (or opens its connector, which notifies `wake`) and
/// calls its `init`: the stage, or `None` when `interruptible` and a stop cut `init` short.
async fn start_stage(
    engine: &wasmtime::Engine,
    spec: &FlowSpec,
    n: usize,
    identity: Arc<FlowIdentity>,
    audit: &AuditLog,
    wake: &Arc<Notify>,
    interruptible: bool,
) -> Result<Option<Stage>, FlowErrorKind> {
    let stage = &spec.stages[n];
    let deadline = spec.plan.invocation_deadline;
    let mut instance = Stage::instantiate(engine, n, identity, deadline, stage, audit, wake)
        .await
        .map_err(|e| FlowErrorKind::Instantiate(format!("{e:?}")))?;
    match instance.init(&stage.config, interruptible).await {
        Ok(()) => Ok(Some(instance)),
        Err(error) if error.is_stop() => Ok(None),
        Err(error) => Err(FlowErrorKind::Init(describe_call_error(&error))),
    }
}
