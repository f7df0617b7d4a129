//! Sinks that wait run on their own task, so that a slow one holds back its own branch
//! only, and the overflow policy of its edge acts.
//!
//! 1. A built-in sink that writes to a pipe, a terminal or a socket runs apart from the
//!    start: its writes may block for as long as a reader pleases, so there is no first
//!    call to learn from. Any other sink played by a connector (a regular file) or a
//!    component runs inline, in the flow's task, until [`SLOW_CALLS`] calls in a row have
//!    each taken longer than [`SLOW_CALL`] (an `fsync`, a slow disk, a slow component; a
//!    component's calls are bounded by its time limit), and apart from then on. A call
//!    apart runs on one of tokio's blocking threads, not on a worker: a task the flow
//!    spawned would run next on the flow's own worker and, its long call yielding only to
//!    itself at each epoch tick, starve the flow. A detached sink keeps a buffer table of
//!    its own, with its stage's budget. The host's own stages (native code, test
//!    recorders) never wait, and stay inline.
//! 2. When the sink is ready and an element waits, the driver hands it what it would have
//!    called it with inline (one element, or a batch from one input edge) and goes on
//!    with the rest of the flow. Each payload is lent to the sink's table without a copy
//!    (`BufferTable::lend_away`); the flow keeps the elements, their acknowledgements and
//!    their spans.
//! 3. While the call is away the sink takes nothing more: its input edges fill, and their
//!    overflow policies act (`block` holds upstream back and pauses the sources,
//!    `drop-oldest` / `drop-newest` drop and count, `error` fails the flow), while every
//!    other node runs.
//! 4. The flow's set of calls away (a `JoinSet`) wakes the driver when one returns: each
//!    turn lands the calls that returned, and a flow with nothing else to do waits for
//!    one. The driver takes the stage back, counts the copies made in the sink's table
//!    among the flow's (and in the spans of the call), and goes on with each result as
//!    with an inline call's: error policies, restarts, dead letters, acknowledgements.
//! 5. However the flow ends, it waits for the calls away before the sinks' last calls, so
//!    nothing in flight is lost: a component's call is bounded by its time limit; a
//!    connector's write is not (a pipe nobody reads holds the flow, as it did inline).
//!
//! What still runs inline for a detached sink: its `complete` and `teardown`, a retry
//! (after its backoff), and the replay one element at a time of a batch call that trapped.

use std::time::Duration;

use tokio::task::{Id, JoinError};

use super::tracing::{Span, call_of};
use super::{Driver, Failure, FlowErrorKind, FlowSpec};
use crate::contracts::Role;
use crate::reactor::acks::NO_ACK;
use crate::reactor::fixture::Stage;
use crate::reactor::fixture::StageBody;
use crate::reactor::queue::Queued;
use crate::reactor::stage::{CallError, Handled};
use crate::resources::BufferTable;

/// A call longer than this makes a sink slow: it would hold every other node of the flow
/// for longer than the hand-over to a task costs (a few microseconds) twenty times over.
pub const SLOW_CALL: Duration = Duration::from_micros(100);
/// Calls in a row longer than [`SLOW_CALL`] after which a sink runs on its own task: more
/// than one, so that a first call that warms its instance up does not count.
pub const SLOW_CALLS: u8 = 3;

type CallResult<T> = Result<T, CallError>;

/// A call away that returned, or the task that ended without returning it.
pub(super) type Joined = Result<(Id, Landed), JoinError>;

/// Where a node's calls run.
pub(super) enum Placement {
    /// In the flow's task, always: a source, processor or the host's own sink.
    Inline,
    /// In the flow's task, watched: a sink whose `slow` latest calls in a row were slow.
    Watched { slow: u8 },
    /// On a task of its own.
    Detached(Box<Detached>),
}

/// A sink that runs on its own task.
pub(super) struct Detached {
    /// Its buffer table; with its call while one is away.
    table: Option<BufferTable>,
    /// Its call in progress.
    away: Option<Away>,
}

/// A call in progress on a blocking thread, in the driver's `calls`.
struct Away {
    task: Id,
    /// The elements it was handed, as the flow knows them, in order.
    elements: Vec<Queued>,
    spans: Vec<Span>,
    /// Whether they came from a dead-letter edge.
    dead_letter: bool,
}

/// What a call away gives back when it returns.
pub(super) struct Landed {
    stage: Stage,
    table: BufferTable,
    results: Results,
}

enum Results {
    /// The result of a call with one element.
    Single(CallResult<Handled>),
    /// The results of a batch call, or the trap that ended it.
    Batch(CallResult<Vec<CallResult<Handled>>>),
}

impl Placement {
    /// Where node `n` of `spec` starts, before its stage is (step 1).
    pub(super) fn start(spec: &FlowSpec, n: usize) -> Placement {
        if spec.plan.nodes[n].role != Role::Sink {
            return Placement::Inline;
        }
        match spec.stages[n].body {
            StageBody::Connector(_) | StageBody::Component(_) => Placement::Watched { slow: 0 },
            _ => Placement::Inline,
        }
    }
}

impl Detached {
    fn new(spec: &FlowSpec) -> Detached {
        let budgets = spec.stages.iter().map(|s| s.limits.budget).collect();
        Detached {
            table: Some(BufferTable::new(budgets)),
            away: None,
        }
    }
}

impl Driver<'_> {
    /// Once every stage started: each sink connector whose writes may block without
    /// bound runs apart from the start (step 1).
    pub(super) fn detach_blocking_sinks(&mut self) {
        for n in 0..self.nodes.len() {
            let blocks = self.stages[n].connector().is_some_and(|c| c.may_block());
            if blocks && matches!(self.nodes[n].placement, Placement::Watched { .. }) {
                self.nodes[n].placement = Placement::Detached(Box::new(Detached::new(self.spec)));
            }
        }
    }

    /// Whether node `n` runs on its own task.
    pub(super) fn detached(&self, n: usize) -> bool {
        matches!(self.nodes[n].placement, Placement::Detached(_))
    }

    /// Whether a call of node `n` is away.
    pub(super) fn is_away(&self, n: usize) -> bool {
        matches!(&self.nodes[n].placement, Placement::Detached(d) if d.away.is_some())
    }

    /// Node `n` returned from an inline call (before its result is settled, which may
    /// replace its instance): a watched sink runs on its own task after [`SLOW_CALLS`]
    /// slow calls in a row (step 1).
    pub(super) fn timed(&mut self, n: usize) {
        let Placement::Watched { slow } = &mut self.nodes[n].placement else {
            return;
        };
        *slow = match self.stages[n].last_call() > SLOW_CALL {
            true => *slow + 1,
            false => 0,
        };
        if *slow >= SLOW_CALLS {
            self.nodes[n].placement = Placement::Detached(Box::new(Detached::new(self.spec)));
        }
    }

    /// Hands detached sink `n` the first `count` elements of input edge `e`, on its own
    /// task (step 2).
    pub(super) fn send_away(&mut self, n: usize, e: usize, count: usize) {
        debug_assert!(count > 0, "a call away with no element");
        let mut elements = Vec::with_capacity(count);
        let spans = self.take_inputs(n, e, count, &mut elements);
        let Placement::Detached(detached) = &mut self.nodes[n].placement else {
            unreachable!("sent away to a sink that is not detached");
        };
        let mut table = detached.table.take().expect("no call of the sink is away");
        let lent = (elements.iter())
            .map(|element| Queued {
                sequence: element.sequence,
                timestamp_ns: element.timestamp_ns,
                content_type: element.content_type.clone(),
                buffer: table
                    .insert_lent(self.table.lend_away(element.buffer), &element.content_type),
                ack: NO_ACK,
                trace: None,
                attributes: element.attributes.clone(),
            })
            .collect();
        let stand_in = self.stages[n].stand_in();
        let stage = std::mem::replace(&mut self.stages[n], stand_in);
        let task = self.calls.spawn_blocking(call_away(stage, table, lent));
        detached.away = Some(Away {
            task: task.id(),
            elements,
            spans,
            dead_letter: self.edges[e].plan.dead_letter,
        });
    }

    /// Goes on with every call away that has returned (step 4).
    pub(super) async fn land_returned(&mut self) -> Result<(), Failure> {
        loop {
            let Some(joined) = self.calls.try_join_next_with_id() else {
                break;
            };
            self.land(joined, false).await?;
        }
        Ok(())
    }

    /// Waits for every call away and goes on with its results, after a failure: they go
    /// where their results send them, without calls or policies (step 5).
    pub(super) async fn land_all_after_failure(&mut self) {
        loop {
            let Some(joined) = self.calls.join_next_with_id().await else {
                break;
            };
            let _ = self.land(joined, true).await;
        }
    }

    /// Takes the stage of a call away that returned back and goes on with its results;
    /// only where they send the elements when the flow has `failed` already.
    pub(super) async fn land(&mut self, joined: Joined, failed: bool) -> Result<(), Failure> {
        let task = match &joined {
            Ok((task, _)) => *task,
            Err(error) => error.id(),
        };
        let away =
            self.nodes
                .iter_mut()
                .enumerate()
                .find_map(|(n, node)| match &mut node.placement {
                    Placement::Detached(d) if d.away.as_ref().is_some_and(|a| a.task == task) => {
                        d.away.take().map(|away| (n, away))
                    }
                    _ => None,
                });
        let Some((n, away)) = away else {
            return Ok(());
        };
        let Away {
            mut elements,
            mut spans,
            dead_letter,
            ..
        } = away;
        let landed = match joined {
            Ok((_, landed)) => landed,
            Err(error) => {
                // The call panicked, or the runtime is going away: the stage is lost.
                self.nodes[n].poisoned = true;
                for element in elements {
                    self.table.release(element.buffer);
                    self.nodes[n].counts.failed += 1;
                    self.accounting.failed += 1;
                }
                return Err(Failure {
                    node: n,
                    call: Some(call_of(self.nodes[n].plan.role)),
                    sequence: None,
                    kind: FlowErrorKind::Trap(format!("the sink's call ended: {error}")),
                });
            }
        };
        let Landed {
            stage,
            mut table,
            results,
        } = landed;
        // A span of the call counts the copies the sink made, not those the rest of the
        // flow made while it was away.
        let before = self.table.copies();
        for span in spans.iter_mut().flatten() {
            span.copies = before;
        }
        self.table.absorb_copies(&mut table);
        self.stages[n] = stage;
        if let Placement::Detached(detached) = &mut self.nodes[n].placement {
            detached.table = Some(table);
        }
        let results = match (failed, results) {
            (false, Results::Single(result)) => {
                let element = elements.pop().expect("a call of one element");
                let span = spans.into_iter().next().flatten();
                return self.settle(n, element, result, dead_letter, span).await;
            }
            (false, Results::Batch(Ok(results))) => {
                return (self.settle_batch(n, &mut elements, results, dead_letter, spans)).await;
            }
            (false, Results::Batch(Err(error))) => {
                return (self.replay_batch(n, &mut elements, error, dead_letter, spans)).await;
            }
            (true, Results::Single(result)) => vec![result],
            (true, Results::Batch(Ok(results))) => results,
            (true, Results::Batch(Err(error))) => {
                self.count_error(n, call_of(self.nodes[n].plan.role), &error, None);
                Vec::new()
            }
        };
        // As after a failure in a batch: no policy; the delivered are acknowledged, the
        // failed are not.
        let mut results = results.into_iter();
        for element in elements {
            match results.next() {
                Some(Ok(handled)) => {
                    let _ = self.dispatch(n, element, handled, dead_letter);
                    continue;
                }
                Some(Err(error)) => {
                    let call = call_of(self.nodes[n].plan.role);
                    self.count_error(n, call, &error, Some(element.sequence));
                }
                None => {}
            }
            self.table.release(element.buffer);
            self.nodes[n].counts.failed += 1;
            self.accounting.failed += 1;
        }
        Ok(())
    }

    /// A trapped or replaced instance of node `n` is gone: what it held is freed, in the
    /// flow's table and in its own.
    pub(super) fn reclaim(&mut self, n: usize) {
        self.table.reclaim(n);
        if let Placement::Detached(detached) = &mut self.nodes[n].placement
            && let Some(table) = &mut detached.table
        {
            table.reclaim(n);
        }
    }
}

/// The call of a sink's `stage` with `elements` (their buffers in `table`), to run on a
/// blocking thread (step 1).
fn call_away(
    mut stage: Stage,
    mut table: BufferTable,
    mut elements: Vec<Queued>,
) -> impl FnOnce() -> Landed + Send + 'static {
    let runtime = tokio::runtime::Handle::current();
    move || {
        let results = match &mut stage {
            Stage::Connector(connector) => {
                Results::Batch(Ok(connector.handle_batch(&mut table, &elements)))
            }
            _ if elements.len() == 1 => {
                Results::Single(runtime.block_on(stage.handle(&mut table, &mut elements[0])))
            }
            _ => Results::Batch(runtime.block_on(stage.handle_batch(&mut table, &mut elements))),
        };
        for element in &elements {
            table.release(element.buffer);
        }
        Landed {
            stage,
            table,
            results,
        }
    }
}
