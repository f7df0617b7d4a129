//! `cargo torvyn trace`: every element traced through every stage, the timeline, the
//! Chrome trace file, and the W3C trace context components see in `flow-context`.

use serde_json::Value;

use crate::support::{Guest, Run, TestProject, torvyn, workspace};

/// The `element-trace` JSON lines of a `trace --message-format json` run.
fn element_traces(run: &Run) -> Vec<Value> {
    (run.stdout.lines())
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "element-trace")
        .collect()
}

/// `cargo torvyn trace --limit LIMIT` on `project`, which must succeed, and its elements.
fn traced(project: &TestProject, limit: u64) -> (Run, Vec<Value>) {
    let limit = limit.to_string();
    let run = project
        .command(&["trace", "--limit", &limit, "--message-format", "json"])
        .success();
    let elements = element_traces(&run);
    (run, elements)
}

/// The nodes an element's spans name, in order; each span must be the child of the one
/// before, all in one trace.
fn linked_nodes(element: &Value) -> Vec<&str> {
    let spans = element["spans"].as_array().unwrap();
    assert_eq!(spans[0]["parent_span_id"], Value::Null, "{element}");
    for pair in spans.windows(2) {
        assert_eq!(pair[1]["parent_span_id"], pair[0]["span_id"], "{element}");
        assert_eq!(pair[1]["trace_id"], element["trace_id"], "{element}");
    }
    spans.iter().map(|s| s["node"].as_str().unwrap()).collect()
}

#[test]
fn trace_follows_every_element_of_the_example_through_its_three_stages() {
    let dir = tempfile::tempdir().unwrap();
    let chrome = dir.path().join("trace.json");
    let output = torvyn()
        .args([
            "torvyn",
            "trace",
            "--limit",
            "5",
            "--message-format",
            "json",
        ])
        .arg("--output")
        .arg(&chrome)
        .arg("--manifest-path")
        .arg(workspace().join("examples").join("stream-transform"))
        .output()
        .unwrap();
    let run = Run::from(output).success();

    // The timeline: every element, with its three stages.
    let unwritable = torvyn()
        .args(["torvyn", "trace", "--limit", "5", "--output"])
        .arg(dir.path().join("no such folder").join("trace.json"))
        .arg("--manifest-path")
        .arg(workspace().join("examples").join("stream-transform"))
        .output()
        .unwrap();
    let unwritable = Run::from(unwritable).failure();
    // Said before the flow runs.
    assert!(
        unwritable.stderr.contains("cannot write the trace to")
            && !unwritable.stderr.contains("Tracing"),
        "{}",
        unwritable.stderr
    );
    for sequence in 0..5 {
        let header = format!("element {sequence} · 3 stages · ");
        assert!(run.stderr.contains(&header), "{header}: {}", run.stderr);
    }
    assert!(
        run.stderr
            .contains("Traced 5 elements of flow `main` in 15 spans"),
        "{}",
        run.stderr
    );
    let elements = element_traces(&run);
    assert_eq!(elements.len(), 5, "{}", run.stdout);
    for (sequence, element) in elements.iter().enumerate() {
        assert_eq!(element["sequence"], sequence);
        assert_eq!(linked_nodes(element), ["people", "rename", "printer"]);
        let spans = element["spans"].as_array().unwrap();
        let calls: Vec<_> = spans.iter().map(|s| s["call"].as_str().unwrap()).collect();
        assert_eq!(calls, ["pull", "process", "push"]);
        assert_eq!(spans[2]["fate"], "delivered");
        // The source writes its payload once; the processor reads it and writes its own;
        // the sink reads that: the four copies of every element, each where it happens.
        let copies: Vec<_> = spans.iter().map(|s| &s["copies"]["copies"]).collect();
        assert_eq!(copies, [1, 2, 1], "{element}");
        assert_eq!(spans[1]["wait"]["from"], "people");
        assert_eq!(spans[2]["wait"]["from"], "rename");
    }

    // The Chrome trace: one complete event per stage per element, on a thread per node.
    let trace: Value = serde_json::from_slice(&std::fs::read(&chrome).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let complete: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), 15);
    for sequence in 0..5 {
        let mut threads: Vec<_> = (complete.iter())
            .filter(|e| e["args"]["sequence"] == sequence)
            .map(|e| e["tid"].as_u64().unwrap())
            .collect();
        threads.sort();
        assert_eq!(threads, [0, 1, 2], "element {sequence}");
    }
    for event in &complete {
        assert!(event["ts"].as_f64().unwrap() >= 0.0, "{event}");
        assert!(event["dur"].as_f64().unwrap() > 0.0, "{event}");
    }
    let names: Vec<_> = (events.iter())
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["people", "rename", "printer"]);
}

#[test]
fn components_see_the_trace_context_of_their_element() {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1000}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, r#"{"show_trace": true}"#);
    let (run, elements) = traced(&project, 4);
    let seen: Vec<(&str, &str)> = (run.stdout.lines())
        .filter_map(|line| {
            let (_, context) = line.split_once(" trace=")?;
            context.split_once(" span=")
        })
        .collect();
    assert_eq!(elements.len(), 4, "{}", run.stdout);
    assert_eq!(seen.len(), 4, "{}", run.stdout);
    for (element, (trace, span)) in elements.iter().zip(seen) {
        assert_eq!(linked_nodes(element), ["src", "up", "out"]);
        assert_eq!(trace.len(), 32);
        assert_eq!(trace, element["trace_id"]);
        assert_eq!(span, element["spans"][2]["span_id"]);
    }

    // Untraced, the context is empty.
    let run = project.run(&["--limit", "2"]).success();
    assert!(
        run.stdout.contains("seq=0 len=6 ITEM 0 trace= span=\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn trace_shows_backpressure_where_an_element_waits_behind_a_full_queue() {
    let project = TestProject::pausing_sink(4, "2ms");
    let (run, elements) = traced(&project, 20);
    assert_eq!(elements.len(), 20);
    // While the sink pauses, `up` fills the sink's queue: some elements join it last,
    // with three ahead, and wait there at least a pause.
    let behind_full: Vec<_> = (elements.iter())
        .map(|e| &e["spans"][2]["wait"])
        .filter(|wait| wait["depth"] == 3 && wait["capacity"] == 4)
        .collect();
    assert!(!behind_full.is_empty(), "{}", run.stdout);
    assert!(
        (behind_full.iter()).all(|wait| wait["wait_ns"].as_u64().unwrap() >= 2_000_000),
        "{behind_full:?}"
    );
    assert!(
        run.stderr
            .contains("in up → out (3 ahead, capacity 4: backpressure)"),
        "{}",
        run.stderr
    );
}

#[test]
fn batch_calls_give_each_element_its_own_span_in_its_own_trace() {
    let project = TestProject::new()
        .component("src", Guest::BatchSource, r#"{"count": 1000}"#)
        .component("up", Guest::BatchUpper, "")
        .component("out", Guest::BatchSink, r#"{"quiet": true}"#);
    let (run, elements) = traced(&project, 40);
    assert_eq!(elements.len(), 40);
    let mut largest = 0;
    for element in &elements {
        assert_eq!(linked_nodes(element), ["src", "up", "out"]);
        for span in element["spans"].as_array().unwrap() {
            largest = largest.max(span["batch"].as_u64().unwrap());
        }
    }
    // The source hands over up to 32 elements per call once it knows their size.
    assert_eq!(largest, 32, "{}", run.stdout);
    assert!(run.stderr.contains(" · in a batch of 32"), "{}", run.stderr);
}

#[test]
fn connectors_take_batches_as_large_as_their_queue_holds_below_its_high_watermark() {
    // A built-in connector's elements cross no component, so its batches are bounded by
    // its queue (64 by default, whose high watermark is 64 too), not by a component's 32.
    // A batch stops one short of the high watermark: a flow that keeps up never pauses.
    let file_to_file = || {
        let project = crate::connectors::project(
            r#"
[sources.logs]
type = "file"
include = ["in.log"]

[sinks.out]
type = "file"
path = "out.txt"

[flows.main]
nodes = ["logs", "out"]
edges = [{ from = "logs", to = "out" }]
"#,
        );
        let lines: String = (0..300).map(|i| format!("line {i}\n")).collect();
        std::fs::write(project.dir().join("in.log"), &lines).unwrap();
        (project, lines)
    };
    let (project, lines) = file_to_file();
    let (run, elements) = traced(&project, 300);
    assert_eq!(elements.len(), 300);
    let mut largest = std::collections::BTreeMap::new();
    for element in &elements {
        assert_eq!(linked_nodes(element), ["logs", "out"]);
        for span in element["spans"].as_array().unwrap() {
            let batch = span["batch"].as_u64().unwrap();
            let node = span["node"].as_str().unwrap().to_owned();
            let most = largest.entry(node).or_insert(0);
            *most = batch.max(*most);
        }
    }
    let below_watermark = u64::from(torvyn_runtime::DEFAULT_QUEUE_CAPACITY) - 1;
    assert!(below_watermark > torvyn_runtime::MAX_BATCH as u64);
    assert_eq!(largest["logs"], below_watermark, "{}", run.stdout);
    assert_eq!(largest["out"], below_watermark, "{}", run.stdout);
    let written = std::fs::read_to_string(project.dir().join("out.txt")).unwrap();
    assert_eq!(written, lines);

    let (project, lines) = file_to_file();
    let report = project.run(&[]).success().report();
    assert_eq!(report["source_pauses"], 0, "{report}");
    assert_eq!(report["delivered"], 300, "{report}");
    let written = std::fs::read_to_string(project.dir().join("out.txt")).unwrap();
    assert_eq!(written, lines);
}
