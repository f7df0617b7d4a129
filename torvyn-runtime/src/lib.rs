//! Torvyn's host runtime: runs streaming flows of WebAssembly components.
//!
//! A [`Host`] loads components (checking them against the `torvyn:streaming@0.1.0`
//! contract, compiling them once and caching the result), and runs each flow as a tokio
//! task that moves elements from a source through bounded queues to a sink. The host owns
//! every payload buffer and counts every copy. The runtime never prints: it returns
//! reports and typed errors, and the embedding program decides what to show.
//!
//! ```no_run
//! # async fn demo() -> miette::Result<()> {
//! use torvyn_runtime::{FlowSpec, Host, HostOptions, RunOptions, StageSpec};
//!
//! let host = Host::new(HostOptions::default())?;
//! let stage = |name: &str, path: &str| -> miette::Result<StageSpec> {
//!     Ok(StageSpec {
//!         name: name.into(),
//!         component: host.load(path.as_ref())?,
//!         config: String::new(),
//!     })
//! };
//! let flow = FlowSpec::new("main", vec![stage("src", "source.wasm")?, stage("out", "sink.wasm")?], vec![64]);
//! let report = host.run(flow, RunOptions::default()).await?;
//! println!("{} elements delivered", report.delivered);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod config;
mod contracts;
mod engine;
mod host;
mod observability;
mod reactor;
mod resources;
mod security;
mod topology;

pub use config::{
    ComponentDecl, ComponentSource, DEFAULT_QUEUE_CAPACITY, EdgeDecl, FlowDecl, Located,
    MANIFEST_FILE, Manifest, ManifestError, Project, ProjectManifest, find_manifest,
};
pub use contracts::{CONTRACT_VERSION, ContractError, Role, decode_exports};
pub use engine::{EngineError, LoadedComponent};
pub use host::{DEFAULT_SINK_PAUSE, Host, HostOptions};
pub use observability::{BufferReport, EdgeReport, FlowReport, Outcome, StageReport};
pub use reactor::{FlowError, FlowErrorKind, FlowSpec, RunOptions, StageSpec};
pub use resources::{CopyStats, PoolStats, StageBudget, TIERS};
pub use security::Grants;
pub use topology::{ChainPlan, NodePlan, plan_chain};
