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
    /// The call the flow is inside of, once it has run past an epoch tick: while a call
    /// runs the flow publishes nothing, and this says where it is.
    pub(crate) call: Arc<CallWatch>,
}

/// A call that has run past an epoch tick (1 ms), set by the stage's epoch callback and
/// cleared when the call returns: what shows a flow stuck in a component.
#[derive(Debug, Default)]
pub(crate) struct CallWatch {
    /// The node's index plus one; 0 when no long call is in progress.
    node: AtomicU64,
    /// When the call began, in milliseconds since the Unix epoch.
    since_unix_ms: AtomicU64,
}

impl CallWatch {
    pub(crate) fn enter(&self, node: usize, since_unix_ms: u64) {
        self.since_unix_ms.store(since_unix_ms, Ordering::Relaxed);
        self.node.store(node as u64 + 1, Ordering::Release);
    }

    pub(crate) fn leave(&self) {
        self.node.store(0, Ordering::Release);
    }

    /// The node inside a long call, and since when (ms since the Unix epoch).
    pub(crate) fn current(&self) -> Option<(usize, u64)> {
        match self.node.load(Ordering::Acquire) {
            0 => None,
            node => Some((
                node as usize - 1,
                self.since_unix_ms.load(Ordering::Relaxed),
            )),
        }
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
