//! Flow drivers: each flow runs as one tokio task that moves elements from its sources,
//! through bounded queues, to its sinks.
//!
//! # Scheduling and backpressure
//!
//! The driver loops over these steps until every node has finished:
//!
//! 1. Stop the sources (treat their streams as ended) when the run is cancelled, the
//!    element limit is reached or the time limit has passed. While the flow is paused
//!    through its handle, wait.
//! 2. Walk the nodes from the sinks back to the sources (reverse topological order) and
//!    run the first that has an element waiting and may run: a sink that is not on hold
//!    and has no call away, or any other node whose `block` edges all have room. A node
//!    with several inputs takes from them in turn. Working from the sinks backwards keeps
//!    queues short. A sink that waits (a built-in one writing to a pipe, or one whose
//!    calls were seen to be slow) is handed its elements and called on its own task, and the
//!    flow goes on meanwhile: its results are settled on a later turn, once it returns
//!    (the protocol is in `driver/detached.rs`).
//! 3. A node whose inputs have all ended winds down: a sink gets `complete`, an
//!    aggregator `flush` (its outputs go on like any others), and the node is finished.
//! 4. Otherwise pull the next source in turn that is not paused. The host stamps each new
//!    element (from a source or an aggregator) with the flow's next sequence number.
//! 5. An element goes down every data edge of its node (a router's: the edges of the
//!    ports it named), sharing one buffer. A full edge applies its overflow policy:
//!    `block` never overflows because its upstream waits, `drop-oldest` and `drop-newest`
//!    drop and count, `error` fails the flow.
//! 6. When a `block` edge out of a source reaches its high watermark, call
//!    `notify-backpressure(pause)` on the source; when all are at their low watermark,
//!    `notify-backpressure(ready)`. A sink that answers `pause` gets nothing for the
//!    flow's sink pause time; meanwhile upstream runs until its queues are full.
//! 7. A source, processor or sink that also exports its `torvyn:batching` interface is
//!    called with up to [`MAX_BATCH`] elements at once: as many as are queued (or, for a
//!    source, as the element limit allows) and as fit in its `block` and `error` edges
//!    (a source's, below their high watermarks: a batch that reached one by its own size
//!    would pause a source whose downstream keeps up).
//!    A batch handed to a processor or sink holds at most [`MAX_BATCH_BYTES`] of payload,
//!    since the payloads are copied in with the call: a large element goes alone. A
//!    source is asked for as many elements as that holds at the size of its latest batch
//!    (for one element, the first time). A built-in connector's batches cross no
//!    component boundary: they are bounded by its queues' room,
//!    [`MAX_CONNECTOR_BATCH`] and [`MAX_CONNECTOR_BATCH_BYTES`] instead, so that a file
//!    sink writes many lines at once.
//!    Each element's result then goes on as a single call's would. A batch of one is a
//!    single call.
//! 8. After 128 turns or 100 µs, yield to tokio so flows sharing a thread progress (and
//!    publish, tick connectors, and stop at `--timeout`). The clock is read every 8 turns,
//!    and after any turn during which the engine's epoch ticked (a millisecond passed):
//!    a read costs as much as a native stage's turn, and a slow turn is still followed
//!    by its yield.
//! 9. At the end, every stage's `teardown`, in topological order, and every built-in
//!    connector is closed (a file source stores its checkpoints).
//!
//! A built-in connector (`crate::connectors`) is a batch stage the host plays. A source
//! connector is pulled only when it says it is ready (a followed file at its end, or
//! standard input with nothing come, is not); when nothing can run, the flow waits for
//! the first of: a sink's pause to end, a followed file's next look, input to come, a
//! call away to return, a stop. Its elements carry end-to-end acknowledgements: the
//! protocol is in `acks`.
//!
//! # Errors
//!
//! A `process-error` or a trap goes through the node's policy: `fail-flow` ends the flow
//! with an error naming the flow, the node and the sequence number; `retry` calls again
//! after a backoff, for `unavailable`; `skip` counts the element as failed;
//! `dead-letter` sends it to the node's dead-letter sink with the error in its content
//! type. A trapped instance is never entered again: unless the flow fails, a fresh
//! instance (new store, `init` again) takes its place before the next call, after a
//! backoff and within the flow's restart budget (the protocol is in `driver/recovery.rs`).
//! However the flow ends, every stage that started and did not trap gets its last calls:
//! `complete`, `flush` and `teardown` (the protocol is in `driver/ending.rs`).
//!
//! A stop (a signal, the inspection API) cuts short a call that carries no element: an
//! `init` before the flow runs, a source's `pull`. Calls on elements are waited for, up to
//! their time limit, so that what is in flight is delivered.
//!
//! When a batch call traps, which element it trapped on is unknown: under `fail-flow`
//! every element of the batch is counted failed; under any other policy a fresh instance
//! takes the batch's elements again one call each, so that the policy meets the element
//! that traps (the others are handed to the component a second time). A time limit,
//! deadline or fuel allowance is per call, so a batch shares one.

mod acks;
mod control;
mod driver;
mod fixture;
mod queue;
mod stage;

pub(crate) use acks::Deliveries;
pub(crate) use control::{CallWatch, Control};
pub(crate) use driver::run_flow;
pub use driver::{FlowError, FlowErrorKind, FlowSpec, RunOptions, StageSpec};
pub use driver::{
    MAX_BATCH, MAX_BATCH_BYTES, MAX_CONNECTOR_BATCH, MAX_CONNECTOR_BATCH_BYTES, SLOW_CALL,
    SLOW_CALLS, YIELD_EVERY,
};
pub use fixture::{Native, NativeFactory, NativeStage, Recorder, StageBody, TestElement};
pub(crate) use fixture::{host_output, host_read_onto};
pub(crate) use queue::{Made, Queued};
pub use stage::MAX_ROUTE_PORTS;
pub(crate) use stage::{CallError, Handled};

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, crate::config::bounds::saturating_nanos)
}
