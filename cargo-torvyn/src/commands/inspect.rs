//! `cargo torvyn inspect`: what a component or an artifact is, without running it.

use std::path::Path;

use clap::Args;
use miette::{IntoDiagnostic, WrapErr, miette};
use oci_client::manifest::OciImageManifest;
use serde_json::{Value, json};
use torvyn_runtime::{OCI_SCHEME, Role};

use crate::cli::{MessageFormat, OutputArgs};
use crate::oci::registry::{self, Remote};
use crate::oci::{self, Kind, PipelineConfig, WasmConfig, layout};
use crate::output;

/// Show what a component or an OCI artifact is: its role, contract, imports, exports
/// and the capabilities it asks for
///
/// TARGET is a `.wasm` file, an OCI image layout folder (as `pack` writes), or an
/// `oci://` reference, of which only the manifest and config are fetched.
#[derive(Debug, Args)]
pub(crate) struct InspectCommand {
    /// A `.wasm` file, an image layout folder, or oci://host/repository[:tag|@digest]
    #[arg(value_name = "TARGET")]
    target: String,

    /// Allow plain HTTP to a registry on another machine
    #[arg(long)]
    insecure: bool,

    #[command(flatten)]
    output: OutputArgs,
}

impl InspectCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let report = if self.target.starts_with(OCI_SCHEME) {
            let reference = registry::parse_reference(&self.target)?;
            let (digest, manifest, config) = Remote::new(reference, self.insecure)?.describe()?;
            describe_artifact(&digest, &manifest, &config)?
        } else if Path::new(&self.target).is_dir() {
            let artifact = layout::read(Path::new(&self.target))?;
            describe_artifact(&artifact.digest, &artifact.manifest, &artifact.config.data)?
        } else {
            let path = Path::new(&self.target);
            let wasm = std::fs::read(path)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read `{}`", path.display()))?;
            describe_component(&wasm)?
        };
        match self.output.message_format {
            MessageFormat::Json => output::json(MessageFormat::Json, &report),
            MessageFormat::Human => print_human(&report),
        }
        Ok(())
    }
}

/// A component's bytes, as the host sees them.
fn describe_component(wasm: &[u8]) -> miette::Result<Value> {
    let info = torvyn_runtime::inspect(wasm)?;
    let role = Role::from_exports(&info.exports).ok();
    Ok(json!({
        "reason": "inspected",
        "kind": "component",
        "digest": oci::digest(wasm),
        "size": wasm.len(),
        "role": role.map(|r| r.to_string()),
        "exports": info.exports,
        "imports": info.imports,
        "capabilities": info.capabilities,
    }))
}

/// An artifact's manifest and config.
fn describe_artifact(
    digest: &str,
    manifest: &OciImageManifest,
    config: &[u8],
) -> miette::Result<Value> {
    let kind = Kind::of(manifest).map_err(|why| miette!("not a Torvyn artifact: {why}"))?;
    let layers: Vec<Value> = (manifest.layers.iter())
        .map(|l| json!({"media_type": l.media_type, "digest": l.digest, "size": l.size, "annotations": l.annotations}))
        .collect();
    let mut report = json!({
        "reason": "inspected",
        "kind": kind.name(),
        "digest": digest,
        "config_media_type": manifest.config.media_type,
        "annotations": manifest.annotations,
        "layers": layers,
    });
    let bad_config =
        |error: serde_json::Error| miette!("the artifact's config is malformed: {error}");
    match kind {
        Kind::Component => {
            let config: WasmConfig = serde_json::from_slice(config).map_err(bad_config)?;
            let component = config.component.unwrap_or(oci::WasmComponent {
                exports: Vec::new(),
                imports: Vec::new(),
                target: None,
            });
            let annotations = manifest.annotations.clone().unwrap_or_default();
            let capabilities = annotations.get(oci::annotation::CAPABILITIES);
            report["role"] = json!(annotations.get(oci::annotation::ROLE));
            report["capabilities"] = json!(capabilities.map(|list| {
                list.split(',')
                    .filter(|c| !c.is_empty())
                    .collect::<Vec<_>>()
            }));
            report["os"] = json!(config.os);
            report["exports"] = json!(component.exports);
            report["imports"] = json!(component.imports);
        }
        Kind::Pipeline => {
            let config: PipelineConfig = serde_json::from_slice(config).map_err(bad_config)?;
            report["components"] = json!(config.components);
            report["flows"] = json!(config.flows);
        }
    }
    Ok(report)
}

/// The order fields are printed in.
const FIELDS: [&str; 14] = [
    "kind",
    "digest",
    "size",
    "role",
    "os",
    "config_media_type",
    "annotations",
    "exports",
    "imports",
    "capabilities",
    "flows",
    "components",
    "layers",
    "reason",
];

/// The report as `key: value` lines on stdout, lists one item a line.
fn print_human(report: &Value) {
    for key in FIELDS.iter().filter(|k| **k != "reason") {
        let label = key.replace('_', " ");
        match &report[key] {
            Value::Null => {}
            Value::String(text) => println!("{label}: {text}"),
            Value::Array(items) if items.is_empty() => println!("{label}: none"),
            Value::Array(items) => {
                println!("{label}:");
                for item in items {
                    match item {
                        Value::String(text) => println!("  {text}"),
                        // A layer: what it is, its digest and size, and its title.
                        layer => {
                            let title = &layer["annotations"][oci::annotation::TITLE];
                            println!(
                                "  {} {} ({} bytes){}",
                                layer["media_type"].as_str().unwrap_or_default(),
                                layer["digest"].as_str().unwrap_or_default(),
                                layer["size"],
                                title.as_str().map(|t| format!(" {t}")).unwrap_or_default()
                            );
                        }
                    }
                }
            }
            Value::Object(entries) => {
                println!("{label}:");
                for (name, entry) in entries {
                    println!("  {name}: {}", entry.as_str().unwrap_or_default());
                }
            }
            other => println!("{label}: {other}"),
        }
    }
}
