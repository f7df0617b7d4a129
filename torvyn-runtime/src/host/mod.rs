//! The `Host`: one engine shared by every flow, each flow run as its own tokio task and
//! controlled through its [`FlowHandle`].

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::{
    Access, CapabilitiesDecl, DirDecl, FlowDecl, LimitsDecl, ManifestError, ProjectManifest,
};
use crate::engine::{Engine, EngineError, LoadedComponent};
use crate::observability::FlowReport;
use crate::reactor::{self, Control, FlowError, FlowSpec, RunOptions, StageSpec};
use crate::resources::StageBudget;
use crate::security::{DirGrant, Grants, Limits};
use crate::topology::{FlowPlan, plan_flow};

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

    /// Starts a flow in a tokio task of its own; it runs until its sources end, it is
    /// stopped or it fails. Must be called within a tokio runtime.
    pub fn start(&self, spec: FlowSpec, options: RunOptions) -> FlowHandle {
        let engine = self.engine.wasmtime().clone();
        let name = spec.plan.flow.clone();
        let control = Arc::new(Control::new(options.cancel.child_token()));
        let shared = control.clone();
        let task =
            tokio::spawn(async move { reactor::run_flow(&engine, spec, options, &shared).await });
        FlowHandle {
            name,
            control,
            task,
        }
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
    /// Plans flow `flow` of `project` (see [`plan_flow`]) with the components in `loaded`,
    /// by component name, which must hold every node of the flow; each stage gets its
    /// component's `config` from the manifest.
    pub fn from_manifest(
        project: &ProjectManifest,
        flow: &str,
        decl: &FlowDecl,
        loaded: &BTreeMap<String, LoadedComponent>,
    ) -> Result<Self, ManifestError> {
        let plan = plan_flow(project, flow, decl, |name| loaded[name].role())?;
        let components = &project.manifest().components;
        let stages = (plan.nodes.iter())
            .map(|node| {
                let component = &components[&node.name];
                Ok(StageSpec {
                    name: node.name.clone(),
                    component: loaded[&node.name].clone(),
                    config: component.config.clone(),
                    limits: limits(project, &component.limits)?,
                    grants: Arc::new(grants(project, &component.capabilities)?),
                })
            })
            .collect::<Result<_, ManifestError>>()?;
        Ok(Self::new(plan, stages))
    }

    /// A flow of `plan`'s shape, with `stages` one per node in the plan's order, and the
    /// default sink pause.
    pub fn new(plan: FlowPlan, stages: Vec<StageSpec>) -> Self {
        Self {
            plan,
            stages,
            sink_pause: DEFAULT_SINK_PAUSE,
        }
    }
}

/// A component's `[limits]`, each unset one at its default.
fn limits(project: &ProjectManifest, decl: &LimitsDecl) -> Result<Limits, ManifestError> {
    let default = Limits::default();
    let invocation_time = match &decl.invocation_time {
        Some(time) => Some(project.duration(time.get_ref(), time.span())?),
        None => default.invocation_time,
    };
    Ok(Limits {
        memory: decl.memory.map_or(default.memory, |m| m.as_u64()),
        table_elements: decl.table_elements.unwrap_or(default.table_elements),
        instances: decl.instances.unwrap_or(default.instances),
        invocation_time,
        budget: StageBudget {
            max_bytes: (decl.buffer_memory).map_or(default.budget.max_bytes, |b| b.as_u64()),
            max_handles: decl.buffer_handles.unwrap_or(default.budget.max_handles),
        },
    })
}

/// A component's `[capabilities]`: each directory must exist and each address resolve.
fn grants(project: &ProjectManifest, decl: &CapabilitiesDecl) -> Result<Grants, ManifestError> {
    let mut grants = Grants {
        stdout: decl.stdout.unwrap_or(true),
        stderr: decl.stderr.unwrap_or(true),
        env: decl.env.iter().map(|name| name.get_ref().clone()).collect(),
        ..Grants::default()
    };
    for dir in &decl.filesystem {
        let DirDecl {
            path,
            access,
            guest,
        } = dir.get_ref();
        let host = project.dir().join(path);
        if !host.is_dir() {
            return Err(project.error_at(
                dir.span(),
                format!("granted directory `{}` does not exist", host.display()),
                Some("create it, or fix `path` (relative to Torvyn.toml)".into()),
            ));
        }
        let name = Path::new(path)
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        grants.dirs.push(DirGrant {
            host,
            guest: guest.clone().unwrap_or_else(|| format!("/{name}")),
            write: *access == Access::ReadWrite,
        });
    }
    for address in &decl.network {
        let resolved = address.get_ref().to_socket_addrs().map_err(|error| {
            project.error_at(
                address.span(),
                format!("cannot resolve `{}`: {error}", address.get_ref()),
                Some("write `host:port`, e.g. `127.0.0.1:8080` or `example.com:443`".into()),
            )
        })?;
        grants.network.extend(resolved);
    }
    Ok(grants)
}
