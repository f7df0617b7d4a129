//! `cargo torvyn inspect`: what a component or an artifact is, without running it.

use std::path::Path;

use clap::Args;
use miette::{IntoDiagnostic, WrapErr, miette};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde_json::{Value, json};
use torvyn_runtime::{ConnectorReport, OCI_SCHEME, Role};

use super::live;
use crate::cli::{MessageFormat, OutputArgs};
use crate::oci::registry::{self, Remote};
use crate::oci::{self, Kind, layout};
use crate::output::{self, counted, status};

/// Show what a component or an OCI artifact is: its role, contract, imports, exports
/// and the capabilities it asks for; or what a running host's flows are doing
///
/// TARGET is a `.wasm` file, an OCI image layout folder (as `pack` writes; `DIR:REF` picks
/// the manifest with that ref name from a layout holding several), an `oci://` reference,
/// of which only the manifest and config are fetched (and the component, when the config
/// does not record its exports and imports), or the `http://` address or `unix:` socket
/// of a running host (`cargo torvyn run --listen ADDR`), whose flows are shown as they stand: topology,
/// counts, queue depths, time blocked and recent errors.
#[derive(Debug, Args)]
pub(crate) struct InspectCommand {
    /// A `.wasm` file, an image layout folder (DIR or DIR:REF),
    /// oci://host/repository[:tag|@digest], or http://HOST:PORT or unix:PATH of a running
    /// host
    #[arg(value_name = "TARGET")]
    target: String,

    /// Allow plain HTTP to a registry on another machine (as the setting
    /// `registry.insecure` does for the registries it names)
    #[arg(long)]
    insecure: bool,

    #[command(flatten)]
    output: OutputArgs,
}

impl InspectCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        if live::is_host(&self.target) {
            let flows = live::flows(&live::base(&self.target)?)?;
            match self.output.message_format {
                MessageFormat::Json => output::json(
                    MessageFormat::Json,
                    &json!({ "reason": "inspected", "kind": "host", "flows": flows }),
                ),
                MessageFormat::Human => print_host(&flows),
            }
            return Ok(());
        }
        let layout = layout::Target::parse(Path::new(&self.target));
        let report = if self.target.starts_with(OCI_SCHEME) {
            let reference = registry::parse_reference(&self.target)?;
            let remote = Remote::new(reference, self.insecure)?;
            let (digest, manifest, config) = remote.describe()?;
            describe_artifact(&digest, &manifest, &config, |layer| {
                remote.fetch_blob(layer)
            })?
        } else if layout.dir.is_dir() {
            let artifact = layout::read(&layout)?;
            let layer = |_: &OciDescriptor| Ok(artifact.layers[0].data.to_vec());
            describe_artifact(
                &artifact.digest,
                &artifact.manifest,
                &artifact.config.data,
                layer,
            )?
        } else {
            let path = Path::new(&self.target);
            let wasm = match std::fs::read(path) {
                Ok(wasm) => wasm,
                // `HOST:PORT` names a running host to `top`; here it could be a file.
                Err(error) if live::base(&self.target).is_ok() => miette::bail!(
                    help = format!(
                        "for a running host at that address, give `http://{}`",
                        self.target
                    ),
                    "cannot read `{}`: {error}",
                    path.display()
                ),
                Err(error) => {
                    return Err(error)
                        .into_diagnostic()
                        .wrap_err_with(|| format!("cannot read `{}`", path.display()));
                }
            };
            describe_component(&wasm)?
        };
        if self.output.message_format == MessageFormat::Human {
            for note in report["notes"].as_array().into_iter().flatten() {
                status("Note", note.as_str().unwrap_or_default());
            }
            for warning in report["warnings"].as_array().into_iter().flatten() {
                status("Warning", warning.as_str().unwrap_or_default());
            }
        }
        match self.output.message_format {
            MessageFormat::Json => output::json(MessageFormat::Json, &report),
            MessageFormat::Human => print_human(&report),
        }
        Ok(())
    }
}

/// A component's bytes, as the host sees them.
fn describe_component(wasm: &[u8]) -> miette::Result<Value> {
    let mut report = json!({
        "reason": "inspected",
        "kind": "component",
        "digest": oci::digest(wasm),
        "size": wasm.len(),
    });
    read_component(&mut report, wasm)?;
    Ok(report)
}

/// Adds what the component `wasm` exports, imports and asks for to `report`.
fn read_component(report: &mut Value, wasm: &[u8]) -> miette::Result<()> {
    let info = torvyn_runtime::inspect(wasm)?;
    add_interfaces(report, &info.exports, &info.imports);
    report["capabilities"] = json!(info.capabilities);
    let warning = output::unversioned(&info.unversioned);
    report["warnings"] = json!(warning.map(|w| format!("the component {w}")).as_slice());
    Ok(())
}

/// Adds a component's role and world (which its exports tell), exports and imports to
/// `report`.
fn add_interfaces(report: &mut Value, exports: &[String], imports: &[String]) {
    let role = Role::from_exports(exports).ok();
    report["role"] = json!(role.map(|r| r.to_string()));
    report["world"] = json!(role.map(|r| r.world(exports)));
    report["exports"] = json!(exports);
    report["imports"] = json!(imports);
}

/// An artifact's manifest and config, read by the reader `run` uses. When a component's
/// config does not record its exports and imports, they are read from its layer, which
/// `layer` fetches.
fn describe_artifact(
    digest: &str,
    manifest: &OciImageManifest,
    config: &[u8],
    layer: impl FnOnce(&OciDescriptor) -> miette::Result<Vec<u8>>,
) -> miette::Result<Value> {
    let description = oci::config::describe(manifest, config)
        .map_err(|why| miette!("not a Torvyn artifact: {why}"))?;
    let mut notes = description.notes;
    let layers: Vec<Value> = (manifest.layers.iter())
        .map(|l| json!({"media_type": l.media_type, "digest": l.digest, "size": l.size, "annotations": l.annotations}))
        .collect();
    let mut report = json!({
        "reason": "inspected",
        "kind": description.kind.name(),
        "digest": digest,
        "config_media_type": manifest.config.media_type,
        "annotations": manifest.annotations,
        "layers": layers,
    });
    if let Some(pipeline) = description.pipeline {
        report["components"] = json!(pipeline.components);
        report["flows"] = json!(pipeline.flows);
    }
    if description.kind == Kind::Component {
        report["os"] = json!(description.os);
        let annotations = manifest.annotations.clone().unwrap_or_default();
        match description.component {
            Some(component) => {
                add_interfaces(&mut report, &component.exports, &component.imports);
                let capabilities = annotations.get(oci::annotation::CAPABILITIES);
                report["capabilities"] = json!(capabilities.map(|list| {
                    list.split(',')
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                }));
            }
            None => {
                let read =
                    layer(&manifest.layers[0]).and_then(|wasm| read_component(&mut report, &wasm));
                notes.push(match read {
                    Ok(()) => "the config does not record the component's exports and imports: \
                               they were read from its layer"
                        .to_owned(),
                    Err(error) => format!(
                        "the config does not record the component's exports and imports, and \
                         its layer cannot be read: {error}"
                    ),
                });
            }
        }
        if report["role"].is_null() {
            report["role"] = json!(annotations.get(oci::annotation::ROLE));
        }
    }
    report["notes"] = json!(notes);
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
    let component = report["kind"] == "component";
    for key in FIELDS.iter().filter(|k| **k != "reason") {
        let label = key.replace('_', " ");
        match &report[key] {
            Value::Null if component && matches!(*key, "exports" | "imports") => {
                println!("{label}: not recorded");
            }
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
            let connector = serde_json::from_value::<ConnectorReport>(node["connector"].clone());
            if let Ok(connector) = connector {
                let source = node["role"].as_str() == Some("source");
                println!(
                    "    {} connector: {}",
                    connector.kind,
                    output::connector_figures(source, &connector)
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_a_config_does_not_record_come_from_the_layer_or_are_not_recorded() {
        let artifact = oci::sample_artifact();
        let manifest = &artifact.manifest;
        let layer = |_: &OciDescriptor| Ok(b"\0asm not a component".to_vec());
        let report = describe_artifact(&artifact.digest, manifest, b"{}", layer).unwrap();
        assert_eq!(report["kind"], "component");
        assert!(report["exports"].is_null(), "{report}");
        let notes = report["notes"].to_string();
        assert!(notes.contains("its layer cannot be read"), "{notes}");

        let recorded = br#"{"component":{"exports":[],"imports":[]}}"#;
        let report = describe_artifact(&artifact.digest, manifest, recorded, |_| {
            panic!("the layer is fetched though the config records the interfaces")
        })
        .unwrap();
        assert_eq!(report["exports"], json!([]));
        assert_eq!(report["notes"], json!([]));
    }
}
