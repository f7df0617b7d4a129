//! `cargo torvyn bench`: measures one flow, compares with a baseline and plots a report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, WrapErr, bail};
use serde::{Deserialize, Serialize};
use torvyn_runtime::{
    ConnectorSpec, FileSinkSpec, FlowReport, FlowSpec, Grants, Host, Outcome, RunOptions, StageBody,
};

use crate::cli::{Level, ManifestArgs, MessageFormat, ObservabilityArgs, WarningArgs};
use crate::oci::cache::write_atomically;
use crate::output::{counted, nanos, status};

/// Measure a flow: throughput, end-to-end latency, copies and sandbox crossings per
/// element, memory, and where the time goes
///
/// Runs the flow for a warm-up, then for a measured period, with components built in
/// release mode and their console output discarded. Prints a table (or `--json`), can
/// save the figures as a baseline and compare with one, and writes an HTML report with
/// plots to `torvyn/bench/FLOW/` in Cargo's target folder (`CARGO_TARGET_DIR` applies).
#[derive(Debug, Args)]
pub(crate) struct BenchCommand {
    /// The flow to measure [default: the project's only flow]
    #[arg(value_name = "FLOW")]
    flow: Option<String>,

    /// How long to measure (e.g. `5s`, `500ms`)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::cli::run_time)]
    duration: Duration,

    /// How long to run the flow first, unmeasured
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::cli::warmup)]
    warmup: Duration,

    /// Stop measuring after this many elements (and the warm-up after as many)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    elements: Option<u64>,

    /// Print the figures as JSON on stdout
    #[arg(long)]
    json: bool,

    /// Save the figures as the baseline NAME
    #[arg(long, value_name = "NAME")]
    save_baseline: Option<String>,

    /// Compare with the baseline NAME, in % change
    #[arg(long, value_name = "NAME")]
    baseline: Option<String>,

    /// Keep the components' stdout and stderr instead of discarding them
    #[arg(long)]
    show_output: bool,

    /// Build components with the dev profile instead of release
    #[arg(long)]
    dev: bool,

    #[command(flatten)]
    observability: ObservabilityArgs,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    warnings: WarningArgs,
}

/// The figures of one measured run; also the format of a saved baseline.
#[derive(Debug, Serialize, Deserialize)]
struct Figures {
    flow: String,
    /// Seconds measured.
    seconds: f64,
    /// Elements delivered.
    elements: u64,
    elements_per_second: f64,
    /// Payload bytes out of the sources per second.
    bytes_per_second: f64,
    latency_ns: Latency,
    copies_per_element: f64,
    bytes_copied_per_element: f64,
    /// Calls into components plus their calls back into the host.
    crossings_per_element: f64,
    /// The process's peak resident memory, where the platform tells it.
    peak_rss_bytes: Option<u64>,
    stages: Vec<StageShare>,
    /// Share of the time spent in the host itself: queues, buffers, scheduling.
    host_share: f64,
    /// `(second, elements per second)`, sampled while it ran.
    throughput: Vec<(f64, f64)>,
    /// `(percentile, nanoseconds)`.
    distribution: Vec<(f64, u64)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct StageShare {
    name: String,
    role: String,
    /// Share of the measured time spent in its calls.
    share: f64,
    /// Time in its calls per element, in nanoseconds.
    ns_per_element: f64,
    crossings_per_element: f64,
    /// Calls into it, and its calls into the host, in all.
    calls: u64,
    host_calls: u64,
}

impl BenchCommand {
    pub(crate) fn exec(mut self) -> miette::Result<()> {
        let settings = crate::settings::for_manifest(self.manifest.manifest_path.as_deref())?;
        let mut level = self.observability.level(&settings);
        if level == Level::Diagnostic && self.observability.observability.is_none() {
            status(
                "Warning",
                format!(
                    "measuring at observability `production`, not the `diagnostic` of the setting {}: tracing every element would be what is measured",
                    settings.describe("observability")
                ),
            );
            level = Level::Production;
        }
        self.observability.observability = Some(level);
        if level == Level::Diagnostic {
            bail!(
                help = "`cargo torvyn trace FLOW` shows where each element's time goes",
                "`bench` measures at `off` or `production`: tracing every element would be what it measures"
            );
        }
        // `--json` prints one document, so warnings go to stderr only.
        let format = MessageFormat::Human;
        let project = super::link::torvyn_project(&self.manifest, &self.warnings, format, "bench")?;
        let flows = super::link::one_flow(&project, self.flow.as_deref(), "measure")?;
        let (host, specs) = super::link::link_flows(&project, &flows, !self.dev)?;
        let mut spec = specs.into_iter().next().expect("one flow was linked");
        if !self.show_output {
            for stage in &mut spec.stages {
                let mut grants = Grants::clone(&stage.grants);
                (grants.stdout, grants.stderr) = (false, false);
                stage.grants = Arc::new(grants);
            }
        }
        // Measuring leaves the project's data as it was: file sources read from their
        // start each run, and connectors write to a scratch folder.
        let scratch = tempfile::tempdir().into_diagnostic()?;
        aside(&mut spec, scratch.path(), self.show_output);
        let bench_dir = crate::cargo::target_dir(project.dir())?
            .join("torvyn")
            .join("bench");
        let baseline = match &self.baseline {
            Some(name) => Some(read_baseline(&bench_dir, name)?),
            None => None,
        };
        // A name refused after the measuring would waste it.
        let save_to = (self.save_baseline.as_deref())
            .map(|name| baseline_path(&bench_dir, name))
            .transpose()?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .into_diagnostic()?;
        let flow = spec.plan.flow.clone();
        status(
            "Measuring",
            format!(
                "flow `{flow}`: {} warm-up, then {}{}",
                humantime::format_duration(self.warmup),
                humantime::format_duration(self.duration),
                self.elements
                    .map(|n| format!(" or {}", counted(n, "element")))
                    .unwrap_or_default()
            ),
        );
        let (report, throughput) = runtime.block_on(self.measure(&host, spec))?;
        let figures = Figures::of(&report, throughput);
        if report.outcome == Outcome::Completed && figures.elements < 10_000 {
            status(
                "Warning",
                format!(
                    "the sources ended after {} in {}: too few for steady figures; \
                     configure them to emit more",
                    counted(figures.elements, "element"),
                    nanos(report.duration.as_nanos() as u64)
                ),
            );
        }

        if let (Some(name), Some(path)) = (&self.save_baseline, save_to) {
            let json = serde_json::to_vec_pretty(&figures).into_diagnostic()?;
            write_atomically(&path, &json)?;
            status("Saved", format!("baseline `{name}` to {}", path.display()));
        }
        let report_dir = bench_dir.join(&flow);
        let html = report_dir.join("report.html");
        write_atomically(&html, html_report(&figures, baseline.as_ref()).as_bytes())?;
        if self.json {
            let json = serde_json::to_string(&figures).into_diagnostic()?;
            println!("{json}");
        } else {
            print_table(&figures, baseline.as_ref());
        }
        status("Report", html.display());
        Ok(())
    }

    /// The warm-up, then the measured run with its throughput sampled every 100 ms. Each
    /// starts with no checkpoints.
    async fn measure(
        &self,
        host: &Host,
        spec: FlowSpec,
    ) -> miette::Result<(FlowReport, Vec<(f64, f64)>)> {
        if !self.warmup.is_zero() {
            let options = RunOptions {
                limit: self.elements,
                timeout: Some(self.warmup),
                observability: self.observability.observability.unwrap_or_default().into(),
                ..RunOptions::default()
            };
            host.run(spec.clone(), options).await?;
            forget_checkpoints(&spec);
        }
        let options = RunOptions {
            limit: self.elements,
            timeout: Some(self.duration),
            measure: true,
            observability: self.observability.observability.unwrap_or_default().into(),
            ..RunOptions::default()
        };
        let bar = ProgressBar::new(self.duration.as_millis() as u64).with_style(
            ProgressStyle::with_template("{msg:>12.cyan.bold} [{bar:30}] {elapsed} {prefix}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message("Measuring");
        let handle = host.start(spec, options);
        let started = Instant::now();
        let (mut throughput, mut last) = (Vec::new(), (0.0, 0));
        while !handle.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = started.elapsed().as_secs_f64();
            let delivered = handle.progress().delivered;
            let rate = (delivered - last.1) as f64 / (now - last.0);
            throughput.push((now, rate));
            last = (now, delivered);
            bar.set_position(started.elapsed().as_millis() as u64);
            bar.set_prefix(format!("{} elements/s", thousands(rate)));
        }
        bar.finish_and_clear();
        Ok((handle.join().await?, throughput))
    }
}

impl Figures {
    fn of(report: &FlowReport, throughput: Vec<(f64, f64)>) -> Figures {
        let seconds = report.duration.as_secs_f64().max(f64::MIN_POSITIVE);
        let elements = report.delivered;
        let per = |x: f64| {
            if elements == 0 {
                0.0
            } else {
                x / elements as f64
            }
        };
        let source_bytes: u64 = (report.nodes.iter())
            .filter(|n| n.role == torvyn_runtime::Role::Source)
            .map(|n| n.copies.bytes)
            .sum();
        let latency = report.latency.as_ref();
        let at = |f: fn(&torvyn_runtime::LatencyReport) -> u64| latency.map_or(0, f);
        let stages: Vec<StageShare> = (report.nodes.iter())
            .map(|n| StageShare {
                name: n.name.clone(),
                role: n.role.to_string(),
                share: n.calls.busy.as_secs_f64() / seconds,
                ns_per_element: per(n.calls.busy.as_nanos() as f64),
                crossings_per_element: per(n.calls.crossings() as f64),
                calls: n.calls.calls,
                host_calls: n.calls.host_calls.unwrap_or(0),
            })
            .collect();
        Figures {
            flow: report.flow.clone(),
            seconds,
            elements,
            elements_per_second: elements as f64 / seconds,
            bytes_per_second: source_bytes as f64 / seconds,
            latency_ns: Latency {
                p50: at(|l| l.p50),
                p90: at(|l| l.p90),
                p99: at(|l| l.p99),
                p999: at(|l| l.p999),
                max: at(|l| l.max),
            },
            copies_per_element: per(report.copies.copies as f64),
            bytes_copied_per_element: per(report.copies.bytes as f64),
            crossings_per_element: stages.iter().map(|s| s.crossings_per_element).sum(),
            peak_rss_bytes: peak_rss(),
            host_share: (1.0 - stages.iter().map(|s| s.share).sum::<f64>()).max(0.0),
            stages,
            throughput,
            distribution: latency.map(|l| l.distribution.clone()).unwrap_or_default(),
        }
    }
}

/// The process's peak resident set (`VmHWM`), on Linux.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn baseline_path(dir: &Path, name: &str) -> miette::Result<PathBuf> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || name.starts_with('.') || !name.chars().all(plain) {
        bail!(
            "a baseline name is letters, digits, `-`, `_` and `.`, and does not start with `.`: `{name}` is not"
        );
    }
    Ok(dir.join("baselines").join(format!("{name}.json")))
}

fn read_baseline(dir: &Path, name: &str) -> miette::Result<Figures> {
    let path = baseline_path(dir, name)?;
    let text = std::fs::read(&path).into_diagnostic().wrap_err_with(|| {
        format!(
            "no baseline `{name}` (looked for {}); save one with --save-baseline {name}",
            path.display()
        )
    })?;
    serde_json::from_slice(&text)
        .into_diagnostic()
        .wrap_err_with(|| format!("baseline `{name}` at {} is malformed", path.display()))
}

/// `12345.6` as `12,346`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// ` (+3.1 %)` against the baseline's figure.
fn change(now: f64, then: Option<f64>) -> String {
    match then {
        Some(then) if then != 0.0 => format!(" ({:+.1} %)", (now - then) / then * 100.0),
        _ => String::new(),
    }
}

/// The figures as a table on stderr.
fn print_table(f: &Figures, baseline: Option<&Figures>) {
    let b = |get: fn(&Figures) -> f64| baseline.map(get);
    let line = |label: &str, text: String| eprintln!("{label:>12} {text}");
    line(
        "Throughput",
        format!(
            "{} elements/s{}, {}/s of payload{}",
            thousands(f.elements_per_second),
            change(f.elements_per_second, b(|f| f.elements_per_second)),
            bytesize::ByteSize(f.bytes_per_second as u64),
            change(f.bytes_per_second, b(|f| f.bytes_per_second)),
        ),
    );
    line(
        "Elements",
        format!("{} in {:.2}s", thousands(f.elements as f64), f.seconds),
    );
    let l = &f.latency_ns;
    line(
        "Latency",
        format!(
            "p50 {}{}  p90 {}  p99 {}{}  p99.9 {}  max {}",
            nanos(l.p50),
            change(l.p50 as f64, b(|f| f.latency_ns.p50 as f64)),
            nanos(l.p90),
            nanos(l.p99),
            change(l.p99 as f64, b(|f| f.latency_ns.p99 as f64)),
            nanos(l.p999),
            nanos(l.max),
        ),
    );
    line(
        "Copies",
        format!(
            "{:.2} per element, {} per element{}",
            f.copies_per_element,
            bytesize::ByteSize(f.bytes_copied_per_element as u64),
            change(f.copies_per_element, b(|f| f.copies_per_element)),
        ),
    );
    line(
        "Crossings",
        format!(
            "{:.1} per element{}",
            f.crossings_per_element,
            change(f.crossings_per_element, b(|f| f.crossings_per_element)),
        ),
    );
    if let Some(rss) = f.peak_rss_bytes {
        let then = b(|f| f.peak_rss_bytes.unwrap_or(0) as f64);
        line(
            "Peak RSS",
            format!("{}{}", bytesize::ByteSize(rss), change(rss as f64, then)),
        );
    }
    line(
        "Time",
        "share  per element  crossings/element  stage".into(),
    );
    for stage in &f.stages {
        line(
            "",
            format!(
                "{:>4.1} %  {:>11}  {:>17.1}  {} ({})",
                stage.share * 100.0,
                nanos(stage.ns_per_element as u64),
                stage.crossings_per_element,
                stage.name,
                stage.role
            ),
        );
    }
    line(
        "",
        format!(
            "{:>4.1} %  {:>11}  {:>17}  the host (queues, buffers, scheduling)",
            f.host_share * 100.0,
            nanos((f.host_share * f.seconds * 1e9 / f.elements.max(1) as f64) as u64),
            ""
        ),
    );
}

/// A self-contained HTML page with the figures and two plots: the latency distribution
/// and the throughput over time.
fn html_report(f: &Figures, baseline: Option<&Figures>) -> String {
    let latency = plot_latency(f, baseline);
    let throughput = plot_throughput(f);
    let rows: String = (f.stages.iter())
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{:.1} %</td><td>{:.0} ns</td><td>{:.1}</td></tr>",
                escape(&s.name),
                s.role,
                s.share * 100.0,
                s.ns_per_element,
                s.crossings_per_element
            )
        })
        .collect();
    let json = serde_json::to_string_pretty(f).unwrap_or_default();
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Torvyn bench: {flow}</title>\
         <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}\
         td,th{{padding:2px 12px;text-align:right}}</style></head><body>\
         <h1>Flow <code>{flow}</code></h1>\
         <p>{eps} elements/s over {secs:.2} s; latency p50 {p50}, p99 {p99}, max {max}; \
         {copies:.2} copies and {crossings:.1} crossings per element.</p>\
         <h2>Latency distribution</h2>{latency}\
         <h2>Throughput over time</h2>{throughput}\
         <h2>Where the time goes</h2><table><tr><th>stage</th><th>role</th><th>share</th>\
         <th>per element</th><th>crossings/element</th></tr>{rows}\
         <tr><td>host</td><td></td><td>{host:.1} %</td><td></td><td></td></tr></table>\
         <h2>Figures</h2><pre>{json}</pre></body></html>\n",
        flow = escape(&f.flow),
        eps = thousands(f.elements_per_second),
        secs = f.seconds,
        p50 = nanos(f.latency_ns.p50),
        p99 = nanos(f.latency_ns.p99),
        max = nanos(f.latency_ns.max),
        copies = f.copies_per_element,
        crossings = f.crossings_per_element,
        host = f.host_share * 100.0,
        json = escape(&json),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Latency (µs, on a log scale) by percentile, on a scale of nines: 0 is p0, 1 is p90, 2
/// is p99, …
fn plot_latency(f: &Figures, baseline: Option<&Figures>) -> String {
    use plotters::prelude::*;
    let nines = |p: f64| -(1.0 - p / 100.0).max(1e-6).log10();
    let series = |f: &Figures| -> Vec<(f64, f64)> {
        (f.distribution.iter())
            .map(|(p, ns)| (nines(*p), *ns as f64 / 1000.0))
            .collect()
    };
    let now = series(f);
    let then = baseline.map(series).unwrap_or_default();
    let values = || now.iter().chain(&then).map(|(_, us)| *us);
    let top = values().fold(0.001, f64::max);
    let bottom = values().fold(top, f64::min).max(0.001);
    let right = now.iter().map(|(x, _)| *x).fold(1.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 400)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..right, (bottom * 0.9..top * 1.1).log_scale());
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc("percentile (1 = p90, 2 = p99, 3 = p99.9, …)")
            .y_desc("latency (µs)")
            .draw();
        let _ = chart.draw_series(LineSeries::new(now, &BLUE)).map(|s| {
            s.label("this run")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE))
        });
        if !then.is_empty() {
            let _ = chart.draw_series(LineSeries::new(then, &RED)).map(|s| {
                s.label("baseline")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED))
            });
        }
        let _ = chart.configure_series_labels().border_style(BLACK).draw();
        let _ = root.present();
    }
    svg
}

/// Elements per second, sampled every 100 ms.
fn plot_throughput(f: &Figures) -> String {
    use plotters::prelude::*;
    let right = f.throughput.last().map_or(1.0, |(t, _)| *t);
    let top = f.throughput.iter().map(|(_, r)| *r).fold(1.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 300)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..right, 0f64..top * 1.05);
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("elements/s")
            .draw();
        let _ = chart.draw_series(LineSeries::new(f.throughput.iter().copied(), &BLUE));
        let _ = root.present();
    }
    svg
}

/// Points the connectors of `spec` into `scratch`: file sources keep their checkpoints
/// there, file sinks write there, and standard output goes nowhere unless `show_output`.
fn aside(spec: &mut FlowSpec, scratch: &std::path::Path, show_output: bool) {
    for stage in &mut spec.stages {
        let StageBody::Connector(connector) = &mut stage.body else {
            continue;
        };
        let file = scratch.join(&stage.name);
        match connector {
            ConnectorSpec::FileSource(source) => source.checkpoint = file,
            ConnectorSpec::FileSink(sink) => sink.path = file,
            ConnectorSpec::Stdout(framing) if !show_output => {
                *connector = ConnectorSpec::FileSink(FileSinkSpec {
                    path: "/dev/null".into(),
                    framing: *framing,
                    fsync: false,
                });
            }
            // NATS connectors read and write their streams as a run does.
            ConnectorSpec::Stdout(_)
            | ConnectorSpec::Stdin(_)
            | ConnectorSpec::NatsSource(_)
            | ConnectorSpec::NatsSink(_) => {}
        }
    }
}

/// Removes the checkpoints a run of `spec` stored, so that the next reads from the start.
fn forget_checkpoints(spec: &FlowSpec) {
    for stage in &spec.stages {
        if let StageBody::Connector(ConnectorSpec::FileSource(source)) = &stage.body {
            let _ = std::fs::remove_file(&source.checkpoint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(change(110.0, Some(100.0)), " (+10.0 %)");
        assert_eq!(change(110.0, None), "");
        assert_eq!(nanos(12_345), "12us 345ns");
        assert!(baseline_path(Path::new("b"), "main-1.0").is_ok());
        assert!(baseline_path(Path::new("b"), "../x").is_err());
    }
}
