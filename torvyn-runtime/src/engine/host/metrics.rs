//! `torvyn:runtime/metrics`: the counters, gauges and histograms a component keeps about
//! itself, in its node's store (`observability/component.rs`). Only a component granted
//! `metrics` links with this interface.

use crate::engine::bindings::torvyn::runtime::metrics::{Host, Metric, MetricError as Wit};
use crate::engine::state::StageState;
use crate::observability::{ComponentMetrics, MetricError, MetricKind, Update};

impl StageState {
    fn metrics(&self) -> &ComponentMetrics {
        &self.flow.metrics[self.stage]
    }

    fn declare(&self, kind: MetricKind, metric: Metric, bounds: Vec<f64>) -> Result<u32, Wit> {
        let Metric {
            name,
            help,
            unit,
            labels,
        } = metric;
        (self.metrics())
            .declare(kind, name, help, unit, labels, bounds)
            .map_err(to_wit)
    }

    fn apply(&self, id: u32, labels: Vec<String>, update: Update) -> Result<(), Wit> {
        self.metrics().update(id, labels, update).map_err(to_wit)
    }
}

impl Host for StageState {
    fn counter(&mut self, metric: Metric) -> wasmtime::Result<Result<u32, Wit>> {
        Ok(self.declare(MetricKind::Counter, metric, Vec::new()))
    }

    fn gauge(&mut self, metric: Metric) -> wasmtime::Result<Result<u32, Wit>> {
        Ok(self.declare(MetricKind::Gauge, metric, Vec::new()))
    }

    fn histogram(
        &mut self,
        metric: Metric,
        bounds: Vec<f64>,
    ) -> wasmtime::Result<Result<u32, Wit>> {
        Ok(self.declare(MetricKind::Histogram, metric, bounds))
    }

    fn add(
        &mut self,
        counter: u32,
        labels: Vec<String>,
        value: u64,
    ) -> wasmtime::Result<Result<(), Wit>> {
        Ok(self.apply(counter, labels, Update::Add(value)))
    }

    fn set(
        &mut self,
        gauge: u32,
        labels: Vec<String>,
        value: f64,
    ) -> wasmtime::Result<Result<(), Wit>> {
        Ok(self.apply(gauge, labels, Update::Set(value)))
    }

    fn observe(
        &mut self,
        histogram: u32,
        labels: Vec<String>,
        value: f64,
    ) -> wasmtime::Result<Result<(), Wit>> {
        Ok(self.apply(histogram, labels, Update::Record(value)))
    }
}

fn to_wit(error: MetricError) -> Wit {
    match error {
        MetricError::InvalidName => Wit::InvalidName,
        MetricError::Conflicting => Wit::Conflicting,
        MetricError::NoSuchMetric => Wit::NoSuchMetric,
        MetricError::InvalidLabels => Wit::InvalidLabels,
        MetricError::InvalidValue => Wit::InvalidValue,
        MetricError::TooMany => Wit::TooMany,
    }
}
