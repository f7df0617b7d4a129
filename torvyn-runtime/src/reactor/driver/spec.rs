//! What a flow is given to run: its plan, a stage for each node, and the bounds of one run.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[cfg(doc)]
use crate::config::bounds::SINK_PAUSE;
use crate::observability::{EventSink, ObservabilityLevel, SpanSink};
use crate::reactor::fixture::StageBody;
use crate::security::{Grants, Limits};
use crate::topology::FlowPlan;

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
