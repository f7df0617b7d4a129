//! Metrics a component keeps about its own work (`torvyn:runtime/metrics@0.1.0`):
//! counters, gauges and histograms that the host serves with its own metrics, as
//! `torvyn_component_NAME`, labelled with the flow and the node. A component that uses
//! them needs `metrics = true` in its `[components.NAME.capabilities]`; one that never
//! does imports nothing of it.
//!
//! ```no_run
//! use torvyn_sdk::metrics::{Counter, Histogram};
//!
//! # fn main() -> Result<(), torvyn_sdk::Error> {
//! let seen = Counter::new("lines", "Lines seen, by level", "", &["level"])?;
//! let sizes = Histogram::new("line_size", "Line sizes", "bytes", &[], &[64.0, 512.0, 4096.0])?;
//! seen.add(&["error"], 1)?;
//! sizes.observe(&[], 80.0)?;
//! # Ok(())
//! # }
//! ```
//!
//! Declare each metric once, in `init`: declaring it again alike gives the same metric,
//! as an instance restarted after a trap does. Names, units and label names are lower-case
//! ASCII letters, digits and `_`, starting with a letter; a node holds at most 64 metrics
//! and 1000 series. Every refusal is a [`MetricError`], which `?` turns into an
//! [`Error::Internal`](crate::Error::Internal).

use crate::bindings::torvyn::runtime::metrics::{self as wit, Metric};

pub use crate::bindings::torvyn::runtime::metrics::MetricError;

fn describe(name: &str, help: &str, unit: &str, labels: &[&str]) -> Metric {
    Metric {
        name: name.to_owned(),
        help: help.to_owned(),
        unit: unit.to_owned(),
        labels: labels.iter().map(|label| label.to_string()).collect(),
    }
}

fn values(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|value| value.to_string()).collect()
}

/// A count that only grows.
#[derive(Debug, Clone, Copy)]
pub struct Counter(u32);

impl Counter {
    /// Declares the counter `name` (`unit` empty for none) with these label names.
    pub fn new(name: &str, help: &str, unit: &str, labels: &[&str]) -> Result<Self, MetricError> {
        wit::counter(&describe(name, help, unit, labels)).map(Counter)
    }

    /// Adds `value` to the series of these label values (one per label name).
    pub fn add(&self, labels: &[&str], value: u64) -> Result<(), MetricError> {
        wit::add(self.0, &values(labels), value)
    }
}

/// A level that goes up and down.
#[derive(Debug, Clone, Copy)]
pub struct Gauge(u32);

impl Gauge {
    /// Declares the gauge `name` (`unit` empty for none) with these label names.
    pub fn new(name: &str, help: &str, unit: &str, labels: &[&str]) -> Result<Self, MetricError> {
        wit::gauge(&describe(name, help, unit, labels)).map(Gauge)
    }

    /// Sets the series of these label values to `value` (finite).
    pub fn set(&self, labels: &[&str], value: f64) -> Result<(), MetricError> {
        wit::set(self.0, &values(labels), value)
    }
}

/// Values counted into buckets.
#[derive(Debug, Clone, Copy)]
pub struct Histogram(u32);

impl Histogram {
    /// Declares the histogram `name` with these label names and bucket upper `bounds`
    /// (strictly increasing, at most 32; empty for Prometheus' default ones).
    pub fn new(
        name: &str,
        help: &str,
        unit: &str,
        labels: &[&str],
        bounds: &[f64],
    ) -> Result<Self, MetricError> {
        wit::histogram(&describe(name, help, unit, labels), bounds).map(Histogram)
    }

    /// Counts `value` (finite) into the series of these label values.
    pub fn observe(&self, labels: &[&str], value: f64) -> Result<(), MetricError> {
        wit::observe(self.0, &values(labels), value)
    }
}

/// A refused metric is a bug of the component, not bad input.
impl From<MetricError> for crate::Error {
    fn from(error: MetricError) -> Self {
        crate::Error::Internal(format!("metric refused: {error:?}"))
    }
}
