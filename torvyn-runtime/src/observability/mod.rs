//! What a flow reports about itself: counts kept on plain per-flow fields while it runs,
//! gathered into a [`FlowReport`] when it ends and, at [`ObservabilityLevel::Production`],
//! published as a live snapshot every [`PUBLISH_EVERY`] while it runs.

use std::time::Duration;

mod component;
mod events;
mod metrics;
pub(crate) mod otlp;
mod otlp_component;
pub(crate) mod prometheus;
mod text;
mod trace;

pub use component::{ComponentMetric, MAX_METRICS, MAX_SERIES, MetricKind, SeriesValue};
pub(crate) use component::{ComponentMetrics, MetricError, Update, component_families};
pub(crate) use events::Events;
pub use events::{EventKind, EventSink, FlowEvent};
pub use otlp::{OtlpError, OtlpExporter, OtlpSummary};
pub use text::{MAX_COMPONENT_TEXT, cut_short, printable};
pub use trace::{Call, Fate, PRODUCTION_SAMPLING, QueueWait, SpanId, SpanSink, StageSpan, TraceId};

use crate::config::Overflow;
use crate::contracts::Role;
use crate::resources::{CopyStats, PoolStats};
use crate::security::AuditEvent;

/// How much a flow records about itself while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservabilityLevel {
    /// Counts for the report at the end, nothing more: no live snapshot, no latency
    /// histograms, no time blocked.
    Off,
    /// Live snapshots every [`PUBLISH_EVERY`] (what `/metrics` and the inspection API
    /// serve), a latency histogram of every node's calls, and the time each queue held
    /// its upstream back.
    #[default]
    Production,
    /// Production, and every element traced: a span per stage per element, with its time
    /// in the queue and the copies of the call, handed to the run's
    /// [`SpanSink`](crate::SpanSink). At production, one element in
    /// [`PRODUCTION_SAMPLING`] is.
    Diagnostic,
}

impl ObservabilityLevel {
    /// Whether the flow publishes snapshots, times calls and measures blocking.
    pub fn observed(self) -> bool {
        self != ObservabilityLevel::Off
    }

    /// One element in how many is traced, when spans are collected.
    pub(crate) fn sampling(self) -> Option<u64> {
        match self {
            ObservabilityLevel::Off => None,
            ObservabilityLevel::Production => Some(PRODUCTION_SAMPLING),
            ObservabilityLevel::Diagnostic => Some(1),
        }
    }
}

/// How often a running flow publishes its snapshot at [`ObservabilityLevel::Production`].
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Why a flow stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The flow has not stopped: the report is a live snapshot.
    Running,
    /// The sources ended their streams and every element reached an end.
    Completed,
    /// The sources were stopped after the requested number of elements.
    LimitReached,
    /// The run's time limit passed; in-flight elements were drained.
    TimedOut,
    /// The run was cancelled (a signal, or its handle); in-flight elements were drained.
    Cancelled,
    /// A node failed and the flow stopped; what was in its queues is counted abandoned.
    Failed,
    /// A sink's output was closed (a broken pipe, as when `head` has read enough): the
    /// sources were stopped, and what could not be written is counted abandoned.
    OutputClosed,
}

/// Counts of one node.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeReport {
    /// The node's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Elements it was handed (none for a source).
    pub received: u64,
    /// Elements it sent on: pulled by a source, produced by a processor or aggregator,
    /// kept by a filter, routed by a router (once per element, whatever the fan-out).
    pub emitted: u64,
    /// Elements a sink accepted (dead letters included).
    pub delivered: u64,
    /// Elements a processor dropped, a filter rejected or a router sent to no port.
    pub filtered: u64,
    /// Elements an aggregator took in.
    pub absorbed: u64,
    /// Errors and traps, retried or not.
    pub errors: u64,
    /// The same errors, by kind.
    pub errors_by_kind: ErrorCounts,
    /// Elements given up on under `skip` (or under `dead-letter`, by a dead-letter sink).
    pub failed: u64,
    /// Elements sent to its dead-letter sink.
    pub dead_lettered: u64,
    /// Calls made again under `retry`.
    pub retries: u64,
    /// A source: times it was told to pause; a sink: times it asked the host to.
    pub pauses: u64,
    /// A source: times it was told to go on after a pause.
    pub resumes: u64,
    /// Times its component was re-instantiated after a trap.
    pub restarts: u64,
    /// Port names a router returned that no edge leaves from.
    pub unknown_ports: u64,
    /// The first unknown port name, if any.
    pub first_unknown_port: Option<String>,
    /// The first error or trap, and the element it happened on, if any.
    pub first_error: Option<String>,
    /// Payload copies made by its calls.
    pub copies: CopyStats,
    /// Its calls and the time they took, restarts included.
    pub calls: CallStats,
    /// Buffer handles its component holds (husks of frozen mutable buffers included): at
    /// the end of a flow, what it never dropped.
    pub handles_held: u32,
    /// What a built-in connector did; `None` for a component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorReport>,
    /// The metrics its component declared through `torvyn:runtime/metrics`, with their
    /// series as they stand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<ComponentMetric>,
}

/// What a built-in connector (a node the host plays: a file, standard input or output, a
/// NATS stream) did, beside its node's counts. Read back from the inspection API's JSON
/// by `top` and `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ConnectorReport {
    /// Its type: `file`, `stdin`, `stdout` or `nats`.
    pub kind: String,
    /// Bytes read (a source) or written (a sink).
    pub bytes: u64,
    /// Elements longer than `max-element-size` left out (`oversize = "skip"`).
    pub oversize_skipped: u64,
    /// Elements cut to `max-element-size` (`oversize = "truncate"`).
    pub oversize_truncated: u64,
    /// A source: elements whose final fate it learned (end-to-end acknowledgements).
    pub settled: u64,
    /// Of those, elements that failed in some branch, under a policy that went on.
    pub failed: u64,
    /// A file source: files resumed from a checkpoint instead of their start.
    pub resumed_files: u64,
    /// A file source: elements read again after a restart that the run before is known
    /// to have read (up to where it had read when it last stored its checkpoint): a lower
    /// bound on the elements delivered twice, which are at most about a second's worth.
    pub replayed: u64,
    /// A file source: times its checkpoints were stored.
    pub checkpoints: u64,
    /// A sink: its output was closed (a broken pipe).
    pub closed: bool,
    /// A sink: elements that reached it after its output closed, not written (counted
    /// abandoned in the flow's accounting).
    pub unwritten: u64,
    /// A file sink: times it found its file deleted after a write, made it again at its
    /// path and wrote the batch into it again.
    pub files_made_again: u64,
    /// A NATS source: messages acknowledged (`+ACK`) once their element settled.
    pub acks: u64,
    /// A NATS source: messages given back (`-NAK`) for another delivery.
    pub naks: u64,
    /// A NATS source: progress acknowledgements (`+WPI`) of messages held long.
    pub progress_acks: u64,
    /// A NATS source: messages delivered more than once (a delivery count above 1).
    pub redelivered: u64,
    /// A NATS source: the consumer's messages not yet delivered to any host; `None` for
    /// other connectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// A NATS sink: messages the stream had already stored under the same message id
    /// (an element delivered again), not stored twice.
    pub duplicates: u64,
    /// A NATS connector: transient errors (failed pull requests, lost connections) that
    /// were retried.
    pub transient_errors: u64,
}

impl ConnectorReport {
    /// An empty report of a connector of type `kind`.
    pub fn new(kind: &str) -> Self {
        ConnectorReport {
            kind: kind.to_owned(),
            ..Self::default()
        }
    }
}

/// The calls the host made into one node, and what they cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallStats {
    /// Calls from the host into the node (`pull`, `process`, `push`, …, `init` included).
    pub calls: u64,
    /// Calls from the node into the host during them: buffer and WASI functions (and
    /// wasmtime's own helpers, such as growing memory); counted only when the run measures
    /// ([`RunOptions::measure`](crate::RunOptions::measure)).
    pub host_calls: Option<u64>,
    /// Times a call was interrupted for the host to check its time and let other flows
    /// run (at most once per epoch tick).
    pub interruptions: u64,
    /// Time spent inside the calls, host calls included.
    #[serde(rename = "busy_ns", serialize_with = "nanos")]
    pub busy: Duration,
    /// How long the calls took, when the flow records it
    /// ([`ObservabilityLevel::Production`]).
    pub latency: Option<CallHistogram>,
}

/// How many calls took how long: counts in buckets whose upper bounds double from 1 µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallHistogram {
    /// Calls per bucket; the last counts the calls longer than every bound.
    counts: [u64; CALL_BUCKETS + 1],
    /// Time of all the calls, in nanoseconds.
    sum_ns: u64,
}

/// Buckets of a [`CallHistogram`] with an upper bound: 1 µs to 2^19 µs (about 0.5 s).
const CALL_BUCKETS: usize = 20;

impl CallHistogram {
    /// Counts a call that took `took`.
    pub(crate) fn record(&mut self, took: Duration) {
        let took_ns = crate::config::bounds::saturating_nanos(took);
        let micros = took_ns.div_ceil(1000);
        // The first bucket whose bound, 2^i µs, is at least `micros`.
        let bucket = (u64::BITS - micros.saturating_sub(1).leading_zeros()) as usize;
        self.counts[bucket.min(CALL_BUCKETS)] += 1;
        self.sum_ns = self.sum_ns.saturating_add(took_ns);
    }

    /// `(upper bound in seconds, calls in this bucket)` per bucket, not cumulative,
    /// ending with `f64::INFINITY` and the calls longer than every bound: what the
    /// Prometheus encoder takes (it adds them up into the `le` buckets itself).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        (self.counts.iter().enumerate())
            .map(|(i, count)| {
                let bound = match i {
                    CALL_BUCKETS => f64::INFINITY,
                    i => (1u64 << i) as f64 * 1e-6,
                };
                (bound, *count)
            })
            .collect()
    }

    /// Calls counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Time of all the calls counted.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }
}

impl std::ops::AddAssign for CallHistogram {
    fn add_assign(&mut self, other: CallHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }
}

/// Errors of a node by kind: the `process-error` cases, and traps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErrorCounts {
    /// `invalid-input`.
    pub invalid_input: u64,
    /// `unavailable`.
    pub unavailable: u64,
    /// `internal`.
    pub internal: u64,
    /// `deadline-exceeded`.
    pub deadline_exceeded: u64,
    /// `fatal`.
    pub fatal: u64,
    /// Traps: the component crashed, broke a rule or ran out of time or fuel.
    pub trap: u64,
}

impl ErrorCounts {
    /// `(kind, count)` pairs, kinds named as in the contract.
    pub fn by_kind(&self) -> [(&'static str, u64); 6] {
        [
            ("invalid-input", self.invalid_input),
            ("unavailable", self.unavailable),
            ("internal", self.internal),
            ("deadline-exceeded", self.deadline_exceeded),
            ("fatal", self.fatal),
            ("trap", self.trap),
        ]
    }
}

impl CallStats {
    /// Crossings of the sandbox boundary: into the node and back out of it to the host.
    pub fn crossings(&self) -> u64 {
        self.calls + self.host_calls.unwrap_or(0)
    }
}

impl std::ops::AddAssign for CallStats {
    fn add_assign(&mut self, other: CallStats) {
        self.calls += other.calls;
        self.host_calls = match (self.host_calls, other.host_calls) {
            (Some(mine), Some(theirs)) => Some(mine + theirs),
            (mine, theirs) => mine.or(theirs),
        };
        self.interruptions += other.interruptions;
        self.busy += other.busy;
        self.latency = match (self.latency, other.latency) {
            (Some(mut mine), Some(theirs)) => {
                mine += theirs;
                Some(mine)
            }
            (mine, theirs) => mine.or(theirs),
        };
    }
}

fn nanos<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(crate::config::bounds::saturating_nanos(*duration))
}

/// End-to-end latency of the elements delivered: from a source handing the element over
/// to the sink's call returning, in nanoseconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LatencyReport {
    /// Elements measured.
    pub count: u64,
    /// The fastest.
    pub min: u64,
    /// The median.
    pub p50: u64,
    /// The 90th percentile.
    pub p90: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
    /// The slowest.
    pub max: u64,
    /// The mean.
    pub mean: f64,
    /// `(percentile, latency)` pairs from 0 to 99.999, for plotting the distribution.
    pub distribution: Vec<(f64, u64)>,
}

impl LatencyReport {
    /// Summarises a histogram of latencies in nanoseconds.
    pub(crate) fn of(histogram: &hdrhistogram::Histogram<u64>) -> LatencyReport {
        let at = |q: f64| histogram.value_at_quantile(q);
        // Finer steps towards the tail, where the interest is.
        let mut distribution = Vec::new();
        for nines in 0..=5 {
            let (low, high) = (1.0 - 10f64.powi(-nines), 1.0 - 10f64.powi(-nines - 1));
            for step in 0..10 {
                let q = low + (high - low) * f64::from(step) / 10.0;
                distribution.push((q * 100.0, at(q)));
            }
        }
        LatencyReport {
            count: histogram.len(),
            min: histogram.min(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: histogram.max(),
            mean: histogram.mean(),
            distribution,
        }
    }
}

/// Counts of one queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EdgeReport {
    /// Upstream node.
    pub from: String,
    /// Downstream node.
    pub to: String,
    /// The router port it leaves from.
    pub port: Option<String>,
    /// Whether it carries failed elements to a dead-letter sink.
    pub dead_letter: bool,
    /// The queue's capacity.
    pub capacity: usize,
    /// What it does when full.
    pub overflow: Overflow,
    /// The most elements it held at once.
    pub max_depth: usize,
    /// Elements it holds now (at the end of a flow, those abandoned in it).
    pub depth: usize,
    /// Elements its overflow policy dropped.
    pub dropped: u64,
    /// Time it was full while its upstream had an element for it: how long it held its
    /// upstream back ([`ObservabilityLevel::Production`]; zero when off).
    #[serde(rename = "blocked_ns", serialize_with = "nanos")]
    pub blocked: Duration,
}

/// Where every element went. Each side counts element arrivals: an element sent down
/// three edges is one emitted plus two fanned out, and arrives three times.
///
/// `emitted + fanned_out + produced == delivered + filtered + dropped + dead_lettered +
/// failed + absorbed + abandoned` holds for every flow that ran, whether it completed,
/// was stopped or failed: see [`Accounting::balanced`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Accounting {
    /// Elements that left sources.
    pub emitted: u64,
    /// Extra arrivals from fan-out: an element sent down `k` edges adds `k - 1`.
    pub fanned_out: u64,
    /// New elements aggregators emitted.
    pub produced: u64,
    /// Accepted by sinks, dead letters apart.
    pub delivered: u64,
    /// Dropped by processors, rejected by filters, sent to no port by routers.
    pub filtered: u64,
    /// Dropped by queue overflow policies.
    pub dropped: u64,
    /// Accepted by dead-letter sinks.
    pub dead_lettered: u64,
    /// Given up on after an error (`skip`), sent to an unknown router port, or the one
    /// element that failed the flow.
    pub failed: u64,
    /// Taken in by aggregators.
    pub absorbed: u64,
    /// In queues when the flow failed.
    pub abandoned: u64,
}

impl Accounting {
    /// Arrivals: elements that entered the flow or one of its branches.
    pub fn arrived(&self) -> u64 {
        self.emitted + self.fanned_out + self.produced
    }

    /// Elements that reached an end, named.
    pub fn accounted(&self) -> u64 {
        self.delivered
            + self.filtered
            + self.dropped
            + self.dead_lettered
            + self.failed
            + self.absorbed
            + self.abandoned
    }

    /// Whether every element is accounted for.
    pub fn balanced(&self) -> bool {
        self.arrived() == self.accounted()
    }
}

/// Buffer figures at the end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BufferReport {
    /// Buffers not back in the pool when the flow ended (held by components that kept them).
    pub live: usize,
    /// Most buffers alive at once.
    pub high_water: usize,
    /// Pool reuse.
    pub pool: PoolStats,
}

/// Everything a flow counted, from its first pull to its teardown.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowReport {
    /// The flow's name.
    pub flow: String,
    /// Why it stopped.
    pub outcome: Outcome,
    /// Elements that left the sources.
    pub emitted: u64,
    /// Elements the sinks accepted, dead letters apart.
    pub delivered: u64,
    /// Where every element went.
    pub accounting: Accounting,
    /// Time from the first pull to the last sink's `complete`.
    #[serde(serialize_with = "as_secs_f64")]
    pub duration: Duration,
    /// Payload copies of the whole flow.
    pub copies: CopyStats,
    /// Times a source was told to pause because a queue it feeds was full.
    pub source_pauses: u64,
    /// Times a sink asked the host to slow down.
    pub sink_pauses: u64,
    /// Per node, in the manifest's order.
    pub nodes: Vec<NodeReport>,
    /// Per queue, in the manifest's order, then the dead-letter queues.
    pub edges: Vec<EdgeReport>,
    /// Buffer figures.
    pub buffers: BufferReport,
    /// Uses of capabilities the host refused, in order: the first
    /// [`MAX_AUDIT_EVENTS`](crate::security::MAX_AUDIT_EVENTS).
    pub audit: Vec<AuditEvent>,
    /// Refusals after those, counted only.
    pub audit_omitted: u64,
    /// The latest errors, oldest first (at most [`RECENT_ERRORS`]).
    pub recent_errors: Vec<ErrorEvent>,
    /// End-to-end latency, when the run measured it ([`RunOptions::measure`]).
    ///
    /// [`RunOptions::measure`]: crate::RunOptions::measure
    pub latency: Option<LatencyReport>,
}

/// How many of a flow's latest errors its report keeps.
pub const RECENT_ERRORS: usize = 16;

/// An error a node met, as the report's `recent_errors` list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorEvent {
    /// The node.
    pub node: String,
    /// The element it met the error on, if any.
    pub sequence: Option<u64>,
    /// What happened.
    pub error: String,
}

fn as_secs_f64<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_falls_in_the_first_bucket_whose_bound_holds_it() {
        let mut histogram = CallHistogram::default();
        for nanos in [0, 1_000, 1_001, 3_000, 4_000, 600_000_000_000] {
            histogram.record(Duration::from_nanos(nanos));
        }
        let buckets = histogram.buckets();
        assert_eq!(buckets.len(), CALL_BUCKETS + 1);
        // ≤ 1 µs: 0 and 1 000 ns; ≤ 2 µs: 1 001 ns; ≤ 4 µs: 3 000 and 4 000 ns.
        assert_eq!(&buckets[..3], &[(1e-6, 2), (2e-6, 1), (4e-6, 2)]);
        assert_eq!(buckets[CALL_BUCKETS - 1].1, 0);
        // Ten minutes is beyond every bound.
        assert_eq!(buckets[CALL_BUCKETS], (f64::INFINITY, 1));
        assert_eq!(histogram.count(), 6);
        assert_eq!(histogram.sum(), Duration::from_nanos(600_000_009_001));
    }

    #[test]
    fn histograms_of_a_restarted_node_add_up() {
        let (mut first, mut second) = (CallStats::default(), CallStats::default());
        second.latency = Some(CallHistogram::default());
        first += second;
        assert!(first.latency.is_some());
        let mut histogram = CallHistogram::default();
        histogram.record(Duration::from_micros(3));
        let mut total = histogram;
        total += histogram;
        assert_eq!(total.count(), 2);
        assert_eq!(total.sum(), Duration::from_micros(6));
    }
}
