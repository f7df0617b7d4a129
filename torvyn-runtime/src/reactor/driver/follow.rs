//! Which node works next, and following an element down the flow within one turn.
//!
//! A turn runs the node furthest downstream (in topological order) that can work: take an
//! element waiting on an input, or wind down once its inputs have ended. Once a node has
//! made an inline call, only its successors can have become able to work among the nodes
//! after it, since the call changed nothing but its own edges. So the next turn's scan
//! would pick the furthest downstream of its successors that can work, if one can: the
//! turn goes on with it at once, and an element from a source reaches its sinks in one
//! turn instead of one turn per stage. The calls and their order are the same as with a
//! scan per call: a turn follows no further while a sink's call is away, since its return
//! is landed at the start of a turn, and the checks between turns (a stop, the element
//! limit, a pause, a yield) concern the sources, which a turn does not follow into.

use super::{Driver, Failure};
use crate::contracts::Role;

/// What a node can do now.
pub(super) enum Work {
    /// Take the element(s) waiting on this input edge.
    Take(usize),
    /// Wind down: its inputs have all ended.
    WindDown,
}

impl Driver<'_> {
    /// Whether node `n` may make a call now: every `block` edge out of it has room and,
    /// for a sink, no call of its is away and it did not ask to pause.
    fn ready(&mut self, n: usize) -> bool {
        match self.nodes[n].plan.role {
            // A sink's only edge out is its dead-letter edge.
            Role::Sink => !self.is_away(n) && self.room_downstream(n) && self.sink_ready(n),
            _ => self.room_downstream(n),
        }
    }

    /// What node `n`, not a source, can do now, if anything. A node held back by a full
    /// edge with elements waiting starts that edge's time blocked, when observed.
    pub(super) fn work(&mut self, n: usize) -> Option<Work> {
        let node = &self.nodes[n];
        if node.finished || node.plan.role == Role::Source {
            return None;
        }
        let role = node.plan.role;
        if !self.ready(n) {
            if self.observed && role != Role::Sink && self.has_input(n) {
                self.held_back(n);
            }
            return None;
        }
        if let Some(e) = self.next_input(n) {
            return Some(Work::Take(e));
        }
        self.inputs_ended(n).then_some(Work::WindDown)
    }

    /// Does `work` at node `n`. Returns whether the call was made inline, so that what it
    /// sent on may be followed (a call sent away returns later).
    pub(super) async fn run(&mut self, n: usize, work: Work) -> Result<bool, Failure> {
        let e = match work {
            Work::Take(e) => e,
            Work::WindDown => {
                self.wind_down(n).await?;
                return Ok(false);
            }
        };
        let batch = match self.stages[n].batched() {
            true => self.batch_len(n, e),
            false => 1,
        };
        if self.detached(n) {
            self.send_away(n, e, batch);
            return Ok(false);
        }
        if batch > 1 {
            self.step_batch(n, e, batch).await?;
        } else {
            self.step(n, e).await?;
        }
        Ok(true)
    }

    /// Node `n` has just made an inline call: runs the furthest downstream of its
    /// successors that can work, then that one's, and so on while one can and no call is
    /// away. Returns how many calls it made.
    pub(super) async fn follow(&mut self, mut n: usize) -> Result<u32, Failure> {
        let mut calls = 0;
        'follow: loop {
            if !self.calls.is_empty() {
                return Ok(calls);
            }
            for k in 0..self.nodes[n].downstream.len() {
                let m = self.nodes[n].downstream[k];
                let Some(work) = self.work(m) else {
                    continue;
                };
                calls += 1;
                if !self.run(m, work).await? {
                    return Ok(calls);
                }
                n = m;
                continue 'follow;
            }
            return Ok(calls);
        }
    }
}
