//! The batch world: components that also export their `torvyn:batching` interface are
//! called with up to 32 elements per call, with the results, copies and error policies of
//! single calls.

use crate::support::{Guest, Run, TestProject, count, node, sequences};

/// `count` elements through batch source, processor and sink; `upper` configures the
/// processor and `policy` is a line of the flow (`on-error = …`), or empty.
fn batched(count: u64, upper: &str, policy: &str) -> TestProject {
    chain(
        [Guest::BatchSource, Guest::BatchUpper, Guest::BatchSink],
        count,
        upper,
        policy,
    )
}

fn chain(guests: [Guest; 3], count: u64, upper: &str, policy: &str) -> TestProject {
    TestProject::new()
        .component("src", guests[0], &format!(r#"{{"count": {count}}}"#))
        .component("up", guests[1], upper)
        .component("out", guests[2], "")
        .flow(&format!(
            r#"nodes = ["src", "up", "out"]
edges = [{{ from = "src", to = "up" }}, {{ from = "up", to = "out" }}]
{policy}"#
        ))
}

/// Calls made into node `name`, `teardown` and `complete` included.
fn calls(run: &Run, name: &str) -> u64 {
    node(&run.report(), name)["calls"]["calls"]
        .as_u64()
        .unwrap()
}

#[test]
fn batch_components_deliver_what_single_calls_deliver_with_a_call_per_batch() {
    let single = chain([Guest::Source, Guest::Upper, Guest::Sink], 100, "", "")
        .run(&[])
        .success();
    let run = batched(100, "", "").run(&[]).success();
    assert_eq!(run.delivered().len(), 100);
    assert_eq!(run.delivered(), single.delivered());
    // The source's first batch is of one element, to learn their size, which goes on
    // alone. Then batches of 32, 32, 32 and 3 (the source's last also ends its stream).
    // And teardown; the sink's `complete` too.
    assert_eq!(calls(&run, "src"), 6);
    assert_eq!(calls(&run, "up"), 6);
    assert_eq!(calls(&run, "out"), 7);
    assert_eq!(calls(&single, "up"), 101);
    assert!(
        run.stderr
            .contains("test-sink: 100 elements in 4 batches, the largest of 32"),
        "{}",
        run.stderr
    );
    // The same four copies of each payload: out of the source, into and out of the
    // processor, into the sink.
    let report = run.report();
    assert_eq!(report["copies"]["copies"], 400);
    assert_eq!(report["copies"], single.report()["copies"]);
    assert_eq!(report["buffers"]["live"], 0);
}

#[test]
fn batch_and_single_components_mix_and_a_batch_of_one_is_a_single_call() {
    // The processor takes one element per call, so each reaches the sink alone.
    let run = chain(
        [Guest::BatchSource, Guest::Upper, Guest::BatchSink],
        100,
        "",
        "",
    )
    .run(&[])
    .success();
    assert_eq!(sequences(&run.delivered()), (0..100).collect::<Vec<_>>());
    assert_eq!(calls(&run, "src"), 6);
    assert_eq!(calls(&run, "out"), 102);
    assert!(!run.stderr.contains("batches"), "{}", run.stderr);
}

#[test]
fn an_element_limit_stops_a_batch_source_exactly() {
    let run = batched(1000, "", "").run(&["--limit", "45"]).success();
    assert_eq!(sequences(&run.delivered()), (0..45).collect::<Vec<_>>());
    assert_eq!(count(&run.report(), "emitted"), 45);
}

#[test]
fn each_failed_element_of_a_batch_goes_through_the_policy_alone() {
    let run = batched(
        100,
        r#"{"fail_every": 10}"#,
        r#"on-error = { up = "skip" }"#,
    )
    .run(&[])
    .success();
    let expected: Vec<u64> = (0..100).filter(|s| (s + 1) % 10 != 0).collect();
    assert_eq!(sequences(&run.delivered()), expected);
    let report = run.report();
    assert_eq!(node(&report, "up")["failed"], 10);
    // Skipping calls nothing again.
    assert_eq!(calls(&run, "up"), 6);
}

#[test]
fn a_retried_element_of_a_batch_is_called_again_alone_and_keeps_its_place() {
    let upper = r#"{"fail_at": 5, "fail_kind": "unavailable", "fail_attempts": 1}"#;
    let policy = r#"on-error = { up = { retry = 2, backoff = "1ms" } }"#;
    let run = batched(100, upper, policy).run(&[]).success();
    assert_eq!(sequences(&run.delivered()), (0..100).collect::<Vec<_>>());
    let report = run.report();
    assert_eq!(node(&report, "up")["retries"], 1);
    assert_eq!(calls(&run, "up"), 6 + 1);
}

#[test]
fn a_trap_in_a_batch_call_replays_the_batch_one_element_per_call_under_skip() {
    let run = batched(
        200,
        r#"{"trap_every": 50}"#,
        r#"on-error = { up = "skip" }"#,
    )
    .run(&[])
    .success();
    let expected: Vec<u64> = (0..200).filter(|s| (s + 1) % 50 != 0).collect();
    assert_eq!(sequences(&run.delivered()), expected);
    let report = run.report();
    let up = node(&report, "up");
    // Each bad element traps twice: in its batch, then alone in a fresh instance.
    assert_eq!(up["restarts"], 8);
    assert_eq!(up["errors"], 8);
    assert_eq!(up["failed"], 4);
    assert_eq!(report["buffers"]["live"], 0);
}

#[test]
fn a_batch_call_whose_one_output_breaks_the_contract_hands_over_none_of_them() {
    // Element 40 comes late in its batch: the outputs before it must not be taken.
    let run = batched(100, r#"{"label_at": 40}"#, r#"on-error = { up = "skip" }"#)
        .run(&[])
        .success();
    let expected: Vec<u64> = (0..100).filter(|&s| s != 40).collect();
    assert_eq!(sequences(&run.delivered()), expected);
    assert!(
        run.stderr.contains("a content type of 8193 bytes"),
        "{}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(node(&report, "up")["failed"], 1);
    assert_eq!(report["buffers"]["live"], 0);
}

#[test]
fn a_trap_in_a_batch_call_under_fail_flow_fails_each_element_of_the_batch() {
    let run = batched(100, r#"{"trap_at": 40}"#, "").run(&[]).failure();
    // Element 0 and the first batch (1 to 32) went through; the second trapped as a whole.
    assert_eq!(sequences(&run.delivered()), (0..33).collect::<Vec<_>>());
    let report = run.report();
    assert_eq!(node(&report, "up")["failed"], 32);
    assert_eq!(report["buffers"]["live"], 0);
}

#[test]
fn a_batch_call_that_answers_for_fewer_elements_breaks_the_contract() {
    let run = batched(100, r#"{"short_batches": true}"#, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr.contains(
            "broke the torvyn:batching contract: a batch call returned 31 results for 32 elements"
        ),
        "{}",
        run.stderr
    );
    // Only element 0, which went alone.
    assert_eq!(sequences(&run.delivered()), [0]);
}

#[test]
fn a_batch_holds_at_most_32_kib_of_payload_and_a_larger_element_goes_alone() {
    let sized = |size: u64| {
        TestProject::new()
            .component(
                "src",
                Guest::BatchSource,
                &format!(r#"{{"count": 20, "size": {size}}}"#),
            )
            .component("out", Guest::BatchSink, r#"{"quiet": true}"#)
            .run(&[])
            .success()
    };
    // Three payloads of 10 000 bytes fit in 32 KiB, four do not: after the first element,
    // which goes alone, 19 go in six batches of 3 and a last single call.
    let run = sized(10_000);
    assert!(
        run.stderr
            .contains("test-sink: 20 elements in 6 batches, the largest of 3"),
        "{}",
        run.stderr
    );
    let run = sized(40_000);
    assert_eq!(calls(&run, "out"), 20 + 2);
    assert!(!run.stderr.contains("batches"), "{}", run.stderr);
    // The source is asked for one element per call too, having made one of 40 000 bytes.
    assert_eq!(calls(&run, "src"), 21 + 1);
}
