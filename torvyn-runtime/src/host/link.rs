//! Linking: everything that can be known about flows before any of them runs. Each
//! component must load (a component of one role, at a compatible contract version, whose
//! imports the host provides), be what its manifest entry declares, and have every
//! capability it needs granted; each flow's shape must be valid. Every problem is
//! reported at once, each pointing at the manifest.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;

use crate::config::{
    Access, CapabilitiesDecl, ComponentDecl, DirDecl, FlowDecl, LimitsDecl, ManifestError,
    ProjectManifest, bounds,
};
use crate::engine::{EngineError, LoadedComponent};
use crate::reactor::{FlowSpec, StageBody, StageSpec};
use crate::resources::StageBudget;
use crate::security::{DirGrant, Grants, Limits};
use crate::topology::{check_flow, plan_flow};

/// Every problem that keeps flows from linking.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{count} problem{s} must be fixed before the flows can run", count = problems.len(), s = if problems.len() == 1 { "" } else { "s" })]
#[diagnostic(code(torvyn::link::failed))]
pub struct LinkError {
    /// Each problem, pointing at the manifest.
    #[related]
    pub problems: Vec<ManifestError>,
}

/// Links `flows` of `project`, whose components were loaded (or failed to load) as
/// `components`, by component name: one [`FlowSpec`] per flow, ready to run, or every
/// problem found.
pub fn link(
    project: &ProjectManifest,
    flows: &[(&str, &FlowDecl)],
    components: &BTreeMap<String, Result<LoadedComponent, EngineError>>,
) -> Result<Vec<FlowSpec>, LinkError> {
    let decls = &project.manifest().components;
    let mut problems = Vec::new();
    let mut stages = BTreeMap::new();
    for (name, loaded) in components {
        match stage(project, name, &decls[name], loaded) {
            Ok(stage) => {
                stages.insert(name.as_str(), stage);
            }
            Err(problem) => problems.push(problem),
        }
    }
    let mut specs = Vec::with_capacity(flows.len());
    for &(flow, decl) in flows {
        // The flow's stages: its components', and its connectors' (a connector's
        // checkpoints are the flow's own).
        let mut flow_stages = stages.clone();
        for node in &decl.nodes {
            match super::connectors::connector_stage(project, flow, node.get_ref()) {
                Some(Ok(stage)) => {
                    flow_stages.insert(node.get_ref().as_str(), stage);
                }
                Some(Err(problem)) => problems.push(problem),
                None => {}
            }
        }
        let names = || decl.nodes.iter().map(|n| n.get_ref().as_str());
        // A flow some of whose nodes did not load is checked as far as their roles are
        // known.
        if !names().all(|name| flow_stages.contains_key(name)) {
            let role_of = |name: &str| flow_stages.get(name).map(|stage| stage.body.role());
            problems.extend(check_flow(project, flow, decl, role_of));
            continue;
        }
        match plan_flow(project, flow, decl, |name| flow_stages[name].body.role()) {
            Ok(plan) => {
                let nodes = plan
                    .nodes
                    .iter()
                    .map(|n| flow_stages[n.name.as_str()].clone());
                let nodes = nodes.collect();
                specs.push(FlowSpec::new(plan, nodes));
            }
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(LinkError { problems })
    }
}

/// Component `name` of `project`, loaded (or not) as `loaded`, as a stage of any flow
/// with its configuration, limits and grants; or the first problem with it.
pub fn stage(
    project: &ProjectManifest,
    name: &str,
    decl: &ComponentDecl,
    loaded: &Result<LoadedComponent, EngineError>,
) -> Result<StageSpec, ManifestError> {
    let at = |message: String, help: Option<String>| {
        project.error_at(
            decl.path.span(),
            format!("component `{name}`: {message}"),
            help,
        )
    };
    let component = match loaded {
        Ok(component) => component,
        Err(error) => {
            // The diagnostic is the component's: a contract error speaks for itself.
            let (message, problem): (String, &dyn miette::Diagnostic) = match error {
                EngineError::Contract { source, .. } => (source.to_string(), source),
                other => (other.to_string(), other),
            };
            return Err(project.component_error(
                decl.path.span(),
                format!("component `{name}`: {message}"),
                problem,
            ));
        }
    };
    if let Some(role) = &decl.role
        && *role.get_ref() != component.role()
    {
        return Err(project.error_at(
            role.span(),
            format!(
                "component `{name}` is declared a {}, but it exports the {} interface",
                role.get_ref(),
                component.role()
            ),
            None,
        ));
    }
    let grants = grants(project, &decl.capabilities)?;
    let missing: Vec<&String> = (component.needs().iter())
        .filter(|capability| !grants.allows(capability))
        .collect();
    if let Some(first) = missing.first() {
        let all: Vec<String> = missing.iter().map(|c| format!("`{c}`")).collect();
        return Err(at(
            format!("needs {} but is not granted it", all.join(", ")),
            Some(format!(
                "grant it in Torvyn.toml: [components.{name}.capabilities] {}",
                grant_hint(first)
            )),
        ));
    }
    Ok(StageSpec {
        name: name.to_owned(),
        body: StageBody::Component(component.clone()),
        config: decl.config.clone(),
        limits: limits(project, &decl.limits)?,
        grants: Arc::new(grants),
    })
}

/// The `[capabilities]` entry that grants `capability`.
fn grant_hint(capability: &str) -> String {
    match capability.split_once(':') {
        Some(("env", var)) => format!("env = [\"{var}\"]"),
        Some(("filesystem", "write")) => {
            "filesystem = [{ path = \"DIR\", access = \"read-write\" }]".into()
        }
        Some(("filesystem", _)) => "filesystem = [{ path = \"DIR\", access = \"read\" }]".into(),
        Some(("network", address)) => format!("network = [\"{address}\"]"),
        None if capability == "network" => "network = [\"HOST:PORT\"]".into(),
        _ => format!("{capability} = true"),
    }
}

/// A component's `[limits]`, each unset one at the project's default.
fn limits(project: &ProjectManifest, decl: &LimitsDecl) -> Result<Limits, ManifestError> {
    let default = project.defaults().limits;
    let invocation_time = match &decl.invocation_time {
        Some(time) => Some(project.duration(time, bounds::INVOCATION_TIME)?),
        None => default.invocation_time,
    };
    Ok(Limits {
        memory: (decl.memory.as_ref()).map_or(default.memory, |m| m.get_ref().as_u64()),
        table_elements: set_or(&decl.table_elements, default.table_elements),
        instances: set_or(&decl.instances, default.instances),
        invocation_time,
        fuel: decl.fuel.as_ref().map(|f| *f.get_ref()).or(default.fuel),
        budget: StageBudget {
            max_bytes: (decl.buffer_memory.as_ref())
                .map_or(default.budget.max_bytes, |b| b.get_ref().as_u64()),
            max_handles: set_or(&decl.buffer_handles, default.budget.max_handles),
        },
    })
}

/// A limit as set, or its default.
fn set_or<T: Copy>(set: &Option<toml::Spanned<T>>, default: T) -> T {
    set.as_ref().map_or(default, |s| *s.get_ref())
}

/// A component's `[capabilities]`: each directory must exist and each address resolve.
fn grants(project: &ProjectManifest, decl: &CapabilitiesDecl) -> Result<Grants, ManifestError> {
    let mut grants = Grants {
        stdout: decl.stdout.unwrap_or(true),
        stderr: decl.stderr.unwrap_or(true),
        env: decl.env.iter().map(|name| name.get_ref().clone()).collect(),
        metrics: decl.metrics.unwrap_or(false),
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
