//! End-to-end tests: they drive the real `cargo-torvyn` binary on real components, built
//! from the crates in `tests/components` (and from templates) while the tests run.

mod support;

mod attributes;
mod bad_input;
mod batching;
mod bench;
mod boundaries;
mod capabilities;
mod check;
mod compat;
mod component_metrics;
mod connectors;
mod distribution;
mod doctor;
mod failures;
mod flows;
mod host_api;
mod hostile;
mod init;
mod lifecycle;
mod limits;
mod link;
mod nats;
mod nats_boundaries;
mod nats_example;
mod nats_ids;
mod nats_starts;
mod observability;
mod other_languages;
mod otlp;
mod overlap;
mod pipelines;
mod registry;
mod settings;
mod stdio;
mod templates;
mod testing;
mod tracing;
mod watch;
