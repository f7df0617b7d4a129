//! The metrics of running flows, in one model that every exporter reads: a family per
//! metric (name, help, unit, kind), with a sample per flow, node or queue. `/metrics`
//! encodes it for Prometheus, the OTLP exporter for its collector.

use std::sync::Arc;
use std::time::Duration;

use super::{CallHistogram, ConnectorReport, EdgeReport, FlowReport, NodeReport, Outcome};
use crate::resources::{TIER_NAMES, TierStats};

/// Label names and values of a sample.
pub(crate) type Labels<'a> = Vec<(&'static str, &'a str)>;

/// What a family's values measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Bytes,
    Seconds,
}

/// What a family's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Count,
    Time,
    Gauge,
    Histogram,
}

/// One sample's value, of its family's kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    /// A count that only grows.
    Count(u64),
    /// A time that only grows.
    Time(Duration),
    /// A level that goes up and down.
    Gauge(i64),
    /// Calls by how long they took.
    Histogram(CallHistogram),
}

/// A metric and its samples.
#[derive(Debug)]
pub(crate) struct Family<'a> {
    /// Its name, without the `torvyn` prefix, `_total` or unit: `node_received`.
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) unit: Option<Unit>,
    pub(crate) kind: Kind,
    pub(crate) samples: Vec<(Labels<'a>, Value)>,
}

impl<'a> Family<'a> {
    fn new(
        (name, help, kind): (&'static str, &'static str, Kind),
        unit: Option<Unit>,
        samples: Vec<(Labels<'a>, Value)>,
    ) -> Self {
        Self {
            name,
            help,
            unit,
            kind,
            samples,
        }
    }
}

/// A metric's name, its help, and where its value comes from in a report.
type Entry<R> = (&'static str, &'static str, Measure<R>);

/// Where a family's value comes from in a report, and so its kind.
enum Measure<R> {
    Count(fn(&R) -> u64),
    Time(fn(&R) -> Duration),
    Gauge(fn(&R) -> i64),
}

use Measure::{Count, Gauge, Time};

impl<R> Measure<R> {
    fn kind(&self) -> Kind {
        match self {
            Count(_) => Kind::Count,
            Time(_) => Kind::Time,
            Gauge(_) => Kind::Gauge,
        }
    }

    fn of(&self, report: &R) -> Value {
        match self {
            Count(count) => Value::Count(count(report)),
            Time(time) => Value::Time(time(report)),
            Gauge(level) => Value::Gauge(level(report)),
        }
    }
}

/// Every family, over the flows' latest reports (empty families included, so that the
/// families can be listed before any flow runs).
pub(crate) fn families(flows: &[Arc<FlowReport>]) -> Vec<Family<'_>> {
    let flow_labels = || (flows.iter()).map(|flow| (&**flow, vec![("flow", flow.flow.as_str())]));
    let node_labels = || {
        flows.iter().flat_map(|flow| {
            (flow.nodes.iter()).map(|node| {
                (
                    node,
                    vec![("flow", flow.flow.as_str()), ("node", &*node.name)],
                )
            })
        })
    };
    let edge_labels = || {
        flows.iter().flat_map(|flow| {
            flow.edges.iter().map(|edge| {
                let mut labels = vec![
                    ("flow", flow.flow.as_str()),
                    ("from", edge.from.as_str()),
                    ("to", edge.to.as_str()),
                ];
                if let Some(port) = &edge.port {
                    labels.push(("port", port));
                }
                (edge, labels)
            })
        })
    };
    let mut families = Vec::new();
    for (name, help, measure) in FLOW_FAMILIES {
        let unit = (name == "flow_copied").then_some(Unit::Bytes);
        let samples = flow_labels().map(|(f, l)| (l, measure.of(f))).collect();
        families.push(Family::new((name, help, measure.kind()), unit, samples));
    }
    let pool: [Entry<TierStats>; 2] = [
        (
            "flow_buffer_pool_hits",
            "Buffers handed out from the pool's free lists, by tier",
            Count(|t| t.hits),
        ),
        (
            "flow_buffer_pool_misses",
            "Buffers the pool had to allocate, by tier (`larger` ones are never pooled)",
            Count(|t| t.misses),
        ),
    ];
    for (name, help, measure) in &pool {
        let samples = flow_labels().flat_map(|(flow, labels)| {
            let tiers = TIER_NAMES.iter().zip(&flow.buffers.pool.by_tier);
            tiers.map(move |(tier, stats)| {
                let mut labels = labels.clone();
                labels.push(("tier", tier));
                (labels, measure.of(stats))
            })
        });
        families.push(Family::new(
            (name, help, measure.kind()),
            None,
            samples.collect(),
        ));
    }
    for (name, help, measure) in NODE_FAMILIES {
        let unit = (name == "node_busy").then_some(Unit::Seconds);
        let samples = node_labels().map(|(n, l)| (l, measure.of(n))).collect();
        families.push(Family::new((name, help, measure.kind()), unit, samples));
    }
    let errors = node_labels().flat_map(|(node, labels)| {
        node.errors_by_kind.by_kind().map(move |(kind, count)| {
            let mut labels = labels.clone();
            labels.push(("kind", kind));
            (labels, Value::Count(count))
        })
    });
    families.push(Family::new(
        (
            "node_errors",
            "Errors and traps of the node, retried or not, by kind",
            Kind::Count,
        ),
        None,
        errors.collect(),
    ));
    let latencies =
        node_labels().filter_map(|(n, l)| Some((l, Value::Histogram(n.calls.latency?))));
    families.push(Family::new(
        (
            "node_call_duration",
            "How long the node's calls took",
            Kind::Histogram,
        ),
        Some(Unit::Seconds),
        latencies.collect(),
    ));
    for (name, help, measure) in CONNECTOR_FAMILIES {
        let unit = (name == "connector_transferred").then_some(Unit::Bytes);
        let samples = node_labels().filter_map(|(node, mut labels)| {
            let connector = node.connector.as_ref()?;
            labels.push(("type", connector.kind.as_str()));
            Some((labels, measure.of(connector)))
        });
        let samples = samples.collect();
        families.push(Family::new((name, help, measure.kind()), unit, samples));
    }
    // Only a NATS source has a lag to show.
    let lags = node_labels().filter_map(|(node, mut labels)| {
        let connector = node.connector.as_ref()?;
        let lag = i64::try_from(connector.lag?).unwrap_or(i64::MAX);
        labels.push(("type", connector.kind.as_str()));
        Some((labels, Value::Gauge(lag)))
    });
    families.push(Family::new(
        (
            "connector_lag",
            "Messages of a NATS source's consumer not yet delivered to any host",
            Kind::Gauge,
        ),
        None,
        lags.collect(),
    ));
    for (name, help, measure) in EDGE_FAMILIES {
        let unit = (name == "edge_blocked").then_some(Unit::Seconds);
        let samples = edge_labels().map(|(queue, mut labels)| {
            if name == "edge_dropped" {
                // Drops by policy: only `drop-oldest` and `drop-newest` queues drop.
                labels.push(("overflow", queue.overflow.name()));
            }
            (labels, measure.of(queue))
        });
        let samples = samples.collect();
        families.push(Family::new((name, help, measure.kind()), unit, samples));
    }
    families
}

const FLOW_FAMILIES: [Entry<FlowReport>; 11] = [
    (
        "flow_running",
        "Whether the flow is running (1) or has ended (0)",
        Gauge(|f| i64::from(f.outcome == Outcome::Running)),
    ),
    (
        "flow_emitted",
        "Elements that left the flow's sources",
        Count(|f| f.accounting.emitted),
    ),
    (
        "flow_delivered",
        "Elements the flow's sinks accepted, dead letters apart",
        Count(|f| f.accounting.delivered),
    ),
    (
        "flow_filtered",
        "Elements dropped by processors, rejected by filters or sent to no port",
        Count(|f| f.accounting.filtered),
    ),
    (
        "flow_dropped",
        "Elements dropped by queue overflow policies",
        Count(|f| f.accounting.dropped),
    ),
    (
        "flow_dead_lettered",
        "Elements accepted by dead-letter sinks",
        Count(|f| f.accounting.dead_lettered),
    ),
    (
        "flow_failed",
        "Elements given up on after an error",
        Count(|f| f.accounting.failed),
    ),
    (
        "flow_absorbed",
        "Elements taken in by aggregators",
        Count(|f| f.accounting.absorbed),
    ),
    (
        "flow_copies",
        "Payload copies between the host and components",
        Count(|f| f.copies.copies),
    ),
    (
        "flow_copied",
        "Payload bytes copied between the host and components",
        Count(|f| f.copies.bytes),
    ),
    (
        "flow_buffers_live",
        "Payload buffers not back in the pool",
        Gauge(|f| f.buffers.live as i64),
    ),
];

/// Figures of built-in connectors, labelled by flow, node and connector type.
const CONNECTOR_FAMILIES: [Entry<ConnectorReport>; 15] = [
    (
        "connector_transferred",
        "Bytes a connector read (a source) or wrote (a sink)",
        Count(|c| c.bytes),
    ),
    (
        "connector_settled",
        "Elements of a source connector whose final fate it learned (end-to-end acknowledgements)",
        Count(|c| c.settled),
    ),
    (
        "connector_settled_failed",
        "Of those, elements that failed in some branch under a policy that went on",
        Count(|c| c.failed),
    ),
    (
        "connector_replayed",
        "Elements a file source read again after a restart that the run before may have delivered",
        Count(|c| c.replayed),
    ),
    (
        "connector_oversize_skipped",
        "Elements longer than max-element-size left out",
        Count(|c| c.oversize_skipped),
    ),
    (
        "connector_oversize_truncated",
        "Elements cut to max-element-size",
        Count(|c| c.oversize_truncated),
    ),
    (
        "connector_checkpoints",
        "Times a file source stored its checkpoints",
        Count(|c| c.checkpoints),
    ),
    (
        "connector_unwritten",
        "Elements that reached a sink connector after its output closed",
        Count(|c| c.unwritten),
    ),
    (
        "connector_files_made_again",
        "Times a file sink found its file deleted after a write and made it again",
        Count(|c| c.files_made_again),
    ),
    (
        "connector_acks",
        "Messages a NATS source acknowledged once their element settled",
        Count(|c| c.acks),
    ),
    (
        "connector_naks",
        "Messages a NATS source gave back for another delivery",
        Count(|c| c.naks),
    ),
    (
        "connector_progress_acks",
        "Progress acknowledgements a NATS source sent for messages held long",
        Count(|c| c.progress_acks),
    ),
    (
        "connector_redelivered",
        "Messages a NATS source received more than once",
        Count(|c| c.redelivered),
    ),
    (
        "connector_duplicates",
        "Messages a NATS sink published that the stream already held under their message id",
        Count(|c| c.duplicates),
    ),
    (
        "connector_transient_errors",
        "Failed pull requests and lost connections of a NATS connector, retried",
        Count(|c| c.transient_errors),
    ),
];

const NODE_FAMILIES: [Entry<NodeReport>; 16] = [
    (
        "node_received",
        "Elements the node was handed",
        Count(|n| n.received),
    ),
    (
        "node_emitted",
        "Elements the node sent on",
        Count(|n| n.emitted),
    ),
    (
        "node_delivered",
        "Elements a sink accepted",
        Count(|n| n.delivered),
    ),
    (
        "node_filtered",
        "Elements the node dropped, rejected or sent to no port",
        Count(|n| n.filtered),
    ),
    (
        "node_absorbed",
        "Elements an aggregator took in",
        Count(|n| n.absorbed),
    ),
    (
        "node_failed",
        "Elements given up on after an error",
        Count(|n| n.failed),
    ),
    (
        "node_dead_lettered",
        "Elements sent to the node's dead-letter sink",
        Count(|n| n.dead_lettered),
    ),
    (
        "node_retries",
        "Calls made again under a retry policy",
        Count(|n| n.retries),
    ),
    (
        "node_restarts",
        "Times the node's component was started afresh after a trap",
        Count(|n| n.restarts),
    ),
    (
        "node_pauses",
        "A source: pauses it was told of; a sink: pauses it asked for",
        Count(|n| n.pauses),
    ),
    (
        "node_resumes",
        "A source: times it was told to go on after a pause",
        Count(|n| n.resumes),
    ),
    (
        "node_calls",
        "Calls the host made into the node's component",
        Count(|n| n.calls.calls),
    ),
    (
        "node_interruptions",
        "Calls interrupted at an epoch tick (to check time limits and let other flows run)",
        Count(|n| n.calls.interruptions),
    ),
    (
        "node_copies",
        "Payload copies the node's calls made",
        Count(|n| n.copies.copies),
    ),
    (
        "node_copied_bytes",
        "Payload bytes the node's calls copied",
        Count(|n| n.copies.bytes),
    ),
    (
        "node_busy",
        "Time spent inside the node's calls",
        Time(|n| n.calls.busy),
    ),
];

const EDGE_FAMILIES: [Entry<EdgeReport>; 5] = [
    (
        "edge_queue_depth",
        "Elements in the queue",
        Gauge(|q| q.depth as i64),
    ),
    (
        "edge_queue_capacity",
        "Elements the queue holds at most",
        Gauge(|q| q.capacity as i64),
    ),
    (
        "edge_queue_max_depth",
        "The most elements the queue has held at once",
        Gauge(|q| q.max_depth as i64),
    ),
    (
        "edge_dropped",
        "Elements the queue's overflow policy dropped",
        Count(|q| q.dropped),
    ),
    (
        "edge_blocked",
        "Time the queue was full while its upstream had an element for it: backpressure from downstream",
        Time(|q| q.blocked),
    ),
];
