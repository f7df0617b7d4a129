//! The file connectors through the real CLI: files in and out with checkpoints, and the
//! end-to-end acknowledgements the checkpoints rest on (standard input and output are in
//! `stdio.rs`). Every JSON report is checked to balance (`Run::reports`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Guest, Run, TestProject, count, node};

/// A manifest of `body` after a `[project]` table, naming the test guests by their paths
/// as `{upper}`, `{sink}` and `{aggregator}`.
pub(crate) fn project(body: &str) -> TestProject {
    let body = body
        .replace("{upper}", &Guest::Upper.wasm().display().to_string())
        .replace("{sink}", &Guest::Sink.wasm().display().to_string())
        .replace(
            "{aggregator}",
            &Guest::Aggregator.wasm().display().to_string(),
        );
    TestProject::new().manifest(&format!("[project]\nname = \"connectors\"\n{body}"))
}

/// `logs/*.log` → `upper` → `out/out.txt`, with extra `source` settings.
fn file_to_file(source: &str) -> TestProject {
    project(&file_to_file_body(source))
}

/// The manifest of [`file_to_file`] after its `[project]` table.
fn file_to_file_body(source: &str) -> String {
    format!(
        r#"
[components.upper]
path = "{{upper}}"

[sources.logs]
type = "file"
include = ["logs/*.log"]
{source}

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["logs", "upper", "out"]
edges = [{{ from = "logs", to = "upper" }}, {{ from = "upper", to = "out" }}]
"#
    )
}

/// Line `i` of the test input: CRLF and LF endings, empty lines and bytes that are not
/// UTF-8, in turn.
fn line(i: usize) -> Vec<u8> {
    match i % 4 {
        0 => format!("line {i} ok").into_bytes(),
        1 => Vec::new(),
        2 => [b"bytes \xff\xfe ".as_slice(), i.to_string().as_bytes()].concat(),
        _ => format!("crlf {i}").into_bytes(),
    }
}

/// Writes `lines` lines to `path` (CRLF after every 4th, LF otherwise).
fn write_lines(path: &Path, lines: std::ops::Range<usize>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = Vec::new();
    for i in lines {
        text.extend(line(i));
        text.extend_from_slice(if i % 4 == 3 { b"\r\n" } else { b"\n" });
    }
    std::fs::write(path, text).unwrap();
}

/// What `upper` makes of line `i`, as the file sink writes it.
fn upper(i: usize) -> Vec<u8> {
    let mut out = line(i).to_ascii_uppercase();
    out.push(b'\n');
    out
}

fn out_lines(dir: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read(dir.join("out/out.txt")).unwrap_or_default();
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A child process, killed if the test panics before it ends: a test that fails leaves
/// no host running.
pub(crate) struct Running(Option<std::process::Child>);

impl Running {
    /// Kills `child` if the test panics before it ends.
    pub(crate) fn spawned(child: std::process::Child) -> Running {
        Running(Some(child))
    }

    /// `cargo torvyn run --message-format json` of `flow` in the background, its stdout
    /// piped (or dropped, unless `piped`).
    fn start(flow: &TestProject, piped: bool) -> Running {
        let stdout = if piped { Stdio::piped() } else { Stdio::null() };
        Running(Some(flow.run_command(&[]).stdout(stdout).spawn().unwrap()))
    }

    pub(crate) fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("running")
    }

    pub(crate) fn wait_with_output(mut self) -> std::process::Output {
        self.0.take().expect("running").wait_with_output().unwrap()
    }

    /// Sends SIGTERM (a graceful stop: it drains) and waits for the process to end.
    pub(crate) fn terminate(mut self) -> Run {
        let pid = self.child().id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        Run::from(self.wait_with_output())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (up to a minute) until `out/out.txt` in `dir` holds exactly `text`.
pub(crate) fn wait_for_output(dir: &Path, text: &str) {
    let out = dir.join("out/out.txt");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&out).unwrap_or_default() != text {
        assert!(
            Instant::now() < deadline,
            "waited for {} bytes in {}",
            text.len(),
            out.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connector<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &node(report, name)["connector"]
}

/// The checkpoints of file source `node` of flow `main` in the project at `dir`.
pub(crate) fn checkpoint(dir: &Path, node: &str) -> serde_json::Value {
    let path = dir.join(format!(".torvyn/state/main/{node}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Waits (up to a minute) until the checkpoint of file source `logs` stands at `offset`.
fn wait_for_checkpoint(dir: &Path, offset: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoint(dir, "logs")["files"][0]["offset"] != offset {
        assert!(Instant::now() < deadline, "no checkpoint at {offset}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many lines of `0..` end at or before byte `offset` of the test input.
fn lines_before(offset: u64) -> usize {
    let mut at = 0u64;
    (0..)
        .take_while(|&i| {
            at += line(i).len() as u64 + if i % 4 == 3 { 2 } else { 1 };
            at <= offset
        })
        .count()
}

#[test]
fn a_file_of_100000_lines_arrives_once_in_order_and_byte_exact_and_a_rerun_resumes() {
    let flow = file_to_file("");
    write_lines(&flow.dir().join("logs/a.log"), 0..100_000);
    let run = flow.run(&[]).success();
    let report = run.report();
    assert_eq!(count(&report, "emitted"), 100_000);
    assert_eq!(count(&report, "delivered"), 100_000);
    let expected: Vec<Vec<u8>> = (0..100_000).map(upper).collect();
    assert!(out_lines(flow.dir()) == expected, "the output differs");
    let source = connector(&report, "logs");
    assert_eq!(source["settled"], 100_000);
    // The host copies each line into a buffer once; `upper` reads and writes it; the sink
    // copies it out once: 4 copies, as for components.
    assert_eq!(report["copies"]["copies"], 4 * 100_000);
    let size = std::fs::metadata(flow.dir().join("logs/a.log"))
        .unwrap()
        .len();
    assert_eq!(checkpoint(flow.dir(), "logs")["files"][0]["offset"], size);

    // A rerun starts at the checkpoint: nothing is read again.
    let again = flow.run(&[]).success().report();
    assert_eq!(count(&again, "emitted"), 0);
    assert_eq!(connector(&again, "logs")["resumed-files"], 1);
    assert_eq!(out_lines(flow.dir()).len(), 100_000);
}

#[test]
fn a_manifest_named_without_its_folder_finds_its_files_beside_it() {
    let flow = file_to_file("");
    write_lines(&flow.dir().join("logs/a.log"), 0..10);
    flow.write_manifest();
    // `--manifest-path Torvyn.toml`: the folder is the empty path, which is `.`.
    let output = crate::support::torvyn()
        .current_dir(flow.dir())
        .args(["torvyn", "run", "--manifest-path", "Torvyn.toml"])
        .output()
        .unwrap();
    let run = crate::support::Run::from(output).success();
    assert!(
        run.stderr.contains("10 elements delivered"),
        "{}",
        run.stderr
    );
    assert_eq!(
        out_lines(flow.dir()),
        (0..10).map(upper).collect::<Vec<_>>()
    );
}

#[test]
fn a_host_killed_mid_run_resumes_after_its_last_checkpoint_and_says_what_it_replayed() {
    let flow = file_to_file("");
    let total = 600_000;
    write_lines(&flow.dir().join("logs/a.log"), 0..total);
    let mut running = Running::start(&flow, false);
    let child = running.child();
    let state = flow.dir().join(".torvyn/state/main/logs.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    // Killed once a checkpoint with some progress is stored and some lines are past it.
    let stored = || state.exists() && checkpoint(flow.dir(), "logs")["files"][0]["offset"] != 0;
    while !stored() || out_lines(flow.dir()).len() < 20_000 {
        assert!(Instant::now() < deadline, "no checkpoint stored");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = out_lines(flow.dir()).len();
    let saved = checkpoint(flow.dir(), "logs")["files"][0].clone();
    let resumed = lines_before(saved["offset"].as_u64().unwrap());
    let read = lines_before(saved["read"].as_u64().unwrap());
    assert!(before < total, "killed after the end");
    assert!(resumed <= before, "a checkpoint past what was written");

    let report = flow.run(&[]).success().report();
    // Every line is there at least once: the first run's, then the rerun's from the
    // checkpoint on. Only lines after the checkpoint are there twice.
    let expected: Vec<Vec<u8>> = (0..before).chain(resumed..total).map(upper).collect();
    assert!(out_lines(flow.dir()) == expected, "the output differs");
    assert_eq!(count(&report, "emitted") as usize, total - resumed);
    let source = connector(&report, "logs");
    assert_eq!(source["resumed-files"], 1);
    assert_eq!(
        source["replayed"].as_u64().unwrap() as usize,
        read - resumed
    );
}

#[test]
fn a_file_replaced_in_place_by_another_of_the_same_size_is_read_from_its_start() {
    let flow = file_to_file("");
    let log = flow.dir().join("logs/a.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "first\nsecond\n").unwrap();
    flow.run(&[]).success();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&log).unwrap());
    // The same inode and the same size, other bytes.
    std::fs::write(&log, "third\nfourth\n").unwrap();
    assert_eq!(
        inode,
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&log).unwrap())
    );
    let report = flow.run(&[]).success().report();
    assert_eq!(count(&report, "delivered"), 2);
    assert_eq!(connector(&report, "logs")["resumed-files"], 0);
    let text = std::fs::read_to_string(flow.dir().join("out/out.txt")).unwrap();
    assert_eq!(text, "FIRST\nSECOND\nTHIRD\nFOURTH\n");
}

#[test]
fn a_file_written_again_in_place_with_the_same_start_is_read_from_its_start() {
    let flow = file_to_file("");
    let log = flow.dir().join("logs/a.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    // A header longer than the fingerprint's 1 KiB: both files start alike.
    let header = format!("{}\n", "h".repeat(1100));
    let lines =
        |word: &str, n: usize| -> String { (0..n).map(|i| format!("{word} {i}\n")).collect() };
    std::fs::write(&log, format!("{header}{}", lines("old", 50))).unwrap();
    flow.run(&[]).success();
    // Written again in place, longer than what was read: only the bytes before the
    // checkpoint's offset tell it from an append.
    std::fs::write(&log, format!("{header}{}", lines("new", 100))).unwrap();
    let report = flow.run(&[]).success().report();
    assert_eq!(connector(&report, "logs")["resumed-files"], 0);
    assert_eq!(count(&report, "delivered"), 101);
    let text = std::fs::read_to_string(flow.dir().join("out/out.txt")).unwrap();
    let expected = format!("{header}{}", lines("old", 50)).to_uppercase()
        + &format!("{header}{}", lines("new", 100)).to_uppercase();
    assert_eq!(text, expected);
    // A file only appended to keeps its checkpoint: the next run reads the appends.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"appended\n").unwrap();
    let report = flow.run(&[]).success().report();
    assert_eq!(connector(&report, "logs")["resumed-files"], 1);
    assert_eq!(count(&report, "delivered"), 1);
}

#[test]
fn follow_reads_appends_a_rotated_file_and_a_truncated_file() {
    let flow = file_to_file("follow = true");
    let log = flow.dir().join("logs/a.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "one\ntwo\n").unwrap();
    let child = Running::start(&flow, true);
    let wait_for = |text: &str| wait_for_output(flow.dir(), text);
    wait_for("ONE\nTWO\n");
    let append = |text: &str| {
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    append("three\n");
    wait_for("ONE\nTWO\nTHREE\n");
    // Rotated by rename, to a name the glob matches too: the rest of the old file, once,
    // then the new one from its start.
    append("four\n");
    std::fs::rename(&log, log.with_file_name("a-1.log")).unwrap();
    std::fs::write(&log, "five\n").unwrap();
    wait_for("ONE\nTWO\nTHREE\nFOUR\nFIVE\n");
    // Truncated, then written again: read from its start.
    std::fs::write(&log, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&log, "six\n").unwrap();
    wait_for("ONE\nTWO\nTHREE\nFOUR\nFIVE\nSIX\n");
    // Written again in place, longer than what was read: read from its start.
    std::fs::write(&log, "seventh, longer\n").unwrap();
    wait_for("ONE\nTWO\nTHREE\nFOUR\nFIVE\nSIX\nSEVENTH, LONGER\n");
    // A second run of the same source at the same time is refused, before reading.
    let second = flow.run(&[]).failure();
    assert!(second.stderr.contains("is locked"), "{}", second.stderr);
    let run = child.terminate().success();
    let report = run.report();
    assert_eq!(report["outcome"], "cancelled");
    assert_eq!(count(&report, "delivered"), 7);
}

#[test]
fn a_followed_file_written_over_in_place_with_the_same_start_is_read_from_its_start() {
    let flow = file_to_file("follow = true");
    let log = flow.dir().join("logs/a.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let header = format!("{}\n", "h".repeat(1100));
    let lines =
        |word: &str, n: usize| -> String { (0..n).map(|i| format!("{word} {i}\n")).collect() };
    let old = format!("{header}{}", lines("old", 5));
    std::fs::write(&log, &old).unwrap();
    let child = Running::start(&flow, true);
    wait_for_output(flow.dir(), &old.to_uppercase());
    // Once its checkpoint is stored past the header, the bytes before it are what a look
    // compares the file with.
    wait_for_checkpoint(flow.dir(), old.len());
    // Written over from its start, never shorter: the same first KiB, a longer file.
    let new = format!("{header}{}", lines("new", 10));
    let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, new.as_bytes(), 0).unwrap();
    let both = old.to_uppercase() + &new.to_uppercase();
    wait_for_output(flow.dir(), &both);
    // Appended to once its new checkpoint is stored: read on, not from its start again.
    wait_for_checkpoint(flow.dir(), new.len());
    let mut appending = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    appending.write_all(b"appended\n").unwrap();
    wait_for_output(flow.dir(), &(both + "APPENDED\n"));
    let report = child.terminate().success().report();
    assert_eq!(count(&report, "delivered"), 18);
}

#[test]
fn a_sinks_file_deleted_under_it_is_made_again_and_loses_nothing() {
    let flow = file_to_file("follow = true");
    let log = flow.dir().join("logs/a.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "one\ntwo\n").unwrap();
    let child = Running::start(&flow, true);
    wait_for_output(flow.dir(), "ONE\nTWO\n");
    // Its folder removed, file and all: what comes next would go into a file no one can
    // open, each line counted delivered and its checkpoint moved over it.
    std::fs::remove_dir_all(flow.dir().join("out")).unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"three\n").unwrap();
    wait_for_output(flow.dir(), "THREE\n");
    // The file alone.
    std::fs::remove_file(flow.dir().join("out/out.txt")).unwrap();
    file.write_all(b"four\n").unwrap();
    wait_for_output(flow.dir(), "FOUR\n");
    let report = child.terminate().success().report();
    assert_eq!(count(&report, "delivered"), 4);
    assert_eq!(connector(&report, "out")["files-made-again"], 2);
}

#[test]
fn an_over_long_line_is_skipped_truncated_or_refused_as_declared() {
    let write = |flow: &TestProject| {
        let log = flow.dir().join("logs/a.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let long = "x".repeat(100);
        std::fs::write(&log, format!("short\n{long}\nlast\n")).unwrap();
    };
    let skip = file_to_file("max-element-size = \"16B\"\noversize = \"skip\"");
    write(&skip);
    let report = skip.run(&[]).success().report();
    assert_eq!(connector(&report, "logs")["oversize-skipped"], 1);
    assert_eq!(count(&report, "delivered"), 2);
    assert_eq!(
        std::fs::read_to_string(skip.dir().join("out/out.txt")).unwrap(),
        "SHORT\nLAST\n"
    );

    let truncate = file_to_file("max-element-size = \"16B\"\noversize = \"truncate\"");
    write(&truncate);
    let report = truncate.run(&[]).success().report();
    assert_eq!(connector(&report, "logs")["oversize-truncated"], 1);
    let text = std::fs::read_to_string(truncate.dir().join("out/out.txt")).unwrap();
    assert_eq!(text, format!("SHORT\n{}\nLAST\n", "X".repeat(16)));

    let fail = file_to_file("max-element-size = \"16B\"");
    write(&fail);
    let run = fail.run(&[]).failure();
    assert!(
        run.stderr
            .contains("logs/a.log`: line 2 is 100 bytes, more than max-element-size (16 bytes)"),
        "{}",
        run.stderr
    );
    // The line before it settled; the flow failed on it, so a rerun starts at it.
    assert_eq!(checkpoint(fail.dir(), "logs")["files"][0]["offset"], 6);
}

#[test]
fn a_fanned_out_element_is_acknowledged_only_once_the_slow_branch_has_it_too() {
    let flow = project(
        r#"
[sources.logs]
type = "file"
include = ["logs/*.log"]

[components.slow]
path = "{sink}"
config = '{"pause_every": 1}'

[sinks.fast]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["logs", "slow", "fast"]
edges = [{ from = "logs", to = "fast" }, { from = "logs", to = "slow", capacity = 8 }]
sink-pause = "20ms"
"#,
    );
    write_lines(&flow.dir().join("logs/a.log"), 0..100_000);
    let mut running = Running::start(&flow, true);
    let child = running.child();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let state = flow.dir().join(".torvyn/state/main/logs.json");
    let mut slow = 0usize;
    let mut text = String::new();
    // Read what the slow sink prints until a checkpoint with some progress is stored.
    while !state.exists() || checkpoint(flow.dir(), "logs")["files"][0]["offset"] == 0 {
        text.clear();
        assert!(
            stdout.read_line(&mut text).unwrap() > 0,
            "the run ended early"
        );
        slow += text.starts_with("seq=") as usize;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for rest in stdout.lines() {
        slow += rest.unwrap().starts_with("seq=") as usize;
    }
    let acknowledged = lines_before(
        checkpoint(flow.dir(), "logs")["files"][0]["offset"]
            .as_u64()
            .unwrap(),
    );
    let fast = out_lines(flow.dir()).len();
    assert!(acknowledged > 0);
    assert!(
        acknowledged <= slow,
        "{acknowledged} acknowledged, the slow sink had {slow}"
    );
    assert!(
        fast > slow,
        "the fast sink ({fast}) runs ahead of the slow one ({slow})"
    );
}

#[test]
fn connector_tables_are_checked_at_their_lines() {
    let manifest = |extra: &str| {
        project(&format!(
            r#"
[sources.logs]
type = "file"
include = ["nothing/*.log"]
{extra}

[sources.input]
type = "stdin"
follow = true

[sinks.out]
type = "file"

[flows.main]
nodes = ["logs", "input", "out"]
edges = [{{ from = "logs", to = "out" }}, {{ from = "input", to = "out" }}]
"#
        ))
    };
    let run = manifest("follow = true\nframing = \"whole\"")
        .command(&["check"])
        .failure();
    assert!(
        run.stderr.contains("a followed file never finishes"),
        "{}",
        run.stderr
    );
    let run = manifest("colour = \"red\"").command(&["check"]).failure();
    assert!(
        run.stderr.contains("unknown field `colour`"),
        "{}",
        run.stderr
    );
    let run = manifest("").command(&["check"]).failure();
    assert!(
        run.stderr
            .contains("`follow` of `input`: only a `file` source takes it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("file sink `out` names no file"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Torvyn.toml:"), "{}", run.stderr);
    let flow = project(
        r#"
[sources.logs]
type = "file"
include = ["nothing/*.log"]

[sinks.out]
type = "stdout"

[flows.main]
nodes = ["logs", "out"]
edges = [{ from = "logs", to = "out" }]
"#,
    );
    for command in ["check", "link"] {
        let run = flow.command(&[command]).failure();
        assert!(
            run.stderr
                .contains("file source `logs`: no file matches `nothing/*.log`"),
            "{command}: {}",
            run.stderr
        );
    }
    // What the globs match that cannot be read as a file is named, and what it is.
    let nothing = flow.dir().join("nothing");
    std::fs::create_dir_all(nothing.join("folder.log")).unwrap();
    std::os::unix::fs::symlink(nothing.join("gone"), nothing.join("link.log")).unwrap();
    let run = flow.command(&["check"]).failure();
    assert!(
        run.stderr.contains(
            "no file matches `nothing/*.log` (of what they match, `nothing/folder.log` is a folder, `nothing/link.log` is a symbolic link to nothing)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn cargo_torvyn_test_feeds_and_records_connectors_as_it_does_components() {
    let tests =
        "\n[tests.shout]\nflow = \"main\"\ninput = \"in.jsonl\"\nexpected = \"expected.jsonl\"\n";
    let flow = project(&(file_to_file_body("") + tests));
    std::fs::write(flow.dir().join("in.jsonl"), "\"one\"\n\"two\"\n").unwrap();
    let expected =
        "{\"payload\": \"ONE\", \"sink\": \"out\"}\n{\"payload\": \"TWO\", \"sink\": \"out\"}\n";
    std::fs::write(flow.dir().join("expected.jsonl"), expected).unwrap();
    // Fixtures stand in for the connectors: the log is not read, nothing is written.
    write_lines(&flow.dir().join("logs/a.log"), 0..10);
    let run = flow.command(&["test"]).success();
    assert!(run.stderr.contains("1 passed"), "{}", run.stderr);
    assert!(!flow.dir().join("out").exists());
}

#[test]
fn an_aggregators_inputs_are_acknowledged_once_its_output_is_written() {
    let flow = project(
        r#"
[sources.logs]
type = "file"
include = ["logs/*.log"]
follow = true

[components.sum]
path = "{aggregator}"
config = '{"every": 4}'

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["logs", "sum", "out"]
edges = [{ from = "logs", to = "sum" }, { from = "sum", to = "out" }]
"#,
    );
    let log = flow.dir().join("logs/a.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    // Lines of 2 bytes: the 4 absorbed by the first output end at byte 8.
    std::fs::write(&log, "a\nb\nc\nd\ne\n").unwrap();
    let running = Running::start(&flow, true);
    wait_for_output(flow.dir(), "count=4 bytes=4\n");
    let out = flow.dir().join("out/out.txt");
    let deadline = Instant::now() + Duration::from_secs(60);
    // The fifth line is held by the aggregator: the checkpoint stops before it.
    let offset = || checkpoint(flow.dir(), "logs")["files"][0]["offset"].clone();
    while !flow.dir().join(".torvyn/state/main/logs.json").exists() || offset() != 8 {
        assert!(Instant::now() < deadline, "checkpoint at {}", offset());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        offset(),
        8,
        "a line held by the aggregator was acknowledged"
    );
    // Stopped, the aggregator flushes: the fifth line settles with its output.
    let report = running.terminate().success().report();
    assert_eq!(count(&report, "produced"), 2);
    assert_eq!(offset(), 10);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "count=4 bytes=4\ncount=1 bytes=1\n"
    );
}

#[test]
fn a_line_that_is_not_json_goes_through_the_error_policy_and_the_checkpoint_passes_it() {
    let flow = project(
        r#"
[sources.events]
type = "file"
include = ["events.ndjson"]
framing = "ndjson"

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["events", "out"]
edges = [{ from = "events", to = "out" }]

[flows.main.on-error]
events = "skip"
"#,
    );
    let input = "{\"a\":1}\nnot json\n[2]\n";
    std::fs::write(flow.dir().join("events.ndjson"), input).unwrap();
    let report = flow.run(&[]).success().report();
    assert_eq!(count(&report, "delivered"), 2);
    let source = node(&report, "events");
    assert_eq!(source["errors_by_kind"]["invalid_input"], 1, "{source}");
    assert_eq!(source["connector"]["settled"], 3);
    assert_eq!(source["connector"]["failed"], 1);
    assert_eq!(
        std::fs::read_to_string(flow.dir().join("out/out.txt")).unwrap(),
        "{\"a\":1}\n[2]\n"
    );
    // Skipped under the node's policy, the bad line is not read again.
    assert_eq!(
        checkpoint(flow.dir(), "events")["files"][0]["offset"],
        input.len()
    );
}

#[test]
fn a_sink_that_cannot_write_goes_through_its_error_policy() {
    let manifest = |policy: &str| {
        project(&format!(
            r#"
[sources.logs]
type = "file"
include = ["a.log"]

[sinks.full]
type = "file"
path = "/dev/full"

[flows.main]
nodes = ["logs", "full"]
edges = [{{ from = "logs", to = "full" }}]
{policy}
"#
        ))
    };
    let failing = manifest("");
    std::fs::write(failing.dir().join("a.log"), "one\ntwo\n").unwrap();
    let run = failing.run(&[]).failure();
    assert!(
        run.stderr
            .contains("cannot write to `/dev/full`: No space left on device"),
        "{}",
        run.stderr
    );
    // Nothing was written: a rerun reads it all again.
    let report = run.report();
    assert_eq!(count(&report, "delivered"), 0);
    let skipping = manifest("\n[flows.main.on-error]\nfull = \"skip\"");
    std::fs::write(skipping.dir().join("a.log"), "one\ntwo\n").unwrap();
    let report = skipping.run(&[]).success().report();
    assert_eq!(count(&report, "failed"), 2);
    assert_eq!(connector(&report, "logs")["failed"], 2);
}
