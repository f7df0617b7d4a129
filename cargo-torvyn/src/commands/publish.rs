//! `cargo torvyn publish`: pushes a component or pipeline to an OCI registry.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use miette::bail;
use serde_json::json;

use super::pack::{PackArgs, Packed};
use crate::cli::OutputArgs;
use crate::oci::registry::{self, Pushed, Remote};
use crate::oci::{Kind, annotation, layout};
use crate::output::{self, counted, status};

/// Pack a component (or the pipeline) and push it to an OCI registry
///
/// The reference is `host[:port]/repository[:tag]`; without a tag, the version packed is
/// the tag. Credentials come from the settings `registry.username` and `registry.password`
/// (TORVYN_REGISTRY_USERNAME, TORVYN_REGISTRY_PASSWORD), else from the Docker config and its
/// credential helpers (`docker login`). Registries on this machine are reached over plain
/// HTTP, others over HTTPS unless `--insecure` or the setting `registry.insecure` names them.
/// Publishing what the tag already holds pushes nothing.
#[derive(Debug, Args)]
pub(crate) struct PublishCommand {
    /// Where to push: host[:port]/repository[:tag]
    #[arg(value_name = "REFERENCE")]
    reference: String,

    #[command(flatten)]
    select: PackArgs,

    /// Push this OCI image layout (as `pack` writes) instead of packing now; DIR:REF picks
    /// the manifest with that ref name from a layout holding several
    #[arg(long, value_name = "DIR", conflicts_with_all = ["components", "pipeline"])]
    from: Option<PathBuf>,

    /// Allow plain HTTP to a registry on another machine (as the setting
    /// `registry.insecure` does for the registries it names)
    #[arg(long)]
    insecure: bool,

    /// Pack and say what would be pushed, without contacting the registry
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    output: OutputArgs,
}

impl PublishCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let Packed {
            name,
            kind,
            artifact,
            ..
        } = match &self.from {
            Some(dir) => {
                let target = layout::Target::parse(dir);
                let artifact = layout::read(&target)?;
                let kind = Kind::of(&artifact.manifest).map_err(|why| {
                    miette::miette!("`{}` holds no Torvyn artifact: {why}", dir.display())
                })?;
                let name = artifact.annotation(annotation::TITLE).unwrap_or("artifact");
                Packed {
                    name: name.to_owned(),
                    kind,
                    layout: dir.clone(),
                    artifact,
                }
            }
            None => match <[Packed; 1]>::try_from(self.select.pack()?) {
                Ok([packed]) => packed,
                Err(several) => {
                    let names: Vec<_> = several.iter().map(|p| format!("`{}`", p.name)).collect();
                    bail!(
                        help = "name the component to publish, or publish the whole project with --pipeline",
                        "publish pushes one artifact, and this project has {}: {}",
                        counted(names.len(), "component"),
                        names.join(", ")
                    );
                }
            },
        };

        let mut reference = registry::parse_reference(&self.reference)?;
        if reference.digest().is_some() {
            bail!(
                help = "push to a tag; the digest is printed once pushed",
                "`{}` names a digest, and a publish needs a tag",
                self.reference
            );
        }
        if !has_tag(&self.reference) {
            let tag = artifact.annotation(annotation::VERSION).unwrap_or("latest");
            reference = registry::parse_reference(&format!("{}:{tag}", self.reference))?;
        }
        let target = reference.whole();
        let size: usize = artifact.blobs().map(|(_, _, data)| data.len()).sum();

        if self.dry_run {
            status(
                "Would push",
                format!(
                    "{} `{name}` to {target} ({}, {}, {}); nothing was sent",
                    kind.name(),
                    artifact.digest,
                    counted(artifact.layers.len() + 1, "blob"),
                    counted(size, "byte"),
                ),
            );
            return Ok(());
        }

        let remote = Remote::new(reference, self.insecure)?;
        let progress = ProgressBar::new(size as u64).with_style(
            ProgressStyle::with_template("{msg:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        progress.set_message("Pushing");
        let pushed = registry::block_on(remote.push(&artifact, |bytes| progress.inc(bytes as u64)));
        progress.finish_and_clear();
        let pushed = pushed?;
        match pushed {
            Pushed::Unchanged => status(
                "Unchanged",
                format!(
                    "{target} already holds this {} ({}); nothing was pushed",
                    kind.name(),
                    artifact.digest
                ),
            ),
            Pushed::Pushed { blobs, skipped } => status(
                "Published",
                format!(
                    "{} `{name}` to {target} ({}; {skipped} of {} already there)",
                    kind.name(),
                    artifact.digest,
                    counted(blobs, "blob"),
                ),
            ),
        }
        output::json(
            self.output.message_format,
            &json!({
                "reason": "published",
                "name": name,
                "kind": kind.name(),
                "reference": target,
                "digest": artifact.digest,
                "pushed": pushed != Pushed::Unchanged,
            }),
        );
        Ok(())
    }
}

/// Whether a reference names a tag: a `:` after the last `/`.
fn has_tag(reference: &str) -> bool {
    let path = reference
        .rsplit_once('/')
        .map_or(reference, |(_, last)| last);
    path.contains(':')
}

#[cfg(test)]
mod tests {
    use super::has_tag;

    #[test]
    fn a_port_is_not_a_tag() {
        assert!(has_tag("localhost:5000/upper:1.0"));
        assert!(!has_tag("localhost:5000/upper"));
        assert!(!has_tag("localhost:5000/team/upper"));
        assert!(has_tag("ghcr.io/team/upper:latest"));
    }
}
