//! How a flow ends, whether it completed or failed: every stage that started gets its
//! last calls, whatever another stage did.
//!
//! 1. A flow that ends well has already wound every node down in the loop: each sink got
//!    `complete` once its inputs ended, each aggregator `flush`.
//! 2. A flow that fails stops where it is. Then each sink that has not had `complete` gets
//!    it, so that what it buffered is written, and each aggregator that has not flushed
//!    gets `flush`; its outputs have nowhere to go and are counted abandoned. A stage that
//!    trapped is never entered again and gets neither.
//! 3. Every started stage that did not trap gets `teardown`, in flow order.
//! 4. The flow's error is the first failure. Errors in the calls of steps 2 and 3 are
//!    counted in their node's report (with the call named); one in step 3 fails a flow
//!    that had not failed.

use super::recovery::describe_call_error;
use super::{Driver, Failure, FlowErrorKind};
use crate::contracts::Role;
use crate::engine::ProcessError;
use crate::observability::Call;
use crate::reactor::CallError;

impl Driver<'_> {
    /// Step 2: the last calls of the sinks and aggregators a failure stopped.
    pub(super) async fn wind_down_after_failure(&mut self) {
        for i in 0..self.spec.plan.order.len() {
            let n = self.spec.plan.order[i];
            let node = &self.nodes[n];
            if node.poisoned || n >= self.stages.len() {
                continue;
            }
            match node.plan.role {
                Role::Sink if !node.finished => {
                    self.nodes[n].finished = true;
                    if let Err(error) = self.stages[n].complete(&mut self.table).await {
                        self.count_error(n, Call::Complete, &error, None);
                    }
                }
                Role::Aggregator if node.flushed.is_none() => {
                    match self.stages[n].flush(&mut self.table).await {
                        Ok(outputs) => {
                            let made = outputs.len() as u64;
                            for output in outputs {
                                self.table.release(output.buffer);
                            }
                            self.accounting.produced += made;
                            self.accounting.abandoned += made;
                        }
                        Err(error) => {
                            self.count_error(n, Call::Flush, &error, None);
                        }
                    }
                    self.nodes[n].flushed = Some(Default::default());
                }
                _ => {}
            }
        }
    }

    /// Step 3: `teardown` of every started stage that did not trap; the first error, as
    /// the flow's failure.
    pub(super) async fn teardown(&mut self) -> Result<(), Failure> {
        self.report_connections();
        let mut first_failure = None;
        for i in 0..self.spec.plan.order.len() {
            let n = self.spec.plan.order[i];
            if n >= self.stages.len() {
                continue;
            }
            // A connector is closed whatever happened (a file source stores its
            // checkpoints); a trapped component is never entered again.
            if self.nodes[n].poisoned && self.stages[n].connector().is_none() {
                continue;
            }
            if let Err(error) = self.stages[n].teardown(&mut self.table).await {
                self.count_error(n, Call::Teardown, &error, None);
                // A connector's close failing is its own words, not a trap.
                let kind = match (self.stages[n].connector(), &error) {
                    (Some(_), CallError::Process(ProcessError::Internal(why))) => {
                        FlowErrorKind::Connector(why.clone())
                    }
                    _ => FlowErrorKind::Trap(describe_call_error(&error)),
                };
                first_failure.get_or_insert(Failure {
                    node: n,
                    call: Some(Call::Teardown),
                    sequence: None,
                    kind,
                });
            }
        }
        first_failure.map_or(Ok(()), Err)
    }
}
