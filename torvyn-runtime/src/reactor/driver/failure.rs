//! How a flow fails: the error it ends with, naming the node, the call and the element,
//! with what the flow counted until then.

use std::time::Duration;

use crate::observability::{Call, FlowReport};

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
    /// A built-in connector could not go on: its checkpoints could not be stored, its
    /// output could not be flushed.
    Connector(String),
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
    /// The flow's counts when it stopped; its outcome is [`Outcome::Failed`](crate::Outcome::Failed).
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
            FlowErrorKind::Connector(why) => format!("failed: {why}"),
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
pub(super) struct Failure {
    pub(super) node: usize,
    /// The call that failed, when a call did.
    pub(super) call: Option<Call>,
    pub(super) sequence: Option<u64>,
    pub(super) kind: FlowErrorKind,
}
