//! Pipelines that work: ordering, copies, backpressure, buffer reuse, filters, and a
//! component built without the SDK.

use crate::support::{Guest, TestProject};

#[test]
fn every_element_arrives_once_in_order_with_host_sequence_numbers() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1000}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, "")
        .run(&[])
        .success();
    let delivered = run.delivered();
    assert_eq!(delivered.len(), 1000);
    for (i, (sequence, payload)) in delivered.iter().enumerate() {
        assert_eq!(*sequence, i as u64);
        assert_eq!(payload, &format!("ITEM {i}"));
    }
    let report = run.report();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["emitted"], 1000);
    assert_eq!(report["delivered"], 1000);
    assert!(
        run.stderr.contains("1000 elements delivered"),
        "{}",
        run.stderr
    );
}

#[test]
fn source_processor_sink_copies_each_payload_four_times() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 500, "size": 100}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, "")
        .run(&[])
        .success();
    let report = run.report();
    assert_eq!(report["copies"]["copies"], 4 * 500);
    assert_eq!(report["copies"]["bytes"], 4 * 500 * 100);
    // One copy in and one out of each stage that touches the payload.
    let per_stage: Vec<_> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["copies"]["copies"].as_u64().unwrap())
        .collect();
    assert_eq!(per_stage, [500, 1000, 500]);
    assert!(run.stderr.contains("4.00 per element"), "{}", run.stderr);
}

#[test]
fn source_sink_copies_each_payload_twice() {
    let report = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 300, "size": 64}"#)
        .component("out", Guest::Sink, "")
        .run(&[])
        .success()
        .report();
    assert_eq!(report["copies"]["copies"], 2 * 300);
    assert_eq!(report["copies"]["bytes"], 2 * 300 * 64);
}

#[test]
fn a_slow_sink_fills_the_queues_and_pauses_the_source() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 200}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, r#"{"pause_every": 1}"#)
        .capacity(4)
        .run(&[])
        .success();
    let report = run.report();
    assert_eq!(report["sink_pauses"], 200);
    let pauses = report["source_pauses"].as_u64().unwrap();
    assert!(pauses > 0, "{report}");
    // The source itself heard every pause, and a resume after each.
    assert!(
        run.stderr.contains(&format!(
            "test-source: paused {pauses} times, resumed {pauses} times"
        )),
        "{}",
        run.stderr
    );
    for edge in report["edges"].as_array().unwrap() {
        assert_eq!(edge["capacity"], 4);
        // Never more than the capacity, and the pause really filled the queues.
        assert_eq!(edge["max_depth"], 4, "{edge}");
    }
    let sequences: Vec<u64> = run.delivered().iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, (0..200).collect::<Vec<_>>());
}

#[test]
fn buffers_return_to_their_pools() {
    let report = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100000, "size": 64}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .capacity(8)
        .run(&[])
        .success()
        .report();
    assert_eq!(report["delivered"], 100_000);
    let buffers = &report["buffers"];
    assert_eq!(buffers["live"], 0, "{buffers}");
    // At most the queued elements plus the few held by calls in progress ever exist.
    let bound = 2 * 8 + 8;
    assert!(
        buffers["high_water"].as_u64().unwrap() <= bound,
        "{buffers}"
    );
    assert!(
        buffers["pool"]["misses"].as_u64().unwrap() <= bound,
        "{buffers}"
    );
    assert!(
        buffers["pool"]["hits"].as_u64().unwrap() >= 2 * 100_000 - bound,
        "{buffers}"
    );
}

#[test]
fn a_filter_drops_what_it_rejects() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 10}"#)
        .component("even", Guest::Filter, "")
        .component("out", Guest::Sink, "")
        .run(&[])
        .success();
    let sequences: Vec<u64> = run.delivered().iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, [0, 2, 4, 6, 8]);
    let report = run.report();
    assert_eq!(report["nodes"][1]["filtered"], 5);
    assert_eq!(report["accounting"]["filtered"], 5);
    assert!(
        run.stderr.contains("Node `even` (filter): 5 filtered"),
        "{}",
        run.stderr
    );
    assert_eq!(report["delivered"], 5);
}

#[test]
fn a_component_built_without_the_sdk_runs_unchanged() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3, "text": "plain"}"#)
        .component("raw", Guest::RawUpper, "")
        .component("out", Guest::Sink, "")
        .run(&[])
        .success();
    let payloads: Vec<String> = run.delivered().into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, ["PLAIN 0", "PLAIN 1", "PLAIN 2"]);
}

#[test]
fn limit_stops_the_source_and_drains() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1000}"#)
        .component("out", Guest::Sink, "")
        .run(&["--limit", "7"])
        .success();
    assert_eq!(run.delivered().len(), 7);
    assert_eq!(run.report()["outcome"], "limit-reached");
}
