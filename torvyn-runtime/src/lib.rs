//! Torvyn's host runtime: runs streaming flows of WebAssembly components.
//!
//! A [`Host`] loads components (checking them against the `torvyn:streaming@0.1.0`
//! contract, compiling them once and caching the result), and runs each flow as a tokio
//! task that moves elements from its sources through bounded queues to its sinks, along
//! any acyclic graph the flow's `Torvyn.toml` describes. The host owns every payload
//! buffer, counts every copy and accounts for every element. The runtime never prints: it
//! returns reports and typed errors, and the embedding program decides what to show.
//!
//! ```no_run
//! # async fn demo() -> miette::Result<()> {
//! use torvyn_runtime::{ComponentSource, Host, HostOptions, ProjectManifest, RunOptions};
//!
//! let project = ProjectManifest::load("Torvyn.toml".as_ref())?;
//! let flows = project.select_flows(&["main".into()])?;
//! let host = Host::new(HostOptions::default())?;
//! let mut loaded = std::collections::BTreeMap::new();
//! for node in &flows[0].1.nodes {
//!     let name = node.get_ref();
//!     // Here every component is a ready `.wasm` file; `cargo torvyn` also builds crates.
//!     if let ComponentSource::Wasm(path) = project.source_of(&project.manifest().components[name]) {
//!         loaded.insert(name.clone(), host.load(&path));
//!     }
//! }
//! // Every problem at once: roles, versions, imports, grants, the graph.
//! let mut specs = torvyn_runtime::link(&project, &flows, &loaded)?;
//! let handle = host.start(specs.remove(0), RunOptions::default());
//! let report = handle.join().await?;
//! assert!(report.accounting.balanced());
//! println!("{} elements delivered", report.delivered);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod attributes;
mod config;
mod connectors;
mod contracts;
mod engine;
mod host;
mod observability;
mod reactor;
mod resources;
mod security;
mod topology;

pub use attributes::{
    ATTRIBUTE_OVERHEAD, AttributeError, MAX_ATTRIBUTES, MAX_ATTRIBUTES_SIZE, check_attributes,
};
pub use config::bounds;
pub use config::{
    Access, CapabilitiesDecl, ComponentDecl, ComponentProblem, ComponentSource,
    DEFAULT_QUEUE_CAPACITY, DeadLetterDecl, DirDecl, EdgeDecl, ErrorPolicyDecl, FallbackDecl,
    FlowDecl, LimitsDecl, Located, MANIFEST_FILE, Manifest, ManifestError, ManifestWarning,
    OCI_SCHEME, Overflow, Project, ProjectManifest, RetryDecl, SimplePolicy, TestDecl,
    find_manifest,
};
pub use config::{BuildDecl, ToolRegistry, ToolSpec};
pub use config::{
    DEFAULT_ACK_WAIT, DEFAULT_MAX_DELIVER, DEFAULT_MAX_ELEMENT_SIZE, DEFAULT_NATS_URL,
    DEFAULT_PULL_BATCH, DEFAULT_PULL_EXPIRES, DEFAULT_STATE_DIR, Framing, Oversize, Retention,
    SinkDecl, SinkType, SourceDecl, SourceType,
};
pub use config::{Defaults, LimitSettings, RegistrySettings, SettingError, Settings, env_var};
pub use connectors::{
    ConnectorSpec, FileSinkSpec, FileSourceSpec, FramingSpec, NatsSinkSpec, NatsSourceSpec,
    SinkSubject, StreamSpec, glob_files, glob_in,
};
pub use contracts::{
    CAPABILITIES_SECTION, CONTRACT_VERSION, ComponentInfo, ContractError, Normalised, Role,
    compatible, inspect, normalise, with_capabilities,
};
pub use engine::{EngineError, LoadedComponent};
pub use host::{
    DEFAULT_SINK_PAUSE, FlowHandle, Host, HostOptions, LinkError, Progress, connector_problems,
    link, stage,
};
pub use observability::{
    Accounting, BufferReport, Call, CallHistogram, CallStats, ComponentMetric, ConnectorReport,
    EdgeReport, ErrorCounts, ErrorEvent, EventKind, EventSink, Fate, FlowEvent, FlowReport,
    LatencyReport, MAX_METRICS, MAX_SERIES, MetricKind, NodeReport, ObservabilityLevel, OtlpError,
    OtlpExporter, OtlpSummary, Outcome, PRODUCTION_SAMPLING, PUBLISH_EVERY, QueueWait,
    RECENT_ERRORS, SeriesValue, SpanId, SpanSink, StageSpan, TraceId, printable,
};
pub use reactor::{
    FlowError, FlowErrorKind, FlowSpec, MAX_BATCH, MAX_BATCH_BYTES, MAX_CONNECTOR_BATCH,
    MAX_CONNECTOR_BATCH_BYTES, MAX_ROUTE_PORTS, Native, NativeFactory, NativeStage, Recorder,
    RunOptions, SLOW_CALL, SLOW_CALLS, StageBody, StageSpec, TestElement, YIELD_EVERY,
};
pub use resources::{
    CopyStats, HUSKS_PER_HANDLE, MAX_CONTENT_TYPE_BYTES, PoolStats, StageBudget, TIER_NAMES, TIERS,
    TierStats,
};
pub use security::{
    AuditEvent, DEFAULT_INVOCATION_TIME, DirGrant, EPOCH_TICK, Grants, Limits, MAX_AUDIT_EVENTS,
};
pub use topology::{
    DEFAULT_BACKOFF, EdgePlan, ErrorPolicy, Fallback, FlowPlan, NodePlan, Port, RestartBudget,
    Retry, check_flow, plan_flow,
};
