//! `cargo torvyn check`: everything that can be checked without building: the manifest
//! and every WIT package of the project.

use std::path::{Path, PathBuf};

use clap::Args;
use miette::{Diagnostic, NamedSource, SourceSpan, bail};
use serde_json::json;
use torvyn_runtime::{ComponentSource, ManifestError, ProjectManifest};

use crate::cli::{ManifestArgs, OutputArgs, WarningArgs};
use crate::output::{self, counted, status};
use crate::project::{self, Project};

/// Check the manifest and every WIT package of the project, without building anything
///
/// Reports every problem at once, each with its file and line. The WIT packages are the
/// `wit/` folders of the project and of its component crates.
#[derive(Debug, Args)]
pub(crate) struct CheckCommand {
    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    warnings: WarningArgs,

    #[command(flatten)]
    output: OutputArgs,
}

/// A WIT package that does not parse, pointing at the place wit-parser names.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(
    code(torvyn::check::wit),
    help(
        "fix the WIT; the Component Model's WIT reference is at https://component-model.bytecodealliance.org/design/wit.html"
    )
)]
struct WitError {
    message: String,
    #[source_code]
    source_code: Option<NamedSource<String>>,
    #[label("here")]
    span: Option<SourceSpan>,
}

impl CheckCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let format = self.output.message_format;
        let mut problems: Vec<miette::Report> = Vec::new();
        let mut wit_dirs = Vec::new();
        let mut warnings = 0;
        match project::locate(self.manifest.manifest_path.as_deref()) {
            Ok(Project::Torvyn(project)) => {
                warnings = project::warn(&project, &self.warnings, format)?;
                let missing = torvyn_runtime::connector_problems(&project);
                problems.extend(missing.into_iter().map(miette::Report::new));
                wit_dirs.push(project.dir().join("wit"));
                wit_dirs.extend(crate_dirs(&project).map(|dir| dir.join("wit")));
            }
            Ok(Project::Cargo(workspace)) => {
                let root = workspace.parent().unwrap_or(Path::new("."));
                wit_dirs.push(root.join("wit"));
                let members = crate::cargo::workspace_components(&workspace)?;
                let metadata = crate::cargo::metadata(&workspace)?;
                for package in metadata.workspace_packages() {
                    if members.iter().any(|m| m.id == package.id)
                        && let Some(dir) = package.manifest_path.parent()
                    {
                        wit_dirs.push(dir.join("wit").into());
                    }
                }
            }
            Err(error) => {
                match error.downcast::<ManifestError>() {
                    Ok(ManifestError::Several { problems: several }) => {
                        problems.extend(several.into_iter().map(miette::Report::new));
                    }
                    Ok(other) => problems.push(miette::Report::new(other)),
                    Err(other) => return Err(other),
                }
                // The manifest is broken, but the WIT beside it can still be checked.
                if let Some(manifest) =
                    project::torvyn_manifest(self.manifest.manifest_path.as_deref())
                {
                    wit_dirs.push(manifest.parent().unwrap_or(Path::new(".")).join("wit"));
                }
            }
        }
        wit_dirs.sort();
        wit_dirs.dedup();
        let mut packages = 0;
        for dir in wit_dirs.iter().filter(|dir| dir.is_dir()) {
            let mut resolve = wit_parser::Resolve::default();
            match resolve.push_dir(dir) {
                Ok(_) => packages += 1,
                Err(error) => {
                    let rendered = resolve.render_error(&error);
                    problems.push(miette::Report::new(wit_error(&rendered)));
                }
            }
        }
        for problem in &problems {
            eprintln!("{problem:?}");
            output::json(
                format,
                &json!({ "reason": "check-problem", "message": problem.to_string(), "rendered": format!("{problem:?}") }),
            );
        }
        if !problems.is_empty() {
            bail!("{} found", counted(problems.len(), "problem"));
        }
        let warned = match warnings {
            0 => String::new(),
            n => format!(", {}", counted(n, "warning")),
        };
        status(
            "Checked",
            format!(
                "the manifest and {}: no problems{warned}",
                counted(packages, "WIT package")
            ),
        );
        output::json(
            format,
            &json!({ "reason": "check-passed", "wit_packages": packages, "warnings": warnings }),
        );
        Ok(())
    }
}

/// The folders of the component crates a project names.
fn crate_dirs(project: &ProjectManifest) -> impl Iterator<Item = PathBuf> + '_ {
    let components = project.manifest().components.values();
    components.filter_map(|decl| match project.source_of(decl) {
        ComponentSource::Crate(dir) => Some(dir),
        _ => None,
    })
}

/// wit-parser's rendered error as a diagnostic: its message, and its
/// `--> FILE:LINE:COLUMN` turned into a label on the file.
fn wit_error(rendered: &str) -> WitError {
    let message = rendered.lines().next().unwrap_or_default().to_owned();
    let located = rendered.lines().find_map(|line| {
        let place = line.trim().strip_prefix("--> ")?;
        let mut parts = place.rsplitn(3, ':');
        let column: usize = parts.next()?.parse().ok()?;
        let line: usize = parts.next()?.parse().ok()?;
        let file = parts.next()?;
        let text = std::fs::read_to_string(file).ok()?;
        let start: usize = text
            .lines()
            .take(line - 1)
            .map(|l| l.len() + 1)
            .sum::<usize>()
            + column
            - 1;
        let width = text[start..]
            .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(0)
            .max(1);
        Some((
            NamedSource::new(file, text),
            SourceSpan::from(start..start + width),
        ))
    });
    match located {
        Some((source, span)) => WitError {
            message,
            source_code: Some(source),
            span: Some(span),
        },
        None => WitError {
            message: rendered.to_owned(),
            source_code: None,
            span: None,
        },
    }
}
