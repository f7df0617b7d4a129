//! Standard input and output connectors through the real CLI: a flow as a Unix filter, a
//! reader that stops reading (`| head`), one reader of standard input per run, and the
//! examples that use them.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use crate::connectors::project;
use crate::support::{Run, torvyn, workspace};

/// `input` piped into `cargo torvyn run` of a stdin → upper → stdout flow; `lines` of its
/// output are read, then its output is closed.
fn through_stdout(input: &[u8], lines: usize) -> (Vec<String>, Run) {
    let flow = project(
        r#"
[components.upper]
path = "{upper}"

[sources.input]
type = "stdin"

[sinks.output]
type = "stdout"

[flows.main]
nodes = ["input", "upper", "output"]
edges = [{ from = "input", to = "upper" }, { from = "upper", to = "output" }]
"#,
    );
    let manifest = flow.write_manifest();
    let mut child = torvyn()
        .args(["torvyn", "run", "--manifest-path"])
        .arg(&manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The host may stop reading once its output closes.
        let _ = stdin.write_all(&input);
    });
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let read: Vec<String> = stdout.lines().take(lines).map(Result::unwrap).collect();
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (read, Run::from(output))
}

#[test]
fn standard_input_to_standard_output_is_a_unix_filter() {
    let (lines, run) = through_stdout(b"a\nb\r\n\nlast", usize::MAX);
    let run = run.success();
    assert_eq!(lines, ["A", "B", "", "LAST"]);
    assert!(
        run.stderr.contains("Accounted 4 emitted = 4 delivered"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_closed_standard_output_ends_the_flow_cleanly_and_counts_what_was_not_written() {
    let input: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let (lines, run) = through_stdout(&input, 3);
    assert_eq!(lines, ["0", "1", "2"]);
    let run = run.success();
    assert!(
        run.stderr.contains("stopped: its output was closed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("not written"), "{}", run.stderr);
    // `Accounted N emitted = D delivered + A abandoned`: every element is counted.
    let accounted = (run.stderr.lines())
        .find_map(|line| line.trim().strip_prefix("Accounted "))
        .expect("an accounting line");
    let numbers: Vec<u64> = (accounted.split(' '))
        .filter_map(|word| word.parse().ok())
        .collect();
    assert!(accounted.ends_with(" abandoned"), "{accounted}");
    assert_eq!(numbers[0], numbers[1] + numbers[2], "{accounted}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn standard_input_has_one_reader() {
    let run = project(
        r#"
[sources.a]
type = "stdin"

[sources.b]
type = "stdin"

[sinks.out]
type = "stdout"

[flows.one]
nodes = ["a", "out"]
edges = [{ from = "a", to = "out" }]

[flows.two]
nodes = ["a", "b", "out"]
edges = [{ from = "a", to = "out" }, { from = "b", to = "out" }]
"#,
    )
    .command(&["check"])
    .failure();
    assert!(
        run.stderr.contains("`b` is a second `stdin` source"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("`stdin` source `a` is a node of more than one flow"),
        "{}",
        run.stderr
    );
}

/// Every line of `text` is a JSON object whose `line` shows no address of the example's
/// log: each was masked; its `number` is its line's number in the log.
fn assert_redacted(text: &str, lines: usize) {
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), lines);
    for (i, object) in objects.iter().enumerate() {
        assert_eq!(object["number"], i + 1, "{object}");
        let line = object["line"].as_str().unwrap();
        for address in [
            "@example.",
            "192.0.2.",
            "198.51.100.",
            "203.0.113.",
            "2001:db8",
        ] {
            assert!(!line.contains(address), "{address} in {line}");
        }
    }
    let all = |mark: &str| {
        objects
            .iter()
            .filter(|o| o["line"].as_str().unwrap().contains(mark))
            .count()
    };
    assert!(all("[ipv4] - ") > 0 && all("[ipv6] - ") > 0 && all("[email]") > 0);
}

#[test]
fn the_log_redact_example_masks_every_address_and_resumes_where_it_stopped() {
    let example = workspace().join("examples/log-redact");
    let dir = tempfile::tempdir().unwrap();
    // Its files go to a folder of the test's: the crate is named by its full path.
    let crate_path = example.join("components/redact").display().to_string();
    let manifest = std::fs::read_to_string(example.join("Torvyn.toml"))
        .unwrap()
        .replace("\"components/redact\"", &format!("{crate_path:?}"));
    std::fs::write(dir.path().join("Torvyn.toml"), manifest).unwrap();
    std::fs::copy(example.join("access.log"), dir.path().join("access.log")).unwrap();
    let run = || {
        let output = torvyn()
            .args(["torvyn", "run", "--manifest-path"])
            .arg(dir.path())
            .output()
            .unwrap();
        Run::from(output).success()
    };
    let first = run();
    assert!(
        first
            .stderr
            .contains("Accounted 3000 emitted = 3000 delivered"),
        "{}",
        first.stderr
    );
    let out = dir.path().join("out/redacted.ndjson");
    assert_redacted(&std::fs::read_to_string(&out).unwrap(), 3000);
    // Appended lines are all a rerun reads.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("access.log"))
        .unwrap();
    writeln!(log, "198.51.100.7 - ada@example.org [03/Dec/2026:11:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"curl/8.5.0\"").unwrap();
    let second = run();
    assert!(
        second.stderr.contains("Accounted 1 emitted = 1 delivered"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("1 file resumed from a checkpoint"),
        "{}",
        second.stderr
    );
    let text = std::fs::read_to_string(&out).unwrap();
    // Numbered on from the checkpoint: the log's 3001st line.
    assert!(text.ends_with("{\"line\":\"[ipv4] - [email] [03/Dec/2026:11:00:00 +0000] \\\"GET / HTTP/1.1\\\" 200 1 \\\"-\\\" \\\"curl/8.5.0\\\"\",\"number\":3001}\n"), "{text}");
}

#[test]
fn the_log_filter_example_is_a_unix_filter() {
    let log = std::fs::File::open(workspace().join("examples/log-redact/access.log")).unwrap();
    let output = torvyn()
        .args(["torvyn", "run", "--manifest-path"])
        .arg(workspace().join("examples/log-filter"))
        .stdin(log)
        .output()
        .unwrap();
    let run = Run::from(output).success();
    assert_redacted(&run.stdout, 3000);
}
