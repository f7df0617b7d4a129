//! `cargo torvyn run`: builds what is stale and runs a flow to its end.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use miette::{Context, IntoDiagnostic, bail};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use torvyn_runtime::{
    FlowReport, FlowSpec, Host, HostOptions, Outcome, RunOptions, StageSpec, plan_chain,
};

use crate::cli::{BuildArgs, ManifestArgs, MessageFormat, OutputArgs};
use crate::output::{self, status};
use crate::project::{self, Project};

/// Build what is stale, then run a flow of the project until its source ends
///
/// The sink's output appears on stdout; progress and the closing summary on stderr.
/// Ctrl-C stops the source and drains the elements in flight; a second Ctrl-C aborts.
#[derive(Debug, Args)]
pub(crate) struct RunCommand {
    /// The flow to run [default: the only flow of the project]
    flow: Option<String>,

    /// Stop the source after this many elements
    #[arg(long, value_name = "N")]
    limit: Option<u64>,

    /// Stop the source after this long (e.g. `500ms`, `10s`, `2m`)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    build: BuildArgs,

    #[command(flatten)]
    output: OutputArgs,
}

/// Where compiled components are cached: `$TORVYN_CACHE_DIR`, else the user's cache folder.
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("TORVYN_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|dir| dir.join("torvyn").join("compiled")))
}

impl RunCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let Project::Torvyn(project) = project::locate(self.manifest.manifest_path.as_deref())?
        else {
            bail!(
                help = "create one with `cargo torvyn new NAME --template pipeline`",
                "no Torvyn.toml found: `run` needs a project with flows"
            );
        };
        let (flow, decl) = project.select_flow(self.flow.as_deref())?;
        let names = decl.nodes.iter().map(|n| n.get_ref().as_str());
        let files = project::component_files(&project, names, self.build.release)?;

        let host = Host::new(HostOptions {
            cache_dir: cache_dir(),
        })?;
        let components = &project.manifest().components;
        let mut loaded = std::collections::BTreeMap::new();
        for (name, wasm) in &files {
            let component = host
                .load(wasm)
                .wrap_err_with(|| format!("cannot load component `{name}`"))?;
            let decl = &components[name];
            if let Some(role) = &decl.role
                && *role.get_ref() != component.role()
            {
                return Err(project
                    .error_at(
                        role.span(),
                        format!(
                            "component `{name}` is declared a {}, but it exports the {} interface",
                            role.get_ref(),
                            component.role()
                        ),
                        None,
                    )
                    .into());
            }
            loaded.insert(name.clone(), component);
        }
        let plan = plan_chain(&project, flow, decl, |name| loaded[name].role())?;
        let stages = plan
            .nodes
            .iter()
            .map(|node| StageSpec {
                name: node.name.clone(),
                component: loaded[&node.name].clone(),
                config: components[&node.name].config.clone(),
            })
            .collect();
        let spec = FlowSpec::new(flow, stages, plan.capacities);

        status(
            "Running",
            format!("flow `{flow}` of {}", project.path().display()),
        );
        let cancel = CancellationToken::new();
        let options = RunOptions {
            limit: self.limit,
            timeout: self.timeout,
            cancel: cancel.clone(),
        };
        let runtime = tokio::runtime::Runtime::new()
            .into_diagnostic()
            .wrap_err("cannot start the async runtime")?;
        let result = runtime.block_on(async {
            tokio::spawn(stop_on_interrupt(cancel));
            host.run(spec, options).await
        });
        let format = self.output.message_format;
        match result {
            Ok(report) => {
                summarise(&report, format);
                Ok(())
            }
            Err(error) => {
                output::json(
                    format,
                    &json!({
                        "reason": "flow-failed",
                        "flow": error.flow,
                        "stage": error.stage,
                        "sequence": error.sequence,
                        "message": error.to_string(),
                    }),
                );
                Err(error.into())
            }
        }
    }
}

/// First Ctrl-C: stop the source and drain. Second: exit at once.
async fn stop_on_interrupt(cancel: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    status(
        "Stopping",
        "draining elements in flight (Ctrl-C again to abort)",
    );
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(crate::EXIT_INTERRUPTED);
    }
}

fn summarise(report: &FlowReport, format: MessageFormat) {
    let seconds = report.duration.as_secs_f64();
    let rate = if seconds > 0.0 {
        report.delivered as f64 / seconds
    } else {
        0.0
    };
    let how = match report.outcome {
        Outcome::Completed => "completed".to_owned(),
        Outcome::LimitReached => format!("stopped after {} elements (--limit)", report.emitted),
        Outcome::TimedOut => "stopped at its time limit (--timeout)".to_owned(),
        Outcome::Cancelled => "stopped by Ctrl-C".to_owned(),
    };
    status(
        "Finished",
        format!(
            "flow `{}` {how}: {} elements delivered in {:.2?} ({rate:.0} elements/s)",
            report.flow, report.delivered, report.duration
        ),
    );
    let per_element = |total: u64| {
        if report.emitted == 0 {
            0.0
        } else {
            total as f64 / report.emitted as f64
        }
    };
    status(
        "Copies",
        format!(
            "{:.2} per element, {:.1} bytes per element ({} copies, {} bytes in all)",
            per_element(report.copies.copies),
            per_element(report.copies.bytes),
            report.copies.copies,
            report.copies.bytes
        ),
    );
    for stage in report.stages.iter().filter(|s| s.dropped > 0) {
        status(
            "Dropped",
            format!(
                "{} of {} elements at `{}` ({})",
                stage.dropped, stage.received, stage.name, stage.role
            ),
        );
    }
    if report.source_pauses > 0 || report.sink_pauses > 0 {
        status(
            "Backpressure",
            format!(
                "source paused {} times, sink asked to pause {} times",
                report.source_pauses, report.sink_pauses
            ),
        );
    }
    output::json(
        format,
        &json!({ "reason": "flow-finished", "report": report }),
    );
}
