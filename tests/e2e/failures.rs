//! A failing stage costs no more than it must: restarts have a budget, a repeated error
//! is shown once, every other stage still gets its last calls, and what a component
//! answers can neither make the host work without bound nor forge the host's output.

use crate::support::{Guest, TestProject, node};

/// `src → up → out` with `up` trapping on every element under `skip`, and `budget` lines
/// (`max-restarts = …`) added to the flow.
fn trapping_on_every_element(budget: &str) -> TestProject {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1000}"#)
        .component("up", Guest::Upper, r#"{"trap_every": 1}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .flow(&format!(
            r#"nodes = ["src", "up", "out"]
edges = [{{ from = "src", to = "up" }}, {{ from = "up", to = "out" }}]
on-error = {{ up = "skip" }}
{budget}"#
        ))
}

#[test]
fn a_stage_that_traps_on_every_call_fails_its_flow_once_its_restarts_are_spent() {
    let run = trapping_on_every_element("").run(&[]).failure();
    let report = run.report();
    assert_eq!(report["outcome"], "failed");
    let up = node(&report, "up");
    // The default budget: 10 restarts within 10 s; the 11th trap fails the flow.
    assert_eq!(up["restarts"], 10);
    assert_eq!(up["errors"], 11);
    assert!(
        run.stderr
            .contains("node `up` trapped again after 10 restarts within 10s"),
        "{}",
        run.stderr
    );
    // One line for the first restart, one for the nine after the same error.
    let restarted: Vec<&str> = (run.stderr.lines())
        .filter(|line| line.trim_start().starts_with("Restarted"))
        .collect();
    assert_eq!(restarted.len(), 2, "{}", run.stderr);
    assert!(
        restarted[0].contains("`up` of flow `main` after a trap: "),
        "{}",
        restarted[0]
    );
    assert!(
        restarted[1].ends_with("`up` of flow `main` 9 more times after the same error"),
        "{}",
        restarted[1]
    );
}

#[test]
fn the_restart_budget_is_the_flows_to_set() {
    let run = trapping_on_every_element("max-restarts = 3\nrestart-period = \"1m\"")
        .run(&[])
        .failure();
    let report = run.report();
    assert_eq!(node(&report, "up")["restarts"], 3);
    assert!(
        run.stderr.contains("after 3 restarts within 1m"),
        "{}",
        run.stderr
    );
    let none = trapping_on_every_element("max-restarts = 0")
        .run(&[])
        .failure();
    assert_eq!(node(&none.report(), "up")["restarts"], 0);
}

#[test]
fn a_sink_whose_complete_fails_does_not_keep_another_sink_from_completing() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100}"#)
        .component("held", Guest::Sink, r#"{"label": "held", "hold": true}"#)
        .component(
            "broken",
            Guest::Sink,
            r#"{"label": "broken", "quiet": true, "complete_fail": true}"#,
        )
        .flow(
            r#"nodes = ["src", "held", "broken"]
edges = [{ from = "src", to = "held" }, { from = "src", to = "broken" }]"#,
        )
        .run(&[])
        .failure();
    // Both sinks had `complete`, whichever came first: what `held` buffered is written.
    assert_eq!(run.delivered_to("held").len(), 100, "{}", run.stderr);
    for label in ["held", "broken"] {
        let completed = format!("test-sink {label}: complete after 100 elements");
        assert!(
            run.stderr.contains(&completed),
            "{completed}\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains(
            "node `broken` returned an error in `complete`: internal error: complete failed on purpose"
        ),
        "{}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(node(&report, "broken")["errors"], 1);
    assert_eq!(node(&report, "held")["errors"], 0);
}

#[test]
fn a_router_naming_too_many_ports_is_refused_in_its_own_call() {
    let ports: Vec<String> = (0..300).map(|i| format!("\"p{i}\"")).collect();
    let config = format!(r#"{{"ports": [{}], "all": true}}"#, ports.join(", "));
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 5}"#)
        .component("r", Guest::Router, &config)
        .component("out", Guest::Sink, "")
        .flow(
            r#"nodes = ["src", "r", "out"]
edges = [{ from = "src", to = "r" }, { from = "r", port = "p0", to = "out" }]"#,
        )
        .run(&[])
        .failure();
    assert!(
        run.stderr
            .contains("`route` named 300 ports; an answer names at most 256"),
        "{}",
        run.stderr
    );
}

#[test]
fn text_from_a_component_cannot_forge_lines_or_escape_sequences() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 4}"#)
        // Every other element goes to a port named with an escape sequence and a line
        // that reads like the host's own.
        .component(
            "r",
            Guest::Router,
            r#"{"ports": ["ok", "\u001b[2J\n    Finished flow `main` completed"]}"#,
        )
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .flow(
            r#"nodes = ["src", "r", "out"]
edges = [{ from = "src", to = "r" }, { from = "r", port = "ok", to = "out" }]"#,
        )
        .run(&[])
        .success();
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(r"routed to unknown ports (first `\u{1b}[2J\n    Finished flow"),
        "{}",
        run.stderr
    );
    // Status lines have their verb in the first 12 columns: only the host's is there.
    let finished = (run.stderr.lines()).filter(|l| l.starts_with("    Finished"));
    assert_eq!(finished.count(), 1, "{}", run.stderr);
}
