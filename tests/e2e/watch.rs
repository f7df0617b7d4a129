//! `cargo torvyn run --watch` through the real CLI: an edited processor is built and run
//! again, and the run it ended drains and balances.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connectors::Running;
use crate::support::{Run, torvyn};

/// Waits (up to three minutes: the first round builds a crate) until `ready` holds.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn an_edited_processor_is_built_and_run_again_after_the_run_it_ended_drains_and_a_broken_one_waits()
{
    let dir = tempfile::tempdir().unwrap();
    let new = torvyn()
        .current_dir(dir.path())
        .args(["torvyn", "new", "demo", "--template", "pipeline"])
        .output()
        .unwrap();
    Run::from(new).success();
    let project = dir.path().join("demo");
    // The template's processor, between a followed log and a file: a flow that runs
    // until it is stopped.
    std::fs::write(
        project.join("Torvyn.toml"),
        r#"[project]
name = "demo"

[sources.logs]
type = "file"
include = ["logs/*.log"]
follow = true

[components.transform]
path = "components/transform"

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["logs", "transform", "out"]
edges = [{ from = "logs", to = "transform" }, { from = "transform", to = "out" }]
"#,
    )
    .unwrap();
    std::fs::create_dir_all(project.join("logs")).unwrap();
    std::fs::write(project.join("logs/a.log"), "one\n").unwrap();

    let mut child = Running::spawned(
        torvyn()
            .current_dir(&project)
            .args(["torvyn", "run", "--watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (stderr, pipe) = (stderr.clone(), child.child().stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = stderr.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        })
    };
    let out = project.join("out/out.txt");
    wait_until("the first round's output", || read(&out) == "ONE\n");

    // The processor now lower-cases: the running flow drains, and the next round runs the
    // new build from the checkpoint, so `one` is not read again.
    let source = project.join("components/transform/src/lib.rs");
    let edited = read(&source).replace("to_ascii_uppercase", "to_ascii_lowercase");
    assert_ne!(edited, read(&source), "the template upper-cases");
    std::fs::write(&source, edited).unwrap();
    let rounds = || {
        stderr
            .lock()
            .unwrap()
            .matches("Running flow `main`")
            .count()
    };
    wait_until("the second round", || rounds() >= 2);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(project.join("logs/a.log"))
        .unwrap();
    log.write_all(b"TWO\n").unwrap();
    wait_until("the second round's output", || read(&out) == "ONE\ntwo\n");

    // A build that fails says why and waits for the next change.
    let working = read(&source);
    std::fs::write(&source, "not rust").unwrap();
    let watching = || stderr.lock().unwrap().matches("Watching").count();
    wait_until("the failed round", || watching() >= 1);
    std::fs::write(&source, working).unwrap();
    wait_until("the third round", || rounds() >= 3);
    log.write_all(b"THREE\n").unwrap();
    wait_until("the third round's output", || {
        read(&out) == "ONE\ntwo\nthree\n"
    });

    Command::new("kill")
        .args(["-TERM", &child.child().id().to_string()])
        .status()
        .unwrap();
    let status = child.child().wait().unwrap();
    reader.join().unwrap();
    let stderr = stderr.lock().unwrap().clone();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("Restarting"), "{stderr}");
    assert!(
        stderr.contains("components/transform/src/lib.rs"),
        "{stderr}"
    );
    assert!(stderr.contains("building components failed"), "{stderr}");
    // Each round that ran drained what it had read and balanced: one line each.
    assert_eq!(
        stderr.matches("Accounted 1 emitted = 1 delivered").count(),
        3,
        "{stderr}"
    );
}

#[test]
fn watch_is_refused_beside_listen_and_for_a_pulled_pipeline() {
    let run = |args: &[&str]| {
        let output = torvyn()
            .args(["torvyn", "run"])
            .args(args)
            .output()
            .unwrap();
        Run::from(output)
    };
    // A usage error, as clap reports them.
    let listen = run(&["--watch", "--listen", "127.0.0.1:0"]);
    assert_eq!(listen.code, Some(2), "{}", listen.stderr);
    assert!(
        listen.stderr.contains("cannot be used with"),
        "{}",
        listen.stderr
    );
    let pulled = run(&["oci://127.0.0.1:1/p:1", "--watch"]).failure();
    assert!(
        pulled.stderr.contains("without --watch"),
        "{}",
        pulled.stderr
    );
}
