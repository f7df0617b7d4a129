//! `cargo torvyn new`: scaffolds a component crate or a whole pipeline project.

use std::path::PathBuf;

use clap::Args;
use miette::bail;

use crate::output::status;
use crate::templates::{self, Template, Values};

/// Create a component crate or a pipeline project from a template
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
        let sdk = templates::sdk_dependency(self.scaffold.sdk_path.as_deref())?;
        let files = template.files(&Values {
            name: &name,
            sdk: &sdk,
            path: ".",
        })?;
        templates::write(dest, &files)?;
        status(
            "Created",
            format!("{} `{name}` in {}", template.folder(), dest.display()),
        );
        status(
            "Next",
            format!("cd {} && {}", dest.display(), template.next_step()),
        );
        Ok(())
    }
}
