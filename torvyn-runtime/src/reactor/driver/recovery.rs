//! Error policies: what the driver does when a call fails, and how a trapped stage is
//! restarted, within its flow's restart budget.
//!
//! # Restarts
//!
//! A trapped instance is never entered again. Unless its policy fails the flow, a fresh
//! one takes its place, as a process supervisor restarts a crashed child:
//!
//! 1. The restarts of each node are counted over a sliding period, the flow's
//!    `restart-period` (its [`RestartBudget`]).
//! 2. A restart that would make more than `max-restarts` within that period is not made:
//!    the node fails the flow, naming the budget and the last error.
//! 3. Otherwise the restart first waits: [`FIRST_RESTART_BACKOFF`] for the first within the
//!    period, doubled for each further one, at most [`MAX_RESTART_BACKOFF`]. A stop requested
//!    meanwhile cuts the wait short.
//! 4. The fresh instance is made and given `init`; if that fails, the flow fails.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Driver, Failure, FlowErrorKind, start_stage};
use crate::engine::ProcessError;
use crate::observability::{
    Call, ErrorEvent, EventKind, MAX_COMPONENT_TEXT, Outcome, RECENT_ERRORS, cut_short, printable,
};
use crate::reactor::acks::Deliveries;
use crate::reactor::stage::CallError;
use crate::topology::Fallback;
#[cfg(doc)]
use crate::topology::RestartBudget;

/// The wait before the first restart within a period; each further one doubles it.
const FIRST_RESTART_BACKOFF: Duration = Duration::from_millis(1);
/// The longest wait before a restart.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// What the driver does after an error, per the node's policy.
pub(super) enum Recovery {
    Retry,
    /// The element's source delivers it again after this wait (`reactor::acks`, step 8).
    Redeliver(Duration),
    Skip,
    DeadLetter(String),
}

/// What a component's `process-error` says; its text is the component's, so its control
/// characters are escaped, and it is cut short past [`MAX_COMPONENT_TEXT`] bytes.
pub(super) fn describe_process_error(error: &ProcessError) -> String {
    let cut = |why: &str| cut_short(why, MAX_COMPONENT_TEXT).into_owned();
    let described = match error {
        ProcessError::InvalidInput(why) => format!("invalid input: {}", cut(why)),
        ProcessError::Unavailable(why) => format!("unavailable: {}", cut(why)),
        ProcessError::Internal(why) => format!("internal error: {}", cut(why)),
        ProcessError::DeadlineExceeded => "deadline exceeded".into(),
        ProcessError::Fatal(why) => format!("fatal: {}", cut(why)),
    };
    printable(&described, false).into_owned()
}

/// What went wrong in a call. A trap's backtrace names the component's functions, as the
/// component itself does: their control characters are escaped.
pub(super) fn describe_call_error(error: &CallError) -> String {
    match error {
        CallError::Process(error) => describe_process_error(error),
        CallError::Trap(trap) => printable(&describe_trap(trap), true).into_owned(),
    }
}

/// How wasmtime's error ends when a call handed the host more in strings and lists than
/// its hostcall fuel, which each stage sets to the component's `memory` limit.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// A trap's causes on its first line, joined by `: ` (the limit it went past, the host's
/// refusal, or the wasm trap itself), then the guest's backtrace if it has one, where
/// wasmtime puts the backtrace first.
fn describe_trap(trap: &wasmtime::Error) -> String {
    let backtrace = trap.downcast_ref::<wasmtime::WasmBacktrace>();
    let backtrace = backtrace.map(ToString::to_string);
    let mut causes: Vec<String> = (trap.chain())
        .map(|cause| cause.to_string())
        .filter(|cause| Some(cause) != backtrace.as_ref())
        .collect();
    if causes
        .last()
        .is_some_and(|c| c.ends_with(HOSTCALL_FUEL_EXHAUSTED))
    {
        causes.push(
            "the strings and lists a component hands the host at once come to at most its \
             `memory` limit as the host holds them"
                .to_owned(),
        );
    }
    let causes = causes.join(": ");
    match backtrace {
        // The backtrace names the component's functions in its own words: cut short too.
        Some(backtrace) => format!(
            "{causes}\n{}",
            cut_short(backtrace.trim_end(), MAX_COMPONENT_TEXT)
        ),
        None => causes,
    }
}

/// The failure of node `n` in `call` (on element `sequence`, if any) with `error`.
fn failure(n: usize, call: Call, sequence: Option<u64>, error: CallError) -> Failure {
    let kind = match &error {
        CallError::Process(error) => FlowErrorKind::Process(describe_process_error(error)),
        CallError::Trap(_) => FlowErrorKind::Trap(describe_call_error(&error)),
    };
    Failure {
        node: n,
        call: Some(call),
        sequence,
        kind,
    }
}

impl Driver<'_> {
    /// The flow fails: node `n` failed in `call` (on element `sequence`, if any) with
    /// `error`, which is counted in its report.
    pub(super) fn fail(
        &mut self,
        n: usize,
        call: Call,
        sequence: Option<u64>,
        error: CallError,
    ) -> Failure {
        self.count_error(n, call, &error, sequence);
        failure(n, call, sequence, error)
    }

    /// Counts an error of node `n` in `call` in its report: by kind, among the flow's
    /// recent errors, and as the node's first error if it is. A trapped instance is never
    /// entered again: what it held is freed. Returns the error's description.
    pub(super) fn count_error(
        &mut self,
        n: usize,
        call: Call,
        error: &CallError,
        sequence: Option<u64>,
    ) -> String {
        if matches!(error, CallError::Trap(_)) {
            self.nodes[n].poisoned = true;
            self.reclaim(n);
        }
        let counts = &mut self.nodes[n].counts;
        counts.errors += 1;
        let description = describe_call_error(error);
        let kinds = &mut counts.errors_by_kind;
        *match error {
            CallError::Process(ProcessError::InvalidInput(_)) => &mut kinds.invalid_input,
            CallError::Process(ProcessError::Unavailable(_)) => &mut kinds.unavailable,
            CallError::Process(ProcessError::Internal(_)) => &mut kinds.internal,
            CallError::Process(ProcessError::DeadlineExceeded) => &mut kinds.deadline_exceeded,
            CallError::Process(ProcessError::Fatal(_)) => &mut kinds.fatal,
            CallError::Trap(_) => &mut kinds.trap,
        } += 1;
        if self.recent_errors.len() == RECENT_ERRORS {
            self.recent_errors.pop_front();
        }
        self.recent_errors.push_back(ErrorEvent {
            node: self.nodes[n].plan.name.clone(),
            sequence,
            error: description.clone(),
        });
        let counts = &mut self.nodes[n].counts;
        counts.first_error.get_or_insert_with(|| match sequence {
            Some(sequence) => format!("on element {sequence}: {description}"),
            None => format!("in `{}`: {description}", call.name()),
        });
        description
    }

    /// Applies node `n`'s policy to an error of `call` on its `attempt`-th try (0 for the
    /// first). An element whose source can deliver it again (`deliveries`) is retried by
    /// another delivery rather than in place, its deliveries counting as attempts.
    pub(super) async fn recover(
        &mut self,
        n: usize,
        call: Call,
        error: CallError,
        attempt: u32,
        sequence: Option<u64>,
        deliveries: Option<Deliveries>,
    ) -> Result<Recovery, Failure> {
        if error.is_stop() {
            // A source's pull cut short by a stop: the sources' streams end here, and the
            // trapped instance is not entered again.
            self.stop_sources(Outcome::Cancelled);
            self.nodes[n].poisoned = true;
            self.reclaim(n);
            return Ok(Recovery::Skip);
        }
        let policy = self.nodes[n].plan.on_error;
        let description = self.count_error(n, call, &error, sequence);
        // Only `unavailable` is worth another try; a trap never is.
        if let (Some(retry), CallError::Process(ProcessError::Unavailable(_))) =
            (policy.retry, &error)
            && let Some(deliveries) = deliveries
        {
            // The first delivery is the first attempt.
            let tried = deliveries.delivered.saturating_sub(1);
            if tried < retry.attempts && deliveries.delivered < deliveries.most {
                self.nodes[n].counts.retries += 1;
                let wait = retry.backoff.saturating_mul(1 << tried.min(16));
                return Ok(Recovery::Redeliver(
                    wait.min(crate::config::bounds::MAX_RETRY_WAIT),
                ));
            }
        } else if let (Some(retry), CallError::Process(ProcessError::Unavailable(_))) =
            (policy.retry, &error)
            && attempt < retry.attempts
        {
            self.nodes[n].counts.retries += 1;
            let wait = retry.backoff.saturating_mul(1 << attempt.min(16));
            tokio::time::sleep(wait.min(crate::config::bounds::MAX_RETRY_WAIT)).await;
            return Ok(Recovery::Retry);
        }
        // A connector that traps (a buffer it could not have) is not restarted: a fresh
        // one would number its acknowledgements anew while the old ones are in flight.
        let connector = self.stages[n].connector().is_some();
        let recovery = match policy.then {
            _ if connector && matches!(error, CallError::Trap(_)) => {
                return Err(failure(n, call, sequence, error));
            }
            Fallback::FailFlow => return Err(failure(n, call, sequence, error)),
            Fallback::Skip => Recovery::Skip,
            Fallback::DeadLetter => Recovery::DeadLetter(description.clone()),
        };
        if matches!(error, CallError::Trap(_)) {
            // The instance is unusable; a fresh one takes its place before anything else.
            self.restart(n, &description).await?;
            self.emit(|driver| EventKind::Restarted {
                node: driver.nodes[n].plan.name.clone(),
                restarts: driver.nodes[n].counts.restarts,
                error: description,
            });
        }
        Ok(recovery)
    }

    /// Replaces node `n`'s trapped instance, which failed with `error`, with a fresh one,
    /// `init` included, within the flow's restart budget (the steps in the module docs).
    async fn restart(&mut self, n: usize, error: &str) -> Result<(), Failure> {
        self.reclaim(n);
        let budget = self.spec.plan.restarts;
        let now = Instant::now();
        let recent = self.nodes[n].restarted.get_or_insert_with(VecDeque::new);
        while recent
            .front()
            .is_some_and(|&at| now.duration_since(at) > budget.period)
        {
            recent.pop_front();
        }
        if recent.len() >= budget.max as usize {
            return Err(Failure {
                node: n,
                call: None,
                sequence: None,
                kind: FlowErrorKind::RestartLimit {
                    max: budget.max,
                    period: budget.period,
                    error: error.to_owned(),
                },
            });
        }
        let backoff = FIRST_RESTART_BACKOFF.saturating_mul(1 << recent.len().min(20));
        tokio::select! {
            () = tokio::time::sleep(backoff.min(MAX_RESTART_BACKOFF)) => {}
            () = self.control.cancel.cancelled() => {}
        }
        let recent = self.nodes[n].restarted.get_or_insert_with(VecDeque::new);
        recent.push_back(Instant::now());
        let audit = self.audit.clone();
        let identity = self.identity.clone();
        // A restart's `init` runs to its end, since elements wait for the stage.
        let wake = self.wake.clone();
        match start_stage(self.engine, self.spec, n, identity, &audit, &wake, false).await {
            Ok(Some(stage)) => {
                self.nodes[n].poisoned = false;
                // What the trapped instance held is gone with it: an aggregator's
                // absorbed elements will never be part of an output.
                self.lose_absorbed(n);
                let replaced = std::mem::replace(&mut self.stages[n], stage);
                self.nodes[n].counts.earlier_calls += replaced.stats();
                self.nodes[n].counts.restarts += 1;
                Ok(())
            }
            // Not interruptible, so never `None`.
            Ok(None) => Err(Failure {
                node: n,
                call: Some(Call::Init),
                sequence: None,
                kind: FlowErrorKind::Init("stopped".into()),
            }),
            Err(kind) => Err(Failure {
                node: n,
                call: None,
                sequence: None,
                kind,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe_trap;

    #[test]
    fn a_trap_shows_its_causes_on_one_line_and_explains_hostcall_fuel() {
        let trap = wasmtime::Error::msg("the cause").context("what failed");
        assert_eq!(describe_trap(&trap), "what failed: the cause");
        let trap = wasmtime::Error::msg(
            "too much data is being copied between the host and the guest: fuel allocated \
             for hostcalls has been exhausted",
        );
        assert!(
            describe_trap(&trap).ends_with(
                "has been exhausted: the strings and lists a component hands the host at once \
                 come to at most its `memory` limit as the host holds them"
            ),
            "{}",
            describe_trap(&trap)
        );
    }
}
