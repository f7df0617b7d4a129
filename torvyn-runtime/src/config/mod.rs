//! `Torvyn.toml`: the one typed model of a project that every command uses, and the
//! checks that can be made on it before any component is looked at.
//!
//! ```toml
//! [project]
//! name = "demo"
//!
//! [components.numbers]
//! path = "components/numbers"   # a crate folder, or a `.wasm` file
//! config = '{"count": 5}'       # optional, handed to `init`
//!
//! [components.printer]
//! path = "components/printer"
//!
//! [flows.main]
//! nodes = ["numbers", "printer"]
//! edges = [{ from = "numbers", to = "printer" }]
//! queue-capacity = 64           # optional, the default of every edge
//! ```
//!
//! A flow is any acyclic graph of its nodes. Each edge may set its own `capacity`, its
//! `overflow` policy (`block`, `drop-oldest`, `drop-newest`, `error`) and, on an edge out of
//! a source, the `high-watermark` / `low-watermark` at which the source is paused and
//! resumed. Edges out of a router name the router's `port`. `[flows.NAME.on-error]` gives a
//! node's error policy: `"fail-flow"` (the default), `"skip"`,
//! `{ retry = 3, backoff = "10ms", then = "skip" }` or `{ dead-letter = "SINK" }`.
//!
//! A `[settings]` table is the project's layer of [`Settings`]: what its flows and
//! components fall back on where they set nothing ([`Defaults`]), and how it is run.

pub mod bounds;
mod build;
mod check;
mod connectors;
mod error;
mod lenient;
mod nats;
mod settings;
mod warnings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use build::{BuildDecl, ToolRegistry, ToolSpec};
pub use connectors::{
    DEFAULT_MAX_ELEMENT_SIZE, DEFAULT_STATE_DIR, Framing, Oversize, SinkDecl, SinkType, SourceDecl,
    SourceType,
};
pub use error::{ComponentProblem, Located, ManifestError};
pub use nats::{
    DEFAULT_ACK_WAIT, DEFAULT_MAX_DELIVER, DEFAULT_NATS_URL, DEFAULT_PULL_BATCH,
    DEFAULT_PULL_EXPIRES, Retention,
};
pub(crate) use nats::{MAX_SUBJECT_BYTES, default_consumer, valid_subject};
pub use settings::{Defaults, LimitSettings, RegistrySettings, SettingError, Settings, env_var};
pub use warnings::ManifestWarning;

use crate::contracts::Role;

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "Torvyn.toml";

/// Queue capacity of an edge that does not set one, where no setting changes it.
pub const DEFAULT_QUEUE_CAPACITY: u32 = 64;

/// The contents of a `Torvyn.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The `[project]` table.
    pub project: Project,
    /// The `[components.NAME]` tables.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentDecl>,
    /// The `[sources.NAME]` tables: built-in source connectors.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceDecl>,
    /// The `[sinks.NAME]` tables: built-in sink connectors.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkDecl>,
    /// The `[flows.NAME]` tables.
    #[serde(default)]
    pub flows: BTreeMap<String, FlowDecl>,
    /// The `[tests.NAME]` tables, run by `cargo torvyn test`.
    #[serde(default)]
    pub tests: BTreeMap<String, Spanned<TestDecl>>,
    /// The `[settings]` table: the project's layer of [`Settings`].
    #[serde(default)]
    pub settings: Settings,
}

/// A `[tests.NAME]` table: elements fed to one component or a whole flow, and what must
/// come out. Both files hold one JSON element per line: `{"payload": "…",
/// "content-type": "…"}` (a bare string is a `text/plain` payload), or, for a payload
/// that is not UTF-8, `{"payload-hex": "ff00…", …}`. Payloads are compared byte for byte.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestDecl {
    /// The component under test, fed `input` and recorded.
    pub component: Option<Spanned<String>>,
    /// The flow under test: its source is fed `input` (when given), its sinks recorded.
    pub flow: Option<Spanned<String>>,
    /// The elements fed in, relative to the manifest.
    pub input: Option<String>,
    /// The elements that must come out, in order, relative to the manifest.
    pub expected: String,
}

/// The `[project]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Project {
    /// The project's name.
    pub name: Spanned<String>,
    /// The project's version, which `cargo torvyn pack --pipeline` records.
    pub version: Option<String>,
}

/// A `[components.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentDecl {
    /// A crate folder (built with Cargo) or a `.wasm` file, relative to the manifest; an
    /// `oci://` reference to pull; or the `sha256:` digest of a component a pulled pipeline
    /// brought.
    pub path: Spanned<String>,
    /// Handed to the component's `init`; empty when not set.
    #[serde(default)]
    pub config: String,
    /// The role the component must have; checked against its exports when set.
    pub role: Option<Spanned<Role>>,
    /// What each instance of the component may use; defaults when not set.
    #[serde(default)]
    pub limits: LimitsDecl,
    /// What the component may reach outside its sandbox.
    #[serde(default)]
    pub capabilities: CapabilitiesDecl,
    /// How to make `path` when the component is not a Rust crate.
    pub build: Option<BuildDecl>,
}

/// A `[components.NAME.capabilities]` table: everything not listed is denied.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CapabilitiesDecl {
    /// May write to standard output (default: yes).
    pub stdout: Option<bool>,
    /// May write to standard error (default: yes).
    pub stderr: Option<bool>,
    /// May keep metrics of its own through `torvyn:runtime/metrics` (default: no).
    pub metrics: Option<bool>,
    /// Environment variables it sees, by name, with the host's values.
    #[serde(default)]
    pub env: Vec<Spanned<String>>,
    /// Directories it may open.
    #[serde(default)]
    pub filesystem: Vec<Spanned<DirDecl>>,
    /// `host:port` addresses it may open TCP connections to.
    #[serde(default)]
    pub network: Vec<Spanned<String>>,
}

/// One directory grant: `{ path = "data", access = "read", guest = "/data" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DirDecl {
    /// The host directory, relative to the manifest.
    pub path: String,
    /// `read` or `read-write`.
    pub access: Access,
    /// Where the component sees it (default: `/` and the last part of `path`).
    pub guest: Option<String>,
}

/// What a component may do in a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read files and list directories.
    Read,
    /// Also create, change and remove them.
    ReadWrite,
}

/// A `[components.NAME.limits]` table. Sizes are bytes or strings such as `"64 MiB"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsDecl {
    /// Largest size of each linear memory, within [`bounds::MEMORY`].
    pub memory: Option<Spanned<bytesize::ByteSize>>,
    /// Most elements of each table, at least one.
    pub table_elements: Option<Spanned<u32>>,
    /// Most core instances, tables and memories the component may create, at least one.
    pub instances: Option<Spanned<u32>>,
    /// Longest one call into the component may run (e.g. `"100ms"`), within
    /// [`bounds::INVOCATION_TIME`]; it traps after that.
    pub invocation_time: Option<Spanned<String>>,
    /// Most fuel (about one unit per WebAssembly instruction) one call may use: a
    /// deterministic limit, where the host meters fuel.
    pub fuel: Option<Spanned<u64>>,
    /// Bytes of host buffers the component may hold at once, within
    /// [`bounds::BUFFER_MEMORY`].
    pub buffer_memory: Option<Spanned<bytesize::ByteSize>>,
    /// Host buffer handles the component may hold at once, within
    /// [`bounds::BUFFER_HANDLES`].
    pub buffer_handles: Option<Spanned<u32>>,
}

/// A `[flows.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FlowDecl {
    /// The components taking part, by name.
    pub nodes: Vec<Spanned<String>>,
    /// The queues joining them.
    #[serde(default)]
    pub edges: Vec<Spanned<EdgeDecl>>,
    /// Capacity of every edge that does not set its own, within
    /// [`bounds::QUEUE_CAPACITY`].
    pub queue_capacity: Option<Spanned<u32>>,
    /// What happens when a node fails on an element, by node; `fail-flow` when not set.
    #[serde(default)]
    pub on_error: BTreeMap<Spanned<String>, Spanned<ErrorPolicyDecl>>,
    /// The time each call into a component is given, shown to it as `deadline-ns`
    /// (e.g. `"50ms"`); no deadline when not set.
    pub invocation_deadline: Option<Spanned<String>>,
    /// How long a sink that answered `pause` gets no element (e.g. `"5ms"`); 1 ms when
    /// not set.
    pub sink_pause: Option<Spanned<String>>,
    /// Restarts a node may have, after traps, within `restart-period`; past them, the
    /// flow fails. 10 when not set.
    pub max_restarts: Option<Spanned<u32>>,
    /// The period over which restarts are counted (e.g. `"1m"`); 10 s when not set.
    pub restart_period: Option<Spanned<String>>,
}

/// What a queue does with an element that finds it full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// The upstream node waits for room: backpressure, up to the source.
    #[default]
    Block,
    /// The oldest queued element is dropped to make room.
    DropOldest,
    /// The arriving element is dropped.
    DropNewest,
    /// The flow fails.
    Error,
}

impl Overflow {
    /// Its name in `Torvyn.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Overflow::Block => "block",
            Overflow::DropOldest => "drop-oldest",
            Overflow::DropNewest => "drop-newest",
            Overflow::Error => "error",
        }
    }
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A node's error policy as written in `[flows.NAME.on-error]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "an error policy: \"fail-flow\", \"skip\", { retry = N, backoff = \"10ms\", then = \"skip\" } or { dead-letter = \"SINK\" }"
)]
pub enum ErrorPolicyDecl {
    /// `"fail-flow"` or `"skip"`.
    Simple(SimplePolicy),
    /// `{ retry = N, backoff = "10ms", then = ... }`.
    Retry(RetryDecl),
    /// `{ dead-letter = "SINK" }`.
    DeadLetter(DeadLetterDecl),
}

/// The policies that need no parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimplePolicy {
    /// The flow fails.
    FailFlow,
    /// The element is counted as failed and the flow goes on.
    Skip,
}

/// `{ retry = N, backoff = "10ms", then = ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetryDecl {
    /// Further attempts after the first, for `unavailable` errors.
    pub retry: u32,
    /// Wait before the first retry, doubled before each next one (default 10ms).
    pub backoff: Option<String>,
    /// What happens when the attempts are used up or the error is not `unavailable`.
    pub then: Option<FallbackDecl>,
}

/// The policy after retries: anything but another retry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "a policy after retries: \"fail-flow\", \"skip\" or { dead-letter = \"SINK\" }"
)]
pub enum FallbackDecl {
    /// `"fail-flow"` or `"skip"`.
    Simple(SimplePolicy),
    /// `{ dead-letter = "SINK" }`.
    DeadLetter(DeadLetterDecl),
}

/// `{ dead-letter = "SINK" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeadLetterDecl {
    /// The sink node that receives failed elements.
    pub dead_letter: String,
}

/// One edge of a flow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EdgeDecl {
    /// The upstream node.
    pub from: Spanned<String>,
    /// The downstream node.
    pub to: Spanned<String>,
    /// The router port this edge leaves from; only for edges out of a router.
    pub port: Option<Spanned<String>>,
    /// Capacity of this edge's queue, within [`bounds::QUEUE_CAPACITY`].
    pub capacity: Option<Spanned<u32>>,
    /// What the queue does when full.
    #[serde(default)]
    pub overflow: Overflow,
    /// Queue length at which a source feeding this edge is paused (default: capacity).
    pub high_watermark: Option<Spanned<u32>>,
    /// Queue length at which a paused source is resumed (default: half the capacity).
    pub low_watermark: Option<Spanned<u32>>,
}

impl FlowDecl {
    /// The capacity of each queue whose edge sets none: the flow's `queue-capacity`, else
    /// `default` (the project's [`Defaults::queue_capacity`]).
    pub fn queue_capacity_or(&self, default: u32) -> u32 {
        self.queue_capacity
            .as_ref()
            .map_or(default, |c| *c.get_ref())
    }
}

impl EdgeDecl {
    /// The queue's capacity: its own, else the flow's, else `default` (the project's
    /// [`Defaults::queue_capacity`]).
    pub fn capacity(&self, flow: &FlowDecl, default: u32) -> u32 {
        (self.capacity.as_ref()).map_or_else(|| flow.queue_capacity_or(default), |c| *c.get_ref())
    }

    /// The `(high, low)` watermarks: as set, else the capacity and half of it.
    pub fn watermarks(&self, flow: &FlowDecl, default: u32) -> (u32, u32) {
        let capacity = self.capacity(flow, default);
        let high = self
            .high_watermark
            .as_ref()
            .map_or(capacity, |h| *h.get_ref());
        let low = self
            .low_watermark
            .as_ref()
            .map_or(high / 2, |l| *l.get_ref());
        (high, low)
    }
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A crate folder to build for `wasm32-wasip2`.
    Crate(PathBuf),
    /// A ready `.wasm` file.
    Wasm(PathBuf),
    /// A component in an OCI registry: the reference after `oci://`.
    Oci(String),
    /// A component known by the digest of its bytes (`sha256:…`), as a packed pipeline
    /// names its components.
    Digest(String),
}

/// The prefix of a component reference to an OCI registry.
pub const OCI_SCHEME: &str = "oci://";

/// A manifest read from disk, with what is needed to point at its lines.
#[derive(Debug)]
pub struct ProjectManifest {
    path: PathBuf,
    text: String,
    manifest: Manifest,
    defaults: Defaults,
}

impl ProjectManifest {
    /// Reads and checks the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        Self::parse(path, text)
    }

    /// Parses and checks manifest text said to come from `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self, ManifestError> {
        let (manifest, mut problems) = lenient::read(path, &text)?;
        let project = Self {
            path: path.to_owned(),
            text,
            manifest,
            defaults: Defaults::default(),
        };
        project.find_problems(&mut problems);
        ManifestError::gather(problems)?;
        Ok(project)
    }

    /// The project with `defaults` for what it leaves unset (the settings resolved for
    /// this run), checked again with them: a watermark above a smaller default capacity is
    /// an error.
    pub fn with_defaults(mut self, defaults: Defaults) -> Result<Self, ManifestError> {
        self.defaults = defaults;
        let mut problems = Vec::new();
        self.find_problems(&mut problems);
        ManifestError::gather(problems)?;
        Ok(self)
    }

    /// What the project's declarations fall back on.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The folder a file source keeps its checkpoints in: its `state`, else the project's
    /// default, relative to the project's folder unless absolute.
    pub fn state_dir(&self, source: &SourceDecl) -> PathBuf {
        let state: &Path =
            (source.state.as_ref()).map_or(&self.defaults.state_dir, |s| Path::new(s.get_ref()));
        self.dir().join(state)
    }

    /// Where file source `node` of flow `flow` keeps its checkpoints:
    /// `STATE/FLOW/NODE.json`, `STATE` the source's [`state_dir`](Self::state_dir).
    pub fn checkpoint_path(&self, source: &SourceDecl, flow: &str, node: &str) -> PathBuf {
        self.state_dir(source)
            .join(flow)
            .join(format!("{node}.json"))
    }

    /// The typed contents.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder relative paths start from: `.` for a manifest named without one
    /// (`--manifest-path Torvyn.toml`), whose parent is the empty path.
    pub fn dir(&self) -> &Path {
        (self.path.parent())
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// A diagnostic pointing at `span` of this manifest.
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> ManifestError {
        ManifestError::at(&self.path, &self.text, span, message.into(), help)
    }

    /// The component whose entry is at `span` cannot be used, as `problem` says.
    pub fn component_error(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        problem: &dyn miette::Diagnostic,
    ) -> ManifestError {
        ManifestError::component(&self.path, &self.text, span, message.into(), problem)
    }

    /// Where a component comes from: an `oci://` reference, a `sha256:` digest, a `.wasm`
    /// path, or else a crate folder.
    pub fn source_of(&self, decl: &ComponentDecl) -> ComponentSource {
        let text = decl.path.get_ref();
        if let Some(reference) = text.strip_prefix(OCI_SCHEME) {
            return ComponentSource::Oci(reference.to_owned());
        }
        if text.starts_with("sha256:") {
            return ComponentSource::Digest(text.clone());
        }
        let path = self.dir().join(text);
        if path.extension().is_some_and(|ext| ext == "wasm") {
            ComponentSource::Wasm(path)
        } else {
            ComponentSource::Crate(path)
        }
    }

    /// The flows to run: those named, in the order given, or every flow when none is.
    pub fn select_flows(&self, names: &[String]) -> Result<Vec<(&str, &FlowDecl)>, ManifestError> {
        let flows = &self.manifest.flows;
        if flows.is_empty() {
            return Err(ManifestError::NoFlows {
                path: self.path.clone(),
            });
        }
        if names.is_empty() {
            return Ok(flows.iter().map(|(k, v)| (k.as_str(), v)).collect());
        }
        names
            .iter()
            .map(|name| {
                flows
                    .get_key_value(name)
                    .map(|(k, v)| (k.as_str(), v))
                    .ok_or_else(|| ManifestError::NoSuchFlow {
                        path: self.path.clone(),
                        flow: name.clone(),
                        known: flows.keys().cloned().collect::<Vec<_>>().join(", "),
                    })
            })
            .collect()
    }
}

/// Finds `Torvyn.toml` in `start` or the nearest folder above it.
pub fn find_manifest(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(MANIFEST_FILE))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const GOOD: &str = r#"
[project]
name = "demo"

[components.numbers]
path = "numbers"
config = '{"count": 3}'

[components.printer]
path = "printer.wasm"

[flows.main]
nodes = ["numbers", "printer"]
edges = [{ from = "numbers", to = "printer" }]
"#;

    fn parse(text: &str) -> Result<ProjectManifest, ManifestError> {
        ProjectManifest::parse(Path::new("/p/Torvyn.toml"), text.to_owned())
    }

    fn message(text: &str) -> String {
        render(&parse(text).unwrap_err())
    }

    /// A diagnostic as a user reads it, without colours, at a fixed width.
    pub(crate) fn render(diagnostic: &dyn miette::Diagnostic) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut rendered = String::new();
        handler.render_report(&mut rendered, diagnostic).unwrap();
        rendered
    }

    #[test]
    fn a_good_manifest_parses() {
        let project = parse(GOOD).unwrap();
        let manifest = project.manifest();
        assert_eq!(manifest.project.name.get_ref(), "demo");
        let numbers = &manifest.components["numbers"];
        assert_eq!(numbers.config, r#"{"count": 3}"#);
        assert_eq!(
            project.source_of(numbers),
            ComponentSource::Crate(PathBuf::from("/p/numbers"))
        );
        assert_eq!(
            project.source_of(&manifest.components["printer"]),
            ComponentSource::Wasm(PathBuf::from("/p/printer.wasm"))
        );
        let mut printer = parse(&GOOD.replace("printer.wasm", "oci://localhost:5000/p:1")).unwrap();
        assert_eq!(
            printer.source_of(&printer.manifest().components["printer"]),
            ComponentSource::Oci("localhost:5000/p:1".into())
        );
        printer = parse(&GOOD.replace("printer.wasm", "sha256:ab")).unwrap();
        assert_eq!(
            printer.source_of(&printer.manifest().components["printer"]),
            ComponentSource::Digest("sha256:ab".into())
        );
        let (name, flow) = project.select_flows(&[]).unwrap()[0];
        assert_eq!(name, "main");
        assert_eq!(flow.edges.len(), 1);
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_line() {
        let text = GOOD.replace("config =", "confg =");
        let rendered = message(&text);
        assert!(rendered.contains("Torvyn.toml:7:1"), "{rendered}");
        insta::assert_snapshot!(rendered);
    }

    #[test]
    fn a_dangling_edge_is_pointed_at() {
        let text = GOOD.replace("to = \"printer\"", "to = \"printr\"");
        let rendered = message(&text);
        assert!(rendered.contains("Torvyn.toml:14:"), "{rendered}");
        insta::assert_snapshot!(rendered);
    }

    #[test]
    fn a_node_must_name_a_component() {
        let text = GOOD.replace(r#"nodes = ["numbers""#, r#"nodes = ["numbrs""#);
        let rendered = message(&text);
        assert!(rendered.contains("node `numbrs` of flow `main` names no component"));
        assert!(rendered.contains("declared components and connectors: numbers, printer"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = GOOD
            .replace(r#"nodes = ["numbers""#, r#"nodes = ["numbrs""#)
            .replace("to = \"printer\"", "to = \"printr\"");
        let Err(ManifestError::Several { problems }) = parse(&text) else {
            panic!("expected several problems");
        };
        let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            messages,
            [
                "node `numbrs` of flow `main` names no component or connector",
                "edge end `numbers` is not a node of flow `main`",
                "edge end `printr` is not a node of flow `main`",
            ]
        );
    }

    #[test]
    fn a_zero_capacity_is_refused() {
        let text = GOOD.replace("[flows.main]", "[flows.main]\nqueue-capacity = 0");
        assert!(message(&text).contains("0 is too small: the least is 1"));
    }

    #[test]
    fn flows_are_selected_by_name_or_all_together() {
        let project = parse(GOOD).unwrap();
        assert!(matches!(
            project.select_flows(&["other".into()]),
            Err(ManifestError::NoSuchFlow { .. })
        ));
        let two = format!(
            "{GOOD}\n[flows.second]\nnodes = [\"numbers\", \"printer\"]\nedges = [{{ from = \"numbers\", to = \"printer\" }}]\n"
        );
        let project = parse(&two).unwrap();
        let all: Vec<_> = project
            .select_flows(&[])
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(all, ["main", "second"]);
        let named = project.select_flows(&["second".into()]).unwrap();
        assert_eq!(named[0].0, "second");
    }

    #[test]
    fn policies_and_edge_options_are_checked() {
        let edge = "edges = [{ from = \"numbers\", to = \"printer\" }]";
        let cases = [
            (
                edge.replace(" }]", ", capacity = 4, high-watermark = 5 }]"),
                "the high watermark 5 is above the edge's capacity 4",
            ),
            (
                edge.replace(" }]", ", low-watermark = 64 }]"),
                "the low watermark 64 must be below the high watermark 64",
            ),
            (
                edge.replace(" }]", ", overflow = \"spill\" }]"),
                "unknown variant `spill`",
            ),
            (
                format!("{edge}\n[flows.main.on-error]\nprinter = \"ignore\""),
                "an error policy: \"fail-flow\", \"skip\"",
            ),
            (
                format!("{edge}\n[flows.main.on-error]\nprintr = \"skip\""),
                "`on-error` names `printr`, which is not a node of flow `main`",
            ),
            (
                format!(
                    "{edge}\n[flows.main.on-error]\nnumbers = {{ retry = 2, backoff = \"soon\" }}"
                ),
                "`soon` is not a duration",
            ),
            (
                format!("{edge}\n[flows.main.on-error]\nnumbers = {{ dead-letter = \"nobody\" }}"),
                "dead-letter node `nobody` is not a node of flow `main`",
            ),
            (
                format!("{edge}\ninvocation-deadline = \"fast\""),
                "`fast` is not a duration",
            ),
        ];
        for (flow, expected) in cases {
            let text = GOOD.replace(edge, &flow);
            let rendered = message(&text);
            assert!(rendered.contains(expected), "{flow}\n{rendered}");
        }
    }
}
