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

mod error;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use error::{Located, ManifestError};

use crate::contracts::Role;

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "Torvyn.toml";

/// Queue capacity of an edge that does not set one.
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
    /// The `[flows.NAME]` tables.
    #[serde(default)]
    pub flows: BTreeMap<String, FlowDecl>,
}

/// The `[project]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Project {
    /// The project's name.
    pub name: Spanned<String>,
}

/// A `[components.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentDecl {
    /// A crate folder (built with Cargo) or a `.wasm` file, relative to the manifest.
    pub path: Spanned<String>,
    /// Handed to the component's `init`; empty when not set.
    #[serde(default)]
    pub config: String,
    /// The role the component must have; checked against its exports when set.
    pub role: Option<Spanned<Role>>,
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
    /// Capacity of every edge that does not set its own.
    pub queue_capacity: Option<Spanned<u32>>,
}

/// One edge of a flow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EdgeDecl {
    /// The upstream node.
    pub from: Spanned<String>,
    /// The downstream node.
    pub to: Spanned<String>,
    /// Capacity of this edge's queue.
    pub capacity: Option<Spanned<u32>>,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A crate folder to build for `wasm32-wasip2`.
    Crate(PathBuf),
    /// A ready `.wasm` file.
    Wasm(PathBuf),
}

/// A manifest read from disk, with what is needed to point at its lines.
#[derive(Debug)]
pub struct ProjectManifest {
    path: PathBuf,
    text: String,
    manifest: Manifest,
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
        let manifest = match toml::from_str::<Manifest>(&text) {
            Ok(manifest) => manifest,
            Err(error) => {
                let span = error.span().unwrap_or(0..0);
                let message = error.message().to_owned();
                return Err(ManifestError::at(path, &text, span, message, None));
            }
        };
        let project = Self {
            path: path.to_owned(),
            text,
            manifest,
        };
        project.check()?;
        Ok(project)
    }

    /// The typed contents.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder relative paths start from.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
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

    /// Where a component comes from: a `.wasm` path, or else a crate folder.
    pub fn source_of(&self, decl: &ComponentDecl) -> ComponentSource {
        let path = self.dir().join(decl.path.get_ref());
        if path.extension().is_some_and(|ext| ext == "wasm") {
            ComponentSource::Wasm(path)
        } else {
            ComponentSource::Crate(path)
        }
    }

    /// The flow to run: `name` if given, else the only flow there is.
    pub fn select_flow(&self, name: Option<&str>) -> Result<(&str, &FlowDecl), ManifestError> {
        let flows = &self.manifest.flows;
        let names = || flows.keys().cloned().collect::<Vec<_>>().join(", ");
        match name {
            Some(name) => flows
                .get_key_value(name)
                .map(|(k, v)| (k.as_str(), v))
                .ok_or_else(|| ManifestError::NoSuchFlow {
                    path: self.path.clone(),
                    flow: name.to_owned(),
                    known: names(),
                }),
            None => {
                let mut all = flows.iter();
                match (all.next(), all.next()) {
                    (Some((k, v)), None) => Ok((k.as_str(), v)),
                    (None, _) => Err(ManifestError::NoFlows {
                        path: self.path.clone(),
                    }),
                    (Some(_), Some(_)) => Err(ManifestError::WhichFlow {
                        path: self.path.clone(),
                        known: names(),
                    }),
                }
            }
        }
    }

    /// Checks that need the whole manifest: every reference resolves.
    fn check(&self) -> Result<(), ManifestError> {
        let manifest = &self.manifest;
        if manifest.project.name.get_ref().trim().is_empty() {
            return Err(self.error_at(
                manifest.project.name.span(),
                "the project name is empty",
                None,
            ));
        }
        let declared = || {
            let names: Vec<_> = manifest.components.keys().cloned().collect();
            Some(format!("declared components: {}", names.join(", ")))
        };
        for decl in manifest.components.values() {
            if decl.path.get_ref().trim().is_empty() {
                return Err(self.error_at(decl.path.span(), "the component path is empty", None));
            }
        }
        for (flow, decl) in &manifest.flows {
            for (i, node) in decl.nodes.iter().enumerate() {
                if !manifest.components.contains_key(node.get_ref()) {
                    return Err(self.error_at(
                        node.span(),
                        format!(
                            "node `{}` of flow `{flow}` names no component",
                            node.get_ref()
                        ),
                        declared(),
                    ));
                }
                if decl.nodes[..i]
                    .iter()
                    .any(|n| n.get_ref() == node.get_ref())
                {
                    return Err(self.error_at(
                        node.span(),
                        format!("node `{}` appears twice in flow `{flow}`", node.get_ref()),
                        None,
                    ));
                }
            }
            if let Some(capacity) = &decl.queue_capacity {
                self.check_capacity(capacity)?;
            }
            for edge in &decl.edges {
                let edge = edge.get_ref();
                for end in [&edge.from, &edge.to] {
                    if !decl.nodes.iter().any(|n| n.get_ref() == end.get_ref()) {
                        return Err(self.error_at(
                            end.span(),
                            format!(
                                "edge end `{}` is not a node of flow `{flow}`",
                                end.get_ref()
                            ),
                            Some(format!(
                                "add `{}` to `nodes` of flow `{flow}`, or fix the name",
                                end.get_ref()
                            )),
                        ));
                    }
                }
                if let Some(capacity) = &edge.capacity {
                    self.check_capacity(capacity)?;
                }
            }
        }
        Ok(())
    }

    fn check_capacity(&self, capacity: &Spanned<u32>) -> Result<(), ManifestError> {
        if *capacity.get_ref() == 0 {
            return Err(self.error_at(
                capacity.span(),
                "a queue capacity must be at least 1",
                None,
            ));
        }
        Ok(())
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
        let (name, flow) = project.select_flow(None).unwrap();
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
        assert!(rendered.contains("declared components: numbers, printer"));
    }

    #[test]
    fn a_zero_capacity_is_refused() {
        let text = GOOD.replace("[flows.main]", "[flows.main]\nqueue-capacity = 0");
        assert!(message(&text).contains("at least 1"));
    }

    #[test]
    fn the_flow_to_run_must_be_clear() {
        let project = parse(GOOD).unwrap();
        assert!(matches!(
            project.select_flow(Some("other")),
            Err(ManifestError::NoSuchFlow { .. })
        ));
        let two = format!("{GOOD}\n[flows.second]\nnodes = [\"numbers\"]\n");
        let project = parse(&two).unwrap();
        assert!(matches!(
            project.select_flow(None),
            Err(ManifestError::WhichFlow { .. })
        ));
    }
}
