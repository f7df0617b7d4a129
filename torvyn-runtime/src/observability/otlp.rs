//! OTLP export over gRPC: the spans of traced elements, and the metrics of every flow the
//! host runs, to an OpenTelemetry collector.
//!
//! Flows hand their spans to a queue of at most [`QUEUED_SPANS`] and never wait (beyond
//! it, spans are counted lost): a task converts them to OpenTelemetry spans and exports
//! them in requests of at most [`EXPORT_BATCH`]. Metrics are observed from the flows'
//! latest snapshots when the SDK's periodic reader collects (every 60 s, or as
//! `OTEL_METRIC_EXPORT_INTERVAL` says) and once more at shutdown.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::metrics::{AsyncInstrument, Meter, MeterProvider as _};
use opentelemetry::trace::{self, SpanContext, SpanKind, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use tokio::sync::mpsc;

use super::metrics::{Family, Kind, Unit, Value, families};
use super::otlp_component::{ComponentInstruments, Snapshots};
use super::{Fate, SpanSink, StageSpan};

/// Spans waiting for export; beyond this, the flows' new ones are dropped and counted
/// lost, so that a slow collector costs at most this much memory (about 10 MiB).
const QUEUED_SPANS: u64 = 64 * 1024;
/// The most spans sent in one export request.
const EXPORT_BATCH: usize = 512;
/// How long one export request may take, retries included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the names of component metrics are looked for, to register their
/// instruments: each is exported from the first collection after that.
const REGISTER_EVERY: Duration = Duration::from_secs(1);

/// An OTLP exporter could not be set up.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot export to the OTLP endpoint {endpoint}: {why}")]
#[diagnostic(
    code(torvyn::otlp),
    help("give the collector's gRPC address, e.g. http://127.0.0.1:4317")
)]
pub struct OtlpError {
    endpoint: String,
    why: String,
}

/// What an exporter sent, or could not, by the time it shut down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpSummary {
    /// Spans the collector accepted.
    pub spans_exported: u64,
    /// Spans lost: the collector refused or could not be reached, or the flows made them
    /// faster than they could be sent.
    pub spans_lost: u64,
    /// Why the first spans were lost, if the collector refused them or was unreachable.
    pub span_error: Option<String>,
    /// Why the last metrics were not exported, if they were not.
    pub metrics_error: Option<String>,
}

/// Sends spans and metrics to an OTLP collector until shut down.
#[derive(Debug)]
pub struct OtlpExporter {
    spans: Arc<SpanQueue>,
    task: tokio::task::JoinHandle<()>,
    meters: SdkMeterProvider,
    /// The instruments of component metrics, and the task that registers them as their
    /// names appear.
    components: Arc<ComponentInstruments>,
    registering: AbortOnDrop,
    endpoint: String,
}

/// A task that ends with its handle: an exporter dropped without `shutdown` leaves no
/// task behind.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What flows hand their spans to.
#[derive(Debug)]
struct SpanQueue {
    sender: mpsc::UnboundedSender<(String, Vec<StageSpan>)>,
    outcome: Arc<Outcome>,
}

/// Counted by the export task and the flows, read at shutdown.
#[derive(Debug, Default)]
struct Outcome {
    /// Spans handed over and not exported yet: what bounds the queue.
    queued: AtomicU64,
    exported: AtomicU64,
    lost: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Outcome {
    fn failed(&self, spans: u64, error: String) {
        self.lost.fetch_add(spans, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
    }
}

impl SpanSink for SpanQueue {
    fn record(&self, flow: &str, spans: Vec<StageSpan>) {
        let count = spans.len() as u64;
        let queued = &self.outcome.queued;
        let room = queued.fetch_add(count, Ordering::Relaxed) + count <= QUEUED_SPANS;
        if !room || self.sender.send((flow.to_owned(), spans)).is_err() {
            queued.fetch_sub(count, Ordering::Relaxed);
            (self.outcome.lost).fetch_add(count, Ordering::Relaxed);
        }
    }
}

impl OtlpExporter {
    /// Starts exporting to `endpoint` (`http://HOST:PORT`), the metrics of the flows
    /// `snapshots` returns. Connects lazily: an unreachable collector shows as export
    /// errors, not here. Must be called within a tokio runtime.
    pub(crate) fn start(endpoint: &str, snapshots: Snapshots) -> Result<Self, OtlpError> {
        let failed = |why: String| OtlpError {
            endpoint: endpoint.to_owned(),
            why,
        };
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "torvyn".into());
        let resource = Resource::builder().with_service_name(service).build();
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        exporter.set_resource(&resource);
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let meters = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(PeriodicReader::builder(metrics).build())
            .build();
        observe(&meters.meter("torvyn"), snapshots.clone());
        let components = Arc::new(ComponentInstruments::new(meters.meter("torvyn"), snapshots));
        let registrar = components.clone();
        let registering = AbortOnDrop(tokio::spawn(async move {
            let mut every = tokio::time::interval(REGISTER_EVERY);
            loop {
                every.tick().await;
                registrar.register_new();
            }
        }));

        let (sender, mut receiver) = mpsc::unbounded_channel::<(String, Vec<StageSpan>)>();
        let outcome = Arc::new(Outcome::default());
        let counts = outcome.clone();
        let task = tokio::spawn(async move {
            let scope = InstrumentationScope::builder("torvyn")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build();
            while let Some((flow, spans)) = receiver.recv().await {
                // Requests of at most `EXPORT_BATCH` spans, whatever a flow handed over.
                for chunk in spans.chunks(EXPORT_BATCH) {
                    let batch = chunk.iter().map(|span| span_data(&flow, span, &scope));
                    let sent = chunk.len() as u64;
                    match exporter.export(batch.collect()).await {
                        Ok(()) => _ = counts.exported.fetch_add(sent, Ordering::Relaxed),
                        Err(error) => counts.failed(sent, error.to_string()),
                    }
                    counts.queued.fetch_sub(sent, Ordering::Relaxed);
                }
            }
            let _ = exporter.shutdown();
        });
        Ok(Self {
            spans: Arc::new(SpanQueue { sender, outcome }),
            task,
            meters,
            components,
            registering,
            endpoint: endpoint.to_owned(),
        })
    }

    /// Where flows hand their spans: give it to [`RunOptions::spans`](crate::RunOptions).
    pub fn spans(&self) -> Arc<dyn SpanSink> {
        self.spans.clone()
    }

    /// The collector's address.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends what is left (the spans queued, the metrics as they stand) and stops. Call it
    /// once the flows have ended.
    pub async fn shutdown(self) -> OtlpSummary {
        let Self {
            spans,
            task,
            meters,
            components,
            registering,
            ..
        } = self;
        let outcome = spans.outcome.clone();
        // The flows hold the queue too; once they ended, this is the last sender.
        drop(spans);
        let _ = task.await;
        // Metrics declared since the last look are in the last collection too.
        drop(registering);
        components.register_new();
        // The SDK's shutdown blocks until the last collection is exported, which needs
        // this runtime free to drive the connection.
        let flushed = tokio::task::spawn_blocking(move || meters.shutdown()).await;
        let metrics_error = match flushed {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(panicked) => Some(panicked.to_string()),
        };
        let span_error = outcome
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        OtlpSummary {
            spans_exported: outcome.exported.load(Ordering::Relaxed),
            spans_lost: outcome.lost.load(Ordering::Relaxed),
            span_error: span_error.clone(),
            metrics_error,
        }
    }
}

/// A traced element's span as OpenTelemetry has it, with Torvyn's figures as attributes.
fn span_data(flow: &str, span: &StageSpan, scope: &InstrumentationScope) -> SpanData {
    let start = UNIX_EPOCH + Duration::from_nanos(span.start_ns);
    let mut attributes = vec![
        KeyValue::new("torvyn.flow", flow.to_owned()),
        KeyValue::new("torvyn.node", span.node.clone()),
        KeyValue::new("torvyn.call", span.call.name()),
        KeyValue::new("torvyn.sequence", span.sequence as i64),
        KeyValue::new("torvyn.fate", span.fate.name()),
        KeyValue::new("torvyn.batch", span.batch as i64),
        KeyValue::new("torvyn.retries", i64::from(span.retries)),
        KeyValue::new("torvyn.copies", span.copies.copies as i64),
        KeyValue::new("torvyn.copied_bytes", span.copies.bytes as i64),
    ];
    if let Some(wait) = &span.wait {
        attributes.extend([
            KeyValue::new("torvyn.queue.from", wait.from.clone()),
            KeyValue::new("torvyn.queue.wait_ns", wait.wait_ns as i64),
            KeyValue::new("torvyn.queue.depth", wait.depth as i64),
            KeyValue::new("torvyn.queue.capacity", wait.capacity as i64),
        ]);
    }
    let status = match span.fate {
        Fate::Failed | Fate::DeadLettered | Fate::Abandoned => {
            trace::Status::error(span.fate.name())
        }
        _ => trace::Status::Unset,
    };
    SpanData {
        span_context: SpanContext::new(
            trace::TraceId::from(span.trace_id.0),
            trace::SpanId::from(span.span_id.0),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: span
            .parent
            .map_or(trace::SpanId::INVALID, |p| trace::SpanId::from(p.0)),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("{} {}", span.node, span.call.name())),
        start_time: start,
        end_time: start + Duration::from_nanos(span.duration_ns),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

/// Registers an observable instrument per metric family (histograms apart: OpenTelemetry
/// has no observable histogram, and `/metrics` serves them), each reading the family from
/// the flows' latest snapshots when collected.
fn observe(meter: &Meter, snapshots: Snapshots) {
    for family in families(&[]) {
        let (name, help) = (otel_name(family.name), family.help);
        let unit = match family.unit {
            Some(Unit::Bytes) => "By",
            Some(Unit::Seconds) => "s",
            None => "1",
        };
        let snapshots = snapshots.clone();
        let family_name = family.name;
        // The samples of this family as they stand, each with its labels as attributes.
        let samples = move || {
            let flows = snapshots();
            let found = families(&flows).into_iter().find(|f| f.name == family_name);
            (found.into_iter())
                .flat_map(|Family { samples, .. }| samples)
                .map(|(labels, value)| {
                    let attributes: Vec<_> = (labels.into_iter())
                        .map(|(key, value)| KeyValue::new(key, value.to_owned()))
                        .collect();
                    (attributes, value)
                })
                .collect::<Vec<_>>()
        };
        match family.kind {
            Kind::Count => {
                _ = (meter.u64_observable_counter(name))
                    .with_description(help)
                    .with_unit(unit)
                    .with_callback(observed(samples, |value| match value {
                        Value::Count(count) => Some(count),
                        _ => None,
                    }))
                    .build()
            }
            Kind::Time => {
                _ = (meter.f64_observable_counter(name))
                    .with_description(help)
                    .with_unit(unit)
                    .with_callback(observed(samples, |value| match value {
                        Value::Time(time) => Some(time.as_secs_f64()),
                        _ => None,
                    }))
                    .build()
            }
            Kind::Gauge => {
                _ = (meter.i64_observable_gauge(name))
                    .with_description(help)
                    .with_unit(unit)
                    .with_callback(observed(samples, |value| match value {
                        Value::Gauge(level) => Some(level),
                        _ => None,
                    }))
                    .build()
            }
            Kind::Histogram => {}
        }
    }
}

/// An instrument's callback: observes each sample `samples` returns, as `number` reads
/// its value.
fn observed<T: 'static>(
    samples: impl Fn() -> Vec<(Vec<KeyValue>, Value)> + Send + Sync + 'static,
    number: fn(Value) -> Option<T>,
) -> impl Fn(&dyn AsyncInstrument<T>) + Send + Sync + 'static {
    move |observer| {
        for (attributes, value) in samples() {
            if let Some(value) = number(value) {
                observer.observe(value, &attributes);
            }
        }
    }
}

/// `torvyn.node.dead_lettered` for `node_dead_lettered`: the scope a dot, the rest as is.
fn otel_name(name: &str) -> String {
    match name.split_once('_') {
        Some((scope, rest)) => format!("torvyn.{scope}.{rest}"),
        None => format!("torvyn.{name}"),
    }
}
