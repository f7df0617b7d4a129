//! `[components.NAME.build]`: how a component that is not a Rust crate (a Python or
//! JavaScript guest, say) is built, and the tools its build needs.
//!
//! ```toml
//! [components.shout]
//! path = "target/shout.wasm"            # what the build makes
//!
//! [components.shout.build]
//! command = "componentize-py -d wit -w transform componentize app -o target/shout.wasm"
//! watch = ["*.py", "wit/*.wit"]         # rebuilt when one of these changes
//! tools = ["pypi:componentize-py==0.25.1"]
//! ```
//!
//! The keys are those of Spin's `[component.NAME.build]` (`command` as one string,
//! `workdir`, `watch`); here `watch` also decides whether a build needs to run at all.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use super::{ComponentDecl, ComponentSource, ManifestError, ProjectManifest};

/// A `[components.NAME.build]` table: the command that makes the component's `path`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildDecl {
    /// Run by the platform's shell (`sh -c`) in `workdir`; it must write the component's
    /// `path`.
    pub command: Spanned<String>,
    /// The folder the command runs in, relative to the manifest (default: the manifest's
    /// folder).
    pub workdir: Option<Spanned<String>>,
    /// Globs of the files the build reads, relative to `workdir` (`*` does not match a
    /// leading `.`): the build reruns only when one of these files, the command, a tool or
    /// the output changed. Without them, or when they match no file, it reruns every time,
    /// since nothing says what it depends on.
    #[serde(default)]
    pub watch: Vec<Spanned<String>>,
    /// Tools the command runs, installed into the cache the first time and put first on
    /// its `PATH`.
    #[serde(default)]
    pub tools: Vec<Spanned<ToolSpec>>,
}

/// A tool a build installs from a package registry: `pypi:REQUIREMENT` (installed with
/// `pip` into a virtual environment) or `npm:PACKAGE[@VERSION]` (installed with `npm`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ToolSpec {
    /// Where the tool comes from.
    pub registry: ToolRegistry,
    /// What the registry's installer is given: `componentize-py==0.25.1`,
    /// `@bytecodealliance/componentize-js@0.23.0`.
    pub package: String,
}

/// The package registries a build tool may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolRegistry {
    /// The Python Package Index, through `python3 -m venv` and `pip`.
    PyPi,
    /// The npm registry, through `npm install`.
    Npm,
}

impl ToolRegistry {
    /// The prefix that names the registry in a [`ToolSpec`].
    pub fn prefix(self) -> &'static str {
        match self {
            ToolRegistry::PyPi => "pypi",
            ToolRegistry::Npm => "npm",
        }
    }
}

impl FromStr for ToolSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const FORMS: &str = "write `pypi:PACKAGE==VERSION` or `npm:PACKAGE@VERSION`";
        let (registry, package) = match text.split_once(':') {
            Some(("pypi", package)) => (ToolRegistry::PyPi, package),
            Some(("npm", package)) => (ToolRegistry::Npm, package),
            Some((other, _)) => {
                return Err(format!(
                    "`{other}` is not a registry build tools come from: {FORMS}"
                ));
            }
            None => return Err(format!("`{text}` names no registry: {FORMS}")),
        };
        // What follows is handed to pip or npm as one argument: a package of the registry,
        // never an option, several words, a local path or a URL, which would install
        // something else than the registry's package of that name.
        let plain = !package.is_empty()
            && !package.starts_with(['-', '.', '/', '~'])
            && !package.contains("..")
            && !package.contains(':')
            && !package.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plain {
            return Err(format!(
                "`{package}` is not a package of the registry: name one, with its version"
            ));
        }
        // A tool is installed once and kept: without a pinned version, which one a build
        // gets would depend on the day the cache was filled.
        let pinned = match registry {
            ToolRegistry::PyPi => package
                .split_once("==")
                .is_some_and(|(n, v)| !n.is_empty() && !v.is_empty() && !v.contains('*')),
            // `@scope/name@1.2.3` or `name@1.2.3`.
            ToolRegistry::Npm => (package.strip_prefix('@').unwrap_or(package))
                .split_once('@')
                .is_some_and(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit())),
        };
        if !pinned {
            return Err(format!(
                "`{package}` has no exact version: {FORMS}, as `pypi:componentize-py==0.25.1`"
            ));
        }
        Ok(ToolSpec {
            registry,
            package: package.to_owned(),
        })
    }
}

impl TryFrom<String> for ToolSpec {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for ToolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.registry.prefix(), self.package)
    }
}

impl ProjectManifest {
    /// The folder `build` runs in: its `workdir` below the manifest's folder, or that
    /// folder itself.
    pub fn build_dir(&self, build: &BuildDecl) -> PathBuf {
        match &build.workdir {
            Some(workdir) => self.dir().join(workdir.get_ref()),
            None => self.dir().to_owned(),
        }
    }

    /// The problems of component `name`'s `build` table: a build makes a `.wasm` file, so
    /// the component's `path` must name one; the command and the globs must say something.
    pub(super) fn check_build(
        &self,
        name: &str,
        decl: &ComponentDecl,
        keep: &mut impl FnMut(Result<(), ManifestError>),
    ) {
        let Some(build) = &decl.build else {
            return;
        };
        if !matches!(self.source_of(decl), ComponentSource::Wasm(_)) {
            keep(Err(self.error_at(
                decl.path.span(),
                format!("component `{name}` has a build command, so its `path` must name the `.wasm` file it makes"),
                Some("a crate folder is built with Cargo, and needs no `build` table".into()),
            )));
        }
        if build.command.get_ref().trim().is_empty() {
            keep(Err(self.error_at(
                build.command.span(),
                "the build command is empty",
                None,
            )));
        }
        for glob in &build.watch {
            if let Err(error) = glob::Pattern::new(glob.get_ref()) {
                keep(Err(self.error_at(
                    glob.span(),
                    format!("`{}` is not a glob: {error}", glob.get_ref()),
                    None,
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_names_its_registry_and_one_plain_package() {
        let tool: ToolSpec = "pypi:componentize-py==0.25.1".parse().unwrap();
        assert_eq!(tool.registry, ToolRegistry::PyPi);
        assert_eq!(tool.package, "componentize-py==0.25.1");
        let tool: ToolSpec = "npm:@bytecodealliance/componentize-js@0.23.0"
            .parse()
            .unwrap();
        assert_eq!(tool.registry, ToolRegistry::Npm);
        assert_eq!(
            tool.to_string(),
            "npm:@bytecodealliance/componentize-js@0.23.0"
        );
        for bad in [
            "componentize-py",
            "pypi:componentize-py",
            "pypi:componentize-py>=0.25",
            "pypi:x==0.*",
            "npm:@bytecodealliance/componentize-js",
            "npm:left-pad@latest",
            "npm:é",
            "cargo:x",
            "pypi:",
            "pypi:--index-url=x",
            "npm:a b",
            "pypi:.",
            "npm:./tool",
            "pypi:/abs",
            "npm:a/../../b",
            "pypi:git+https://example.com/x",
            "npm:file:../x",
        ] {
            assert!(bad.parse::<ToolSpec>().is_err(), "{bad}");
        }
    }
}
