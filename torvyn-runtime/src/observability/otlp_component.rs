//! Component metrics over OTLP: an observable instrument per metric name, registered once
//! the name first appears in a flow's report (components declare their metrics while
//! they run, after the exporter started), each reading its family from the flows' latest
//! reports when collected. Counters and gauges; histograms are served by `/metrics` only,
//! as the host's own are (OpenTelemetry has no observable histogram).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;

use super::{FlowReport, MetricKind, SeriesValue, component_families};

/// The latest reports of the flows exported.
pub(super) type Snapshots = Arc<dyn Fn() -> Vec<Arc<FlowReport>> + Send + Sync>;

/// The instruments registered so far, and what registers more.
pub(super) struct ComponentInstruments {
    meter: Meter,
    snapshots: Snapshots,
    registered: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for ComponentInstruments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentInstruments")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl ComponentInstruments {
    pub(super) fn new(meter: Meter, snapshots: Snapshots) -> Self {
        Self {
            meter,
            snapshots,
            registered: Mutex::default(),
        }
    }

    /// Registers an instrument for each counter and gauge name the flows' reports hold
    /// that has none yet.
    pub(super) fn register_new(&self) {
        let flows = (self.snapshots)();
        let mut registered = self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for family in component_families(&flows) {
            let metric = family.metric;
            if metric.kind == MetricKind::Histogram || !registered.insert(metric.name.clone()) {
                continue;
            }
            let name = format!("torvyn.component.{}", metric.name);
            let unit = match metric.unit.as_str() {
                "bytes" => "By".to_owned(),
                "seconds" => "s".to_owned(),
                "" => "1".to_owned(),
                other => other.to_owned(),
            };
            let (snapshots, wanted) = (self.snapshots.clone(), metric.name.clone());
            // The series of this metric as they stand, each with its labels as attributes.
            let samples = move || {
                let flows = snapshots();
                let found = component_families(&flows)
                    .into_iter()
                    .find(|family| family.metric.name == wanted);
                (found.into_iter())
                    .flat_map(|family| family.samples)
                    .map(|(labels, value)| {
                        let attributes: Vec<KeyValue> = (labels.into_iter())
                            .map(|(key, value)| KeyValue::new(key.to_owned(), value.to_owned()))
                            .collect();
                        (attributes, value.clone())
                    })
                    .collect::<Vec<_>>()
            };
            match metric.kind {
                MetricKind::Counter => {
                    _ = (self.meter.u64_observable_counter(name))
                        .with_description(metric.help.clone())
                        .with_unit(unit)
                        .with_callback(move |observer| {
                            for (attributes, value) in samples() {
                                if let SeriesValue::Count(count) = value {
                                    observer.observe(count, &attributes);
                                }
                            }
                        })
                        .build()
                }
                MetricKind::Gauge => {
                    _ = (self.meter.f64_observable_gauge(name))
                        .with_description(metric.help.clone())
                        .with_unit(unit)
                        .with_callback(move |observer| {
                            for (attributes, value) in samples() {
                                if let SeriesValue::Level(level) = value {
                                    observer.observe(level, &attributes);
                                }
                            }
                        })
                        .build()
                }
                MetricKind::Histogram => {}
            }
        }
    }
}
