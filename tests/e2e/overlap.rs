//! Stages that wait do not stall their flow: a slow sink runs on its own task, so the
//! other branches keep their pace and the overflow policy in front of it acts; nothing is
//! lost or copied more on the way. Proved by counts, never by time.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::connectors::project;
use crate::support::{Guest, TestProject, count, node, sequences};

/// `src` (300 elements) fanned out to sink `fast` and, behind an edge of capacity 4
/// with `overflow`, to sink `slow` spinning `spin_ms` per element.
fn fast_and_slow(overflow: &str, spin_ms: u64) -> TestProject {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 300}"#)
        .component("fast", Guest::Sink, r#"{"label": "fast"}"#)
        .component(
            "slow",
            Guest::Sink,
            &format!(r#"{{"label": "slow", "spin_ms": {spin_ms}}}"#),
        )
        .flow(&format!(
            r#"nodes = ["src", "fast", "slow"]
edges = [
    {{ from = "src", to = "fast" }},
    {{ from = "src", to = "slow", capacity = 4, overflow = "{overflow}" }},
]"#
        ))
}

#[test]
fn a_slow_sink_behind_drop_newest_drops_while_the_fast_branch_gets_every_element() {
    let run = fast_and_slow("drop-newest", 50).run(&[]).success();
    let all: Vec<u64> = (0..300).collect();
    assert_eq!(sequences(&run.delivered_to("fast")), all);
    let report = run.report();
    let slow = sequences(&run.delivered_to("slow"));
    let dropped = report["edges"][1]["dropped"].as_u64().unwrap();
    // The slow sink would take 15 s for 300 elements: the source, at its own pace (and
    // the fast sink's), is done long before half of that, and the edge drops the newest.
    // Held to the slow sink's pace, the source would fill its queue only now and then.
    assert!(dropped >= 150, "{report}");
    assert_eq!(slow.len() as u64 + dropped, 300, "{report}");
    assert_eq!(node(&report, "slow")["delivered"], slow.len() as u64);
    assert!(slow.windows(2).all(|w| w[0] < w[1]), "{slow:?}");
    // Drop-newest keeps the first elements.
    assert_eq!(slow[..3], [0, 1, 2]);
}

#[test]
fn a_slow_sink_behind_block_gets_every_element_with_no_more_copies() {
    let fast = fast_and_slow("block", 0).run(&[]).success();
    let slow = fast_and_slow("block", 2).run(&[]).success();
    let all: Vec<u64> = (0..300).collect();
    for label in ["fast", "slow"] {
        assert_eq!(sequences(&slow.delivered_to(label)), all, "{label}");
    }
    let (fast, slow) = (fast.report(), slow.report());
    assert_eq!(count(&slow, "delivered"), 600);
    // The slow sink read its payloads from its own table: the same copies, counted.
    assert_eq!(slow["copies"], fast["copies"], "{slow}");
    assert_eq!(node(&slow, "slow")["copies"], node(&fast, "slow")["copies"]);
}

#[test]
fn a_detached_sink_s_errors_go_through_its_policy_and_its_failure_accounts_for_all() {
    let slow = |policy: &str| {
        TestProject::new()
            .component("src", Guest::Source, r#"{"count": 100}"#)
            .component(
                "slow",
                Guest::Sink,
                r#"{"label": "slow", "spin_ms": 2, "fail_every": 10}"#,
            )
            .component("dlq", Guest::Sink, r#"{"label": "dlq"}"#)
            .flow(&format!(
                r#"nodes = ["src", "slow"{}]
edges = [{{ from = "src", to = "slow" }}]
[flows.main.on-error]
slow = {policy}"#,
                if policy.contains("dlq") {
                    r#", "dlq""#
                } else {
                    ""
                }
            ))
            .run(&[])
    };
    // Every 10th element fails, after the sink went its own way (the first three calls).
    let tenths: Vec<u64> = (0..100).filter(|s| (s + 1) % 10 == 0).collect();
    let run = slow(r#"{ dead-letter = "dlq" }"#).success();
    assert_eq!(sequences(&run.delivered_to("dlq")), tenths);
    let rest: Vec<u64> = (0..100).filter(|s| !tenths.contains(s)).collect();
    assert_eq!(sequences(&run.delivered_to("slow")), rest);
    assert_eq!(count(&run.report(), "dead_lettered"), 10);
    // Failing the flow on element 9 loses nothing: `Run::reports` checks the identity.
    let run = slow(r#""fail-flow""#).failure();
    assert!(run.stderr.contains("on element 9"), "{}", run.stderr);
    let report = run.report();
    assert_eq!(count(&report, "failed"), 1);
    assert_eq!(count(&report, "delivered"), 9);
}

#[test]
fn a_detached_sink_waits_for_room_on_its_dead_letter_edge() {
    // Every element fails at `slow` and goes to `dlq`, slower still, through queues of
    // two: while `dlq` is away, `slow` must not send it more than its edge holds.
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 50}"#)
        .component(
            "slow",
            Guest::Sink,
            r#"{"label": "slow", "spin_ms": 1, "fail_every": 1}"#,
        )
        .component("dlq", Guest::Sink, r#"{"label": "dlq", "spin_ms": 3}"#)
        .flow(
            r#"nodes = ["src", "slow", "dlq"]
queue-capacity = 2
edges = [{ from = "src", to = "slow" }]
[flows.main.on-error]
slow = { dead-letter = "dlq" }"#,
        )
        .run(&[])
        .success();
    assert_eq!(
        sequences(&run.delivered_to("dlq")),
        (0..50).collect::<Vec<_>>()
    );
    let report = run.report();
    assert_eq!(count(&report, "dead_lettered"), 50);
    assert_eq!(report["edges"][1]["capacity"], 2, "{report}");
}

#[test]
fn a_detached_sink_that_traps_is_restarted_and_the_other_branch_goes_on() {
    // Every call of `slow` outlives its time limit and traps: the first three inline, the
    // rest on its own task.
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 10}"#)
        .component("fast", Guest::Sink, r#"{"label": "fast"}"#)
        .component("slow", Guest::Sink, r#"{"label": "slow", "spin_ms": 50}"#)
        .set("slow", "limits", r#"{ invocation-time = "5ms" }"#)
        .flow(
            r#"nodes = ["src", "fast", "slow"]
edges = [{ from = "src", to = "fast" }, { from = "src", to = "slow" }]
max-restarts = 100
[flows.main.on-error]
slow = "skip""#,
        )
        .run(&[])
        .success();
    assert_eq!(
        sequences(&run.delivered_to("fast")),
        (0..10).collect::<Vec<_>>()
    );
    let report = run.report();
    let slow = node(&report, "slow");
    assert_eq!(slow["failed"], 10, "{report}");
    assert_eq!(slow["errors_by_kind"]["trap"], 10, "{report}");
    assert_eq!(slow["restarts"], 10, "{report}");
    assert_eq!(count(&report, "delivered"), 10);
}

/// `lines` lines of `in.txt` fanned out to a file sink and, behind a `drop-newest` edge,
/// to sink `slow` declared by `slow` (its table's keys), which nobody reads until the file
/// sink has written every line. `read` then reads what `slow` wrote, from the running
/// host or from the project's folder. Asserts that the run ends well with the slow
/// branch's drops counted.
fn beside_a_file_sink(
    slow: &str,
    lines: usize,
    prepare: impl FnOnce(&Path),
    read: impl FnOnce(&mut Child, &Path) -> String,
) {
    let flow = project(&format!(
        r#"
[sources.numbers]
type = "file"
include = ["in.txt"]

[sinks.file]
type = "file"
path = "out/out.txt"

[sinks.slow]
{slow}

[flows.main]
nodes = ["numbers", "file", "slow"]
edges = [
    {{ from = "numbers", to = "file" }},
    {{ from = "numbers", to = "slow", capacity = 8, overflow = "drop-newest" }},
]
"#
    ));
    let text: String = (0..lines).map(|i| format!("line {i}\n")).collect();
    std::fs::write(flow.dir().join("in.txt"), &text).unwrap();
    prepare(flow.dir());
    let mut child = crate::support::torvyn()
        .args(["torvyn", "run", "--manifest-path"])
        .arg(flow.write_manifest())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::connectors::wait_for_output(flow.dir(), &text);
    let written = read(&mut child, flow.dir()).lines().count();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(written < lines, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Dropped {} elements on the edge from `numbers` to `slow` (drop-newest)",
            lines - written
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Accounted {lines} emitted + {lines} fanned out = {} delivered + {} dropped",
            lines + written,
            lines - written
        )),
        "{stderr}"
    );
}

#[test]
fn a_blocked_standard_output_does_not_hold_back_a_file_sink_beside_it() {
    // Its pipe fills and the writes to it block, while the file sink goes on.
    let read = |child: &mut Child, _: &Path| {
        let mut stdout = String::new();
        let mut pipe = child.stdout.take().unwrap();
        pipe.read_to_string(&mut stdout).unwrap();
        stdout
    };
    beside_a_file_sink(r#"type = "stdout""#, 50_000, |_| {}, read);
}

#[test]
fn a_named_pipe_nobody_reads_yet_holds_back_only_its_own_sink() {
    // The pipe has no reader: opening it for writing waits, on the sink's own thread.
    let mkfifo = |dir: &Path| {
        let made = Command::new("mkfifo").arg(dir.join("pipe")).status();
        assert!(made.unwrap().success());
    };
    let read = |_: &mut Child, dir: &Path| {
        let mut piped = String::new();
        let mut pipe = std::fs::File::open(dir.join("pipe")).unwrap();
        pipe.read_to_string(&mut piped).unwrap();
        piped
    };
    beside_a_file_sink("type = \"file\"\npath = \"pipe\"", 1000, mkfifo, read);
}
