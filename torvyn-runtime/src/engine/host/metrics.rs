//! `torvyn:runtime/metrics`: the counters, gauges and histograms a component keeps about
//! itself, in its node's store (`observability/component.rs`). A component that imports it
//! without the `metrics` grant does not link from a manifest; one that reaches it anyway
//! (a flow put together through the library with other grants) traps on its first call.

use crate::engine::bindings::torvyn::runtime::metrics::{Host, Metric, MetricError as Wit};
use crate::engine::state::StageState;
use crate::observability::{ComponentMetrics, MetricError, MetricKind, Update};

impl StageState {
    fn metrics(&self) -> wasmtime::Result<&ComponentMetrics> {
        if !self.grants.metrics {
            return Err(wasmtime::Error::msg(format!(
                "component `{}` keeps metrics without the `metrics` grant",
                self.node
            )));
        }
        Ok(&self.flow.metrics[self.stage])
    }

    fn declare(
        &self,
        kind: MetricKind,
        metric: Metric,
        bounds: Vec<f64>,
    ) -> wasmtime::Result<Result<u32, Wit>> {
        let Metric {
            name,
            help,
            unit,
            labels,
        } = metric;
        let declared = self
            .metrics()?
            .declare(kind, name, help, unit, labels, bounds);
        Ok(declared.map_err(to_wit))
    }

    fn apply(
        &self,
        id: u32,
        labels: Vec<String>,
        update: Update,
    ) -> wasmtime::Result<Result<(), Wit>> {
        Ok(self.metrics()?.update(id, labels, update).map_err(to_wit))
    }
}

impl Host for StageState {
    fn counter(&mut self, metric: Metric) -> wasmtime::Result<Result<u32, Wit>> {
        self.declare(MetricKind::Counter, metric, Vec::new())
    }

    fn gauge(&mut self, metric: Metric) -> wasmtime::Result<Result<u32, Wit>> {
        self.declare(MetricKind::Gauge, metric, Vec::new())
    }

    fn histogram(
        &mut self,
        metric: Metric,
        bounds: Vec<f64>,
    ) -> wasmtime::Result<Result<u32, Wit>> {
        self.declare(MetricKind::Histogram, metric, bounds)
    }

    fn add(
        &mut self,
        counter: u32,
        labels: Vec<String>,
        value: u64,
    ) -> wasmtime::Result<Result<(), Wit>> {
        self.apply(counter, labels, Update::Add(value))
    }

    fn set(
        &mut self,
        gauge: u32,
        labels: Vec<String>,
        value: f64,
    ) -> wasmtime::Result<Result<(), Wit>> {
        self.apply(gauge, labels, Update::Set(value))
    }

    fn observe(
        &mut self,
        histogram: u32,
        labels: Vec<String>,
        value: f64,
    ) -> wasmtime::Result<Result<(), Wit>> {
        self.apply(histogram, labels, Update::Record(value))
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
