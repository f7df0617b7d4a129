//! `cargo torvyn init`: makes an existing folder a Torvyn project, as `cargo init` does for
//! `cargo new`, with the same templates as `new`.
//!
//! 1. Everything is planned first: the files of the template, and the edit of the Cargo
//!    workspace the crates join.
//! 2. Any file the plan would write that exists already refuses the whole plan, so a
//!    refused `init` changes nothing.
//! 3. Only then are the files written, and the workspace's `Cargo.toml` last, edited with
//!    `toml_edit` so that its comments and layout stay as they were.

use std::path::{Path, PathBuf};

use clap::Args;
use miette::{Context, IntoDiagnostic, bail, miette};
use toml_edit::{Array, DocumentMut, Item, Table, Value};
use torvyn_runtime::MANIFEST_FILE;

use super::new::ScaffoldArgs;
use crate::output::status;
use crate::project::CARGO_MANIFEST;
use crate::templates::{self, COMPONENTS_DIR, File, PIPELINE_COMPONENTS, Template, Values};

/// Make an existing folder a Torvyn project, from the same templates as `new`
///
/// Writes a Torvyn.toml and the template's crates into PATH: a pipeline's files as `new`
/// makes them, one component crate in `components/NAME`, named in the Torvyn.toml, or a
/// Python or JavaScript processor's files, which need no crate. The
/// crates join the Cargo workspace of PATH (or of a folder above it) as `members`; without
/// one, PATH gets a Cargo.toml that makes them a workspace. No file is ever overwritten: a
/// folder that is a Torvyn project already, or that holds a file the template would write,
/// is refused and left as it was.
#[derive(Debug, Args)]
pub(crate) struct InitCommand {
    /// The existing folder to make a project; its last part names the project or crate
    #[arg(value_name = "PATH", default_value = ".")]
    dest: PathBuf,

    #[command(flatten)]
    scaffold: ScaffoldArgs,
}

/// The file of paths git leaves out, which some templates bring.
const GITIGNORE: &str = ".gitignore";

/// A Cargo manifest to edit: where it is, and its text as `toml_edit` keeps it.
struct Workspace {
    manifest: PathBuf,
    document: DocumentMut,
}

impl InitCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let shown = self.dest.display();
        if !self.dest.is_dir() {
            bail!(
                help = "create a new project folder with `cargo torvyn new PATH`",
                "`{shown}` is not an existing folder"
            );
        }
        let dir = self.dest.canonicalize().into_diagnostic()?;
        let torvyn = dir.join(MANIFEST_FILE);
        if torvyn.exists() {
            bail!(
                help = "nothing was changed; add components and flows to its Torvyn.toml instead",
                "`{shown}` is a Torvyn project already: `{}` exists",
                torvyn.display()
            );
        }
        let template = self.scaffold.template;
        let name = templates::name_for(&dir, self.scaffold.name.as_deref())?;
        let sdk = templates::sdk_dependency(template, self.scaffold.sdk_path.as_deref())?;
        let folder = format!("{COMPONENTS_DIR}/{name}");
        let values = Values {
            name: &name,
            sdk: &sdk,
            path: &folder,
        };

        // 1. The plan: the files, and the crates the workspace gains.
        let (mut files, crates) = layout(template, &values)?;
        let mut workspace = find_workspace(&dir)?;
        let mut added = Vec::new();
        match &mut workspace {
            Some(workspace) => {
                let root = workspace.manifest.parent().unwrap_or(&dir).to_owned();
                for folder in &crates {
                    let member = member_path(&root, &dir.join(folder))?;
                    if add_member(workspace, &member)? {
                        added.push(format!("`{member}`"));
                    }
                }
            }
            None if !crates.is_empty() => files.push(templates::workspace_manifest(&values)?),
            None => {}
        }

        // 2. Nothing is overwritten; a `.gitignore` of the folder's own is kept as it is.
        let left_out = (dir.join(GITIGNORE).exists())
            .then(|| files.iter().position(|f| f.path == Path::new(GITIGNORE)))
            .flatten()
            .map(|at| files.remove(at));
        let taken: Vec<String> = (files.iter())
            .filter(|file| dir.join(&file.path).exists())
            .map(|file| format!("`{}`", file.path.display()))
            .collect();
        if !taken.is_empty() {
            bail!(
                help = "nothing was changed; move them away, or init another folder",
                "`{shown}` holds files the {} template would write: {}",
                template.folder(),
                taken.join(", ")
            );
        }

        // 3. The writes, the workspace's manifest last.
        templates::write(&dir, &files)?;
        status(
            "Created",
            format!("{} `{name}` in {shown}", template.folder()),
        );
        if let Some(template_gitignore) = left_out {
            let ignores: Vec<&str> = template_gitignore.text.lines().collect();
            status(
                "Note",
                format!(
                    "kept the folder's own {GITIGNORE}; the template would have it ignore {}",
                    ignores.join(", ")
                ),
            );
        }
        if let Some(workspace) = workspace.filter(|_| !added.is_empty()) {
            std::fs::write(&workspace.manifest, workspace.document.to_string())
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot write `{}`", workspace.manifest.display()))?;
            let manifest = workspace.manifest.display();
            status(
                "Added",
                format!("{} to the members of `{manifest}`", added.join(", ")),
            );
        }
        let next = template.next_step();
        if self.dest == Path::new(".") {
            status("Next", next);
        } else {
            status("Next", format!("cd {shown} && {next}"));
        }
        Ok(())
    }
}

/// The files `init` writes for `template`, and the crate folders among them.
///
/// A pipeline is laid out as `new` lays it out, less its `Cargo.toml`, which depends on
/// the workspace; a component's crate goes in `components/NAME`, and its Torvyn.toml and
/// tests stay at the top, naming it there; a component in another language is a project
/// with no crate, as `new` makes.
fn layout(template: Template, values: &Values<'_>) -> miette::Result<(Vec<File>, Vec<String>)> {
    let components = Path::new(COMPONENTS_DIR);
    if template.is_other_language() {
        return Ok((template.files(values)?, Vec::new()));
    }
    if template == Template::Pipeline {
        let mut files = template.files(values)?;
        files.retain(|file| file.path != Path::new(CARGO_MANIFEST));
        let crates = (PIPELINE_COMPONENTS.iter())
            .map(|(_, name)| format!("{COMPONENTS_DIR}/{name}"))
            .collect();
        return Ok((files, crates));
    }
    let files: Vec<File> = (template.files(values)?.into_iter())
        .map(|file| match templates::is_project_file(&file.path) {
            true => file,
            false => File {
                path: components.join(values.name).join(file.path),
                text: file.text,
            },
        })
        .collect();
    Ok((files, vec![values.path.to_owned()]))
}

/// The Cargo manifest the new crates join: the nearest one from `dir` upwards that has a
/// `[workspace]`, else `dir`'s own package manifest (which becomes a workspace), else
/// none.
fn find_workspace(dir: &Path) -> miette::Result<Option<Workspace>> {
    let mut own = None;
    for folder in dir.ancestors() {
        let manifest = folder.join(CARGO_MANIFEST);
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read `{}`", manifest.display()))?;
        let document: DocumentMut = text
            .parse()
            .into_diagnostic()
            .wrap_err_with(|| format!("`{}` is not valid TOML", manifest.display()))?;
        let workspace = Workspace { manifest, document };
        if workspace.document.contains_key("workspace") {
            return Ok(Some(workspace));
        }
        if folder == dir {
            own = Some(workspace);
        }
    }
    Ok(own)
}

/// `crate_dir` relative to the workspace `root`, as `members` writes it.
fn member_path(root: &Path, crate_dir: &Path) -> miette::Result<String> {
    let relative = crate_dir.strip_prefix(root).into_diagnostic()?;
    let parts: Option<Vec<&str>> = relative.iter().map(|part| part.to_str()).collect();
    let parts = parts.ok_or_else(|| miette!("`{}` is not UTF-8", relative.display()))?;
    Ok(parts.join("/"))
}

/// Adds `member` to the workspace's `members`, unless one of them (a glob such as
/// `components/*`) names it already; says whether it did. A new entry takes the layout
/// of the last one.
fn add_member(workspace: &mut Workspace, member: &str) -> miette::Result<bool> {
    let shown = workspace.manifest.display().to_string();
    let table = workspace
        .document
        .entry("workspace")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| miette!("`workspace` of `{shown}` is not a table"))?;
    let members = table
        .entry("members")
        .or_insert(Item::Value(Value::Array(Array::new())))
        .as_array_mut()
        .ok_or_else(|| miette!("`workspace.members` of `{shown}` is not an array"))?;
    if (members.iter())
        .filter_map(Value::as_str)
        .any(|pattern| matches_member(pattern, member))
    {
        return Ok(false);
    }
    // The last entry's indentation, without the comment that may stand before it.
    let indent = (members.iter().last())
        .and_then(|last| last.decor().prefix()?.as_str())
        .and_then(|prefix| prefix.rfind('\n').map(|at| prefix[at..].to_owned()));
    let mut value = Value::from(member);
    if let Some(indent) = indent {
        // A comment after the last entry stays with it, ahead of the new one.
        let trailing = members.trailing().as_str().unwrap_or_default().to_owned();
        let (comment, rest) = trailing.split_at(trailing.rfind('\n').unwrap_or(0));
        value.decor_mut().set_prefix(format!("{comment}{indent}"));
        members.set_trailing(rest);
    }
    members.push_formatted(value);
    Ok(true)
}

/// Whether `members` entry `pattern` names `member`: the same path, or a glob whose `*`
/// stands for any part of one folder name (what workspaces use; Cargo's other glob
/// characters are taken literally here, which at worst adds an entry Cargo already had).
fn matches_member(pattern: &str, member: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let member: Vec<&str> = member.split('/').collect();
    pattern.len() == member.len()
        && pattern
            .iter()
            .zip(&member)
            .all(|(p, m)| match p.split_once('*') {
                None => p == m,
                Some((prefix, suffix)) => {
                    m.len() >= prefix.len() + suffix.len()
                        && m.starts_with(prefix)
                        && m.ends_with(suffix)
                }
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_matched_by_path_or_glob() {
        assert!(matches_member("components/*", "components/sink"));
        assert!(matches_member("components/sink", "components/sink"));
        assert!(matches_member("crates/torvyn-*", "crates/torvyn-sink"));
        assert!(!matches_member("components/*", "other/sink"));
        assert!(!matches_member("*", "components/sink"));
    }

    #[test]
    fn a_member_is_added_keeping_the_layout() {
        let text =
            "# ours\n[workspace]\nmembers = [\n    \"a\", # the first\n    \"b\", # the last\n]\n";
        let mut workspace = Workspace {
            manifest: PathBuf::from("Cargo.toml"),
            document: text.parse().unwrap(),
        };
        assert!(add_member(&mut workspace, "components/c").unwrap());
        assert!(!add_member(&mut workspace, "b").unwrap());
        assert_eq!(
            workspace.document.to_string(),
            "# ours\n[workspace]\nmembers = [\n    \"a\", # the first\n    \"b\", # the last\n    \"components/c\",\n]\n"
        );
    }

    #[test]
    fn a_package_becomes_a_workspace() {
        let mut workspace = Workspace {
            manifest: PathBuf::from("Cargo.toml"),
            document: "[package]\nname = \"p\"\n".parse().unwrap(),
        };
        assert!(add_member(&mut workspace, "components/c").unwrap());
        let text = workspace.document.to_string();
        assert!(
            text.contains("[workspace]\nmembers = [\"components/c\"]"),
            "{text}"
        );
    }
}
