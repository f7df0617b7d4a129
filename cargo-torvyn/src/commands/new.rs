//! `cargo torvyn new`: scaffolds a component crate or a whole pipeline project.

use std::path::{Path, PathBuf};

use clap::Args;
use miette::{IntoDiagnostic, bail};

use crate::output::status;
use crate::templates::{self, Template, Values};

/// Create a component crate or a project from a template
#[derive(Debug, Args)]
pub(crate) struct NewCommand {
    /// The folder to create, as `cargo new` takes it: a name, or a path whose last part
    /// names the crate or project
    #[arg(value_name = "PATH")]
    dest: PathBuf,

    #[command(flatten)]
    scaffold: ScaffoldArgs,
}

/// What `new` and `init` scaffold, and from what.
#[derive(Debug, Args)]
pub(crate) struct ScaffoldArgs {
    /// What to create
    #[arg(long, value_enum, default_value_t = Template::Pipeline)]
    pub(crate) template: Template,

    /// Name the crate or project this instead of the last part of PATH
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Depend on the torvyn-sdk crate at this path [default: the SDK of the Torvyn
    /// checkout this tool was built from, when it is still there; else the published crate]
    #[arg(long, value_name = "DIR", env = "TORVYN_SDK_PATH")]
    pub(crate) sdk_path: Option<PathBuf>,
}

impl NewCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let dest = &self.dest;
        let template = self.scaffold.template;
        let name = templates::name_for(dest, self.scaffold.name.as_deref())?;
        if dest.exists() {
            bail!(
                help = "make an existing folder a Torvyn project with `cargo torvyn init`",
                "`{}` already exists",
                dest.display()
            );
        }
        let sdk = templates::sdk_dependency(template, self.scaffold.sdk_path.as_deref())?;
        let mut files = template.files(&Values {
            name: &name,
            sdk: &sdk,
            path: ".",
        })?;
        // A crate made inside a project joins that project, rather than starting another
        // whose manifest would then be the one found from the crate's folder.
        let absolute = std::path::absolute(dest).into_diagnostic()?;
        let around = (absolute.parent()).and_then(torvyn_runtime::find_manifest);
        let joins = around.filter(|_| matches!(template, Template::Component(_)));
        if joins.is_some() {
            files.retain(|file| !templates::is_project_file(&file.path));
        }
        templates::write(dest, &files)?;
        status(
            "Created",
            format!("{} `{name}` in {}", template.folder(), dest.display()),
        );
        if let Some(manifest) = joins {
            let project = manifest.parent().unwrap_or(Path::new("."));
            let path = absolute.strip_prefix(project).unwrap_or(&absolute);
            status(
                "Note",
                format!(
                    "it lies in the project of `{}`, so it has no Torvyn.toml of its own; name it there:\n[components.{name}]\npath = \"{}\"",
                    manifest.display(),
                    path.display()
                ),
            );
            return Ok(());
        }
        status(
            "Next",
            format!("cd {} && {}", dest.display(), template.next_step()),
        );
        Ok(())
    }
}
