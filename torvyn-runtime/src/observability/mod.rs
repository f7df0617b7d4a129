//! What a flow reports about itself: counts kept on plain per-flow fields while it runs,
//! gathered into a [`FlowReport`] when it ends.

use std::time::Duration;

use crate::config::Overflow;
use crate::contracts::Role;
use crate::resources::{CopyStats, PoolStats};
use crate::security::AuditEvent;

/// Why a flow stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
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
}

/// Counts of one node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// Elements given up on under `skip` (or under `dead-letter`, by a dead-letter sink).
    pub failed: u64,
    /// Elements sent to its dead-letter sink.
    pub dead_lettered: u64,
    /// Calls made again under `retry`.
    pub retries: u64,
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
    }
}

fn nanos<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_nanos() as u64)
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
    /// Elements its overflow policy dropped.
    pub dropped: u64,
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
    /// Uses of capabilities the host refused, in order.
    pub audit: Vec<AuditEvent>,
    /// End-to-end latency, when the run measured it ([`RunOptions::measure`]).
    ///
    /// [`RunOptions::measure`]: crate::RunOptions::measure
    pub latency: Option<LatencyReport>,
}

fn as_secs_f64<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(duration.as_secs_f64())
}
