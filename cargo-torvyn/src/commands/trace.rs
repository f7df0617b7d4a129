//! `cargo torvyn trace`: runs a flow with every element traced and shows where each
//! element's time went.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use miette::{Context, IntoDiagnostic};
use serde_json::{Value, json};
use torvyn_runtime::{FlowPlan, ObservabilityLevel, Outcome, RunOptions, SpanSink, StageSpan};

use crate::cli::{BuildArgs, ManifestArgs, MessageFormat, OutputArgs, WarningArgs};
use crate::output::{self, counted, status};

/// Run a flow with every element traced, and show each element's way through it
///
/// The flow runs at the `diagnostic` observability level until its sources have sent
/// `--limit` elements. Every call a stage makes on an element is a span: when it began,
/// how long it took, how long the element waited in the queue before it (and how full the
/// queue was), the payload copies made and what became of the element. The timeline of
/// each element is printed; `--output` also writes every span as a Chrome trace event
/// file, which opens in Perfetto (https://ui.perfetto.dev) or chrome://tracing.
#[derive(Debug, Args)]
pub(crate) struct TraceCommand {
    /// The flow to trace [default: the project's only flow]
    #[arg(value_name = "FLOW")]
    flow: Option<String>,

    /// Stop the sources after this many elements
    #[arg(long, value_name = "N", default_value_t = 10)]
    limit: u64,

    /// Stop the sources after this long (e.g. `500ms`, `10s`)
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::run_time)]
    timeout: Option<Duration>,

    /// Write the spans as Chrome trace event JSON to this file
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    warnings: WarningArgs,

    #[command(flatten)]
    build: BuildArgs,

    #[command(flatten)]
    format: OutputArgs,
}

/// Keeps every span a flow hands over.
#[derive(Debug, Default)]
struct Collector(Mutex<Vec<StageSpan>>);

impl SpanSink for Collector {
    fn record(&self, _flow: &str, spans: Vec<StageSpan>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(spans);
    }
}

impl TraceCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let format = self.format.message_format;
        let project = super::link::torvyn_project(&self.manifest, &self.warnings, format, "trace")?;
        let flows = super::link::one_flow(&project, self.flow.as_deref(), "trace")?;
        let (host, specs) = super::link::link_flows(&project, &flows, self.build.release)?;
        let spec = specs.into_iter().next().expect("one flow was linked");
        let plan = spec.plan.clone();
        // Opened before the flow runs, so that a path that cannot be written to is said
        // before the flow's work is done (and its sinks written).
        let cannot_write = |path: &PathBuf| format!("cannot write the trace to {}", path.display());
        let output = (self.output.as_ref())
            .map(|path| {
                // Emptied only when the trace is written: a run cut short keeps the last.
                (std::fs::OpenOptions::new().write(true).create(true))
                    .truncate(false)
                    .open(path)
                    .into_diagnostic()
                    .wrap_err_with(|| cannot_write(path))
                    .map(|file| (path, file))
            })
            .transpose()?;
        status(
            "Tracing",
            format!(
                "flow `{}`: up to {}",
                plan.flow,
                counted(self.limit, "element")
            ),
        );
        let collector = Arc::new(Collector::default());
        let options = RunOptions {
            limit: Some(self.limit),
            timeout: self.timeout,
            observability: ObservabilityLevel::Diagnostic,
            spans: Some(collector.clone()),
            ..RunOptions::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .into_diagnostic()?;
        let (report, failure) = match runtime.block_on(host.run(spec, options)) {
            Ok(report) => (report, None),
            Err(error) => (*error.report.clone(), Some(error)),
        };
        let spans = std::mem::take(&mut *collector.0.lock().unwrap_or_else(|e| e.into_inner()));
        let elements = by_element(&spans);
        let width = plan.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
        for (root, spans) in &elements {
            eprintln!("{}", timeline(width, root, spans));
            output::json(
                self.format.message_format,
                &json!({
                    "reason": "element-trace",
                    "flow": plan.flow,
                    "trace_id": root.trace_id.to_string(),
                    "sequence": root.sequence,
                    "spans": spans.iter().map(|span| span_json(span)).collect::<Vec<_>>(),
                }),
            );
        }
        if let Some((path, mut file)) = output {
            let chrome = chrome_trace(&plan, &spans);
            let text = serde_json::to_vec_pretty(&chrome).into_diagnostic()?;
            (file.set_len(0))
                .and_then(|()| std::io::Write::write_all(&mut file, &text))
                .into_diagnostic()
                .wrap_err_with(|| cannot_write(path))?;
            status(
                "Wrote",
                format!("{} to {}", counted(spans.len(), "span"), path.display()),
            );
        }
        let how = match report.outcome {
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed out",
            _ => "ran",
        };
        status(
            "Traced",
            format!(
                "{} of flow `{}` in {}; the flow {how} in {}",
                counted(elements.len(), "element"),
                plan.flow,
                counted(spans.len(), "span"),
                short(report.duration.as_nanos() as u64),
            ),
        );
        if self.format.message_format == MessageFormat::Json {
            output::json(
                self.format.message_format,
                &json!({"reason": "flow-traced", "flow": plan.flow, "elements": elements.len(), "spans": spans.len(), "report": report}),
            );
        }
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}

/// The spans of each element, by the span its trace began with, in the order elements
/// entered the flow; each element's spans in the order their calls began.
fn by_element(spans: &[StageSpan]) -> Vec<(&StageSpan, Vec<&StageSpan>)> {
    let mut traces: BTreeMap<u128, Vec<&StageSpan>> = BTreeMap::new();
    for span in spans {
        traces.entry(span.trace_id.0).or_default().push(span);
    }
    let mut elements: Vec<_> = (traces.into_values())
        .map(|mut spans| {
            spans.sort_by_key(|span| (span.start_ns, span.parent.is_some()));
            let root = *spans
                .iter()
                .find(|s| s.parent.is_none())
                .unwrap_or(&spans[0]);
            (root, spans)
        })
        .collect();
    elements.sort_by_key(|(root, _)| (root.start_ns, root.sequence));
    elements
}

/// One element's way through the flow, a line per stage.
fn timeline(width: usize, root: &StageSpan, spans: &[&StageSpan]) -> String {
    let end = spans.iter().map(|s| s.start_ns + s.duration_ns).max();
    let took = end.unwrap_or(root.start_ns) - root.start_ns;
    let stages = if spans.len() == 1 { "stage" } else { "stages" };
    let mut text = format!(
        "element {} · {} {stages} · {} end to end · trace {}\n",
        root.sequence,
        spans.len(),
        short(took),
        root.trace_id
    );
    for span in spans {
        let wait = match &span.wait {
            Some(wait) => format!(
                "waited {} in {} → {} ({} ahead, capacity {}{})",
                short(wait.wait_ns),
                wait.from,
                span.node,
                wait.depth,
                wait.capacity,
                // It took the last place: its upstream was held back.
                if wait.depth + 1 >= wait.capacity {
                    ": backpressure"
                } else {
                    ""
                },
            ),
            None => "entered the flow".to_owned(),
        };
        let mut extra = String::new();
        if span.batch > 1 {
            extra.push_str(&format!(" · in a batch of {}", span.batch));
        }
        if span.retries > 0 {
            extra.push_str(&format!(" · {}", counted(span.retries, "retry")));
        }
        text.push_str(&format!(
            "  {:>9}  {:<width$}  {:<8} {:>8}  {:<13} {wait} · {}, {} B{extra}\n",
            format!("+{}", short(span.start_ns - root.start_ns)),
            span.node,
            span.call.name(),
            short(span.duration_ns),
            span.fate.name(),
            counted(span.copies.copies, "copy"),
            span.copies.bytes,
        ));
    }
    text.pop();
    text
}

/// A duration to three or four significant digits: `840ns`, `61.0µs`, `1.23ms`, `2.50s`.
fn short(ns: u64) -> String {
    match ns {
        ns if ns < 1_000 => format!("{ns}ns"),
        ns if ns < 1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        ns if ns < 1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        ns => format!("{:.2}s", ns as f64 / 1e9),
    }
}

fn span_json(span: &StageSpan) -> Value {
    json!({
        "trace_id": span.trace_id.to_string(),
        "span_id": span.span_id.to_string(),
        "parent_span_id": span.parent.map(|p| p.to_string()),
        "node": span.node,
        "call": span.call,
        "sequence": span.sequence,
        "start_ns": span.start_ns,
        "duration_ns": span.duration_ns,
        "batch": span.batch,
        "wait": span.wait,
        "copies": span.copies,
        "retries": span.retries,
        "fate": span.fate,
    })
}

/// The spans as Chrome trace events: a complete (`X`) event per span, on one thread per
/// node, in microseconds from the first span; metadata events name the threads.
fn chrome_trace(plan: &FlowPlan, spans: &[StageSpan]) -> Value {
    let first = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let thread = |node: &str| plan.nodes.iter().position(|n| n.name == node).unwrap_or(0);
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
        "args": {"name": format!("flow {}", plan.flow)},
    })];
    for (tid, node) in plan.nodes.iter().enumerate() {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
            "args": {"name": node.name},
        }));
        events.push(json!({
            "name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid,
            "args": {"sort_index": tid},
        }));
    }
    for span in spans {
        events.push(json!({
            "name": format!("{} {}", span.node, span.call.name()),
            "cat": span.call.name(),
            "ph": "X",
            "pid": 1,
            "tid": thread(&span.node),
            "ts": (span.start_ns - first) as f64 / 1000.0,
            "dur": span.duration_ns as f64 / 1000.0,
            "args": span_json(span),
        }));
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms"})
}

#[cfg(test)]
mod tests {
    use super::*;
    use torvyn_runtime::{Call, CopyStats, Fate, QueueWait, SpanId, TraceId};

    fn span(trace: u128, id: u64, parent: Option<u64>, node: &str, start_ns: u64) -> StageSpan {
        StageSpan {
            trace_id: TraceId(trace),
            span_id: SpanId(id),
            parent: parent.map(SpanId),
            node: node.into(),
            call: if parent.is_none() {
                Call::Pull
            } else {
                Call::Process
            },
            sequence: trace as u64,
            start_ns,
            duration_ns: 2_000,
            batch: 1,
            wait: parent.map(|_| QueueWait {
                from: "src".into(),
                wait_ns: 1_000,
                depth: 7,
                capacity: 8,
            }),
            copies: CopyStats {
                copies: 1,
                bytes: 64,
            },
            retries: 0,
            fate: Fate::Sent,
        }
    }

    #[test]
    fn durations_keep_three_digits() {
        assert_eq!(short(840), "840ns");
        assert_eq!(short(61_040), "61.0µs");
        assert_eq!(short(1_234_000), "1.23ms");
        assert_eq!(short(2_500_000_000), "2.50s");
    }

    #[test]
    fn a_timeline_shows_each_stage_its_wait_and_its_copies() {
        let spans = [
            span(1, 10, None, "src", 1_000),
            span(1, 11, Some(10), "up", 4_000),
        ];
        let refs: Vec<_> = spans.iter().collect();
        let text = timeline(3, &spans[0], &refs);
        assert_eq!(
            text,
            "element 1 · 2 stages · 5.0µs end to end · trace 00000000000000000000000000000001\n\
             \x20      +0ns  src  pull        2.0µs  sent          entered the flow · 1 copy, 64 B\n\
             \x20    +3.0µs  up   process     2.0µs  sent          waited 1.0µs in src → up (7 ahead, capacity 8: backpressure) · 1 copy, 64 B"
        );
    }

    #[test]
    fn spans_are_grouped_by_element_and_ordered_by_time() {
        let spans = vec![
            span(2, 20, None, "src", 5_000),
            span(1, 11, Some(10), "up", 4_000),
            span(1, 10, None, "src", 1_000),
        ];
        let elements = by_element(&spans);
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0].0.span_id, SpanId(10));
        let nodes: Vec<_> = elements[0].1.iter().map(|s| s.node.as_str()).collect();
        assert_eq!(nodes, ["src", "up"]);
        assert_eq!(elements[1].1.len(), 1);
    }
}
