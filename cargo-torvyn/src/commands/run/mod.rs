//! `cargo torvyn run`: builds what is stale and runs a flow to its end.

mod events;
mod report;
mod signals;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use miette::{Context, IntoDiagnostic};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use torvyn_runtime::{OCI_SCHEME, OtlpExporter, RunOptions, SinkType};

use self::events::EventLog;
use self::report::{report_failure, summarise};
use self::signals::stop_on_signal;
use crate::cli::{
    BuildArgs, Level, Listen, ManifestArgs, MessageFormat, ObservabilityArgs, OutputArgs,
    UNIX_SCHEME, WarningArgs,
};
use crate::output::{counted, status};

/// Build what is stale, then run flows of the project until their sources end
///
/// The flows run side by side, each in its own task. The sinks' output appears on stdout;
/// progress and a closing summary per flow on stderr, which accounts for every element.
/// Ctrl-C or SIGTERM stops the sources and drains the elements in flight through to the
/// sinks; a second signal aborts.
#[derive(Debug, Args)]
pub(crate) struct RunCommand {
    /// The flows to run [default: every flow of the project]; first, an
    /// oci://REFERENCE pulls that pipeline and runs it
    #[arg(value_name = "FLOW")]
    flows: Vec<String>,

    /// Stop each flow's sources after this many elements
    #[arg(long, value_name = "N")]
    limit: Option<u64>,

    /// Stop the sources after this long (e.g. `500ms`, `10s`, `2m`)
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::run_time)]
    timeout: Option<Duration>,

    /// Serve Prometheus `/metrics` and the inspection API (`/flows`) on this address
    /// while the flows run, e.g. `127.0.0.1:9464` (port 0 picks a free one), or on a Unix
    /// domain socket, `unix:PATH` (mode 0600: its owner's only) [default: the `listen`
    /// setting, else nowhere]
    #[arg(long, value_name = "ADDR", value_parser = crate::cli::listen)]
    listen: Option<Listen>,

    /// Once the flows have ended, keep serving their final figures on the `--listen`
    /// address until stopped (Ctrl-C or SIGTERM), so that they can be scraped
    #[arg(long)]
    serve_after: bool,

    /// Export the flows' metrics and the spans of traced elements (one in 1024, or every
    /// one at `--observability diagnostic`) to this OpenTelemetry collector, by OTLP over
    /// gRPC, e.g. `http://127.0.0.1:4317` [default: the `otlp-endpoint` setting, which
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` also sets, else none]
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,

    /// Also write every lifecycle event (flow started, paused, resumed, ended; component
    /// restarted; capability denied) to this file, as JSON lines
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

    /// Run again whenever Torvyn.toml or a component's sources change: the flows drain,
    /// what changed is built, and they start again; until stopped (Ctrl-C or SIGTERM)
    #[arg(long, conflicts_with_all = ["listen", "serve_after"])]
    watch: bool,

    #[command(flatten)]
    observability: ObservabilityArgs,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    warnings: WarningArgs,

    #[command(flatten)]
    build: BuildArgs,

    #[command(flatten)]
    output: OutputArgs,
}

impl RunCommand {
    pub(crate) fn exec(mut self) -> miette::Result<()> {
        if self
            .flows
            .first()
            .is_some_and(|f| f.starts_with(OCI_SCHEME))
        {
            if self.manifest.manifest_path.is_some() {
                miette::bail!("give a pipeline reference or --manifest-path, not both");
            }
            if self.watch {
                miette::bail!("a pulled pipeline does not change: run it without --watch");
            }
            self.manifest.manifest_path = Some(self.flows.remove(0).into());
        }
        let settings = crate::settings::for_manifest(self.manifest.manifest_path.as_deref())?;
        // Where the level comes from, for the messages about it.
        let level_from = match self.observability.observability {
            Some(_) => "--observability".to_owned(),
            None => format!("the setting {}", settings.describe("observability")),
        };
        self.settle(&settings)?;
        let level = self.observability.observability.unwrap_or_default();
        if self.listen.is_some() && level == Level::Off {
            miette::bail!(
                "--listen serves what flows publish, and with observability `off` ({level_from}) they publish nothing"
            );
        }
        if level == Level::Diagnostic && self.otlp_endpoint.is_none() {
            miette::bail!(
                help = "give --otlp-endpoint URL to export the spans to a collector, or run \
                        `cargo torvyn trace FLOW` to see them",
                "observability `diagnostic` ({level_from}) traces every element, and `run` has nowhere to send the spans"
            );
        }
        if self.otlp_endpoint.is_some() && level == Level::Off {
            // The endpoint may come from a setting, meant for every run: `off` wins.
            status(
                "Warning",
                format!(
                    "not exporting to the OTLP endpoint: with observability `off` ({level_from}), flows record nothing to export"
                ),
            );
            self.otlp_endpoint = None;
        }
        let runtime = tokio::runtime::Runtime::new()
            .into_diagnostic()
            .wrap_err("cannot start the async runtime")?;
        if self.watch {
            return watch::watch(&self, &runtime);
        }
        let mut failures = self.round(&runtime, None)?;
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0).into()),
            n => {
                let first = failures.remove(0);
                Err(miette::Report::new(first).wrap_err(format!("{} failed", counted(n, "flow"))))
            }
        }
    }

    /// Fills in what the command line leaves to the settings: the observability level,
    /// the `--listen` address (not under `--watch`, which serves nothing, nor at
    /// observability `off`, when there is nothing to serve) and the OTLP endpoint.
    fn settle(&mut self, settings: &crate::settings::Resolved) -> miette::Result<()> {
        let level = self.observability.level(settings);
        self.observability.observability = Some(level);
        if self.listen.is_none()
            && let Some(listen) = settings.listen()?
        {
            let why = match (self.watch, level) {
                (true, _) => Some("`--watch` restarts the flows, and serves nothing"),
                (false, Level::Off) => Some("with observability `off`, flows publish nothing"),
                (false, _) => None,
            };
            match why {
                Some(why) => status(
                    "Warning",
                    format!("not serving on {listen} (the `listen` setting): {why}"),
                ),
                None => self.listen = Some(listen),
            }
        }
        if self.serve_after && self.listen.is_none() {
            miette::bail!(
                help = "give --listen ADDR, or set `listen`",
                "--serve-after keeps serving on the listen address, and none is given"
            );
        }
        if self.otlp_endpoint.is_none() {
            self.otlp_endpoint = settings.settings().otlp_endpoint.clone();
        }
        Ok(())
    }

    /// Builds what is stale and runs the flows to their end, or until their sources are
    /// stopped: the flows that failed, each reported, as every flow's end is, when it
    /// comes. Under `--watch`, `watched` gives what stops them and the events log of every
    /// round; otherwise the first Ctrl-C or SIGTERM stops them.
    fn round(
        &self,
        runtime: &tokio::runtime::Runtime,
        watched: Option<(&CancellationToken, &Arc<EventLog>)>,
    ) -> miette::Result<Vec<torvyn_runtime::FlowError>> {
        let format = self.output.message_format;
        let project = super::link::torvyn_project(&self.manifest, &self.warnings, format, "run")?;
        let flows = project.select_flows(&self.flows)?;
        if format == MessageFormat::Json
            && let Some(sink) = stdout_sink(&project, &flows)
        {
            miette::bail!(
                help = "run without --message-format json: the report is on standard error",
                "--message-format json writes to standard output, where sink `{sink}` writes its elements"
            );
        }
        let (host, specs) = super::link::link_flows(&project, &flows, self.build.release)?;
        let (cancel, events) = match watched {
            // Stopped while building: nothing to start.
            Some((stop, _)) if stop.is_cancelled() => return Ok(Vec::new()),
            Some((stop, events)) => (stop.clone(), events.clone()),
            None => {
                let events = Arc::new(EventLog::create(self.events.as_deref())?);
                // Signals are watched from here on: one that comes before the flows start
                // stops them before their first element.
                let cancel = CancellationToken::new();
                runtime.block_on(async { stop_on_signal(cancel.clone()) })?;
                (cancel, events)
            }
        };

        let listed: Vec<String> = flows.iter().map(|(name, _)| format!("`{name}`")).collect();
        let noun = if listed.len() == 1 { "flow" } else { "flows" };
        status(
            "Running",
            format!(
                "{noun} {} of {}",
                listed.join(", "),
                crate::cargo::relative(project.path()).display()
            ),
        );
        let mut options = RunOptions {
            limit: self.limit,
            timeout: self.timeout,
            cancel: cancel.clone(),
            measure: false,
            observability: self.observability.observability.unwrap_or_default().into(),
            spans: None,
            events: Some(events.clone()),
        };
        runtime.block_on(async {
            let mut served = None;
            if let Some(listen) = &self.listen {
                let at = serve(&host, listen).await?;
                status("Serving", format!("{at}/metrics and {at}/flows"));
                served = Some(at);
            }
            let exporter = match &self.otlp_endpoint {
                Some(endpoint) => {
                    let exporter = host.export_otlp(endpoint)?;
                    options.spans = Some(exporter.spans());
                    status(
                        "Exporting",
                        format!("metrics and spans to {endpoint} (OTLP)"),
                    );
                    Some(exporter)
                }
                None => None,
            };
            let mut running = JoinSet::new();
            for spec in specs {
                running.spawn(host.start(spec, options.clone()).join());
            }
            // The flows hold what they need; the exporter's span queue closes with them.
            drop(options);
            let mut failures = Vec::new();
            while let Some(ended) = running.join_next().await {
                match ended {
                    Ok(Ok(report)) => summarise(&report, format),
                    Ok(Err(error)) => {
                        report_failure(&error, format);
                        failures.push(error);
                    }
                    Err(join) => std::panic::resume_unwind(join.into_panic()),
                }
            }
            if let Some(exporter) = exporter {
                exported(exporter).await;
            }
            if let Some(at) = served.filter(|_| self.serve_after) {
                status(
                    "Serving",
                    format!(
                        "the final figures at {at}/metrics and {at}/flows until stopped (Ctrl-C)"
                    ),
                );
                cancel.cancelled().await;
            }
            Ok::<_, miette::Report>(failures)
        })
    }
}

/// Sends what is left to the collector, and says what was sent and what was lost.
async fn exported(exporter: OtlpExporter) {
    let endpoint = exporter.endpoint().to_owned();
    let summary = exporter.shutdown().await;
    let metrics = match summary.metrics_error {
        None => " and the flows' metrics",
        Some(_) => "",
    };
    let spans = summary.spans_exported;
    let spans = counted(spans, "span");
    status("Exported", format!("{spans}{metrics} to {endpoint}"));
    if summary.spans_lost > 0 {
        let why = (summary.span_error.as_deref())
            .unwrap_or("the flows made them faster than they could be sent");
        let lost = counted(summary.spans_lost, "span");
        status("Warning", format!("{lost} not exported: {why}"));
    }
    if let Some(why) = summary.metrics_error {
        status(
            "Warning",
            format!("the flows' metrics were not exported: {why}"),
        );
    }
}

/// Serves the host's endpoints where `listen` says; where they are, as `top` and `inspect`
/// take it: `http://HOST:PORT` or `unix:PATH`.
async fn serve(host: &torvyn_runtime::Host, listen: &Listen) -> miette::Result<String> {
    match listen {
        Listen::Tcp(addr) => {
            let bound = (host.serve(*addr).await)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot listen on {addr}"))?;
            Ok(format!("http://{bound}"))
        }
        Listen::Unix(path) => {
            (host.serve_unix(path).await)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot listen on {}", path.display()))?;
            Ok(format!("{UNIX_SCHEME}{}", path.display()))
        }
    }
}

/// The first `stdout` sink of `flows`, if one writes to standard output.
fn stdout_sink<'a>(
    project: &'a torvyn_runtime::ProjectManifest,
    flows: &[(&str, &'a torvyn_runtime::FlowDecl)],
) -> Option<&'a str> {
    let sinks = &project.manifest().sinks;
    let nodes = flows.iter().flat_map(|(_, decl)| &decl.nodes);
    let mut names = nodes.map(|node| node.get_ref().as_str());
    names.find(|name| {
        sinks
            .get(*name)
            .is_some_and(|s| *s.kind.get_ref() == SinkType::Stdout)
    })
}
