//! What a flow counted: its report, as a live snapshot while it runs and at its end.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Driver, Failure, FlowError};
use crate::observability::{
    BufferReport, EdgeReport, FlowReport, LatencyReport, NodeReport, Outcome, PUBLISH_EVERY,
};
use crate::reactor::fixture::Stage;

impl Driver<'_> {
    /// What the flow counted so far; `outcome` is `Running` for a live snapshot.
    pub(super) fn report(&self, duration: Duration, outcome: Outcome) -> FlowReport {
        let per_stage = self.table.copies_per_stage();
        let nodes = self
            .nodes
            .iter()
            .zip(per_stage)
            .enumerate()
            .map(|(n, (node, copies))| {
                let counts = &node.counts;
                let mut calls = counts.earlier_calls;
                // A node whose stage never started has made no calls.
                calls += self.stages.get(n).map(Stage::stats).unwrap_or_default();
                NodeReport {
                    name: node.plan.name.clone(),
                    role: node.plan.role,
                    received: counts.received,
                    emitted: counts.emitted,
                    delivered: counts.delivered,
                    filtered: counts.filtered,
                    absorbed: counts.absorbed,
                    errors: counts.errors,
                    errors_by_kind: counts.errors_by_kind,
                    failed: counts.failed,
                    dead_lettered: counts.dead_lettered,
                    retries: counts.retries,
                    pauses: counts.pauses,
                    resumes: counts.resumes,
                    restarts: counts.restarts,
                    unknown_ports: counts.unknown_ports,
                    first_unknown_port: counts.first_unknown_port.clone(),
                    first_error: counts.first_error.clone(),
                    copies: *copies,
                    calls,
                    handles_held: self.table.handles_held(n),
                    connector: self.stages.get(n).and_then(Stage::connector_report),
                    metrics: self.identity.metrics[n].snapshot(),
                }
            })
            .collect();
        let mut accounting = self.accounting;
        // Elements left in a batch when the flow failed are counted already. While the
        // flow runs, what its queues hold is in flight, not abandoned.
        accounting.abandoned += if outcome == Outcome::Running {
            0
        } else {
            self.edges.iter().map(|e| e.queue.len() as u64).sum::<u64>()
                + self
                    .nodes
                    .iter()
                    .filter_map(|n| n.flushed.as_ref())
                    .map(|f| f.len() as u64)
                    .sum::<u64>()
        };
        let (audit, audit_omitted) = self.audit.events();
        FlowReport {
            flow: self.spec.plan.flow.clone(),
            outcome,
            emitted: accounting.emitted,
            delivered: accounting.delivered,
            accounting,
            duration,
            copies: self.table.copies(),
            source_pauses: self.source_pauses,
            sink_pauses: self.sink_pauses,
            nodes,
            edges: self
                .edges
                .iter()
                .map(|edge| EdgeReport {
                    from: self.nodes[edge.plan.from].plan.name.clone(),
                    to: self.nodes[edge.plan.to].plan.name.clone(),
                    port: edge.plan.port.clone(),
                    dead_letter: edge.plan.dead_letter,
                    capacity: edge.plan.capacity,
                    overflow: edge.plan.overflow,
                    max_depth: edge.queue.max_depth(),
                    depth: edge.queue.len(),
                    dropped: edge.dropped,
                    blocked: edge.blocked(),
                })
                .collect(),
            buffers: BufferReport {
                live: self.table.live(),
                high_water: self.table.slots(),
                pool: self.table.pool_stats(),
            },
            audit,
            audit_omitted,
            recent_errors: self.recent_errors.iter().cloned().collect(),
            latency: self.latency.as_ref().map(LatencyReport::of),
        }
    }

    /// Publishes a live snapshot when one is due; `now` is the time, read by the caller.
    pub(super) fn publish_due(&mut self, now: Instant) {
        if self.observed && now.duration_since(self.published) >= PUBLISH_EVERY {
            self.published = now;
            let snapshot = self.report(now.duration_since(self.started), Outcome::Running);
            self.control.publish(snapshot);
            self.hand_over_spans();
        }
    }

    pub(super) fn into_error(mut self, failure: Failure, duration: Duration) -> FlowError {
        let report = self.finish(duration, Outcome::Failed);
        FlowError {
            flow: self.spec.plan.flow.clone(),
            stage: self.nodes[failure.node].plan.name.clone(),
            call: failure.call,
            sequence: failure.sequence,
            kind: failure.kind,
            report: Box::new(report),
        }
    }

    /// The flow's final report, also published as its last snapshot when observed.
    pub(super) fn finish(&mut self, duration: Duration, outcome: Outcome) -> FlowReport {
        self.hand_over_spans();
        let report = self.report(duration, outcome);
        if self.observed {
            self.control.publish(report.clone());
        }
        self.control.ended.store(true, Ordering::Release);
        report
    }
}
