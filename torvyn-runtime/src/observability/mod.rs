//! What a flow reports about itself: counts kept on plain per-flow fields while it runs,
//! gathered into a [`FlowReport`] when it ends.

use std::time::Duration;

use crate::contracts::Role;
use crate::resources::{CopyStats, PoolStats};

/// Why a flow stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The source ended its stream and every element was delivered.
    Completed,
    /// The source was stopped after the requested number of elements.
    LimitReached,
    /// The run's time limit passed; in-flight elements were drained.
    TimedOut,
    /// The run was cancelled (Ctrl-C); in-flight elements were drained.
    Cancelled,
}

/// Counts of one stage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageReport {
    /// The node's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Elements it received (pulled, for a source).
    pub received: u64,
    /// Elements it passed on.
    pub emitted: u64,
    /// Elements it consumed without output (dropped by a processor, rejected by a filter).
    pub dropped: u64,
    /// Payload copies made by its calls.
    pub copies: CopyStats,
}

/// Counts of one queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EdgeReport {
    /// Upstream node.
    pub from: String,
    /// Downstream node.
    pub to: String,
    /// The queue's capacity.
    pub capacity: usize,
    /// The most elements it held at once.
    pub max_depth: usize,
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowReport {
    /// The flow's name.
    pub flow: String,
    /// Why it stopped.
    pub outcome: Outcome,
    /// Elements that left the source.
    pub emitted: u64,
    /// Elements the sink accepted.
    pub delivered: u64,
    /// Time from the first pull to the sink's `complete`.
    #[serde(serialize_with = "as_secs_f64")]
    pub duration: Duration,
    /// Payload copies of the whole flow.
    pub copies: CopyStats,
    /// Times the source was told to pause because its queue was full.
    pub source_pauses: u64,
    /// Times the sink asked the host to slow down.
    pub sink_pauses: u64,
    /// Per stage, in flow order.
    pub stages: Vec<StageReport>,
    /// Per queue, in flow order.
    pub edges: Vec<EdgeReport>,
    /// Buffer figures.
    pub buffers: BufferReport,
}

fn as_secs_f64<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(duration.as_secs_f64())
}
