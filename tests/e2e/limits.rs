//! Hostile components: each is stopped by a limit, the error names it, and another flow on
//! the same host finishes unaffected.

use crate::support::{Guest, Run, TestProject};

/// Flow `main` runs five elements through `test-hostile` (`bad`, with `config`, `limits`
/// and error `policy`); flow `good` runs beside it on the same host.
fn hostile(config: &str, limits: &str, policy: &str) -> Run {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 5}"#)
        .component("bad", Guest::Hostile, config)
        .component("out", Guest::Sink, r#"{"label": "main"}"#)
        .component("other", Guest::Source, r#"{"count": 200, "text": "other"}"#)
        .component("good", Guest::Sink, r#"{"label": "good"}"#)
        .set("bad", "limits", limits)
        .flow(&format!(
            r#"nodes = ["src", "bad", "out"]
edges = [{{ from = "src", to = "bad" }}, {{ from = "bad", to = "out" }}]
on-error = {{ bad = {policy} }}

[flows.good]
nodes = ["other", "good"]
edges = [{{ from = "other", to = "good" }}]"#
        ))
        .run(&[])
}

/// Checks that flow `good` delivered all it had, whatever happened to `main`.
fn good_flow_finished(run: &Run) {
    let delivered = run.delivered_to("good");
    assert_eq!(delivered.len(), 200, "{}", run.stderr);
    let reports = run.reports();
    let good = reports.iter().find(|r| r["flow"] == "good").unwrap();
    assert_eq!(good["outcome"], "completed");
}

fn assert_stderr(run: &Run, text: &str) {
    assert!(run.stderr.contains(text), "no `{text}` in:\n{}", run.stderr);
}

#[test]
fn an_infinite_loop_is_stopped_at_its_time_limit() {
    let run = hostile(
        r#"{"mode": "loop", "at": 2}"#,
        r#"{ invocation-time = "200ms" }"#,
        r#""fail-flow""#,
    )
    .failure();
    assert_stderr(
        &run,
        "flow `main`: node `bad` trapped in `process` on element 2",
    );
    assert_stderr(
        &run,
        "invocation time limit exceeded: the call ran longer than 200ms",
    );
    assert_eq!(run.delivered_to("main").len(), 2);
    good_flow_finished(&run);
}

#[test]
fn a_looping_call_is_trapped_alone_and_skip_goes_on_with_a_fresh_instance() {
    let run = hostile(
        r#"{"mode": "loop", "at": 3}"#,
        r#"{ invocation-time = "50ms" }"#,
        r#""skip""#,
    )
    .success();
    let report = run
        .reports()
        .into_iter()
        .find(|r| r["flow"] == "main")
        .unwrap();
    let bad = &report["nodes"][1];
    assert_eq!(bad["restarts"], 2);
    assert_eq!(bad["failed"], 2);
    assert_eq!(report["accounting"]["delivered"], 3);
    good_flow_finished(&run);
}

#[test]
fn a_fuel_limit_stops_a_loop_deterministically() {
    let run = hostile(
        r#"{"mode": "loop", "at": 1}"#,
        "{ fuel = 5000000 }",
        r#""fail-flow""#,
    )
    .failure();
    assert_stderr(
        &run,
        "flow `main`: node `bad` trapped in `process` on element 1",
    );
    assert_stderr(&run, "all fuel consumed");
    // The element before ran within the same limit, refilled for each call.
    assert_eq!(run.delivered_to("main").len(), 1);
    good_flow_finished(&run);
}

#[test]
fn a_memory_bomb_is_stopped_at_its_memory_limit() {
    let run = hostile(
        r#"{"mode": "grow"}"#,
        r#"{ memory = "16 MiB" }"#,
        r#""fail-flow""#,
    )
    .failure();
    assert_stderr(
        &run,
        "flow `main`: node `bad` trapped in `process` on element 0: memory limit exceeded: a linear memory would grow to",
    );
    assert_stderr(&run, "over the limit of 16.0 MiB");
    good_flow_finished(&run);
}

#[test]
fn a_component_that_keeps_its_buffers_is_held_to_its_budget() {
    let run = hostile(
        r#"{"mode": "leak"}"#,
        "{ buffer-handles = 3 }",
        r#""fail-flow""#,
    )
    .failure();
    // Each element leaks one handle and needs one more for its output: the third would
    // hold a fourth, and its allocation fails (the SDK returns that as an error).
    assert_stderr(
        &run,
        "flow `main`: node `bad` returned an error in `process` on element 2",
    );
    assert_stderr(
        &run,
        "stage holds 3 buffer handles, its `buffer-handles` limit",
    );
    assert_eq!(run.delivered_to("main").len(), 2);
    good_flow_finished(&run);
}

#[test]
fn a_content_type_past_8_kib_traps_the_component_that_gives_it() {
    // The element's own content type, and its buffer's through `set-content-type`.
    for mode in ["label", "label-buffer"] {
        let config = format!(r#"{{"mode": "{mode}", "at": 2, "length": 8193}}"#);
        let run = hostile(&config, "{}", r#""fail-flow""#).failure();
        // The cause comes first, before any backtrace.
        assert_stderr(
            &run,
            "flow `main`: node `bad` trapped in `process` on element 2: a content type of 8193 bytes",
        );
        assert_stderr(&run, "is at most 8192 bytes");
        assert_eq!(run.delivered_to("main").len(), 2, "{mode}");
        good_flow_finished(&run);

        let config = format!(r#"{{"mode": "{mode}", "length": 8192}}"#);
        let run = hostile(&config, "{}", r#""fail-flow""#).success();
        assert_eq!(run.delivered_to("main").len(), 5, "{mode}");
    }
}

#[test]
fn an_error_text_past_4_kib_is_cut_short_where_the_host_keeps_it() {
    let run = hostile(
        r#"{"mode": "long-error", "at": 2, "length": 100000}"#,
        "{}",
        r#""skip""#,
    )
    .success();
    let reports = run.reports();
    let main = reports.iter().find(|r| r["flow"] == "main").unwrap();
    let errors = main["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{main}");
    for error in errors {
        let text = error["error"].as_str().unwrap();
        assert!(text.len() <= 4096 + 64, "{} bytes", text.len());
        assert!(text.ends_with("xxx… (100000 bytes in all)"), "{text}");
    }
    assert_eq!(run.delivered_to("main").len(), 2);
    good_flow_finished(&run);
}

#[test]
fn a_trap_without_a_panic_names_the_component() {
    let run = hostile(r#"{"mode": "trap", "at": 1}"#, "{}", r#""fail-flow""#).failure();
    assert_stderr(
        &run,
        "flow `main`: node `bad` trapped in `process` on element 1",
    );
    good_flow_finished(&run);
}

#[test]
fn frozen_buffers_a_collector_has_not_dropped_yet_cost_no_handle_of_the_budget() {
    // `raw` keeps every mutable buffer it froze until 5 000 elements have passed, as a
    // component in a garbage-collected language does: more than its 4 096 handles.
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 6000}"#)
        .component("raw", Guest::RawUpper, "")
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .run(&[])
        .success();
    let report = run.report();
    assert_eq!(report["delivered"], 6000);
    let raw = crate::support::node(&report, "raw");
    assert_eq!(raw["restarts"], 0);
    // What it never dropped is named in the summary.
    assert_eq!(raw["handles_held"], 1000);
    assert!(
        run.stderr
            .contains("`raw` (processor): 1000 buffer handles still held at its end"),
        "{}",
        run.stderr
    );
}

/// A one-element flow `src → r → out` through `router`, its limits `limits`.
fn routed_by(router: Guest, limits: &str) -> Run {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1}"#)
        .component("r", router, "")
        .component("out", Guest::Sink, "")
        .set("r", "limits", limits)
        .flow(
            r#"nodes = ["src", "r", "out"]
edges = [{ from = "src", to = "r" }, { from = "r", port = "even", to = "out" }]"#,
        )
        .run(&[])
}

#[test]
fn a_call_cannot_make_the_host_copy_more_than_the_components_memory_limit() {
    // The router holds a 1 MiB string and 64 pointers to it: lifted whole, its answer
    // would be 64 MiB of port names, four times its memory limit.
    let run = routed_by(Guest::AliasingRouter, r#"{ memory = "16 MiB" }"#).failure();
    assert_stderr(
        &run,
        "flow `main`: node `r` trapped in `route` on element 0: too much data is being copied \
         between the host and the guest: fuel allocated for hostcalls has been exhausted: \
         the strings and lists a component hands the host at once come to at most its \
         `memory` limit as the host holds them",
    );
    // Within its limit, the router's answer reaches the host and its names are checked.
    let run = routed_by(Guest::AliasingRouter, r#"{ memory = "65 MiB" }"#).success();
    assert_stderr(&run, "routed to unknown ports (first `pppp");
}

#[test]
fn a_call_may_hand_the_host_as_much_as_the_components_memory_limit() {
    // 129 MiB in one `from-bytes`, past the 128 MiB wasmtime lets a call hand over unless
    // told otherwise, within the default `memory` of 256 MiB.
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1, "size": 135266304}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .set("src", "limits", r#"{ buffer-memory = "256 MiB" }"#)
        .run(&[])
        .success();
    assert_eq!(run.report()["accounting"]["delivered"], 1, "{}", run.stderr);
}

#[test]
fn a_component_may_hold_as_many_buffers_as_its_budget_allows() {
    // Past the 100 000 handles wasmtime lets a store hold unless told otherwise.
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 105000}"#)
        .component("bad", Guest::Hostile, r#"{"mode": "leak"}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .set("bad", "limits", "{ buffer-handles = 110000 }")
        .run(&[])
        .success();
    assert_eq!(run.report()["accounting"]["delivered"], 105000);
}
