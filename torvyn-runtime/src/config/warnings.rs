//! What a manifest may say but probably does not mean: each is a warning that `check`,
//! `link` and `run` print, and that `--deny-warnings` turns into a refusal.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use miette::{Diagnostic, LabeledSpan, Severity, SourceCode};

use super::{Access, Located, ProjectManifest};

/// Something allowed in a manifest that is likely a mistake, at its place in the file:
/// shown as a [`Located`] problem is, with a warning's severity and code.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ManifestWarning(Box<Located>);

impl Diagnostic for ManifestWarning {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("torvyn::manifest::warning"))
    }

    fn severity(&self) -> Option<Severity> {
        Some(Severity::Warning)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.0.labels()
    }
}

impl ProjectManifest {
    /// What this manifest allows that is likely a mistake: for now, a filesystem grant
    /// that reaches outside the project's folder (the host's root, `..`, an absolute path
    /// elsewhere, or a symbolic link that leads out).
    pub fn warnings(&self) -> Vec<ManifestWarning> {
        let project = absolute(self.dir());
        let mut warnings = Vec::new();
        for (name, decl) in &self.manifest.components {
            for dir in &decl.capabilities.filesystem {
                let grant = dir.get_ref();
                let host = absolute(&self.dir().join(&grant.path));
                if host.starts_with(&project) {
                    continue;
                }
                let access = match grant.access {
                    Access::Read => "read",
                    Access::ReadWrite => "read-write",
                };
                let what = if host.parent().is_none() {
                    "the host's whole filesystem".to_owned()
                } else {
                    format!("`{}`, outside the project's folder", host.display())
                };
                let help =
                    "grant a folder inside the project, or pass the data in through a source";
                warnings.push(ManifestWarning(Located::new(
                    &self.path,
                    &self.text,
                    dir.span(),
                    format!("component `{name}` is granted {access} access to {what}"),
                    Some(help.into()),
                )));
            }
        }
        warnings
    }
}

/// `path` made absolute with symbolic links resolved where it exists, and `..` taken
/// away by hand where it does not.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let joined = std::env::current_dir().map_or_else(|_| path.to_owned(), |cwd| cwd.join(path));
    let mut normal = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use crate::config::ProjectManifest;

    fn warnings(grants: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let text = format!(
            "[project]\nname = \"p\"\n[components.c]\npath = \"c.wasm\"\n[components.c.capabilities]\nfilesystem = [{grants}]\n[components.d]\npath = \"d.wasm\"\n[flows.main]\nnodes = [\"c\", \"d\"]\nedges = [{{ from = \"c\", to = \"d\" }}]\n"
        );
        let project = ProjectManifest::parse(&dir.path().join("Torvyn.toml"), text).unwrap();
        project.warnings().iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn grants_inside_the_project_pass() {
        assert!(warnings(r#"{ path = "data", access = "read-write" }"#).is_empty());
        assert!(warnings(r#"{ path = "data/../data/new", access = "read" }"#).is_empty());
    }

    #[test]
    fn grants_reaching_outside_the_project_are_named() {
        let root = warnings(r#"{ path = "/", access = "read-write" }"#);
        assert_eq!(
            root,
            ["component `c` is granted read-write access to the host's whole filesystem"]
        );
        let up = warnings(r#"{ path = "../outside", access = "read" }"#);
        assert_eq!(up.len(), 1);
        assert!(up[0].contains("outside the project's folder"), "{up:?}");
        let escaping = warnings(r#"{ path = "data/../..", access = "read" }"#);
        assert_eq!(escaping.len(), 1, "{escaping:?}");
    }
}
