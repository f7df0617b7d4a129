//! Lifecycle events of flows: what a person watching a host wants to hear of as it
//! happens, and what an operator wants kept in a log.

use std::fmt;

use super::Outcome;

/// Something that happened to a flow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowEvent {
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The flow.
    pub flow: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened to a flow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// Every stage is instantiated and initialised; the first pull follows.
    Started {
        /// Its nodes.
        nodes: usize,
        /// Its queues.
        edges: usize,
    },
    /// It was paused through its handle or the inspection API.
    Paused,
    /// It was resumed after a pause.
    Resumed,
    /// A node's component trapped and a fresh instance took its place.
    Restarted {
        /// The node.
        node: String,
        /// Its restarts so far, this one included.
        restarts: u64,
        /// The trap.
        error: String,
    },
    /// A component tried to use a capability it was not granted, and was refused.
    CapabilityDenied {
        /// The node.
        node: String,
        /// The capability, as `capability-query` names it.
        capability: String,
        /// What it tried to do.
        detail: String,
        /// Why it was refused.
        reason: String,
    },
    /// A connector lost its connection to its server (a NATS server restarting, a network
    /// fault). Its client reconnects by itself; what waits for the server then resumes, and
    /// what the server did not confirm is published or delivered again, never lost.
    ConnectionLost {
        /// The node.
        node: String,
        /// The server, as the manifest names it, without credentials (`nats://HOST:PORT`).
        endpoint: String,
    },
    /// A connector's client connected again after losing its connection.
    Reconnected {
        /// The node.
        node: String,
        /// The server, as the manifest names it, without credentials (`nats://HOST:PORT`).
        endpoint: String,
    },
    /// It stopped.
    Ended {
        /// Why.
        outcome: Outcome,
        /// Elements that left its sources.
        emitted: u64,
        /// Elements its sinks accepted, dead letters apart.
        delivered: u64,
        /// What failed it, when it failed.
        error: Option<String>,
    },
}

/// Where a host sends the events of the flows it runs. Called on the flow's task (for a
/// refused capability, in the component's call) as the events happen, which are few: it
/// may write them out at once.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Takes an event.
    fn record(&self, event: FlowEvent);
}

/// A flow's name and where its events go.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    flow: String,
    sink: std::sync::Arc<dyn EventSink>,
}

impl Events {
    pub(crate) fn new(flow: String, sink: std::sync::Arc<dyn EventSink>) -> Self {
        Self { flow, sink }
    }

    pub(crate) fn emit(&self, kind: EventKind) {
        self.sink.record(FlowEvent {
            at_unix_ms: crate::reactor::now_ns() / 1_000_000,
            flow: self.flow.clone(),
            kind,
        });
    }
}
