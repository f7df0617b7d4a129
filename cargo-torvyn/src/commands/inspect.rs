//! `cargo torvyn inspect`: what a component or an artifact is, without running it.

use std::path::Path;

use clap::Args;
use miette::{IntoDiagnostic, WrapErr, miette};
use oci_client::manifest::OciImageManifest;
use serde_json::{Value, json};
use torvyn_runtime::{OCI_SCHEME, Role};

use super::live;
use crate::cli::{MessageFormat, OutputArgs};
use crate::oci::registry::{self, Remote};
use crate::oci::{self, Kind, PipelineConfig, WasmConfig, layout};
use crate::output::{self, counted};

/// Show what a component or an OCI artifact is: its role, contract, imports, exports
/// and the capabilities it asks for; or what a running host's flows are doing
///
/// TARGET is a `.wasm` file, an OCI image layout folder (as `pack` writes), an `oci://`
/// reference, of which only the manifest and config are fetched, or the `http://` address
/// of a running host (`cargo torvyn run --listen ADDR`), whose flows are shown as they
/// stand: topology, counts, queue depths, time blocked and recent errors.
#[derive(Debug, Args)]
pub(crate) struct InspectCommand {
    /// A `.wasm` file, an image layout folder, oci://host/repository[:tag|@digest], or
    /// http://HOST:PORT of a running host
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
        if self.target.starts_with("http://") {
            let flows = live::flows(&live::base(&self.target))?;
            match self.output.message_format {
                MessageFormat::Json => output::json(
                    MessageFormat::Json,
                    &json!({ "reason": "inspected", "kind": "host", "flows": flows }),
                ),
                MessageFormat::Human => print_host(&flows),
            }
            return Ok(());
        }
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
        "world": role.map(|r| r.world(&info.exports)),
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
            let role = Role::from_exports(&component.exports).ok();
            report["world"] = json!(role.map(|r| r.world(&component.exports)));
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
const FIELDS: [&str; 15] = [
    "kind",
    "digest",
    "size",
    "role",
    "world",
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
                                "  {} {} ({}){}",
                                layer["media_type"].as_str().unwrap_or_default(),
                                layer["digest"].as_str().unwrap_or_default(),
                                counted(layer["size"].as_u64().unwrap_or_default(), "byte"),
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

/// A running host's flows as text on stdout: per flow its state, then a line per node and
/// per queue, then its latest errors.
fn print_host(flows: &[Value]) {
    if flows.is_empty() {
        println!("no flow has published figures yet");
    }
    for flow in flows {
        let report = &flow["report"];
        let state = match (report["outcome"].as_str(), flow["paused"].as_bool()) {
            (Some("running"), Some(true)) => "paused",
            (outcome, _) => outcome.unwrap_or("unknown"),
        };
        println!(
            "flow {}: {state} after {:.1}s, {} emitted, {} delivered",
            flow["name"].as_str().unwrap_or_default(),
            report["duration"].as_f64().unwrap_or_default(),
            report["emitted"],
            report["delivered"]
        );
        if let Some(node) = flow["in_call"]["node"].as_str() {
            let seconds = flow["in_call"]["for_ms"].as_f64().unwrap_or_default() / 1000.0;
            println!("  inside a call of node {node} for {seconds:.1}s, since these figures");
        }
        for node in report["nodes"].as_array().into_iter().flatten() {
            println!(
                "  node {} ({}): {} received, {} emitted, {}, {}, {}, {:.3}s busy",
                node["name"].as_str().unwrap_or_default(),
                node["role"].as_str().unwrap_or_default(),
                node["received"],
                node["emitted"],
                counted(node["errors"].as_u64().unwrap_or_default(), "error"),
                counted(node["restarts"].as_u64().unwrap_or_default(), "restart"),
                counted(node["calls"]["calls"].as_u64().unwrap_or_default(), "call"),
                node["calls"]["busy_ns"].as_f64().unwrap_or_default() / 1e9,
            );
        }
        for edge in report["edges"].as_array().into_iter().flatten() {
            println!(
                "  queue {} -> {}: {}/{} held, {:.3}s blocked, {} dropped",
                edge["from"].as_str().unwrap_or_default(),
                edge["to"].as_str().unwrap_or_default(),
                edge["depth"],
                edge["capacity"],
                edge["blocked_ns"].as_f64().unwrap_or_default() / 1e9,
                edge["dropped"]
            );
        }
        for error in report["recent_errors"].as_array().into_iter().flatten() {
            let at = error["sequence"]
                .as_u64()
                .map(|s| format!(" on element {s}"))
                .unwrap_or_default();
            println!(
                "  error at {}{at}: {}",
                error["node"].as_str().unwrap_or_default(),
                error["error"].as_str().unwrap_or_default()
            );
        }
    }
}
