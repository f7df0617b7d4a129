//! `/metrics`: the flows' latest snapshots in the Prometheus text exposition format,
//! encoded by prometheus-client at each scrape. Nothing here runs on a flow's path: the
//! flows publish snapshots, and a scrape reads the latest ones.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::{EdgeReport, FlowReport, NodeReport, Outcome};

/// The `Content-Type` of what [`render`] writes.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The metrics of `flows`, every name prefixed `torvyn_`.
pub(crate) fn render(flows: Vec<Arc<FlowReport>>) -> String {
    let mut registry = Registry::with_prefix("torvyn");
    registry.register_collector(Box::new(Flows(flows)));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

#[derive(Debug)]
struct Flows(Vec<Arc<FlowReport>>);

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// A metric's name, its help, and where its value comes from in a report.
type Count<R, V = u64> = (&'static str, &'static str, fn(&R) -> V);

/// One metric family: its description, then a sample per label set.
fn family<'a, V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help, unit): (&str, &str, Option<Unit>),
    samples: impl Iterator<Item = (Labels<'a>, V)>,
) -> fmt::Result {
    let mut samples = samples.peekable();
    let Some((_, first)) = samples.peek() else {
        return Ok(());
    };
    let metric_type = first.metric_type();
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), metric_type)?;
    for (labels, value) in samples {
        value.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(value: u64) -> ConstCounter<u64> {
    ConstCounter::new(value)
}

fn seconds(value: std::time::Duration) -> ConstCounter<f64> {
    ConstCounter::new(value.as_secs_f64())
}

fn gauge(value: impl TryInto<i64>) -> ConstGauge<i64> {
    ConstGauge::new(value.try_into().unwrap_or(i64::MAX))
}

impl Flows {
    fn flows(&self) -> impl Iterator<Item = (&FlowReport, Labels<'_>)> {
        (self.0.iter()).map(|flow| (&**flow, vec![("flow", flow.flow.as_str())]))
    }

    fn nodes(&self) -> impl Iterator<Item = (&NodeReport, Labels<'_>)> {
        self.0.iter().flat_map(|flow| {
            (flow.nodes.iter()).map(|node| {
                (
                    node,
                    vec![("flow", flow.flow.as_str()), ("node", &node.name)],
                )
            })
        })
    }

    fn edges(&self) -> impl Iterator<Item = (&EdgeReport, Labels<'_>)> {
        self.0.iter().flat_map(|flow| {
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
    }
}

impl Collector for Flows {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let e = &mut encoder;
        family(
            e,
            (
                "flow_running",
                "Whether the flow is running (1) or has ended (0)",
                None,
            ),
            self.flows()
                .map(|(f, l)| (l, gauge(i64::from(f.outcome == Outcome::Running)))),
        )?;
        let flow_counts: [Count<FlowReport>; 8] = [
            (
                "flow_emitted",
                "Elements that left the flow's sources",
                |f| f.accounting.emitted,
            ),
            (
                "flow_delivered",
                "Elements the flow's sinks accepted, dead letters apart",
                |f| f.accounting.delivered,
            ),
            (
                "flow_filtered",
                "Elements dropped by processors, rejected by filters or sent to no port",
                |f| f.accounting.filtered,
            ),
            (
                "flow_dropped",
                "Elements dropped by queue overflow policies",
                |f| f.accounting.dropped,
            ),
            (
                "flow_dead_lettered",
                "Elements accepted by dead-letter sinks",
                |f| f.accounting.dead_lettered,
            ),
            ("flow_failed", "Elements given up on after an error", |f| {
                f.accounting.failed
            }),
            ("flow_absorbed", "Elements taken in by aggregators", |f| {
                f.accounting.absorbed
            }),
            (
                "flow_copies",
                "Payload copies between the host and components",
                |f| f.copies.copies,
            ),
        ];
        for (name, help, value) in flow_counts {
            family(
                e,
                (name, help, None),
                self.flows().map(|(f, l)| (l, counter(value(f)))),
            )?;
        }
        family(
            e,
            (
                "flow_copied",
                "Payload bytes copied between the host and components",
                Some(Unit::Bytes),
            ),
            self.flows().map(|(f, l)| (l, counter(f.copies.bytes))),
        )?;
        family(
            e,
            (
                "flow_buffers_live",
                "Payload buffers not back in the pool",
                None,
            ),
            self.flows().map(|(f, l)| (l, gauge(f.buffers.live))),
        )?;
        let pool: [Count<FlowReport>; 2] = [
            (
                "flow_buffer_pool_hits",
                "Buffers handed out from the pool's free lists",
                |f| f.buffers.pool.hits,
            ),
            (
                "flow_buffer_pool_misses",
                "Buffers the pool had to allocate",
                |f| f.buffers.pool.misses,
            ),
        ];
        for (name, help, value) in pool {
            family(
                e,
                (name, help, None),
                self.flows().map(|(f, l)| (l, counter(value(f)))),
            )?;
        }

        let node_counts: [Count<NodeReport>; 15] = [
            ("node_received", "Elements the node was handed", |n| {
                n.received
            }),
            ("node_emitted", "Elements the node sent on", |n| n.emitted),
            ("node_delivered", "Elements a sink accepted", |n| {
                n.delivered
            }),
            (
                "node_filtered",
                "Elements the node dropped, rejected or sent to no port",
                |n| n.filtered,
            ),
            ("node_absorbed", "Elements an aggregator took in", |n| {
                n.absorbed
            }),
            ("node_failed", "Elements given up on after an error", |n| {
                n.failed
            }),
            (
                "node_dead_lettered",
                "Elements sent to the node's dead-letter sink",
                |n| n.dead_lettered,
            ),
            (
                "node_retries",
                "Calls made again under a retry policy",
                |n| n.retries,
            ),
            (
                "node_restarts",
                "Times the node's component was started afresh after a trap",
                |n| n.restarts,
            ),
            (
                "node_pauses",
                "A source: pauses it was told of; a sink: pauses it asked for",
                |n| n.pauses,
            ),
            (
                "node_resumes",
                "A source: times it was told to go on after a pause",
                |n| n.resumes,
            ),
            (
                "node_calls",
                "Calls the host made into the node's component",
                |n| n.calls.calls,
            ),
            (
                "node_interruptions",
                "Calls interrupted at an epoch tick (to check time limits and let other flows run)",
                |n| n.calls.interruptions,
            ),
            ("node_copies", "Payload copies the node's calls made", |n| {
                n.copies.copies
            }),
            (
                "node_copied_bytes",
                "Payload bytes the node's calls copied",
                |n| n.copies.bytes,
            ),
        ];
        for (name, help, value) in node_counts {
            family(
                e,
                (name, help, None),
                self.nodes().map(|(n, l)| (l, counter(value(n)))),
            )?;
        }
        family(
            e,
            (
                "node_errors",
                "Errors and traps of the node, retried or not, by kind",
                None,
            ),
            self.nodes().flat_map(|(n, l)| {
                n.errors_by_kind.by_kind().map(|(kind, count)| {
                    let mut labels = l.clone();
                    labels.push(("kind", kind));
                    (labels, counter(count))
                })
            }),
        )?;
        family(
            e,
            (
                "node_busy",
                "Time spent inside the node's calls",
                Some(Unit::Seconds),
            ),
            self.nodes().map(|(n, l)| (l, seconds(n.calls.busy))),
        )?;
        let mut latency = e.encode_descriptor(
            "node_call_duration",
            "How long the node's calls took",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (node, labels) in self.nodes() {
            if let Some(histogram) = &node.calls.latency {
                latency
                    .encode_family(&labels)?
                    .encode_histogram::<Labels<'_>>(
                        histogram.sum().as_secs_f64(),
                        histogram.count(),
                        &histogram.cumulative(),
                        None,
                    )?;
            }
        }

        let sizes: [Count<EdgeReport, usize>; 3] = [
            ("edge_queue_depth", "Elements in the queue", |q| q.depth),
            (
                "edge_queue_capacity",
                "Elements the queue holds at most",
                |q| q.capacity,
            ),
            (
                "edge_queue_max_depth",
                "The most elements the queue has held at once",
                |q| q.max_depth,
            ),
        ];
        for (name, help, value) in sizes {
            family(
                e,
                (name, help, None),
                self.edges().map(|(q, l)| (l, gauge(value(q)))),
            )?;
        }
        family(
            e,
            (
                "edge_dropped",
                "Elements the queue's overflow policy dropped",
                None,
            ),
            self.edges().map(|(q, l)| (l, counter(q.dropped))),
        )?;
        family(
            e,
            (
                "edge_blocked",
                "Time the queue was full while its upstream had an element for it: backpressure from downstream",
                Some(Unit::Seconds),
            ),
            self.edges().map(|(q, l)| (l, seconds(q.blocked))),
        )
    }
}
