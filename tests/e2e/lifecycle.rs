//! How a run ends: Ctrl-C and `--timeout` drain what is in flight; the compile cache is
//! written, reused and survives corruption, and a large component's compile is announced;
//! the examples run.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::{Guest, Run, TestProject, torvyn, workspace};

/// Asserts a stopped run delivered everything it emitted, in order, and returns how many.
fn assert_drained(run: &Run, outcome: &str) -> u64 {
    let report = run.report();
    assert_eq!(report["outcome"], outcome, "{report}");
    let delivered = report["delivered"].as_u64().unwrap();
    assert!(delivered > 0, "{report}");
    assert_eq!(report["emitted"], delivered, "{report}");
    let sequences: Vec<u64> = run.delivered().iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, (0..delivered).collect::<Vec<_>>());
    delivered
}

/// Runs source → upper → sink over `count` elements and sends `signal` once 100 elements
/// have arrived; the run must drain and exit 0.
fn stop_with_signal(signal: &str, count: u64) {
    let project = TestProject::new()
        .component("src", Guest::Source, &format!(r#"{{"count": {count}}}"#))
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, "");
    let mut child = project
        .run_command(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref().take(100) {
        stdout += &(line.unwrap() + "\n");
    }
    let signalled = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    for line in lines {
        stdout += &(line.unwrap() + "\n");
    }
    let output = child.wait_with_output().unwrap();
    let run = Run {
        code: output.status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
    .success();
    assert!(run.stderr.contains("stopped by a signal"), "{}", run.stderr);
    assert!(run.stderr.contains("Accounted"), "{}", run.stderr);
    assert!(assert_drained(&run, "cancelled") < count);
    // Every stage was torn down after the drain.
    assert!(
        run.stderr.contains("test-upper: teardown"),
        "{}",
        run.stderr
    );
}

#[test]
fn ctrl_c_stops_the_source_and_drains_what_is_in_flight() {
    stop_with_signal("INT", 100_000_000);
}

#[test]
fn sigterm_during_a_million_elements_loses_nothing() {
    stop_with_signal("TERM", 1_000_000);
}

/// Sends `signal` to the run `child`.
fn send(signal: &str, child: &std::process::Child) {
    let signalled = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
}

/// Reads `lines` until one holds `text`, keeping what it read in `seen`.
fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    text: &str,
    seen: &mut String,
) {
    for line in lines {
        let line = line.unwrap();
        *seen += &(line.clone() + "\n");
        if line.contains(text) {
            return;
        }
    }
    panic!("no line with `{text}` in:\n{seen}");
}

/// Starts `src → hostile → out`, the hostile processor configured with `config` and
/// allowed a minute per call, with its output piped; the project lives as long as the run.
fn spawn_with_hostile(config: &str) -> (TestProject, std::process::Child) {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1000}"#)
        .component("hostile", Guest::Hostile, config)
        .component("out", Guest::Sink, "")
        .set("hostile", "limits", r#"{ invocation-time = "60s" }"#);
    let child = (project.run_command(&[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (project, child)
}

#[test]
fn a_second_signal_aborts_while_a_component_spins_in_a_call() {
    // `spin` loops inside `process` on element 5, for up to a minute.
    let (_project, mut child) = spawn_with_hostile(r#"{"mode": "loop", "at": 5}"#);
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    read_until(&mut stdout, "seq=4 ", &mut seen);
    send("TERM", &child);
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    read_until(&mut stderr, "Stopping", &mut seen);
    // The drain waits for the call in progress; a second signal does not.
    send("TERM", &child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
}

#[test]
fn a_stop_cuts_short_an_init_that_has_not_returned() {
    let (_project, mut child) = spawn_with_hostile(r#"{"mode": "init-loop"}"#);
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    read_until(&mut stderr, "Running", &mut seen);
    send("INT", &child);
    for line in stderr {
        seen += &(line.unwrap() + "\n");
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let run = Run {
        code: child.wait().unwrap().code(),
        stdout,
        stderr: seen,
    }
    .success();
    let report = run.report();
    assert_eq!(report["outcome"], "cancelled", "{report}");
    assert_eq!(report["emitted"], 0);
}

#[test]
fn timeout_stops_the_source_and_drains_what_is_in_flight() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100000000}"#)
        .component("out", Guest::Sink, "")
        .run(&["--timeout", "300ms"])
        .success();
    assert!(assert_drained(&run, "timed-out") < 100_000_000);
}

/// `run` of `manifest` with its compile cache in `cache`, to a successful end.
fn run_cached(cache: &std::path::Path, manifest: &std::path::Path) -> Run {
    let output = torvyn()
        .env("TORVYN_CACHE_DIR", cache)
        .args(["torvyn", "run", "--manifest-path"])
        .arg(manifest)
        .output()
        .unwrap();
    Run::from(output).success()
}

#[test]
fn compiled_components_are_cached_and_a_corrupt_cache_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3}"#)
        .component("out", Guest::Sink, "");
    let manifest = project.write_manifest();
    let run = || run_cached(cache.path(), &manifest);
    let cached = || -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for engine in std::fs::read_dir(cache.path().join("compiled")).unwrap() {
            for file in std::fs::read_dir(engine.unwrap().path()).unwrap() {
                files.push(file.unwrap().path());
            }
        }
        files
    };
    run();
    let files = cached();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.extension().unwrap() == "cwasm"));
    for file in &files {
        std::fs::write(file, b"not machine code").unwrap();
    }
    // Unreadable entries cost a recompile, never a failure, and are written anew.
    assert_eq!(run().delivered().len(), 3);
    assert!(
        cached()
            .iter()
            .all(|f| std::fs::read(f).unwrap().len() > 100)
    );
}

#[test]
fn a_large_component_is_announced_while_it_compiles_and_taken_from_the_cache_after() {
    let cache = tempfile::tempdir().unwrap();
    // The test processor with 10 MiB more in a custom section: as large as a small
    // Python guest, and the same component.
    let mut bytes = std::fs::read(Guest::Upper.wasm()).unwrap();
    let padding = wasm_encoder::CustomSection {
        name: "padding".into(),
        data: vec![0; 10 << 20].into(),
    };
    bytes.push(wasm_encoder::ComponentSection::id(&padding));
    wasm_encoder::Encode::encode(&padding, &mut bytes);
    let large = cache.path().join("large-upper.wasm");
    std::fs::write(&large, bytes).unwrap();
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3}"#)
        .component_at("big", large.to_str().unwrap(), "")
        .component("out", Guest::Sink, "");
    let manifest = project.write_manifest();
    let run = || run_cached(cache.path(), &manifest);
    let first = run();
    let announced: Vec<&str> = (first.stderr.lines())
        .filter(|line| line.trim_start().starts_with("Compiling component"))
        .collect();
    // Only the large one: the small ones compile in a blink.
    assert_eq!(announced.len(), 1, "{}", first.stderr);
    assert!(
        announced[0].contains("`big` (1") && announced[0].contains("from the cache"),
        "{}",
        announced[0]
    );
    assert_eq!(first.delivered().len(), 3);
    let second = run();
    assert!(
        !second.stderr.contains("Compiling component"),
        "{}",
        second.stderr
    );
    assert_eq!(second.delivered().len(), 3);
}

#[test]
fn the_examples_run() {
    let example = |name: &str| {
        let output = torvyn()
            .args(["torvyn", "run", "--manifest-path"])
            .arg(workspace().join("examples").join(name))
            .output()
            .unwrap();
        Run::from(output).success()
    };
    let hello = example("hello-world");
    assert!(hello.stdout.contains("hello, world 4"), "{}", hello.stdout);
    let transform = example("stream-transform");
    let people: Vec<serde_json::Value> = transform
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(people.len(), 5);
    for (id, person) in people.iter().enumerate() {
        assert_eq!(person["id"], id);
        assert!(person["user"].is_string(), "{person}");
        assert!(person.get("name").is_none(), "{person}");
    }

    let graph = example("fan-out-fan-in");
    let lines: Vec<&str> = graph.stdout.lines().collect();
    assert_eq!(lines.len(), 9, "{}", graph.stdout);
    for unit in ["fahrenheit", "kelvin"] {
        assert_eq!(
            lines.iter().filter(|l| l.contains(unit)).count(),
            4,
            "{unit}"
        );
    }
    assert!(
        graph
            .stdout
            .contains(r#"{"count":4,"min_celsius":18.0,"max_celsius":23.5,"mean_celsius":20.5}"#)
    );
    assert!(
        graph.stderr.contains("Accounted 4 emitted + 8 fanned out + 1 produced by aggregators = 9 delivered + 4 absorbed by aggregators"),
        "{}",
        graph.stderr
    );
    // The node line names its count as the accounting line does.
    assert!(
        graph
            .stderr
            .contains("Node `stats` (aggregator): 4 absorbed"),
        "{}",
        graph.stderr
    );

    let routed = example("router-dead-letter");
    let starting = |prefix: &str| {
        routed
            .stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    assert_eq!(starting("urgent: "), 2, "{}", routed.stdout);
    assert_eq!(starting("normal: "), 2, "{}", routed.stdout);
    assert_eq!(starting("dead letter: "), 3, "{}", routed.stdout);
    assert!(
        routed.stdout.contains(r#"dead letter: {"id":4,"item":"bolt","quantity":0} [application/json; torvyn-error="validate: invalid input: order 4: quantity is 0"]"#),
        "{}",
        routed.stdout
    );
    assert!(
        routed
            .stderr
            .contains("Accounted 7 emitted = 4 delivered + 3 dead-lettered"),
        "{}",
        routed.stderr
    );
}
