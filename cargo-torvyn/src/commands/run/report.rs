//! What `run` prints of a flow that ended: its summary, where every element went, and what
//! its connectors did; JSON lines with `--message-format json`.

use serde_json::json;
use torvyn_runtime::{Accounting, FlowError, FlowReport, Outcome, Role};

use crate::cli::MessageFormat;
use crate::output::{self, counted, status};

/// The first line of an error's description: a trap's cause, without the backtrace that
/// the error's final diagnostic shows in full.
fn headline(description: &str) -> &str {
    description.lines().next().unwrap_or_default()
}

pub(super) fn report_failure(error: &FlowError, format: MessageFormat) {
    let report = &error.report;
    status(
        "Failed",
        format!(
            "flow `{}` stopped after {}: {}",
            report.flow,
            counted(report.emitted, "element"),
            headline(&error.to_string())
        ),
    );
    account(report);
    output::json(
        format,
        &json!({
            "reason": "flow-failed",
            "flow": error.flow,
            "stage": error.stage,
            "sequence": error.sequence,
            "message": error.to_string(),
            "report": report,
        }),
    );
}

/// A rate in whole elements per second, or with two decimals below 10, so that one large
/// element in three seconds reads 0.33, not 0.
fn shown_rate(rate: f64) -> String {
    if rate < 10.0 {
        format!("{rate:.2}")
    } else {
        format!("{rate:.0}")
    }
}

pub(super) fn summarise(report: &FlowReport, format: MessageFormat) {
    let seconds = report.duration.as_secs_f64();
    let rate = if seconds > 0.0 {
        report.delivered as f64 / seconds
    } else {
        0.0
    };
    let how = match report.outcome {
        Outcome::Completed => "completed".to_owned(),
        Outcome::LimitReached => {
            format!(
                "stopped after {} (--limit)",
                counted(report.emitted, "element")
            )
        }
        Outcome::TimedOut => "stopped at its time limit (--timeout)".to_owned(),
        Outcome::Cancelled => "stopped by a signal or the inspection API".to_owned(),
        Outcome::Running => "is still running".to_owned(),
        Outcome::Failed => "failed".to_owned(),
        Outcome::OutputClosed => "stopped: its output was closed".to_owned(),
    };
    status(
        "Finished",
        format!(
            "flow `{}` {how}: {} delivered in {:.2?} ({} elements/s)",
            report.flow,
            counted(report.delivered, "element"),
            report.duration,
            shown_rate(rate)
        ),
    );
    account(report);
    let per_element = |total: u64| {
        if report.emitted == 0 {
            0.0
        } else {
            total as f64 / report.emitted as f64
        }
    };
    status(
        "Copies",
        format!(
            "{:.2} per element, {} per element ({}, {} in all)",
            per_element(report.copies.copies),
            bytesize::ByteSize(per_element(report.copies.bytes).round() as u64),
            counted(report.copies.copies, "copy"),
            bytesize::ByteSize(report.copies.bytes)
        ),
    );
    if report.source_pauses > 0 || report.sink_pauses > 0 {
        status(
            "Backpressure",
            format!(
                "sources paused {}, sinks asked to pause {}",
                counted(report.source_pauses, "time"),
                counted(report.sink_pauses, "time")
            ),
        );
    }
    output::json(
        format,
        &json!({ "reason": "flow-finished", "report": report }),
    );
}

/// Where every element went: the accounting identity, then the places that are not
/// plain delivery, by node and edge.
fn account(report: &FlowReport) {
    status("Accounted", identity(&report.accounting));
    for edge in report.edges.iter().filter(|e| e.dropped > 0) {
        status(
            "Dropped",
            format!(
                "{} on the edge from `{}` to `{}` ({})",
                counted(edge.dropped, "element"),
                edge.from,
                edge.to,
                edge.overflow
            ),
        );
    }
    for node in &report.nodes {
        // Each count has the name the accounting line gives it, and no other count has
        // that name.
        let adjective = |count: u64, word: &str| format!("{count} {word}");
        let counts = [
            (node.filtered, adjective(node.filtered, "filtered")),
            (node.absorbed, adjective(node.absorbed, "absorbed")),
            (node.errors, counted(node.errors, "error")),
            (node.retries, adjective(node.retries, "retried")),
            (node.failed, adjective(node.failed, "failed")),
            (
                node.dead_lettered,
                adjective(node.dead_lettered, "dead-lettered"),
            ),
            (node.restarts, counted(node.restarts, "restart")),
            (
                u64::from(node.handles_held),
                format!(
                    "{} still held at its end",
                    counted(u64::from(node.handles_held), "buffer handle")
                ),
            ),
        ];
        let mut what: Vec<String> = (counts.into_iter())
            .filter(|(count, _)| *count > 0)
            .map(|(_, text)| text)
            .collect();
        if let Some(port) = &node.first_unknown_port {
            what.push(format!(
                "{} routed to unknown ports (first `{port}`)",
                node.unknown_ports
            ));
        }
        if !what.is_empty() {
            status(
                "Node",
                format!("`{}` ({}): {}", node.name, node.role, what.join(", ")),
            );
        }
        if let Some(error) = &node.first_error {
            let error = headline(error);
            status("Error", format!("`{}` first failed {error}", node.name));
        }
        if let Some(connector) = &node.connector {
            status(
                "Connector",
                format!(
                    "`{}` ({}): {}",
                    node.name,
                    connector.kind,
                    output::connector_figures(node.role == Role::Source, connector)
                ),
            );
        }
    }
}

/// `A emitted (+ …) = B delivered + …`, with the terms that are not zero.
fn identity(a: &Accounting) -> String {
    let terms = |pairs: &[(u64, &str)]| {
        pairs
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, name)| format!("{count} {name}"))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let arrived = terms(&[
        (a.emitted, "emitted"),
        (a.fanned_out, "fanned out"),
        (a.produced, "produced by aggregators"),
    ]);
    let ended = terms(&[
        (a.delivered, "delivered"),
        (a.filtered, "filtered"),
        (a.dropped, "dropped"),
        (a.dead_lettered, "dead-lettered"),
        (a.failed, "failed"),
        (a.absorbed, "absorbed by aggregators"),
        (a.abandoned, "abandoned"),
    ]);
    let arrived = if arrived.is_empty() {
        "0 emitted".to_owned()
    } else {
        arrived
    };
    let ended = if ended.is_empty() {
        "0 delivered".to_owned()
    } else {
        ended
    };
    if a.balanced() {
        format!("{arrived} = {ended}")
    } else {
        format!("{arrived} ≠ {ended}: elements are unaccounted for; please report this")
    }
}

#[cfg(test)]
mod tests {
    use super::shown_rate;

    #[test]
    fn a_rate_below_ten_keeps_two_decimals() {
        assert_eq!(shown_rate(1.0 / 2.87), "0.35");
        assert_eq!(shown_rate(0.0), "0.00");
        assert_eq!(shown_rate(12_345.6), "12346");
    }
}
