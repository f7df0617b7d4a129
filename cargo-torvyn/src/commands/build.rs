//! `cargo torvyn build`: builds component crates to WebAssembly components.

use clap::Args;
use miette::bail;
use serde_json::json;

use crate::cargo;
use crate::cli::{BuildArgs, ManifestArgs, OutputArgs};
use crate::output;
use crate::project::{self, Project};

/// Build component crates for wasm32-wasip2 and check each is a component of its role
///
/// In a project with a Torvyn.toml, builds every component given as a crate folder;
/// otherwise builds the members of the Cargo workspace that are Torvyn components.
#[derive(Debug, Args)]
pub(crate) struct BuildCommand {
    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    build: BuildArgs,

    /// Build only these component packages
    #[arg(short, long = "package", value_name = "SPEC")]
    packages: Vec<String>,

    #[command(flatten)]
    output: OutputArgs,
}

impl BuildCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let mut crates = match project::locate(self.manifest.manifest_path.as_deref())? {
            Project::Torvyn(manifest) => {
                let names = manifest.manifest().components.keys().map(String::as_str);
                let sources = project::sources(&manifest, names)?;
                sources.crates.into_iter().map(|(_, c)| c).collect()
            }
            Project::Cargo(manifest) => cargo::workspace_components(&manifest)?,
        };
        if !self.packages.is_empty() {
            for wanted in &self.packages {
                if !crates.iter().any(|c| &c.package == wanted) {
                    bail!("`{wanted}` is not a component package of this project");
                }
            }
            crates.retain(|c| self.packages.contains(&c.package));
        }
        if crates.is_empty() {
            bail!(
                help = "a component crate builds a cdylib, depends on torvyn-sdk, or sets `[package.metadata.torvyn] role`",
                "no component crates to build"
            );
        }
        for built in cargo::build(&crates, self.build.release)? {
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
