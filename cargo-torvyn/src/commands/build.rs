//! `cargo torvyn build`: builds component crates to WebAssembly components.

use clap::Args;
use miette::bail;
use serde_json::json;

use crate::cargo;
use crate::cli::{BuildArgs, ManifestArgs, OutputArgs};
use crate::output;
use crate::project::{self, Project};

/// Build components and check each is a component of its role
///
/// In a project with a Torvyn.toml, builds every component given as a crate folder (for
/// wasm32-wasip2) and runs the build command of every component that declares one in
/// `[components.NAME.build]` (when what it reads changed); otherwise builds the members of
/// the Cargo workspace that are Torvyn components.
#[derive(Debug, Args)]
pub(crate) struct BuildCommand {
    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    build: BuildArgs,

    /// Build only these component packages (or components with a build command, by name)
    #[arg(short, long = "package", value_name = "SPEC")]
    packages: Vec<String>,

    #[command(flatten)]
    output: OutputArgs,
}

impl BuildCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let (project, mut crates, mut commands) =
            match project::locate(self.manifest.manifest_path.as_deref())? {
                Project::Torvyn(manifest) => {
                    let names = manifest.manifest().components.keys().map(String::as_str);
                    let sources = project::sources(&manifest, names)?;
                    let crates = sources.crates.into_iter().map(|(_, c)| c).collect();
                    (Some(manifest), crates, sources.commands)
                }
                Project::Cargo(manifest) => {
                    (None, cargo::workspace_components(&manifest)?, Vec::new())
                }
            };
        if !self.packages.is_empty() {
            for wanted in &self.packages {
                if !crates.iter().any(|c| &c.package == wanted) && !commands.contains(wanted) {
                    bail!("`{wanted}` is not a component package of this project");
                }
            }
            crates.retain(|c| self.packages.contains(&c.package));
            commands.retain(|name| self.packages.contains(name));
        }
        if crates.is_empty() && commands.is_empty() {
            bail!(
                help = "a component crate builds a cdylib, depends on torvyn-sdk, or sets `[package.metadata.torvyn] role`; any other component declares `[components.NAME.build]`",
                "no components to build"
            );
        }
        let mut built = cargo::build(&crates, self.build.release)?;
        if let Some(project) = &project {
            for name in &commands {
                built.push(crate::command_build::build(project, name)?);
            }
        }
        for built in built {
            output::json(
                self.output.message_format,
                &json!({
                    "reason": "component-built",
                    "package": built.package,
                    "role": built.role,
                    "wasm": built.wasm,
                }),
            );
        }
        Ok(())
    }
}
