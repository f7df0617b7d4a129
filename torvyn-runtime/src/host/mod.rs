//! The `Host`: one engine shared by every flow, each flow run as its own tokio task and
//! controlled through its [`FlowHandle`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineError, LoadedComponent};
use crate::observability::{FlowReport, OtlpError, OtlpExporter};
use crate::reactor::{self, Control, FlowError, FlowSpec, RunOptions, StageSpec};

mod api;
mod connectors;
mod link;

use crate::topology::FlowPlan;
pub use connectors::connector_problems;
pub use link::{LinkError, link, stage};

/// How long the host holds off a sink that answered `pause`, unless a flow says otherwise.
pub const DEFAULT_SINK_PAUSE: Duration = Duration::from_millis(1);

/// Settings of a [`Host`].
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where compiled components are cached; no cache when `None`.
    pub cache_dir: Option<PathBuf>,
    /// Whether the engine meters fuel, so that components can have a `fuel` limit per
    /// call. Metering costs every component a little, so it is off unless asked for.
    pub fuel: bool,
    /// Whether long calls are interrupted every [`EPOCH_TICK`](crate::EPOCH_TICK): what
    /// enforces invocation time limits and keeps one flow from starving the others on its
    /// thread. On by default; off only to measure what it costs.
    pub epoch_interruption: bool,
    /// Address space reserved for each component's linear memory. `None` keeps wasmtime's
    /// 4 GiB, which lets compiled code skip bounds checks but caps a host at roughly 30 000
    /// instances (128 TiB of address space); a smaller reservation (the memory limit, say)
    /// lets a host hold many more idle flows, for explicit bounds checks on every access.
    pub memory_reservation: Option<u64>,
    /// Slots for this many component instances, set up once (wasmtime's pooling
    /// allocator): instantiating then reuses linear memories, tables and stacks instead of
    /// mapping them anew, which makes starting a flow several times faster. Each node of a
    /// running flow takes a slot; an instance beyond the last slot fails to start. A slot
    /// given back keeps up to 2 MiB of its linear memory and 64 KiB of each table
    /// resident, for the next instance. A slot's sizes are fixed when the host starts,
    /// whatever a component's limits allow beyond them: at most 32 core instances, 4
    /// linear memories and 32 tables per component (one memory and 4 tables per core
    /// module), tables of at most 100 000 elements (`table-elements`' default), and with a
    /// `memory_reservation` memories of at most that many bytes; a component past them
    /// fails to start, and a table or memory that would grow past them does not grow.
    /// `None` maps each instance on demand.
    pub instance_pool: Option<u32>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            fuel: false,
            epoch_interruption: true,
            memory_reservation: None,
            instance_pool: None,
        }
    }
}

/// Runs flows of components.
pub struct Host {
    engine: Engine,
    /// Every flow started, for the HTTP endpoints.
    flows: Arc<api::Flows>,
    /// Stops the HTTP endpoints when the host goes.
    stop: CancellationToken,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Host {
    /// A host with its engine configured and its imports linked.
    pub fn new(options: HostOptions) -> Result<Self, EngineError> {
        Ok(Self {
            engine: Engine::new(&options)?,
            flows: Arc::default(),
            stop: CancellationToken::new(),
        })
    }

    /// Loads the component at `path`: checks it against the contract, compiles it (or
    /// takes it from the cache) and links it.
    pub fn load(&self, path: &Path) -> Result<LoadedComponent, EngineError> {
        self.engine.load(path, |_| {})
    }

    /// Like [`Host::load`], calling `compiling` with the component's size in bytes just
    /// before it is compiled to machine code, which happens when the host has no compile
    /// cache or the cache does not hold these bytes yet. A large component (a Python or
    /// JavaScript guest of 12 to 20 MB) takes seconds to compile, and milliseconds to load
    /// from the cache afterwards: a caller can say so while the user waits.
    pub fn load_compiling(
        &self,
        path: &Path,
        compiling: impl FnOnce(u64),
    ) -> Result<LoadedComponent, EngineError> {
        self.engine.load(path, compiling)
    }

    /// Starts a flow in a tokio task of its own; it runs until its sources end, it is
    /// stopped or it fails. Must be called within a tokio runtime.
    pub fn start(&self, spec: FlowSpec, options: RunOptions) -> FlowHandle {
        let engine = self.engine.wasmtime().clone();
        let name = spec.plan.flow.clone();
        let control = Arc::new(Control::new(options.cancel.child_token()));
        let shared = control.clone();
        self.flows.add(name.clone(), control.clone());
        let task =
            tokio::spawn(async move { reactor::run_flow(&engine, spec, options, &shared).await });
        FlowHandle {
            name,
            control,
            task,
        }
    }

    /// Serves HTTP on `addr` (port 0 picks a free one) until the host is dropped: Prometheus
    /// `/metrics` and the inspection API (`/flows`, `/flows/{name}` and its `pause`,
    /// `resume` and `cancel`) for every flow this host starts. Flows publish what these
    /// serve at [`ObservabilityLevel::Production`](crate::ObservabilityLevel). Returns the
    /// address bound. Must be called within a tokio runtime.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let (listener, bound) = api::bind(addr).await?;
        tokio::spawn(api::serve(listener, self.flows.clone(), self.stop.clone()));
        Ok(bound)
    }

    /// Serves the same as [`Host::serve`] on a Unix domain socket at `path`, created with
    /// mode 0600 so that only its owner may connect: the inspection API's `pause`,
    /// `resume` and `cancel` are then for no one else. A stale socket there (no host
    /// answering) is replaced; a socket a host answers on, or any other file, is an error.
    /// Must be called within a tokio runtime.
    #[cfg(unix)]
    pub async fn serve_unix(&self, path: &Path) -> std::io::Result<()> {
        let listener = api::bind_unix(path).await?;
        tokio::spawn(api::serve(listener, self.flows.clone(), self.stop.clone()));
        Ok(())
    }

    /// Exports to the OpenTelemetry collector at `endpoint` (OTLP over gRPC, e.g.
    /// `http://127.0.0.1:4317`): the metrics of every flow this host starts, and the spans
    /// of the flows given [`OtlpExporter::spans`] in their [`RunOptions::spans`]. Shut it
    /// down once the flows have ended, to send what is left. Must be called within a tokio
    /// runtime.
    pub fn export_otlp(&self, endpoint: &str) -> Result<OtlpExporter, OtlpError> {
        let flows = self.flows.clone();
        OtlpExporter::start(endpoint, Arc::new(move || flows.snapshots()))
    }

    /// Runs a flow to its end and reports what it counted.
    pub async fn run(&self, spec: FlowSpec, options: RunOptions) -> Result<FlowReport, FlowError> {
        self.start(spec, options).join().await
    }
}

/// A running flow.
#[derive(Debug)]
pub struct FlowHandle {
    name: String,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<Result<FlowReport, FlowError>>,
}

/// How far a running flow has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Elements that left its sources.
    pub emitted: u64,
    /// Elements its sinks accepted, dead letters apart.
    pub delivered: u64,
}

impl FlowHandle {
    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the flow between two elements until [`FlowHandle::resume`].
    pub fn pause(&self) {
        self.control.pause();
    }

    /// Lets a paused flow go on.
    pub fn resume(&self) {
        self.control.resume();
    }

    /// Stops the sources; what is in flight is delivered, then the flow ends with the
    /// outcome `cancelled`.
    pub fn cancel(&self) {
        self.control.cancel.cancel();
    }

    /// Counts so far, read without stopping the flow.
    pub fn progress(&self) -> Progress {
        Progress {
            emitted: self.control.emitted.load(Ordering::Relaxed),
            delivered: self.control.delivered.load(Ordering::Relaxed),
        }
    }

    /// Whether the flow has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the flow's end and its report.
    pub async fn join(self) -> Result<FlowReport, FlowError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}

impl FlowSpec {
    /// A flow of `plan`'s shape, with `stages` one per node in the plan's order, and the
    /// plan's sink pause (by default [`DEFAULT_SINK_PAUSE`]).
    pub fn new(plan: FlowPlan, stages: Vec<StageSpec>) -> Self {
        Self {
            sink_pause: plan.sink_pause.unwrap_or(DEFAULT_SINK_PAUSE),
            plan,
            stages,
        }
    }
}
