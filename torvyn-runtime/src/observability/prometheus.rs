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

use super::metrics::{self, Kind, Labels, Value, families};
use super::{FlowReport, MetricKind, SeriesValue, component_families};

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

impl Collector for Flows {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        for family in families(&self.0) {
            if family.samples.is_empty() {
                continue;
            }
            let metric_type = match family.kind {
                Kind::Count | Kind::Time => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let unit = family.unit.map(|unit| match unit {
                metrics::Unit::Bytes => Unit::Bytes,
                metrics::Unit::Seconds => Unit::Seconds,
            });
            let mut encoder =
                encoder.encode_descriptor(family.name, family.help, unit.as_ref(), metric_type)?;
            for (labels, value) in &family.samples {
                let mut sample = encoder.encode_family(labels)?;
                match value {
                    Value::Count(count) => ConstCounter::new(*count).encode(sample)?,
                    Value::Time(time) => ConstCounter::new(time.as_secs_f64()).encode(sample)?,
                    Value::Gauge(level) => ConstGauge::new(*level).encode(sample)?,
                    Value::Histogram(histogram) => sample.encode_histogram::<Labels<'_>>(
                        histogram.sum().as_secs_f64(),
                        histogram.count(),
                        &histogram.buckets(),
                        None,
                    )?,
                }
            }
        }
        encode_components(&self.0, &mut encoder)
    }
}

/// The metrics components keep, as `torvyn_component_NAME` families.
fn encode_components(
    flows: &[Arc<FlowReport>],
    encoder: &mut DescriptorEncoder<'_>,
) -> fmt::Result {
    for family in component_families(flows) {
        let metric = family.metric;
        if family.samples.is_empty() {
            continue;
        }
        let metric_type = match metric.kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        let unit = (!metric.unit.is_empty()).then(|| Unit::Other(metric.unit.clone()));
        let name = format!("component_{}", metric.name);
        let mut encoder =
            encoder.encode_descriptor(&name, &metric.help, unit.as_ref(), metric_type)?;
        for (labels, value) in &family.samples {
            let mut sample = encoder.encode_family(labels)?;
            match value {
                SeriesValue::Count(count) => ConstCounter::new(*count).encode(sample)?,
                SeriesValue::Level(level) => ConstGauge::new(*level).encode(sample)?,
                SeriesValue::Histogram {
                    buckets,
                    sum,
                    count,
                } => sample.encode_histogram::<Labels<'_>>(
                    *sum,
                    *count,
                    &SeriesValue::buckets(&metric.bounds, buckets),
                    None,
                )?,
            }
        }
    }
    Ok(())
}
