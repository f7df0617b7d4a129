//! Flow drivers: each flow runs as one tokio task that moves elements from its source,
//! through bounded queues, to its sink.
//!
//! # Scheduling and backpressure
//!
//! The driver loops over these steps until the stream has ended and every queue is empty:
//!
//! 1. Stop the source (treat its stream as ended) when the run is cancelled, the element
//!    limit is reached or the time limit has passed.
//! 2. Run the most downstream stage that has an input element and room in its output
//!    queue (the sink needs no room, but is skipped while it asked to pause). Working from
//!    the sink backwards keeps queues short and latency low.
//! 3. Otherwise pull the source, if its queue has room and it is not paused. The host
//!    stamps the element with the next sequence number and the current time.
//! 4. When the source's queue fills, call `notify-backpressure(pause)` on the source and
//!    stop pulling; when it drains to half its capacity, call `notify-backpressure(ready)`
//!    and pull again. A full queue anywhere downstream stops the stage feeding it, so a
//!    slow stage fills the queues upstream of it one after the other, up to the source.
//! 5. When the sink answers `pause`, push nothing to it for the flow's sink pause time;
//!    meanwhile upstream stages run until their queues are full.
//! 6. After 32 elements or 100 µs, yield to tokio so flows sharing a thread progress.
//! 7. At the end, call the sink's `complete`, then every stage's `teardown`, source first.
//!
//! A trap or a `process-error` ends the flow with an error naming the flow, the stage and
//! the sequence number of the element. Every stage that started still gets its `teardown`,
//! except one that trapped: a trapped instance must not be entered again.

mod driver;
mod queue;
mod stage;

pub(crate) use driver::run_flow;
pub use driver::{FlowError, FlowErrorKind, FlowSpec, RunOptions, StageSpec};
