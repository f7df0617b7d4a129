//! The metrics components keep about themselves (`torvyn:runtime/metrics@0.1.0`,
//! `engine/host/metrics.rs`): one store per node, kept for the whole run so that an
//! instance restarted after a trap goes on counting, and copied into the node's report
//! each time the flow publishes one.
//!
//! A guest's update takes the store's lock, which only the flow's publisher (every
//! [`PUBLISH_EVERY`](super::PUBLISH_EVERY)) shares: slower than the host's own counters,
//! which are plain fields, but bounded (64 metrics, 1000 series per node).

use std::sync::{Mutex, PoisonError};

/// Most metrics one node may declare.
pub const MAX_METRICS: usize = 64;
/// Most series (a metric and one combination of its label values) one node may hold.
pub const MAX_SERIES: usize = 1000;
/// Most labels of one metric.
const MAX_LABELS: usize = 8;
/// Longest name, unit or label name, in bytes.
const MAX_NAME: usize = 64;
/// Longest unit, in bytes (OpenTelemetry takes at most 63).
const MAX_UNIT: usize = 32;
/// Name endings Prometheus writes itself (a counter's `_total`, a histogram's series).
const RESERVED_SUFFIXES: [&str; 6] = ["_total", "_count", "_sum", "_bucket", "_info", "_created"];
/// Longest help, in bytes: past it, the help is cut.
const MAX_HELP: usize = 256;
/// Longest label value, in bytes.
const MAX_LABEL_VALUE: usize = 128;
/// Most bucket bounds of one histogram.
const MAX_BOUNDS: usize = 32;
/// Label names the host sets on every sample, or that Prometheus keeps for itself.
const RESERVED_LABELS: [&str; 4] = ["flow", "node", "le", "quantile"];
/// Prometheus' default histogram bounds (its client libraries' `DefBuckets`).
const DEFAULT_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a declaration or an update was refused (the WIT's `metric-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricError {
    InvalidName,
    Conflicting,
    NoSuchMetric,
    InvalidLabels,
    InvalidValue,
    TooMany,
}

/// A guest's update of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Update {
    /// A counter's `add`.
    Add(u64),
    /// A gauge's `set`.
    Set(f64),
    /// A histogram's `record`.
    Record(f64),
}

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// A count that only grows.
    Counter,
    /// A level that goes up and down.
    Gauge,
    /// Values counted into buckets.
    Histogram,
}

/// A metric a component declared, with its series as they stand: part of its node's
/// report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ComponentMetric {
    /// Its name as the component gave it (exported as `torvyn_component_NAME`).
    pub name: String,
    /// What it measures.
    pub help: String,
    /// The unit of its values (`seconds`, `bytes`), or empty.
    pub unit: String,
    /// Its kind.
    pub kind: MetricKind,
    /// Its label names.
    pub labels: Vec<String>,
    /// A histogram's bucket upper bounds, inclusive; empty for the others.
    pub bounds: Vec<f64>,
    /// Its series, by label values (one per label name, in order).
    pub series: Vec<(Vec<String>, SeriesValue)>,
}

/// The value of one series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesValue {
    /// A counter's count.
    Count(u64),
    /// A gauge's level.
    Level(f64),
    /// A histogram's values: how many fell in each bucket (not cumulative, one more than
    /// the bounds: the last for values above them all), their sum and their count.
    Histogram {
        /// Values per bucket.
        buckets: Vec<u64>,
        /// The sum of the values.
        sum: f64,
        /// How many values.
        count: u64,
    },
}

/// One node's metrics.
#[derive(Debug, Default)]
pub(crate) struct ComponentMetrics {
    inner: Mutex<Declared>,
}

#[derive(Debug, Default)]
struct Declared {
    metrics: Vec<ComponentMetric>,
    /// Series held over every metric.
    series: usize,
}

impl SeriesValue {
    /// A histogram's `(upper bound, values in this bucket)`, not cumulative, the last
    /// bound infinite: what the Prometheus encoder takes.
    pub(crate) fn buckets(bounds: &[f64], buckets: &[u64]) -> Vec<(f64, u64)> {
        let upper = bounds.iter().copied().chain([f64::INFINITY]);
        upper.zip(buckets.iter().copied()).collect()
    }
}

/// One exported metric over every node that declared it: the first declaration gives its
/// help, unit, kind and bounds, and a node that declared the name otherwise is left out
/// of it (a Prometheus family has one type).
#[derive(Debug)]
pub(crate) struct ComponentFamily<'a> {
    pub(crate) metric: &'a ComponentMetric,
    /// Each series with its labels: `flow`, `node`, then the component's.
    pub(crate) samples: Vec<(Vec<(&'a str, &'a str)>, &'a SeriesValue)>,
}

/// The component metrics of `flows`, a family per name, in the order of the names.
pub(crate) fn component_families(
    flows: &[std::sync::Arc<super::FlowReport>],
) -> Vec<ComponentFamily<'_>> {
    families_of(flows.iter().flat_map(|flow| {
        (flow.nodes.iter()).map(|node| (flow.flow.as_str(), node.name.as_str(), &node.metrics[..]))
    }))
}

/// The families of the metrics of each `(flow, node, metrics)`.
fn families_of<'a>(
    declared: impl Iterator<Item = (&'a str, &'a str, &'a [ComponentMetric])>,
) -> Vec<ComponentFamily<'a>> {
    let mut families: std::collections::BTreeMap<String, ComponentFamily<'a>> = Default::default();
    for (flow, node, metrics) in declared {
        for metric in metrics {
            // Keyed by the name as written out, unit and all: a metric `x` in bytes and a
            // metric `x_bytes` are one family, and the first one declared wins.
            let written = match metric.unit.as_str() {
                "" => metric.name.clone(),
                unit => format!("{}_{unit}", metric.name),
            };
            let family = families.entry(written).or_insert(ComponentFamily {
                metric,
                samples: Vec::new(),
            });
            let first = family.metric;
            if (first.kind, &first.unit, &first.bounds)
                != (metric.kind, &metric.unit, &metric.bounds)
            {
                continue;
            }
            for (values, value) in &metric.series {
                let mut labels = vec![("flow", flow), ("node", node)];
                let names = metric.labels.iter().map(String::as_str);
                labels.extend(names.zip(values.iter().map(String::as_str)));
                family.samples.push((labels, value));
            }
        }
    }
    families.into_values().collect()
}

impl ComponentMetrics {
    /// Declares `metric` (with `bounds`, for a histogram), or finds it declared alike:
    /// its id.
    pub(crate) fn declare(
        &self,
        kind: MetricKind,
        name: String,
        help: String,
        unit: String,
        labels: Vec<String>,
        bounds: Vec<f64>,
    ) -> Result<u32, MetricError> {
        // The counts first: the checks below walk the lists.
        if labels.len() > MAX_LABELS {
            return Err(MetricError::InvalidLabels);
        }
        if bounds.len() > MAX_BOUNDS {
            return Err(MetricError::InvalidValue);
        }
        let valid = |text: &str, longest: usize| {
            text.len() <= longest
                && text.starts_with(|c: char| c.is_ascii_lowercase())
                && text
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let reserved = |label: &String| RESERVED_LABELS.contains(&label.as_str());
        // A suffix Prometheus writes itself would make two metrics one family.
        let suffixed = RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s));
        let repeated = (labels.iter().enumerate()).any(|(i, l)| labels[..i].contains(l));
        if !valid(&name, MAX_NAME)
            || suffixed
            || !(unit.is_empty() || valid(&unit, MAX_UNIT))
            || labels.iter().any(|l| !valid(l, MAX_NAME) || reserved(l))
            || repeated
        {
            return Err(MetricError::InvalidName);
        }
        let bounds = match kind {
            MetricKind::Histogram if bounds.is_empty() => DEFAULT_BOUNDS.to_vec(),
            MetricKind::Histogram => bounds,
            _ => Vec::new(),
        };
        let increasing = bounds.windows(2).all(|pair| pair[0] < pair[1]);
        if !increasing || !bounds.iter().all(|b| b.is_finite()) {
            return Err(MetricError::InvalidValue);
        }
        // One line of text (Prometheus' `# HELP` ends at a line break), cut before it is
        // copied: the guest's text may be as large as its memory.
        let help: String = (help[..help.floor_char_boundary(MAX_HELP)].chars())
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut declared = self.lock();
        if let Some(at) = declared.metrics.iter().position(|m| m.name == name) {
            let found = &declared.metrics[at];
            let alike = (
                found.kind,
                &found.help,
                &found.unit,
                &found.labels,
                &found.bounds,
            ) == (kind, &help, &unit, &labels, &bounds);
            return match alike {
                true => Ok(at as u32),
                false => Err(MetricError::Conflicting),
            };
        }
        if declared.metrics.len() >= MAX_METRICS {
            return Err(MetricError::TooMany);
        }
        declared.metrics.push(ComponentMetric {
            name,
            help,
            unit,
            kind,
            labels,
            bounds,
            series: Vec::new(),
        });
        Ok((declared.metrics.len() - 1) as u32)
    }

    /// Applies `update` to the series `labels` of metric `id`, which must be of the
    /// update's kind.
    pub(crate) fn update(
        &self,
        id: u32,
        labels: Vec<String>,
        update: Update,
    ) -> Result<(), MetricError> {
        let kind = match update {
            Update::Add(_) => MetricKind::Counter,
            Update::Set(_) => MetricKind::Gauge,
            Update::Record(_) => MetricKind::Histogram,
        };
        if let Update::Set(value) | Update::Record(value) = update
            && !value.is_finite()
        {
            return Err(MetricError::InvalidValue);
        }
        let mut declared = self.lock();
        let Declared { metrics, series } = &mut *declared;
        let metric = (metrics.get_mut(id as usize))
            .filter(|m| m.kind == kind)
            .ok_or(MetricError::NoSuchMetric)?;
        if labels.len() != metric.labels.len() || labels.iter().any(|v| v.len() > MAX_LABEL_VALUE) {
            return Err(MetricError::InvalidLabels);
        }
        let at = match metric.series.iter().position(|(l, _)| *l == labels) {
            Some(at) => at,
            None if *series >= MAX_SERIES => return Err(MetricError::TooMany),
            None => {
                let empty = match kind {
                    MetricKind::Counter => SeriesValue::Count(0),
                    MetricKind::Gauge => SeriesValue::Level(0.0),
                    MetricKind::Histogram => SeriesValue::Histogram {
                        buckets: vec![0; metric.bounds.len() + 1],
                        sum: 0.0,
                        count: 0,
                    },
                };
                *series += 1;
                metric.series.push((labels, empty));
                metric.series.len() - 1
            }
        };
        let bounds = &metric.bounds;
        match (&mut metric.series[at].1, update) {
            (SeriesValue::Count(count), Update::Add(value)) => {
                *count = count.saturating_add(value);
            }
            (SeriesValue::Level(level), Update::Set(value)) => *level = value,
            (
                SeriesValue::Histogram {
                    buckets,
                    sum,
                    count,
                },
                Update::Record(value),
            ) => {
                // A sum past what an f64 holds would show as no number at all.
                if !(*sum + value).is_finite() {
                    return Err(MetricError::InvalidValue);
                }
                let bucket = bounds.partition_point(|bound| *bound < value);
                buckets[bucket] += 1;
                *sum += value;
                *count += 1;
            }
            // A series has its metric's kind, which the update's was checked against.
            _ => return Err(MetricError::NoSuchMetric),
        }
        Ok(())
    }

    /// The metrics and their series as they stand, for a report.
    pub(crate) fn snapshot(&self) -> Vec<ComponentMetric> {
        self.lock().metrics.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Declared> {
        // An update cannot panic halfway through: a poisoned store is still whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(store: &ComponentMetrics, name: &str, labels: &[&str]) -> Result<u32, MetricError> {
        let labels = labels.iter().map(|l| l.to_string()).collect();
        store.declare(
            MetricKind::Counter,
            name.into(),
            "help".into(),
            String::new(),
            labels,
            Vec::new(),
        )
    }

    #[test]
    fn a_metric_declared_again_alike_is_the_same_and_otherwise_refused() {
        let store = ComponentMetrics::default();
        assert_eq!(counter(&store, "requests", &["kind"]), Ok(0));
        assert_eq!(counter(&store, "requests", &["kind"]), Ok(0));
        assert_eq!(
            counter(&store, "requests", &[]),
            Err(MetricError::Conflicting)
        );
        assert_eq!(
            counter(&store, "Requests", &[]),
            Err(MetricError::InvalidName)
        );
        assert_eq!(
            counter(&store, "r", &["node"]),
            Err(MetricError::InvalidName)
        );
        assert_eq!(
            counter(&store, "r", &["a-b"]),
            Err(MetricError::InvalidName)
        );
    }

    #[test]
    fn updates_land_in_their_series_and_their_bucket() {
        let store = ComponentMetrics::default();
        let requests = counter(&store, "requests", &["kind"]).unwrap();
        let sizes = store
            .declare(
                MetricKind::Histogram,
                "size".into(),
                "h".into(),
                "bytes".into(),
                Vec::new(),
                vec![1.0, 10.0],
            )
            .unwrap();
        let of = |labels: &[&str]| labels.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        store.update(requests, of(&["a"]), Update::Add(2)).unwrap();
        store.update(requests, of(&["a"]), Update::Add(3)).unwrap();
        store.update(requests, of(&["b"]), Update::Add(1)).unwrap();
        for value in [0.5, 1.0, 5.0, 50.0] {
            store.update(sizes, of(&[]), Update::Record(value)).unwrap();
        }
        assert_eq!(
            store.update(requests, of(&["a"]), Update::Set(1.0)),
            Err(MetricError::NoSuchMetric)
        );
        assert_eq!(
            store.update(requests, of(&[]), Update::Add(1)),
            Err(MetricError::InvalidLabels)
        );
        let snapshot = store.snapshot();
        assert_eq!(
            snapshot[0].series,
            [
                (of(&["a"]), SeriesValue::Count(5)),
                (of(&["b"]), SeriesValue::Count(1))
            ]
        );
        assert_eq!(
            snapshot[1].series[0].1,
            SeriesValue::Histogram {
                buckets: vec![2, 1, 1],
                sum: 56.5,
                count: 4
            }
        );
    }

    #[test]
    fn series_past_the_bound_are_refused() {
        let store = ComponentMetrics::default();
        let id = counter(&store, "c", &["n"]).unwrap();
        for n in 0..MAX_SERIES {
            store
                .update(id, vec![n.to_string()], Update::Add(1))
                .unwrap();
        }
        assert_eq!(
            store.update(id, vec!["more".into()], Update::Add(1)),
            Err(MetricError::TooMany)
        );
        // An existing series still counts.
        store.update(id, vec!["0".into()], Update::Add(1)).unwrap();
    }

    #[test]
    fn what_would_break_a_scrape_is_refused_when_declared() {
        let store = ComponentMetrics::default();
        assert_eq!(
            counter(&store, "a", &["k", "k"]),
            Err(MetricError::InvalidName)
        );
        assert_eq!(
            counter(&store, "a_total", &[]),
            Err(MetricError::InvalidName)
        );
        assert_eq!(
            counter(&store, "a_bucket", &[]),
            Err(MetricError::InvalidName)
        );
        let histogram = |bounds: Vec<f64>| {
            store.declare(
                MetricKind::Histogram,
                "h".into(),
                String::new(),
                String::new(),
                Vec::new(),
                bounds,
            )
        };
        assert_eq!(histogram(vec![2.0, 1.0]), Err(MetricError::InvalidValue));
        assert_eq!(histogram(vec![f64::NAN]), Err(MetricError::InvalidValue));
        assert_eq!(
            histogram(vec![1.0; MAX_BOUNDS + 1]),
            Err(MetricError::InvalidValue)
        );
        let h = histogram(vec![f64::MAX / 2.0]).unwrap();
        let none = Vec::new;
        assert_eq!(
            store.update(h, none(), Update::Record(f64::INFINITY)),
            Err(MetricError::InvalidValue)
        );
        store.update(h, none(), Update::Record(f64::MAX)).unwrap();
        // A sum past f64 would read as no number.
        assert_eq!(
            store.update(h, none(), Update::Record(f64::MAX)),
            Err(MetricError::InvalidValue)
        );
        for n in 1..MAX_METRICS {
            counter(&store, &format!("c{n}"), &[]).unwrap();
        }
        assert_eq!(counter(&store, "one_more", &[]), Err(MetricError::TooMany));
    }

    #[test]
    fn a_help_is_one_line_cut_at_a_character() {
        let store = ComponentMetrics::default();
        let help = format!("two\nlines {}", "é".repeat(200));
        store
            .declare(
                MetricKind::Gauge,
                "g".into(),
                help,
                String::new(),
                Vec::new(),
                Vec::new(),
            )
            .unwrap();
        let kept = &store.snapshot()[0].help;
        assert!(kept.starts_with("two lines é"), "{kept}");
        assert!(kept.len() <= MAX_HELP && kept.ends_with('é'), "{kept}");
    }

    #[test]
    fn one_written_name_is_one_family_whoever_declared_it_first() {
        let metric = |name: &str, unit: &str| ComponentMetric {
            name: name.into(),
            help: String::new(),
            unit: unit.into(),
            kind: MetricKind::Counter,
            labels: Vec::new(),
            bounds: Vec::new(),
            series: vec![(Vec::new(), SeriesValue::Count(1))],
        };
        let metrics = [metric("x", "bytes"), metric("x_bytes", "")];
        let families = families_of([("f", "n", &metrics[..])].into_iter());
        assert_eq!(families.len(), 1);
        assert_eq!(
            (families[0].metric.unit.as_str(), families[0].samples.len()),
            ("bytes", 1)
        );
    }
}
