//! `cargo torvyn link`: checks, before anything runs, that flows will run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use miette::bail;
use serde_json::json;
use torvyn_runtime::{
    EngineError, FlowDecl, FlowSpec, Host, HostOptions, LoadedComponent, MANIFEST_FILE,
    ProjectManifest,
};

use crate::cli::{BuildArgs, ManifestArgs, MessageFormat, OutputArgs, WarningArgs};
use crate::output::{self, counted, status};
use crate::project::{self, Project};

/// Build what is stale, then check that flows link, without running them
///
/// Every component must be a component of one role at a compatible contract version,
/// with every import provided by the host, every capability it needs granted, and the
/// role its manifest entry declares; every flow must be a valid graph. All problems are
/// reported at once. `run` makes the same checks first.
#[derive(Debug, Args)]
pub(crate) struct LinkCommand {
    /// The flows to check [default: every flow of the project]
    #[arg(value_name = "FLOW")]
    flows: Vec<String>,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    warnings: WarningArgs,

    #[command(flatten)]
    build: BuildArgs,

    #[command(flatten)]
    output: OutputArgs,
}

impl LinkCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let format = self.output.message_format;
        let project = torvyn_project(&self.manifest, &self.warnings, format, "link")?;
        let flows = project.select_flows(&self.flows)?;
        let (_, specs) = link_flows(&project, &flows, self.build.release)?;
        for spec in &specs {
            let plan = &spec.plan;
            status(
                "Linked",
                format!(
                    "flow `{}`: {}, {}",
                    plan.flow,
                    counted(plan.nodes.len(), "node"),
                    counted(plan.edges.len(), "edge")
                ),
            );
            output::json(
                self.output.message_format,
                &json!({
                    "reason": "flow-linked",
                    "flow": plan.flow,
                    "nodes": plan.nodes.iter().map(|n| json!({"name": n.name, "role": n.role})).collect::<Vec<_>>(),
                    "edges": plan.edges.len(),
                }),
            );
        }
        Ok(())
    }
}

/// The project's `Torvyn.toml`, which `command` needs, its warnings printed (in `format`)
/// or refused as `warnings` says.
pub(crate) fn torvyn_project(
    args: &ManifestArgs,
    warnings: &WarningArgs,
    format: MessageFormat,
    command: &str,
) -> miette::Result<ProjectManifest> {
    match project::locate(args.manifest_path.as_deref())? {
        Project::Torvyn(project) => {
            project::warn(&project, warnings, format)?;
            Ok(*project)
        }
        Project::Cargo(cargo) => {
            let beside = cargo.with_file_name(MANIFEST_FILE);
            if args.manifest_path.is_some() && beside.is_file() {
                bail!(
                    help = format!("pass `--manifest-path {}`", beside.display()),
                    "`{}` is a Cargo manifest: `{command}` needs a {MANIFEST_FILE}",
                    cargo.display()
                );
            }
            bail!(
                help = "create one with `cargo torvyn new NAME --template pipeline`",
                "no {MANIFEST_FILE} found: `{command}` needs a project with flows"
            )
        }
    }
}

/// The flow named `name`, or the project's only flow, for a command that takes one (to
/// `verb` it).
pub(crate) fn one_flow<'a>(
    project: &'a ProjectManifest,
    name: Option<&str>,
    verb: &str,
) -> miette::Result<Vec<(&'a str, &'a FlowDecl)>> {
    let names: Vec<String> = name.iter().map(|n| n.to_string()).collect();
    let flows = project.select_flows(&names)?;
    if flows.len() > 1 {
        let listed: Vec<String> = flows.iter().map(|(n, _)| format!("`{n}`")).collect();
        bail!(
            help = format!("name the flow to {verb}"),
            "this project has {}: {}",
            counted(listed.len(), "flow"),
            listed.join(", ")
        );
    }
    Ok(flows)
}

/// Torvyn's cache: the `cache-dir` setting (by default `torvyn` in the user's cache
/// folder); none where the user has no cache folder and sets none.
pub(crate) fn cache_root() -> miette::Result<Option<PathBuf>> {
    Ok(crate::settings::machine()?.cache_root())
}

/// Where compiled components are cached.
pub(crate) fn cache_dir() -> miette::Result<Option<PathBuf>> {
    Ok(cache_root()?.map(|root| root.join("compiled")))
}

/// A host for `project`: with the compile cache, and metering fuel when a component of
/// the project has a fuel limit, its own or the `limits.fuel` setting's.
pub(crate) fn host_for(project: &ProjectManifest) -> miette::Result<Host> {
    let components = project.manifest().components.values();
    let fuel = project.defaults().limits.fuel.is_some()
        || components.into_iter().any(|c| c.limits.fuel.is_some());
    Ok(Host::new(HostOptions {
        cache_dir: cache_dir()?,
        fuel,
        ..HostOptions::default()
    })?)
}

/// Warns when component `name`, loaded as `component`, names contract interfaces without
/// a package version.
pub(crate) fn warn_unversioned(name: &str, component: &Result<LoadedComponent, EngineError>) {
    let unversioned = component.as_ref().ok().map(|c| c.unversioned());
    if let Some(warning) = unversioned.and_then(output::unversioned) {
        status("Warning", format!("component `{name}` {warning}"));
    }
}

/// Components at least this large (bytes) are announced when they are compiled: a Python
/// or JavaScript guest (12 to 20 MB) takes seconds (8 to 11 s for an 18 MB componentize-py
/// processor on a 2-core machine), where a Rust one (about 0.2 MB in release, 3 MB in a
/// debug build) takes a fraction of one.
const ANNOUNCED_COMPILE: u64 = 8 << 20;

/// Loads component `name` from `wasm` into `host`, saying so on stderr before a long
/// compile, so that a first run of a large component does not look stuck.
pub(crate) fn load(
    host: &Host,
    name: &str,
    wasm: &std::path::Path,
) -> Result<LoadedComponent, EngineError> {
    let cached = matches!(cache_dir(), Ok(Some(_)));
    host.load_compiling(wasm, |size| {
        if size >= ANNOUNCED_COMPILE {
            let mib = size as f64 / f64::from(1 << 20);
            let later = match cached {
                true => "; later runs load it from the cache",
                false => " (no cache folder: set `cache-dir` to keep it for later runs)",
            };
            status(
                "Compiling",
                format!("component `{name}` ({mib:.1} MiB) to machine code{later}"),
            );
        }
    })
}

/// Builds what is stale, loads every component of `flows` and links the flows.
pub(crate) fn link_flows(
    project: &ProjectManifest,
    flows: &[(&str, &FlowDecl)],
    release: bool,
) -> miette::Result<(Host, Vec<FlowSpec>)> {
    let names = flows
        .iter()
        .flat_map(|(_, decl)| decl.nodes.iter().map(|n| n.get_ref().as_str()));
    let files = project::component_files(project, names, release)?;
    let host = host_for(project)?;
    let loaded: BTreeMap<_, _> = (files.iter())
        .map(|(name, wasm)| (name.clone(), load(&host, name, wasm)))
        .collect();
    for (name, component) in &loaded {
        warn_unversioned(name, component);
    }
    let specs = torvyn_runtime::link(project, flows, &loaded)?;
    Ok((host, specs))
}
