//! OTLP export: a real OpenTelemetry collector endpoint, served on loopback by the tests
//! from the `opentelemetry-proto` gRPC definitions, receives linked spans of every element
//! and the flows' metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::{Request, Response, Status};

use crate::support::{Guest, TestProject};

/// What the collector received.
#[derive(Clone, Default)]
struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// An OTLP gRPC collector on a free loopback port, until dropped.
pub(crate) struct Collector {
    pub(crate) endpoint: String,
    received: Received,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    pub(crate) fn start() -> Collector {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let received = Received::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .add_service(MetricsServiceServer::new(received.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        runtime.spawn(server);
        Collector {
            endpoint,
            received,
            _runtime: runtime,
        }
    }

    /// Every span received, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let traces = self.received.traces.lock().unwrap();
        let mut spans = Vec::new();
        for resource in traces.iter().flat_map(|r| &r.resource_spans) {
            let attributes = &resource.resource.as_ref().unwrap().attributes;
            let service = text(attribute(attributes, "service.name"));
            for scope in &resource.scope_spans {
                assert_eq!(scope.scope.as_ref().unwrap().name, "torvyn");
                for span in &scope.spans {
                    spans.push((service.clone(), span.clone()));
                }
            }
        }
        spans
    }

    /// The latest value of each metric point received, by metric name and attributes
    /// (`key=value`, sorted).
    pub(crate) fn metrics(&self) -> BTreeMap<(String, String), f64> {
        let requests = self.received.metrics.lock().unwrap();
        let mut points = BTreeMap::new();
        let metrics = (requests.iter())
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics);
        for metric in metrics {
            let data_points = match &metric.data {
                Some(metric::Data::Sum(sum)) => &sum.data_points,
                Some(metric::Data::Gauge(gauge)) => &gauge.data_points,
                _ => continue,
            };
            for point in data_points {
                let mut labels: Vec<String> = (point.attributes.iter())
                    .map(|kv| format!("{}={}", kv.key, text(Some(kv))))
                    .collect();
                labels.sort();
                let value = match point.value {
                    Some(number_data_point::Value::AsInt(v)) => v as f64,
                    Some(number_data_point::Value::AsDouble(v)) => v,
                    None => continue,
                };
                points.insert((metric.name.clone(), labels.join(",")), value);
            }
        }
        points
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attributes.iter().find(|kv| kv.key == key)
}

fn text(kv: Option<&KeyValue>) -> String {
    match kv
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
    {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `src → up → out`, the sink configured with `sink`.
fn project(sink: &str) -> TestProject {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100000}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, sink)
}

/// `run` arguments: stop after `limit` elements, observe at `level`, export to `endpoint`.
fn exporting<'a>(limit: &'a str, level: &'a str, endpoint: &'a str) -> [&'a str; 6] {
    [
        "--limit",
        limit,
        "--observability",
        level,
        "--otlp-endpoint",
        endpoint,
    ]
}

const SHOW_TRACE: &str = r#"{"show_trace": true}"#;

#[test]
fn a_collector_receives_every_elements_spans_linked_stage_to_stage_and_the_metrics() {
    let collector = Collector::start();
    let run = project(SHOW_TRACE)
        .run(&exporting("5", "diagnostic", &collector.endpoint))
        .success();
    assert!(
        run.stderr
            .contains("Exported 15 spans and the flows' metrics to "),
        "{}",
        run.stderr
    );

    let spans = collector.spans();
    assert_eq!(spans.len(), 15);
    assert!(spans.iter().all(|(service, _)| service == "torvyn"));
    let mut traces: BTreeMap<String, Vec<&Span>> = BTreeMap::new();
    for (_, span) in &spans {
        traces.entry(hex(&span.trace_id)).or_default().push(span);
    }
    assert_eq!(traces.len(), 5);
    // What the sink was told of each element's trace, by sequence number.
    let told: BTreeMap<String, (String, String)> = (run.stdout.lines())
        .filter_map(|line| {
            let (head, context) = line.split_once(" trace=")?;
            let (trace, span) = context.split_once(" span=")?;
            let sequence = head.strip_prefix("seq=")?.split(' ').next()?;
            Some((sequence.to_owned(), (trace.to_owned(), span.to_owned())))
        })
        .collect();
    assert_eq!(told.len(), 5, "{}", run.stdout);
    for (trace, spans) in &traces {
        let by_name = |name: &str| {
            let found = spans.iter().find(|s| s.name == name);
            *found.unwrap_or_else(|| panic!("no `{name}` span in trace {trace}: {spans:?}"))
        };
        let (pull, process, push) = (
            by_name("src pull"),
            by_name("up process"),
            by_name("out push"),
        );
        assert!(pull.parent_span_id.is_empty());
        assert_eq!(process.parent_span_id, pull.span_id);
        assert_eq!(push.parent_span_id, process.span_id);
        assert!(push.start_time_unix_nano >= process.end_time_unix_nano);
        assert_eq!(text(attribute(&push.attributes, "torvyn.flow")), "main");
        assert_eq!(
            text(attribute(&push.attributes, "torvyn.fate")),
            "delivered"
        );
        assert_eq!(text(attribute(&process.attributes, "torvyn.copies")), "2");
        assert_eq!(
            text(attribute(&process.attributes, "torvyn.queue.from")),
            "src"
        );
        // The sink saw the same trace context in `flow-context`.
        let sequence = text(attribute(&push.attributes, "torvyn.sequence"));
        assert_eq!(told[&sequence], (trace.clone(), hex(&push.span_id)));
    }

    let metrics = collector.metrics();
    let point = |name: &str, labels: &str| {
        let key = (name.to_owned(), labels.to_owned());
        *metrics
            .get(&key)
            .unwrap_or_else(|| panic!("no {key:?} in {:?}", metrics.keys()))
    };
    assert_eq!(point("torvyn.flow.delivered", "flow=main"), 5.0);
    assert_eq!(point("torvyn.node.received", "flow=main,node=up"), 5.0);
    assert_eq!(point("torvyn.node.copies", "flow=main,node=up"), 10.0);
    assert_eq!(
        point("torvyn.edge.queue_capacity", "flow=main,from=up,to=out"),
        64.0
    );
    assert_eq!(
        point("torvyn.node.errors", "flow=main,kind=trap,node=up"),
        0.0
    );
    assert_eq!(point("torvyn.flow.running", "flow=main"), 0.0);
}

#[test]
fn production_traces_one_element_in_1024() {
    let collector = Collector::start();
    let run = project(SHOW_TRACE)
        .run(&exporting("2000", "production", &collector.endpoint))
        .success();
    assert!(run.stderr.contains("Exported 6 spans"), "{}", run.stderr);
    let sequences: Vec<String> = (collector.spans().iter())
        .filter(|(_, span)| span.name == "out push")
        .map(|(_, span)| text(attribute(&span.attributes, "torvyn.sequence")))
        .collect();
    assert_eq!(sequences, ["0", "1024"]);
    // Untraced elements see an empty context; traced ones their trace.
    assert!(
        run.stdout.contains("seq=1 len=6 ITEM 1 trace= span=\n"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout
            .contains("seq=1024 len=9 ITEM 1024 trace= span=\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn many_spans_go_in_requests_of_at_most_512() {
    let collector = Collector::start();
    let run = project(r#"{"quiet": true}"#)
        .run(&exporting("3000", "diagnostic", &collector.endpoint))
        .success();
    assert!(
        run.stderr
            .contains("Exported 9000 spans and the flows' metrics to "),
        "{}",
        run.stderr
    );
    assert_eq!(collector.spans().len(), 9000);
    let requests = collector.received.traces.lock().unwrap();
    let sizes: Vec<usize> = (requests.iter())
        .map(|request| {
            (request.resource_spans.iter())
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum()
        })
        .collect();
    assert!(sizes.iter().all(|&n| n <= 512), "{sizes:?}");
}

#[test]
fn an_unreachable_collector_is_a_warning_and_the_flow_still_runs() {
    // A port nothing listens on: bind one, then free it.
    let port = crate::support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = project(SHOW_TRACE)
        .run(&exporting("3", "diagnostic", &endpoint))
        .success();
    assert_eq!(run.report()["delivered"], 3);
    assert!(
        run.stderr.contains("Exported 0 spans to "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("9 spans not exported: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the flows' metrics were not exported: "),
        "{}",
        run.stderr
    );

    // At `off` flows record nothing: the endpoint (perhaps from the environment, meant
    // for every run) is ignored with a warning.
    let collector = Collector::start();
    let off = project(SHOW_TRACE)
        .run(&exporting("3", "off", &collector.endpoint))
        .success();
    assert!(
        off.stderr.contains(
            "not exporting to the OTLP endpoint: with observability `off` (--observability)"
        ),
        "{}",
        off.stderr
    );
    assert!(collector.spans().is_empty() && collector.metrics().is_empty());
}
