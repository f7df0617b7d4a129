//! `cargo torvyn check`: the manifest and the project's WIT, every problem at once,
//! without building anything.

use std::path::Path;

use crate::support::{Run, torvyn};

fn check(dir: &Path, json: bool) -> Run {
    let mut command = torvyn();
    command.current_dir(dir).args(["torvyn", "check"]);
    if json {
        command.args(["--message-format", "json"]);
    }
    Run::from(command.output().unwrap())
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const MANIFEST: &str = "[project]\nname = \"w\"\n[components.a]\npath = \"a.wasm\"\n[flows.main]\nnodes = [\"a\", \"b\"]\nedges = [{ from = \"a\", to = \"c\" }]\n";

#[test]
fn every_problem_in_the_manifest_and_the_wit_is_reported_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Torvyn.toml", MANIFEST);
    write(
        dir.path(),
        "wit/demo.wit",
        "package acme:demo@0.1.0;\n\ninterface greet {\n    hello: func(name: strin) -> string;\n}\n",
    );
    let run = check(dir.path(), false).failure();
    for expected in [
        "node `b` of flow `main` names no component",
        "Torvyn.toml:6:15]",
        "edge end `c` is not a node of flow `main`",
        "Torvyn.toml:7:29]",
        "name `strin` does not exist",
        "demo.wit:4:23]",
        "3 problems found",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }

    let json = check(dir.path(), true).failure();
    let problems: Vec<serde_json::Value> = (json.stdout.lines())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(problems.len(), 3);
    assert!(problems.iter().all(|p| p["reason"] == "check-problem"));
    // The folder is the one beside the manifest found, wherever the command ran.
    let message = problems[2]["message"].as_str().unwrap();
    assert!(
        message.starts_with("failed to parse package: ")
            && message.ends_with("/wit: name `strin` does not exist"),
        "{message}"
    );
}

#[test]
fn a_sound_project_passes() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Torvyn.toml",
        &MANIFEST
            .replace("\"b\"]", "\"c\"]")
            .replace("[flows", "[components.c]\npath = \"c.wasm\"\n[flows"),
    );
    write(
        dir.path(),
        "wit/demo.wit",
        "package acme:demo@0.1.0;\n\ninterface greet {\n    hello: func(name: string) -> string;\n}\n",
    );
    let run = check(dir.path(), false).success();
    assert!(
        run.stderr
            .contains("Checked the manifest and 1 WIT package: no problems"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_table_does_not_hide_the_other_problems() {
    let dir = tempfile::tempdir().unwrap();
    let text = MANIFEST.replace("[flows.main]", "[flow.typo]\nnodes = []\n\n[flows.main]");
    write(dir.path(), "Torvyn.toml", &text);
    let run = check(dir.path(), false).failure();
    for expected in [
        "unknown field `flow`",
        "Torvyn.toml:5:2]",
        "node `b` of flow `main` names no component",
        "edge end `c` is not a node of flow `main`",
        "3 problems found",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

/// `cargo torvyn COMMAND --manifest-path other.toml` in `dir`.
fn named(dir: &Path, command: &[&str]) -> Run {
    let output = torvyn()
        .current_dir(dir)
        .arg("torvyn")
        .args(command)
        .args(["--manifest-path", "other.toml"])
        .output()
        .unwrap();
    Run::from(output)
}

#[test]
fn a_manifest_named_on_the_command_line_is_the_one_read_whatever_its_name() {
    // Beside a Torvyn.toml with a problem of its own, `other.toml` is what is checked.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Torvyn.toml", MANIFEST);
    let other = MANIFEST.replace("name = \"w\"", "name = \"other\"");
    write(dir.path(), "other.toml", &other.replace("[flows", "[flowz"));
    for command in [
        &["check"][..],
        &["link"],
        &["run"],
        &["test"],
        &["build"],
        &["pack"],
    ] {
        let run = named(dir.path(), command).failure();
        assert!(
            run.stderr.contains("other.toml") && run.stderr.contains("unknown field `flowz`"),
            "{command:?}: {}",
            run.stderr
        );
    }

    // In a folder without one, it is read as a Torvyn manifest, never as a Cargo one.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "other.toml", MANIFEST);
    let run = named(dir.path(), &["check"]).failure();
    assert!(
        run.stderr
            .contains("node `b` of flow `main` names no component"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Cargo.toml"), "{}", run.stderr);

    // A folder named is its own manifest, not one found above it.
    write(dir.path(), "Torvyn.toml", MANIFEST);
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let output = torvyn()
        .current_dir(dir.path())
        .args(["torvyn", "check", "--manifest-path", "empty"])
        .output()
        .unwrap();
    let run = Run::from(output).failure();
    assert!(
        run.stderr
            .contains("`empty` holds no Torvyn.toml or Cargo.toml"),
        "{}",
        run.stderr
    );
}

#[test]
fn numbers_out_of_range_and_bad_shapes_are_found_without_building() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"[project]
name = "r"
[components.a]
path = "a.wasm"
[components.a.limits]
invocation-time = "0ms"
memory = "1 KiB"
[components.b]
path = "b.wasm"
[components."bell\u0007"]
path = "c.wasm"
[flows.huge]
nodes = ["a", "b"]
edges = [{ from = "a", to = "b", capacity = 4294967295 }]
max-restarts = 20000
[flows.twice]
nodes = ["a", "b"]
edges = [{ from = "a", to = "b" }, { from = "a", to = "b" }]
[flows.round]
nodes = ["a", "b"]
edges = [{ from = "a", to = "b" }, { from = "b", to = "a" }]
[flows.none]
nodes = ["a", "b"]
edges = [{ from = "a", to = "b", capacity = 0 }]
"#;
    write(dir.path(), "Torvyn.toml", manifest);
    let run = check(dir.path(), false).failure();
    for expected in [
        "`0ms` is too short: the least is 1ms",
        "Torvyn.toml:6:19]",
        "`memory` of 1.0 KiB (1024 B) is too small: the least is 64.0 KiB (65536 B)",
        r#"the component name "bell\u{7}" holds control characters"#,
        "a queue capacity of 4294967295 is too large: the most is 1048576",
        "Torvyn.toml:14:45]",
        "a max-restarts of 20000 is too large: the most is 10000",
        "edge from `a` to `b` is declared twice",
        "Torvyn.toml:18:36]",
        "the edges of flow `round` form a cycle through `a`, `b`",
        "a queue capacity of 0 is too small: the least is 1",
        // A capacity refused is not refused again through the watermarks made from it.
        "8 problems found",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("watermark"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{7}'), "{}", run.stderr);
}

#[test]
fn nats_connectors_keys_are_checked_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"[project]
name = "n"
[sources.work]
type = "nats"
url = "nats://[::1"
pull-batch = 0
ack-wait = "10ms"
consumer = "a.b"
framing = "ndjson"
[sources.logs]
type = "file"
include = ["*.log"]
stream = "WORK"
[sinks.out]
type = "nats"
subject = "out.*"
path = "x"
[sinks.both]
type = "nats"
subject = "a"
subject-attribute = "b"
stream = "LONG"
[flows.main]
nodes = ["work", "out"]
edges = [{ from = "work", to = "out" }]
"#;
    let long = "s".repeat(256);
    let manifest = manifest.replace("LONG", &long);
    write(dir.path(), "Torvyn.toml", &manifest);
    let run = check(dir.path(), false).failure();
    let named = format!("`{long}` is not a JetStream stream or consumer name");
    for expected in [
        "nats source `work` names no stream",
        "is not a NATS server address",
        "Torvyn.toml:5:7]",
        "`pull-batch` of 0 is too small: the least is 1",
        "`10ms` is too short: the least is 1s",
        "`a.b` is not a JetStream stream or consumer name",
        named.as_str(),
        "`stream` of `logs`: only a `nats` source takes it",
        "`out.*` is not a subject to publish to",
        "`path` of `out`: only a `file` or `stdout` sink takes it",
        "nats sink `both` has both `subject` and `subject-attribute`",
        "`framing` of `work`: only a `file` or `stdin` source takes it",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

#[test]
fn a_default_consumer_name_that_jetstream_refuses_is_found_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"[project]
name = "n"
[sources.work]
type = "nats"
stream = "WORK"
[sources.named]
type = "nats"
stream = "WORK"
consumer = "shared"
[sinks.out]
type = "stdout"
[flows."nightly.v2"]
nodes = ["work", "out"]
edges = [{ from = "work", to = "out" }]
[flows."also.dotted"]
nodes = ["named", "out"]
edges = [{ from = "named", to = "out" }]
[flows.LONG]
nodes = ["work", "out"]
edges = [{ from = "work", to = "out" }]
[flows.fine]
nodes = ["work", "out"]
edges = [{ from = "work", to = "out" }]
"#;
    // `torvyn-` and `-work` around it: 256 bytes, one past JetStream's 255.
    let long = "f".repeat(244);
    write(dir.path(), "Torvyn.toml", &manifest.replace("LONG", &long));
    let run = check(dir.path(), false).failure();
    for expected in [
        "nats source `work` of flow `nightly.v2` would read through the consumer \
         `torvyn-nightly.v2-work`, which is not a JetStream consumer name",
        &format!("nats source `work` of flow `{long}` would read through the consumer"),
        "name it with `consumer = \"NAME\"` in `[sources.work]`",
        "2 problems found",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    // A source that names its consumer, and a flow whose name makes a good one, are fine.
    assert!(!run.stderr.contains("also.dotted"), "{}", run.stderr);
    assert!(!run.stderr.contains("flow `fine`"), "{}", run.stderr);
}

#[test]
fn names_that_torvyn_makes_files_of_are_one_file_name_each() {
    let dir = tempfile::tempdir().unwrap();
    // `a/b` + `c` and `a` + `b/c` would both keep `STATE/a/b/c.json`; `pack` would write
    // `my/project.pipeline`.
    let manifest = r#"[project]
name = "my/project"
[sources.c]
type = "file"
include = ["*.log"]
[sources."b/c"]
type = "file"
include = ["*.log"]
[sources.".."]
type = "file"
include = ["*.log"]
[sources.plain]
type = "file"
include = ["*.log"]
[sinks.out]
type = "stdout"
[flows."a/b"]
nodes = ["c", "out"]
edges = [{ from = "c", to = "out" }]
[flows.a]
nodes = ["b/c", "out"]
edges = [{ from = "b/c", to = "out" }]
[flows.up]
nodes = ["..", "out"]
edges = [{ from = "..", to = "out" }]
[flows."v1.2"]
nodes = ["plain", "out"]
edges = [{ from = "plain", to = "out" }]
[components."a/b"]
path = "a.wasm"
"#;
    write(dir.path(), "Torvyn.toml", manifest);
    write(dir.path(), "a.log", "line\n");
    let run = check(dir.path(), false).failure();
    for expected in [
        "the flow name `a/b` is not one folder or file name, which Torvyn makes of it",
        "the connector name `b/c` is not one folder or file name",
        "the connector name `..` is not one folder or file name",
        "the project name `my/project` is not one folder or file name",
        "the component name `a/b` is not one folder or file name",
        "5 problems found",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    // A flow named with a dot is fine.
    assert!(!run.stderr.contains("v1.2"), "{}", run.stderr);
}

#[test]
fn one_stream_declared_two_ways_is_found_before_any_server_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"[project]
name = "n"
[sinks.queue]
type = "nats"
subject = "work.a"
stream = "WORK"
subjects = ["work.>"]
[sources.work]
type = "nats"
stream = "WORK"
subjects = ["work.a", "work.b"]
retention = "work-queue"
[sinks.results]
type = "nats"
subject = "done.a"
stream = "DONE"
retention = "limits"
[sources.done]
type = "nats"
stream = "DONE"
retention = "limits"
[sources.elsewhere]
type = "nats"
url = "nats://127.0.0.1:4333"
stream = "WORK"
[flows.main]
nodes = ["work", "results"]
edges = [{ from = "work", to = "results" }]
"#;
    write(dir.path(), "Torvyn.toml", manifest);
    let run = check(dir.path(), false).failure();
    for expected in [
        "`work` asks JetStream stream `WORK` for retention `work-queue`, and `queue` would create it with retention `limits`",
        "set the same `retention` on `work` and `queue`",
        "`work` and `queue` declare JetStream stream `WORK` with different `subjects`",
        "Torvyn.toml:12:13]",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    // `DONE` is declared alike twice, and `WORK` on another server is another stream.
    assert!(!run.stderr.contains("`DONE`"), "{}", run.stderr);
    assert!(!run.stderr.contains("`elsewhere`"), "{}", run.stderr);
}
