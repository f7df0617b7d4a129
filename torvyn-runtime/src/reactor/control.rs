//! What the rest of the host may do to a running flow, and what it may read of it, without
//! a lock on the driver's path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::observability::FlowReport;
use tokio_util::sync::CancellationToken;

/// Shared between a flow's driver and its [`crate::FlowHandle`].
#[derive(Debug, Default)]
pub(crate) struct Control {
    paused: AtomicBool,
    resumed: Notify,
    pub(crate) cancel: CancellationToken,
    /// Elements that left the sources so far.
    pub(crate) emitted: AtomicU64,
    /// Elements the sinks accepted so far, dead letters apart.
    pub(crate) delivered: AtomicU64,
    /// The flow has ended and made its report.
    pub(crate) ended: AtomicBool,
    /// The flow's latest snapshot (its final report once it ended), when it publishes
    /// them. Locked once per publication and once per read, never per element.
    snapshot: Mutex<Option<Arc<FlowReport>>>,
    /// The calls the flow is inside of that have run past an epoch tick: while an inline
    /// call runs the flow publishes nothing, and a sink's call apart may be stuck while
    /// the flow goes on; this says where.
    pub(crate) call: Arc<CallWatch>,
}

/// The calls that have run past an epoch tick (1 ms), each set by its stage's epoch
/// callback and cleared when the call returns: what shows a flow stuck in a component. A
/// flow is inside one inline call at a time, and one call of each sink running apart.
/// Locked only at such a tick, when such a call returns, and when read.
#[derive(Debug, Default)]
pub(crate) struct CallWatch {
    /// `(node, since)`: the node's index and when its call began, in milliseconds since
    /// the Unix epoch.
    calls: Mutex<Vec<(usize, u64)>>,
}

impl CallWatch {
    fn calls(&self) -> std::sync::MutexGuard<'_, Vec<(usize, u64)>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn enter(&self, node: usize, since_unix_ms: u64) {
        let mut calls = self.calls();
        calls.retain(|&(n, _)| n != node);
        calls.push((node, since_unix_ms));
    }

    pub(crate) fn leave(&self, node: usize) {
        self.calls().retain(|&(n, _)| n != node);
    }

    /// The node inside the longest of the long calls, and since when (ms since the Unix
    /// epoch).
    pub(crate) fn current(&self) -> Option<(usize, u64)> {
        self.calls().iter().copied().min_by_key(|&(_, since)| since)
    }
}

impl Control {
    pub(crate) fn new(cancel: CancellationToken) -> Self {
        Self {
            cancel,
            ..Self::default()
        }
    }

    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    pub(crate) fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.resumed.notify_waiters();
    }

    pub(crate) fn publish(&self, report: FlowReport) {
        let report = Some(Arc::new(report));
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = report;
    }

    pub(crate) fn snapshot(&self) -> Option<Arc<FlowReport>> {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Returns once the flow is resumed or cancelled (a cancelled flow drains even when
    /// paused, so that stopping it never hangs).
    pub(crate) async fn wait_while_paused(&self) {
        loop {
            let resumed = self.resumed.notified();
            if !self.is_paused() || self.cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                () = resumed => {}
                () = self.cancel.cancelled() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CallWatch;

    #[test]
    fn a_long_call_stays_in_the_watch_while_another_comes_and_goes() {
        let watch = CallWatch::default();
        assert_eq!(watch.current(), None);
        // A sink's call apart, then an inline call that runs past a tick and returns.
        watch.enter(2, 1_000);
        watch.enter(0, 1_500);
        assert_eq!(watch.current(), Some((2, 1_000)));
        watch.leave(0);
        assert_eq!(watch.current(), Some((2, 1_000)));
        watch.leave(2);
        assert_eq!(watch.current(), None);
    }
}
