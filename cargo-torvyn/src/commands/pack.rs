//! `cargo torvyn pack`: components and pipelines as OCI artifacts in image layouts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use miette::{IntoDiagnostic, WrapErr, bail, miette};
use oci_client::client::{Config, ImageLayer};
use serde_json::json;
use torvyn_runtime::{MANIFEST_FILE, ProjectManifest, Role};

use crate::cargo::{self, ComponentCrate};
use crate::cli::{BuildArgs, ManifestArgs, OutputArgs};
use crate::oci::{
    self, Artifact, Kind, PipelineConfig, WasmComponent, WasmConfig, annotation, layout,
};
use crate::output::{self, status};
use crate::project::{self, Project};

/// Build what is stale, then package components (or the whole pipeline) as OCI artifacts
///
/// Each artifact is written as an OCI image layout folder, by default `torvyn/oci/NAME`
/// in Cargo's target folder (`CARGO_TARGET_DIR` applies), which `publish --from` can push
/// later. A
/// component follows the CNCF Wasm OCI artifact layout (config
/// `application/vnd.wasm.config.v0+json`, one `application/wasm` layer) and is annotated
/// with its version, source, creation time, role, contract and the capabilities it asks
/// for. `--pipeline` packs the project's Torvyn.toml, with every component pinned by
/// digest, together with the components. Packing unchanged components again gives the
/// same digest.
#[derive(Debug, Args)]
pub(crate) struct PackCommand {
    #[command(flatten)]
    select: PackArgs,

    /// Write the image layout to this folder (when one artifact is packed)
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,

    #[command(flatten)]
    format: OutputArgs,
}

/// What to pack.
#[derive(Debug, Clone, Args)]
pub(crate) struct PackArgs {
    /// The components to pack: names in Torvyn.toml, or packages of a Cargo workspace
    /// [default: every component]
    #[arg(value_name = "COMPONENT")]
    components: Vec<String>,

    /// Pack the whole project: its Torvyn.toml, with components pinned by digest, and
    /// every component
    #[arg(long, conflicts_with = "components")]
    pipeline: bool,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    build: BuildArgs,
}

/// An artifact made, and the layout it goes to unless told otherwise.
pub(crate) struct Packed {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) layout: PathBuf,
    pub(crate) artifact: Artifact,
}

impl PackCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let packed = self.select.pack()?;
        if self.output.is_some() && packed.len() > 1 {
            bail!(
                help = "name one component, or leave out --output",
                "--output takes one artifact, and {} were packed",
                packed.len()
            );
        }
        for Packed {
            name,
            kind,
            layout,
            artifact,
        } in packed
        {
            let layout = self.output.clone().unwrap_or(layout);
            let version = artifact.annotation(annotation::VERSION);
            layout::write(&layout, &artifact, version)?;
            status(
                "Packed",
                format!(
                    "{} `{name}` ({}) into {}",
                    kind.name(),
                    artifact.digest,
                    layout.display()
                ),
            );
            output::json(
                self.format.message_format,
                &json!({
                    "reason": "packed",
                    "name": name,
                    "kind": kind.name(),
                    "digest": artifact.digest,
                    "layout": layout,
                }),
            );
        }
        Ok(())
    }
}

impl PackArgs {
    /// Builds what is stale and makes the artifacts asked for.
    pub(crate) fn pack(&self) -> miette::Result<Vec<Packed>> {
        match project::locate(self.manifest.manifest_path.as_deref())? {
            Project::Torvyn(project) if self.pipeline => {
                Ok(vec![pack_pipeline(&project, self.build.release)?])
            }
            Project::Torvyn(project) => self.pack_project_components(&project),
            Project::Cargo(_) if self.pipeline => bail!(
                help = "create one with `cargo torvyn new NAME --template pipeline`",
                "--pipeline packs a project with a Torvyn.toml, and none was found"
            ),
            Project::Cargo(manifest) => self.pack_crates(&manifest),
        }
    }

    fn pack_project_components(&self, project: &ProjectManifest) -> miette::Result<Vec<Packed>> {
        let declared = &project.manifest().components;
        for name in &self.components {
            if !declared.contains_key(name) {
                let known = declared.keys().cloned().collect::<Vec<_>>().join(", ");
                bail!("no component `{name}` in {MANIFEST_FILE} (it has {known})");
            }
        }
        let names: Vec<&str> = if self.components.is_empty() {
            declared.keys().map(String::as_str).collect()
        } else {
            self.components.iter().map(String::as_str).collect()
        };
        let resolved = project::components(project, names, self.build.release)?;
        let project_version = project.manifest().project.version.as_deref();
        (resolved.into_iter())
            .map(|(name, component)| {
                let about = About {
                    version: (component.from_crate.as_ref())
                        .map(|c| c.version.as_str())
                        .or(project_version),
                    source: component
                        .from_crate
                        .as_ref()
                        .and_then(|c| c.repository.as_deref()),
                };
                let layout = layouts_in(project.dir())?.join(&name);
                let artifact = component_artifact(&name, &component.wasm, &about, &layout)?;
                Ok(Packed {
                    name,
                    kind: Kind::Component,
                    layout,
                    artifact,
                })
            })
            .collect()
    }

    fn pack_crates(&self, manifest: &Path) -> miette::Result<Vec<Packed>> {
        let mut crates = cargo::workspace_components(manifest)?;
        for wanted in &self.components {
            if !crates.iter().any(|c| &c.package == wanted) {
                bail!("`{wanted}` is not a component package of this project");
            }
        }
        if !self.components.is_empty() {
            crates.retain(|c| self.components.contains(&c.package));
        }
        if crates.is_empty() {
            bail!("no component crates to pack");
        }
        let built = cargo::build(&crates, self.build.release)?;
        (crates.iter())
            .map(|krate: &ComponentCrate| {
                let Some(built) = built.iter().find(|b| b.package == krate.package) else {
                    bail!("`{}` was not built", krate.package);
                };
                let about = About {
                    version: Some(&krate.version),
                    source: krate.repository.as_deref(),
                };
                let root = krate.workspace_manifest.parent().unwrap_or(Path::new("."));
                let layout = layouts_in(root)?.join(&krate.package);
                let artifact = component_artifact(&krate.package, &built.wasm, &about, &layout)?;
                Ok(Packed {
                    name: krate.package.clone(),
                    kind: Kind::Component,
                    layout,
                    artifact,
                })
            })
            .collect()
    }
}

/// Where the layouts of a project go by default: `torvyn/oci` in its target folder.
fn layouts_in(root: &Path) -> miette::Result<PathBuf> {
    Ok(cargo::target_dir(root)?.join("torvyn").join("oci"))
}

/// What the annotations say of where a component comes from.
struct About<'a> {
    version: Option<&'a str>,
    source: Option<&'a str>,
}

/// When the artifact about to be written to `layout` with these layers, made from the
/// files `inputs`, was made. The same inputs give the same time, so packing or publishing
/// them again gives the same digest: `SOURCE_DATE_EPOCH` when set; else the time recorded
/// in the layout if it held the same layers; else the time the newest input was written.
fn created(layout: &Path, layer_digests: &[&str], inputs: &[&Path]) -> miette::Result<String> {
    let format = |time: chrono::DateTime<chrono::Utc>| {
        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    if let Some(time) = source_date_epoch(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())? {
        return Ok(format(time));
    }
    let target = layout::Target {
        dir: layout.to_owned(),
        ref_name: None,
    };
    if let Ok(previous) = layout::read(&target) {
        let same = previous.manifest.layers.iter().map(|l| &*l.digest);
        if same.eq(layer_digests.iter().copied())
            && let Some(created) = previous.annotation(annotation::CREATED)
        {
            return Ok(created.to_owned());
        }
    }
    let written = (inputs.iter())
        .filter_map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .max();
    Ok(format(written.map_or_else(chrono::Utc::now, Into::into)))
}

/// The time `SOURCE_DATE_EPOCH` (seconds since 1970) names, if it is set.
fn source_date_epoch(value: Option<&str>) -> miette::Result<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(text) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let time =
        (text.trim().parse().ok()).and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    match time {
        Some(time) => Ok(Some(time)),
        None => bail!(
            help = "set it to a whole number of seconds since 1970-01-01 UTC, e.g. `$(git log -1 --format=%ct)`",
            "SOURCE_DATE_EPOCH is `{text}`, which is not a time"
        ),
    }
}

/// The standard annotations every artifact carries.
fn standard_annotations(created: &str, title: &str, about: &About<'_>) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        (annotation::CREATED.to_owned(), created.to_owned()),
        (annotation::TITLE.to_owned(), title.to_owned()),
    ]);
    if let Some(version) = about.version {
        annotations.insert(annotation::VERSION.to_owned(), version.to_owned());
    }
    if let Some(source) = about.source {
        annotations.insert(annotation::SOURCE.to_owned(), source.to_owned());
    }
    annotations
}

fn read_wasm(name: &str, path: &Path) -> miette::Result<Vec<u8>> {
    std::fs::read(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read component `{name}` at `{}`", path.display()))
}

/// A component as a CNCF Wasm OCI artifact.
fn component_artifact(
    name: &str,
    wasm_path: &Path,
    about: &About<'_>,
    layout: &Path,
) -> miette::Result<Artifact> {
    let wasm = read_wasm(name, wasm_path)?;
    let info = torvyn_runtime::inspect(&wasm)
        .map_err(|error| miette!("component `{name}` cannot be packed: {error}"))?;
    let role = Role::from_exports(&info.exports)
        .map_err(|error| miette!("component `{name}` cannot be packed: {error}"))?;
    let contract = (info.exports.iter())
        .find(|e| e.split('@').next() == Some(role.interface()))
        .cloned()
        .unwrap_or_else(|| role.interface().to_owned());
    let layer = wasm_layer(name, wasm);
    let layer_digest = layer.sha256_digest();
    let created = created(layout, &[&layer_digest], &[wasm_path])?;
    let config = WasmConfig {
        created: Some(created.clone()),
        author: None,
        architecture: Some("wasm".into()),
        os: Some("wasip2".into()),
        layer_digests: vec![layer_digest],
        component: Some(WasmComponent {
            exports: info.exports,
            imports: info.imports,
            target: None,
        }),
    };
    let mut annotations = standard_annotations(&created, name, about);
    annotations.insert(annotation::ROLE.into(), role.to_string());
    annotations.insert(annotation::CONTRACT.into(), contract);
    annotations.insert(annotation::CAPABILITIES.into(), info.capabilities.join(","));
    let config = Config {
        data: serde_json::to_vec(&config).expect("json").into(),
        media_type: oci::WASM_CONFIG_MEDIA_TYPE.into(),
        annotations: None,
    };
    Ok(Artifact::new(config, vec![layer], annotations))
}

/// A component's bytes as a layer, titled `NAME.wasm` so that tools which save layers as
/// files (oras) give it that name.
fn wasm_layer(name: &str, wasm: Vec<u8>) -> ImageLayer {
    let annotations = BTreeMap::from([
        (annotation::TITLE.to_owned(), format!("{name}.wasm")),
        (annotation::COMPONENT.to_owned(), name.to_owned()),
    ]);
    ImageLayer::new(wasm, oci::WASM_LAYER_MEDIA_TYPE.into(), Some(annotations))
}

/// The whole project: its Torvyn.toml with every component's `path` replaced by the
/// component's digest (and without `[tests]`, whose fixtures stay behind), then each
/// distinct component.
fn pack_pipeline(project: &ProjectManifest, release: bool) -> miette::Result<Packed> {
    let declared = &project.manifest().components;
    let resolved = project::components(project, declared.keys().map(String::as_str), release)?;
    let text = std::fs::read_to_string(project.path()).into_diagnostic()?;
    let mut table: toml::Table = toml::from_str(&text).into_diagnostic()?;
    table.remove("tests");
    let mut digests = BTreeMap::new();
    let mut layers: Vec<ImageLayer> = Vec::new();
    for (name, component) in &resolved {
        let wasm = read_wasm(name, &component.wasm)?;
        let digest = oci::digest(&wasm);
        if let Some(decl) = (table.get_mut("components"))
            .and_then(|c| c.get_mut(name))
            .and_then(|c| c.as_table_mut())
        {
            decl.insert("path".into(), toml::Value::String(digest.clone()));
            // The pinned component is what its build made; a puller builds nothing.
            decl.remove("build");
        }
        if !digests.values().any(|d| *d == digest) {
            layers.push(wasm_layer(name, wasm));
        }
        digests.insert(name.clone(), digest);
    }
    let pinned = toml::to_string(&table).into_diagnostic()?;
    // What a puller will load must load.
    ProjectManifest::parse(project.path(), pinned.clone())?;
    let toml_layer = ImageLayer::new(
        pinned.into_bytes(),
        oci::PIPELINE_MANIFEST_MEDIA_TYPE.into(),
        Some(BTreeMap::from([(
            annotation::TITLE.to_owned(),
            MANIFEST_FILE.to_owned(),
        )])),
    );
    layers.insert(0, toml_layer);

    let manifest = project.manifest();
    let name = manifest.project.name.get_ref().clone();
    let layout = layouts_in(project.dir())?.join(format!("{name}.pipeline"));
    let layer_digests: Vec<String> = layers.iter().map(ImageLayer::sha256_digest).collect();
    let inputs: Vec<&Path> = std::iter::once(project.path())
        .chain(resolved.values().map(|c| c.wasm.as_path()))
        .collect();
    let created = created(
        &layout,
        &layer_digests.iter().map(String::as_str).collect::<Vec<_>>(),
        &inputs,
    )?;
    let config = PipelineConfig {
        created: Some(created.clone()),
        components: digests,
        flows: manifest.flows.keys().cloned().collect(),
    };
    let config = Config {
        data: serde_json::to_vec(&config).expect("json").into(),
        media_type: oci::PIPELINE_CONFIG_MEDIA_TYPE.into(),
        annotations: None,
    };
    let about = About {
        version: manifest.project.version.as_deref(),
        source: None,
    };
    let annotations = standard_annotations(&created, &name, &about);
    Ok(Packed {
        name,
        kind: Kind::Pipeline,
        layout,
        artifact: Artifact::new(config, layers, annotations),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_date_epoch_is_a_time_or_a_diagnostic() {
        let time = source_date_epoch(Some("1700000000")).unwrap().unwrap();
        assert_eq!(time.to_rfc3339(), "2023-11-14T22:13:20+00:00");
        assert_eq!(source_date_epoch(None).unwrap(), None);
        assert_eq!(source_date_epoch(Some("")).unwrap(), None);
        let error = source_date_epoch(Some("yesterday")).unwrap_err();
        assert!(error.to_string().contains("not a time"), "{error}");
    }

    #[test]
    fn the_creation_time_is_that_of_the_inputs_not_of_the_clock() {
        if std::env::var_os("SOURCE_DATE_EPOCH").is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("c.wasm");
        let file = std::fs::File::create(&wasm).unwrap();
        let written = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
        file.set_modified(written).unwrap();
        let layout = dir.path().join("no-layout");
        let created = created(&layout, &["sha256:x"], &[&wasm]).unwrap();
        assert_eq!(created, "2020-09-13T12:26:40Z");
    }
}
