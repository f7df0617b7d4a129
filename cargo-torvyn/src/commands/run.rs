//! `cargo torvyn run`: builds what is stale and runs a flow to its end.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use miette::{Context, IntoDiagnostic};
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use torvyn_runtime::{
    Accounting, ConnectorReport, EventKind, EventSink, FlowError, FlowEvent, FlowReport,
    OCI_SCHEME, OtlpExporter, Outcome, Role, RunOptions, SinkType,
};

use crate::cli::{
    BuildArgs, Level, Listen, ManifestArgs, MessageFormat, ObservabilityArgs, OutputArgs,
    UNIX_SCHEME, WarningArgs,
};
use crate::output::{self, counted, status};

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
    /// domain socket, `unix:PATH` (mode 0600: its owner's only)
    #[arg(long, value_name = "ADDR", value_parser = crate::cli::listen)]
    listen: Option<Listen>,

    /// Once the flows have ended, keep serving their final figures on the `--listen`
    /// address until stopped (Ctrl-C or SIGTERM), so that they can be scraped
    #[arg(long, requires = "listen")]
    serve_after: bool,

    /// Export the flows' metrics and the spans of traced elements (one in 1024, or every
    /// one at `--observability diagnostic`) to this OpenTelemetry collector, by OTLP over
    /// gRPC, e.g. `http://127.0.0.1:4317`
    #[arg(
        long,
        value_name = "URL",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        hide_env_values = true
    )]
    otlp_endpoint: Option<String>,

    /// Also write every lifecycle event (flow started, paused, resumed, ended; component
    /// restarted; capability denied) to this file, as JSON lines
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

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
            self.manifest.manifest_path = Some(self.flows.remove(0).into());
        }
        if self.listen.is_some() && self.observability.observability == Level::Off {
            miette::bail!(
                "--listen serves what flows publish, and with --observability off they publish nothing"
            );
        }
        if self.observability.observability == Level::Diagnostic && self.otlp_endpoint.is_none() {
            miette::bail!(
                help = "give --otlp-endpoint URL to export the spans to a collector, or run \
                        `cargo torvyn trace FLOW` to see them",
                "--observability diagnostic traces every element, and `run` has nowhere to send the spans"
            );
        }
        if self.otlp_endpoint.is_some() && self.observability.observability == Level::Off {
            // The endpoint may come from the environment, meant for every run: `off` wins.
            status(
                "Warning",
                "not exporting to the OTLP endpoint: with --observability off, flows record nothing to export",
            );
            self.otlp_endpoint = None;
        }
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
        let events = Arc::new(EventLog::create(self.events.as_deref())?);

        let runtime = tokio::runtime::Runtime::new()
            .into_diagnostic()
            .wrap_err("cannot start the async runtime")?;
        // Signals are watched from here on: one that comes before the flows start stops
        // them before their first element.
        let cancel = CancellationToken::new();
        runtime.block_on(async { stop_on_signal(cancel.clone()) })?;

        let listed: Vec<String> = flows.iter().map(|(name, _)| format!("`{name}`")).collect();
        let noun = if listed.len() == 1 { "flow" } else { "flows" };
        status(
            "Running",
            format!(
                "{noun} {} of {}",
                listed.join(", "),
                project.path().display()
            ),
        );
        let mut options = RunOptions {
            limit: self.limit,
            timeout: self.timeout,
            cancel: cancel.clone(),
            measure: false,
            observability: self.observability.observability.into(),
            spans: None,
            events: Some(events.clone()),
        };
        let mut failures = runtime.block_on(async {
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
        })?;
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0).into()),
            n => {
                let first = failures.remove(0);
                Err(miette::Report::new(first).wrap_err(format!("{} failed", counted(n, "flow"))))
            }
        }
    }
}

/// Shows the events people watching a run want to hear of as they happen, on stderr, and
/// writes every event to the `--events` file, a JSON line each, as it happens. A restart
/// after the same error as the one before is counted, not shown again: a stage failing on
/// every call shows one line, then how many more times it failed so.
#[derive(Debug)]
struct EventLog {
    file: Option<(PathBuf, Mutex<File>)>,
    repeated: Mutex<Option<Repeated>>,
}

/// The latest restart or denial shown, and how many just like it followed it unshown.
#[derive(Debug, PartialEq)]
struct Repeated {
    verb: &'static str,
    line: String,
    /// Whom it was about, and how its repeats are summed up.
    subject: String,
    again: &'static str,
    more: u64,
}

impl EventLog {
    /// Shows how many lines repeated the one shown last, if any; the next line is shown
    /// whatever it says.
    fn show_repeated(&self) {
        let repeated = self
            .repeated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(Repeated {
            verb,
            subject,
            again,
            more: more @ 1..,
            ..
        }) = repeated
        {
            let times = if more == 1 { "time" } else { "times" };
            status(verb, format!("{subject} {more} more {times} {again}"));
        }
    }

    /// Shows `line` under `verb`, unless it repeats the line shown last: then it is only
    /// counted, and summed up as `{subject} N more times {again}` once another line comes.
    fn show_once(&self, verb: &'static str, line: String, subject: String, again: &'static str) {
        let mut repeated = self.repeated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = repeated.as_mut()
            && (last.verb, last.line.as_str()) == (verb, line.as_str())
        {
            last.more += 1;
            return;
        }
        drop(repeated);
        self.show_repeated();
        status(verb, &line);
        *self.repeated.lock().unwrap_or_else(|e| e.into_inner()) = Some(Repeated {
            verb,
            line,
            subject,
            again,
            more: 0,
        });
    }
}

impl EventLog {
    fn create(path: Option<&Path>) -> miette::Result<Self> {
        let file = match path {
            Some(path) => {
                let file = (File::create(path)).into_diagnostic().wrap_err_with(|| {
                    format!("cannot create the events file {}", path.display())
                })?;
                Some((path.to_owned(), Mutex::new(file)))
            }
            None => None,
        };
        Ok(Self {
            file,
            repeated: Mutex::new(None),
        })
    }
}

impl EventSink for EventLog {
    fn record(&self, event: FlowEvent) {
        let flow = &event.flow;
        match &event.kind {
            // `Running` and the summary say as much.
            EventKind::Started { .. } | EventKind::Ended { .. } => self.show_repeated(),
            EventKind::Paused => {
                self.show_repeated();
                status("Paused", format!("flow `{flow}`"));
            }
            EventKind::Resumed => {
                self.show_repeated();
                status("Resumed", format!("flow `{flow}`"));
            }
            // A stage failing on every call restarts, and a guest's runtime retries what
            // was denied, again and again: each is shown once, then counted.
            EventKind::Restarted { node, error, .. } => self.show_once(
                "Restarted",
                format!("`{node}` of flow `{flow}` after a trap: {error}"),
                format!("`{node}` of flow `{flow}`"),
                "after the same error",
            ),
            EventKind::CapabilityDenied {
                node,
                capability,
                detail,
                reason,
            } => self.show_once(
                "Denied",
                format!("`{node}` {detail}: {reason} (`{capability}`, flow `{flow}`)"),
                format!("`{node}` of flow `{flow}`"),
                "for the same use",
            ),
        }
        let Some((path, file)) = &self.file else {
            return;
        };
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        let written = serde_json::to_writer(&mut *file, &event)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(file))
            .and_then(|()| file.flush());
        if let Err(error) = written {
            status(
                "Warning",
                format!("cannot write an event to {}: {error}", path.display()),
            );
        }
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

/// First Ctrl-C or SIGTERM: stop the sources and drain. Second: exit at once with
/// [`EXIT_INTERRUPTED`](crate::EXIT_INTERRUPTED), from the signal handler itself, so that
/// no thread busy in a component can hold the exit up.
#[cfg(unix)]
fn stop_on_signal(cancel: CancellationToken) -> miette::Result<()> {
    use std::sync::atomic::AtomicBool;
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind| {
        (signal(kind))
            .into_diagnostic()
            .wrap_err("cannot watch for signals")
    };
    // Tokio's listeners first, so that no signal arms the exit unseen by them.
    let (mut interrupt, mut terminate) = (
        watch(SignalKind::interrupt())?,
        watch(SignalKind::terminate())?,
    );
    // The first signal arms the exit; the second finds it armed. Both handlers run, in
    // this order, beside tokio's.
    let armed = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let exit = crate::EXIT_INTERRUPTED;
        signal_hook::flag::register_conditional_shutdown(signal, exit, armed.clone())
            .and_then(|_| signal_hook::flag::register(signal, armed.clone()))
            .into_diagnostic()
            .wrap_err("cannot watch for signals")?;
    }
    tokio::spawn(async move {
        let signal = tokio::select! {
            _ = interrupt.recv() => "interrupted",
            _ = terminate.recv() => "terminated",
        };
        draining(signal, &cancel);
    });
    Ok(())
}

#[cfg(not(unix))]
fn stop_on_signal(cancel: CancellationToken) -> miette::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            draining("interrupted", &cancel);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(crate::EXIT_INTERRUPTED);
        }
    });
    Ok(())
}

/// The first signal: the sources stop and what is in flight is delivered.
fn draining(signal: &str, cancel: &CancellationToken) {
    status(
        "Stopping",
        format!("{signal}: draining elements in flight (signal again to abort)"),
    );
    cancel.cancel();
}

fn report_failure(error: &FlowError, format: MessageFormat) {
    let report = &error.report;
    status(
        "Failed",
        format!(
            "flow `{}` stopped after {}: {error}",
            report.flow,
            counted(report.emitted, "element")
        ),
    );
    account(report);
    output::json(
        format,
        &json!({
            "reason": "flow-failed",
            "flow": error.flow,
            "stage": error.stage,
            "sequence": error.sequence,
            "message": error.to_string(),
            "report": report,
        }),
    );
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
        Outcome::LimitReached => {
            format!(
                "stopped after {} (--limit)",
                counted(report.emitted, "element")
            )
        }
        Outcome::TimedOut => "stopped at its time limit (--timeout)".to_owned(),
        Outcome::Cancelled => "stopped by a signal or the inspection API".to_owned(),
        Outcome::Running => "is still running".to_owned(),
        Outcome::Failed => "failed".to_owned(),
        Outcome::OutputClosed => "stopped: its output was closed".to_owned(),
    };
    status(
        "Finished",
        format!(
            "flow `{}` {how}: {} delivered in {:.2?} ({rate:.0} elements/s)",
            report.flow,
            counted(report.delivered, "element"),
            report.duration
        ),
    );
    account(report);
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
            "{:.2} per element, {:.1} bytes per element ({}, {} in all)",
            per_element(report.copies.copies),
            per_element(report.copies.bytes),
            counted(report.copies.copies, "copy"),
            counted(report.copies.bytes, "byte")
        ),
    );
    if report.source_pauses > 0 || report.sink_pauses > 0 {
        status(
            "Backpressure",
            format!(
                "sources paused {}, sinks asked to pause {}",
                counted(report.source_pauses, "time"),
                counted(report.sink_pauses, "time")
            ),
        );
    }
    output::json(
        format,
        &json!({ "reason": "flow-finished", "report": report }),
    );
}

/// Where every element went: the accounting identity, then the places that are not
/// plain delivery, by node and edge.
fn account(report: &FlowReport) {
    status("Accounted", identity(&report.accounting));
    for edge in report.edges.iter().filter(|e| e.dropped > 0) {
        status(
            "Dropped",
            format!(
                "{} on the edge from `{}` to `{}` ({})",
                counted(edge.dropped, "element"),
                edge.from,
                edge.to,
                edge.overflow
            ),
        );
    }
    for node in &report.nodes {
        // Each count has the name the accounting line gives it, and no other count has
        // that name.
        let adjective = |count: u64, word: &str| format!("{count} {word}");
        let counts = [
            (node.filtered, adjective(node.filtered, "filtered")),
            (node.absorbed, adjective(node.absorbed, "absorbed")),
            (node.errors, counted(node.errors, "error")),
            (node.retries, adjective(node.retries, "retried")),
            (node.failed, adjective(node.failed, "failed")),
            (
                node.dead_lettered,
                adjective(node.dead_lettered, "dead-lettered"),
            ),
            (node.restarts, counted(node.restarts, "restart")),
            (
                u64::from(node.handles_held),
                format!(
                    "{} still held at its end",
                    counted(u64::from(node.handles_held), "buffer handle")
                ),
            ),
        ];
        let mut what: Vec<String> = (counts.into_iter())
            .filter(|(count, _)| *count > 0)
            .map(|(_, text)| text)
            .collect();
        if let Some(port) = &node.first_unknown_port {
            what.push(format!(
                "{} routed to unknown ports (first `{port}`)",
                node.unknown_ports
            ));
        }
        if !what.is_empty() {
            status(
                "Node",
                format!("`{}` ({}): {}", node.name, node.role, what.join(", ")),
            );
        }
        if let Some(error) = &node.first_error {
            status("Error", format!("`{}` first failed {error}", node.name));
        }
        if let Some(connector) = &node.connector {
            status(
                "Connector",
                format!(
                    "`{}` ({}): {}",
                    node.name,
                    connector.kind,
                    connector_figures(node.role, connector)
                ),
            );
        }
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

/// What a built-in connector did, in words: the figures that are not zero.
fn connector_figures(role: Role, c: &ConnectorReport) -> String {
    let moved = match role {
        Role::Source => "read",
        _ => "written",
    };
    let mut what = vec![format!(
        "{} {moved}",
        bytesize::ByteSize(c.bytes).display().iec()
    )];
    let figures = [
        (c.settled, format!("{} settled", c.settled)),
        (c.failed, format!("{} of them failed", c.failed)),
        (
            c.resumed_files,
            format!(
                "{} resumed from a checkpoint",
                counted(c.resumed_files, "file")
            ),
        ),
        (c.replayed, format!("{} replayed", c.replayed)),
        (
            c.oversize_skipped,
            format!("{} over max-element-size skipped", c.oversize_skipped),
        ),
        (
            c.oversize_truncated,
            format!("{} over max-element-size truncated", c.oversize_truncated),
        ),
        (
            c.checkpoints,
            format!("checkpoints stored {}", counted(c.checkpoints, "time")),
        ),
        (
            c.unwritten,
            format!(
                "output closed, {} not written",
                counted(c.unwritten, "element")
            ),
        ),
    ];
    what.extend(
        figures
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(_, text)| text),
    );
    what.join(", ")
}

/// `A emitted (+ …) = B delivered + …`, with the terms that are not zero.
fn identity(a: &Accounting) -> String {
    let terms = |pairs: &[(u64, &str)]| {
        pairs
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, name)| format!("{count} {name}"))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let arrived = terms(&[
        (a.emitted, "emitted"),
        (a.fanned_out, "fanned out"),
        (a.produced, "produced by aggregators"),
    ]);
    let ended = terms(&[
        (a.delivered, "delivered"),
        (a.filtered, "filtered"),
        (a.dropped, "dropped"),
        (a.dead_lettered, "dead-lettered"),
        (a.failed, "failed"),
        (a.absorbed, "absorbed by aggregators"),
        (a.abandoned, "abandoned"),
    ]);
    let arrived = if arrived.is_empty() {
        "0 emitted".to_owned()
    } else {
        arrived
    };
    let ended = if ended.is_empty() {
        "0 delivered".to_owned()
    } else {
        ended
    };
    if a.balanced() {
        format!("{arrived} = {ended}")
    } else {
        format!("{arrived} ≠ {ended}: elements are unaccounted for; please report this")
    }
}
