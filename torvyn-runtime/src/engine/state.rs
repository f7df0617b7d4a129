//! What each component's store holds: its stage index, the flow's buffer table while a
//! call is in progress, and its WASI context.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::attributes::CallAttributes;
use crate::observability::{CallStats, ComponentMetrics, SpanId, TraceId};
use crate::reactor::CallWatch;
use crate::resources::BufferTable;
use crate::security::{AuditLog, DeniedRoot, Grants, Limiter};

/// Names a flow for `flow-context`.
#[derive(Debug)]
pub(crate) struct FlowIdentity {
    pub(crate) flow_id: String,
    /// Whether the flow's stages count the calls they make into the host (through a call
    /// hook, which costs every crossing a little).
    pub(crate) count_host_calls: bool,
    /// Whether the flow's stages keep a histogram of how long their calls take.
    pub(crate) time_calls: bool,
    /// Where a stage says it is inside a long call, when the flow is observed.
    pub(crate) watch: Option<Arc<CallWatch>>,
    /// Cancelled when the flow is asked to stop: a call that carries no element, and so
    /// loses nothing when cut short, then ends at the next epoch tick.
    pub(crate) stop: tokio_util::sync::CancellationToken,
    /// The metrics each node's component keeps, by node: kept across restarts.
    pub(crate) metrics: Vec<ComponentMetrics>,
}

/// The data of one component's store.
///
/// The flow's [`BufferTable`] is shared by every stage, but only one stage runs at a time,
/// so the driver moves the table into the store of the stage it is about to call and takes
/// it back afterwards: no lock and no reference counting on the hot path.
pub(crate) struct StageState {
    pub(crate) stage: usize,
    pub(crate) buffers: BufferTable,
    pub(crate) flow: Arc<FlowIdentity>,
    /// How long each call has: `flow-context.deadline-ns` is the call's start plus this
    /// (0 for none), worked out only when a component asks.
    pub(crate) deadline: Option<Duration>,
    /// When the current call (or instantiation) began, and how long it may run.
    pub(crate) call_started: Instant,
    pub(crate) time_limit: Option<Duration>,
    /// The call in progress carries no element (`init`, a source's `pull`): a stop
    /// requested meanwhile cuts it short.
    pub(crate) interruptible: bool,
    pub(crate) limiter: Limiter,
    pub(crate) grants: Arc<Grants>,
    /// The node's name and the flow's audit log, for refused uses of capabilities.
    pub(crate) node: String,
    pub(crate) audit: AuditLog,
    /// The empty folder preopened as `/`.
    pub(crate) denied_root: Arc<DeniedRoot>,
    /// Its WASI context: made at instantiation when it is granted directories
    /// ([`Grants::wasi_ctx_at_start`]), else at its first call into WASI
    /// ([`Grants::wasi_ctx_on_first_use`]).
    pub(crate) wasi: Option<WasiCtx>,
    pub(crate) resources: ResourceTable,
    /// The calls into this stage and out of it.
    pub(crate) stats: CallStats,
    /// How long the latest call took.
    pub(crate) last_call: Duration,
    /// The trace and span of the call in progress, when its element is traced: what
    /// `flow-context.trace-id` and `span-id` answer.
    pub(crate) trace: Option<(TraceId, SpanId)>,
    /// The call in progress has run past an epoch tick and is in the flow's watch.
    pub(crate) watched: bool,
    /// The attributes of the elements of the call in progress.
    pub(crate) attributes: CallAttributes,
}

impl StageState {
    /// The call in progress has run past an epoch tick: the flow's watch shows it.
    pub(crate) fn watch(&mut self) {
        if let (false, Some(watch)) = (self.watched, &self.flow.watch) {
            let ran = u64::try_from(self.call_started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let now = crate::reactor::now_ns() / 1_000_000;
            watch.enter(self.stage, now.saturating_sub(ran));
            self.watched = true;
        }
    }

    /// The call returned: if the watch showed it, it no longer does.
    pub(crate) fn unwatch(&mut self) {
        if self.watched {
            if let Some(watch) = &self.flow.watch {
                watch.leave(self.stage);
            }
            self.watched = false;
        }
    }
}

impl WasiView for StageState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let Self {
            wasi,
            grants,
            node,
            audit,
            denied_root,
            resources,
            ..
        } = self;
        WasiCtxView {
            ctx: wasi.get_or_insert_with(|| grants.wasi_ctx_on_first_use(node, audit, denied_root)),
            table: resources,
        }
    }
}
