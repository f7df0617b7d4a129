//! Flow semantics: graphs (fan-out, fan-in, routers, aggregators), overflow policies and
//! error policies, each proved by sequence numbers and the accounting identity, which
//! `Run::reports` checks on every report.

use crate::support::{Guest, Run, TestProject, count, node, sequences};

#[test]
fn fan_out_delivers_every_element_to_each_of_three_sinks_sharing_one_buffer() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 300}"#)
        .component("a", Guest::Sink, r#"{"label": "a"}"#)
        .component("b", Guest::Sink, r#"{"label": "b"}"#)
        .component("c", Guest::Sink, r#"{"label": "c"}"#)
        .flow(
            r#"nodes = ["src", "a", "b", "c"]
edges = [{ from = "src", to = "a" }, { from = "src", to = "b" }, { from = "src", to = "c" }]"#,
        )
        .run(&[])
        .success();
    for label in ["a", "b", "c"] {
        let delivered = run.delivered_to(label);
        assert_eq!(
            sequences(&delivered),
            (0..300).collect::<Vec<_>>(),
            "{label}"
        );
        assert_eq!(delivered[7].1, "item 7");
    }
    let report = run.report();
    assert_eq!(count(&report, "emitted"), 300);
    assert_eq!(count(&report, "fanned_out"), 600);
    assert_eq!(count(&report, "delivered"), 900);
    // One copy into the host, then one out to each sink: the branches share the buffer.
    assert_eq!(report["copies"]["copies"], 300 + 3 * 300);
    assert_eq!(report["buffers"]["live"], 0);
}

#[test]
fn fan_in_merges_two_sources_with_one_sequence_per_flow() {
    let run = TestProject::new()
        .component("left", Guest::Source, r#"{"count": 200, "text": "left"}"#)
        .component("right", Guest::Source, r#"{"count": 300, "text": "right"}"#)
        .component("out", Guest::Sink, "")
        .flow(
            r#"nodes = ["left", "right", "out"]
edges = [{ from = "left", to = "out" }, { from = "right", to = "out" }]"#,
        )
        .run(&[])
        .success();
    let delivered = run.delivered();
    let mut all = sequences(&delivered);
    all.sort_unstable();
    assert_eq!(all, (0..500).collect::<Vec<_>>());
    // Each source's elements keep their order, and the two take turns.
    for (name, n) in [("left", 200), ("right", 300)] {
        let own: Vec<String> = (delivered.iter())
            .filter(|(_, p)| p.starts_with(name))
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(
            own,
            (0..n).map(|i| format!("{name} {i}")).collect::<Vec<_>>()
        );
    }
    assert!(delivered[..10].iter().any(|(_, p)| p.starts_with("right")));
    let report = run.report();
    assert_eq!(count(&report, "emitted"), 500);
    assert_eq!(count(&report, "delivered"), 500);
}

/// `count` elements through `test-router` with `config`, its ports `even` and `odd` to
/// sinks of the same names.
fn routed(count: u64, config: &str) -> Run {
    TestProject::new()
        .component("src", Guest::Source, &format!(r#"{{"count": {count}}}"#))
        .component("split", Guest::Router, config)
        .component("even", Guest::Sink, r#"{"label": "even"}"#)
        .component("odd", Guest::Sink, r#"{"label": "odd"}"#)
        .flow(
            r#"nodes = ["src", "split", "even", "odd"]
edges = [
    { from = "src", to = "split" },
    { from = "split", port = "even", to = "even" },
    { from = "split", port = "odd", to = "odd" },
]"#,
        )
        .run(&[])
        .success()
}

#[test]
fn a_router_sends_each_element_to_its_port_and_counts_unknown_ports() {
    let run = routed(100, r#"{"unknown_every": 10}"#);
    let even = sequences(&run.delivered_to("even"));
    let odd = sequences(&run.delivered_to("odd"));
    assert_eq!(even, (0..100).step_by(2).collect::<Vec<_>>());
    // 9, 19, … 99 went to the port `nowhere`, which no edge leaves from.
    let expected: Vec<u64> = (1..100).step_by(2).filter(|s| (s + 1) % 10 != 0).collect();
    assert_eq!(odd, expected);
    let report = run.report();
    assert_eq!(count(&report, "delivered"), 90);
    assert_eq!(count(&report, "failed"), 10);
    assert_eq!(node(&report, "split")["unknown_ports"], 10);
    assert!(
        run.stderr
            .contains("`split` (router): 10 routed to unknown ports (first `nowhere`)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_router_naming_every_port_fans_out() {
    let run = routed(20, r#"{"all": true}"#);
    assert_eq!(run.delivered_to("even").len(), 20);
    assert_eq!(run.delivered_to("odd").len(), 20);
    assert_eq!(count(&run.report(), "fanned_out"), 20);
}

#[test]
fn an_aggregator_absorbs_elements_and_flushes_at_the_end_of_the_stream() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 10}"#)
        .component("sum", Guest::Aggregator, r#"{"every": 4}"#)
        .component("out", Guest::Sink, "")
        .run(&[])
        .success();
    let payloads: Vec<String> = run.delivered().into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        payloads,
        ["count=4 bytes=24", "count=4 bytes=24", "count=2 bytes=12"]
    );
    // New elements take the flow's next sequence number when they appear: the source's
    // elements 0-3 make summary 4, then 5-8 make 9, and 10-11 are flushed as 12.
    assert_eq!(sequences(&run.delivered()), [4, 9, 12]);
    let report = run.report();
    assert_eq!(count(&report, "absorbed"), 10);
    assert_eq!(count(&report, "produced"), 3);
    assert_eq!(count(&report, "delivered"), 3);
}

#[test]
fn a_filter_drops_half_and_counts_them() {
    let report = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100}"#)
        .component("even", Guest::Filter, "")
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .run(&[])
        .success()
        .report();
    assert_eq!(count(&report, "delivered"), 50);
    assert_eq!(count(&report, "filtered"), 50);
}

/// 200 elements to a sink that asks to pause after every push, through a queue of 4
/// with `overflow`.
fn slow_sink(overflow: &str) -> Run {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 200}"#)
        .component("out", Guest::Sink, r#"{"pause_every": 1}"#)
        .flow(&format!(
            r#"nodes = ["src", "out"]
edges = [{{ from = "src", to = "out", capacity = 4, overflow = "{overflow}" }}]"#
        ))
        .run(&[])
}

#[test]
fn block_overflow_holds_the_source_back_and_loses_nothing() {
    let run = slow_sink("block").success();
    assert_eq!(sequences(&run.delivered()), (0..200).collect::<Vec<_>>());
    let report = run.report();
    assert!(report["source_pauses"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(count(&report, "dropped"), 0);
}

#[test]
fn watermarks_set_where_the_source_pauses_and_resumes() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100}"#)
        .component("out", Guest::Sink, r#"{"pause_every": 1}"#)
        .flow(
            r#"nodes = ["src", "out"]
edges = [{ from = "src", to = "out", capacity = 8, high-watermark = 3, low-watermark = 1 }]"#,
        )
        .run(&[])
        .success();
    assert_eq!(sequences(&run.delivered()), (0..100).collect::<Vec<_>>());
    let report = run.report();
    // Paused at 3 queued, never more, though the queue has room for 8.
    assert_eq!(report["edges"][0]["max_depth"], 3);
    assert!(report["source_pauses"].as_u64().unwrap() > 10, "{report}");
}

#[test]
fn each_call_sees_the_flows_invocation_deadline() {
    let deadline = |flow_options: &str| {
        let run = TestProject::new()
            .component("src", Guest::Source, r#"{"count": 3}"#)
            .component("out", Guest::Sink, r#"{"show_deadline": true}"#)
            .flow(&format!(
                "nodes = [\"src\", \"out\"]\nedges = [{{ from = \"src\", to = \"out\" }}]\n{flow_options}"
            ))
            .run(&[])
            .success();
        let line = run.delivered()[2].1.clone();
        let value = line.rsplit_once("deadline=").unwrap().1;
        value.parse::<u64>().unwrap()
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    };
    let within = |deadline: u64, from: std::time::Duration, expected: std::time::Duration| {
        let from = (from + expected).as_nanos() as u64;
        // Allow for the time the run itself takes.
        assert!(
            deadline >= from && deadline < from + 5_000_000_000,
            "{deadline} vs {from}"
        );
    };
    // Without one, calls see their time limit as their deadline.
    let before = now();
    within(
        deadline(""),
        before,
        torvyn_runtime::DEFAULT_INVOCATION_TIME,
    );
    let before = now();
    let set = deadline(r#"invocation-deadline = "2s""#);
    within(set, before, std::time::Duration::from_secs(2));
}

#[test]
fn drop_policies_drop_the_oldest_or_the_newest_and_count_them() {
    for (policy, kept) in [("drop-oldest", 199), ("drop-newest", 0)] {
        let run = slow_sink(policy).success();
        let delivered = sequences(&run.delivered());
        let report = run.report();
        let dropped = report["edges"][0]["dropped"].as_u64().unwrap();
        assert!(dropped > 0, "{policy}: {report}");
        assert_eq!(delivered.len() as u64 + dropped, 200, "{policy}");
        assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{policy}");
        // The newest element always gets in under drop-oldest; the first under drop-newest.
        assert!(delivered.contains(&kept), "{policy}: {delivered:?}");
        assert!(
            run.stderr.contains(&format!(
                "Dropped {dropped} elements on the edge from `src` to `out` ({policy})"
            )),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn error_overflow_fails_the_flow_naming_the_edge() {
    let run = slow_sink("error").failure();
    assert!(
        run.stderr
            .contains("node `src` overflowed its queue to `out` on element "),
        "{}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(count(&report, "failed"), 1);
    assert_eq!(count(&report, "abandoned"), 4);
}

#[test]
fn an_overflow_error_on_one_branch_of_a_fan_out_accounts_for_the_others() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 200}"#)
        .component(
            "slow",
            Guest::Sink,
            r#"{"pause_every": 1, "label": "slow"}"#,
        )
        .component("fast", Guest::Sink, r#"{"label": "fast"}"#)
        .flow(
            r#"nodes = ["src", "slow", "fast"]
edges = [
    { from = "src", to = "slow", capacity = 2, overflow = "error" },
    { from = "src", to = "fast", overflow = "drop-newest" },
]"#,
        )
        .run(&[])
        .failure();
    let report = run.report();
    // The element that overflowed `slow` never went down `fast`: both branches failed.
    assert_eq!(count(&report, "failed"), 2);
}

/// 100 elements through `test-upper` with `upper` config and `policy`, into sink `out`
/// and, when the policy has dead letters, sink `dlq`.
fn flaky(upper: &str, policy: &str) -> Run {
    let dlq = if policy.contains("dead-letter") {
        r#", "dlq""#
    } else {
        ""
    };
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100}"#)
        .component("up", Guest::Upper, upper)
        .component("out", Guest::Sink, "")
        .component(
            "dlq",
            Guest::Sink,
            r#"{"label": "dlq", "show_content_type": true}"#,
        )
        .flow(&format!(
            r#"nodes = ["src", "up", "out"{dlq}]
edges = [{{ from = "src", to = "up" }}, {{ from = "up", to = "out" }}]
[flows.main.on-error]
up = {policy}"#
        ))
        .run(&[])
}

/// The sequences of every 10th element: 9, 19, … 99.
fn tenths() -> Vec<u64> {
    (0..100).filter(|s| (s + 1) % 10 == 0).collect()
}

fn all_but_tenths() -> Vec<u64> {
    (0..100).filter(|s| (s + 1) % 10 != 0).collect()
}

#[test]
fn fail_flow_stops_at_the_first_failure_and_accounts_for_what_was_in_flight() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100}"#)
        .component("up", Guest::Upper, r#"{"fail_every": 10}"#)
        .component("out", Guest::Sink, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr
            .contains("node `up` returned an error in `process` on element 9: internal error"),
        "{}",
        run.stderr
    );
    assert_eq!(sequences(&run.delivered()), (0..9).collect::<Vec<_>>());
    let report = run.report();
    assert_eq!(count(&report, "failed"), 1);
    assert_eq!(node(&report, "up")["errors"], 1);
}

#[test]
fn skip_counts_each_failed_element_and_goes_on() {
    let run = flaky(r#"{"fail_every": 10}"#, r#""skip""#).success();
    assert_eq!(sequences(&run.delivered()), all_but_tenths());
    let report = run.report();
    assert_eq!(count(&report, "delivered"), 90);
    assert_eq!(count(&report, "failed"), 10);
    assert!(
        run.stderr
            .contains("`up` (processor): 10 errors, 10 failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn retry_calls_again_after_unavailable_and_falls_back_when_attempts_run_out() {
    // Each 10th element is unavailable twice, then goes through on the third attempt.
    let run = flaky(
        r#"{"fail_every": 10, "fail_kind": "unavailable", "fail_attempts": 2}"#,
        r#"{ retry = 3, backoff = "1ms" }"#,
    )
    .success();
    assert_eq!(sequences(&run.delivered()), (0..100).collect::<Vec<_>>());
    let report = run.report();
    assert_eq!(node(&report, "up")["retries"], 20);
    assert_eq!(count(&report, "delivered"), 100);

    // Always unavailable: two retries each, then `skip`.
    let run = flaky(
        r#"{"fail_every": 10, "fail_kind": "unavailable"}"#,
        r#"{ retry = 2, backoff = "1ms", then = "skip" }"#,
    )
    .success();
    assert_eq!(sequences(&run.delivered()), all_but_tenths());
    let report = run.report();
    assert_eq!(node(&report, "up")["retries"], 20);
    assert_eq!(node(&report, "up")["errors"], 30);
    assert_eq!(count(&report, "failed"), 10);

    // Other errors are not retried.
    let report = flaky(r#"{"fail_every": 10}"#, r#"{ retry = 2, then = "skip" }"#)
        .success()
        .report();
    assert_eq!(node(&report, "up")["retries"], 0);
}

#[test]
fn dead_letter_sends_the_failed_element_and_its_error_to_a_sink() {
    let run = flaky(r#"{"fail_every": 10}"#, r#"{ dead-letter = "dlq" }"#).success();
    assert_eq!(sequences(&run.delivered()), all_but_tenths());
    let letters = run.delivered_to("dlq");
    assert_eq!(sequences(&letters), tenths());
    // The payload is the element as it came in; the error rides in the content type.
    assert_eq!(
        letters[0].1,
        r#"item 9 ct=text/plain; torvyn-error="up: internal error: failure requested at sequence 9""#
    );
    let report = run.report();
    assert_eq!(count(&report, "delivered"), 90);
    assert_eq!(count(&report, "dead_lettered"), 10);
    assert_eq!(node(&report, "up")["dead_lettered"], 10);
}

#[test]
fn a_trapping_component_is_restarted_and_the_flow_goes_on_under_skip() {
    let events = tempfile::NamedTempFile::new().unwrap();
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1000}"#)
        .component("up", Guest::Upper, r#"{"trap_every": 100}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .flow(
            r#"nodes = ["src", "up", "out"]
edges = [{ from = "src", to = "up" }, { from = "up", to = "out" }]
on-error = { up = "skip" }"#,
        )
        .run(&["--events", events.path().to_str().unwrap()])
        .success();
    let report = run.report();
    let up = node(&report, "up");
    assert_eq!(up["restarts"], 10);
    // Each restart is an event, on stderr as it happens and in the events file.
    assert!(
        run.stderr
            .contains("Restarted `up` of flow `main` after a trap: "),
        "{}",
        run.stderr
    );
    let (events, kinds) = crate::support::events(&events);
    assert_eq!(kinds.len(), 12, "{kinds:?}");
    assert_eq!((&*kinds[0], &*kinds[11]), ("started", "ended"));
    assert!(
        kinds[1..11].iter().all(|kind| kind == "restarted"),
        "{kinds:?}"
    );
    assert_eq!(events[0]["nodes"], 3);
    assert_eq!(events[10]["node"], "up");
    assert_eq!(events[10]["restarts"], 10);
    assert!(
        events[10]["error"].as_str().unwrap().contains("trap"),
        "{}",
        events[10]
    );
    assert_eq!(events[11]["outcome"], "completed");
    assert_eq!(events[11]["delivered"], 990);
    assert!(
        events
            .iter()
            .all(|e| e["flow"] == "main" && e["at_unix_ms"].as_u64() > Some(0))
    );
    assert_eq!(up["failed"], 10);
    assert_eq!(count(&report, "delivered"), 990);
    // The last instance, started after the trap at 999, is torn down having seen nothing.
    assert!(
        run.stderr.contains("test-upper: teardown after 0 elements"),
        "{}",
        run.stderr
    );
    assert_eq!(report["buffers"]["live"], 0);
}

#[test]
fn many_flows_in_one_manifest_run_side_by_side() {
    let mut project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 50}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#);
    let mut text = project.manifest_text();
    text = text[..text.find("[flows.main]").unwrap()].to_owned();
    for i in 0..100 {
        text += &format!(
            "[flows.f{i}]\nnodes = [\"src\", \"out\"]\nedges = [{{ from = \"src\", to = \"out\" }}]\n"
        );
    }
    project = project.manifest(&text);
    let run = project.run(&[]).success();
    let reports = run.reports();
    assert_eq!(reports.len(), 100);
    for report in &reports {
        assert_eq!(report["outcome"], "completed");
        assert_eq!(count(report, "delivered"), 50);
    }
}
