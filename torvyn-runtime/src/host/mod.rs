//! The `Host`: one engine shared by every flow, each flow run as its own tokio task.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::{Engine, EngineError, LoadedComponent};
use crate::observability::FlowReport;
use crate::reactor::{self, FlowError, FlowSpec, RunOptions, StageSpec};
use crate::resources::StageBudget;

/// How long the host holds off a sink that answered `pause`, unless a flow says otherwise.
pub const DEFAULT_SINK_PAUSE: Duration = Duration::from_millis(1);

/// Settings of a [`Host`].
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Where compiled components are cached; no cache when `None`.
    pub cache_dir: Option<PathBuf>,
}

/// Runs flows of components.
pub struct Host {
    engine: Engine,
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
            engine: Engine::new(options.cache_dir)?,
        })
    }

    /// Loads the component at `path`: checks it against the contract, compiles it (or
    /// takes it from the cache) and links it.
    pub fn load(&self, path: &Path) -> Result<LoadedComponent, EngineError> {
        self.engine.load(path)
    }

    /// Runs a flow to its end in a task of its own and reports what it counted.
    pub async fn run(&self, spec: FlowSpec, options: RunOptions) -> Result<FlowReport, FlowError> {
        let engine = self.engine.wasmtime().clone();
        let task = tokio::spawn(async move { reactor::run_flow(&engine, spec, options).await });
        match task.await {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}

impl FlowSpec {
    /// A flow of `stages` (source first) joined by queues of `capacities`, with the
    /// default sink pause and buffer budget.
    pub fn new(name: impl Into<String>, stages: Vec<StageSpec>, capacities: Vec<usize>) -> Self {
        Self {
            name: name.into(),
            stages,
            capacities,
            sink_pause: DEFAULT_SINK_PAUSE,
            budget: StageBudget::default(),
        }
    }
}
