//! Element attributes (`torvyn:attributes@0.1.0`) through the real CLI: what the
//! connectors attach, what components read, set and remove, what stages built for
//! `torvyn:streaming@0.1.0` alone hand on, and what `cargo torvyn test` feeds and compares.

use std::io::Write;
use std::process::Stdio;

use crate::connectors::checkpoint;
use crate::support::{Guest, TestProject, count, torvyn};

/// A manifest of `body` after a `[project]` table, naming test guests as `{attributes}`,
/// `{batch-attributes}`, `{raw-upper}`, `{source}`, `{batch-source}` and `{aggregator}`.
fn project(body: &str) -> TestProject {
    let mut body = body.to_owned();
    for (name, guest) in [
        ("{attributes}", Guest::Attributes),
        ("{batch-attributes}", Guest::BatchAttributes),
        ("{raw-upper}", Guest::RawUpper),
        ("{source}", Guest::Source),
        ("{batch-source}", Guest::BatchSource),
        ("{aggregator}", Guest::Aggregator),
    ] {
        body = body.replace(name, &guest.wasm().display().to_string());
    }
    TestProject::new().manifest(&format!("[project]\nname = \"attributes\"\n{body}"))
}

/// `logs/*.log` → a 0.1.0 processor → `show` (one element per call) → `all` (a batch
/// processor) → `out/out.txt`; `show` writes `path`, `line` and `offset` in front of each
/// line, sets `stage` and removes `offset`; `all` writes every attribute it gets.
fn through_stages(source: &str) -> TestProject {
    project(&format!(
        r#"
[components.upper]
path = "{{raw-upper}}"

[components.show]
path = "{{attributes}}"
config = '{{"show": ["path", "line", "offset"], "set": {{"stage": "tagged"}}, "remove": ["offset"]}}'

[components.all]
path = "{{batch-attributes}}"
config = '{{"show_all": true}}'

[sources.logs]
type = "file"
include = ["logs/*.log"]
{source}

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["logs", "upper", "show", "all", "out"]
edges = [
  {{ from = "logs", to = "upper" }},
  {{ from = "upper", to = "show" }},
  {{ from = "show", to = "all" }},
  {{ from = "all", to = "out" }},
]
"#
    ))
}

fn out_text(flow: &TestProject) -> String {
    std::fs::read_to_string(flow.dir().join("out/out.txt")).unwrap_or_default()
}

#[test]
fn a_file_sources_path_line_and_offset_reach_components_past_one_built_for_0_1_0() {
    let flow = through_stages("");
    let logs = flow.dir().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("a.log"), "one\r\n\ntwo\n").unwrap();
    std::fs::write(logs.join("b.log"), "three").unwrap();
    let report = flow.run(&[]).success().report();
    assert_eq!(count(&report, "delivered"), 4);
    let (a, b) = (logs.join("a.log"), logs.join("b.log"));
    let (a, b) = (a.display(), b.display());
    // Each file's version is the one its checkpoint keeps.
    let checkpoints = checkpoint(flow.dir(), "logs");
    let version = |i: usize| {
        checkpoints["files"][i]["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (va, vb) = (version(0), version(1));
    assert_ne!(va, vb);
    let expected = [
        format!("path={a};line=1;file-version={va};stage=tagged;|path={a} line=1 offset=0 ONE\n"),
        format!("path={a};line=2;file-version={va};stage=tagged;|path={a} line=2 offset=5 \n"),
        format!("path={a};line=3;file-version={va};stage=tagged;|path={a} line=3 offset=6 TWO\n"),
        format!("path={b};line=1;file-version={vb};stage=tagged;|path={b} line=1 offset=0 THREE\n"),
    ];
    assert_eq!(out_text(&flow), expected.concat());
}

#[test]
fn line_numbers_go_on_from_the_checkpoint_when_a_run_resumes() {
    let flow = through_stages("");
    let log = flow.dir().join("logs/a.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "a\nbb\nccc\ndddd\n").unwrap();
    flow.run(&["--limit", "2"]).success();
    flow.run(&[]).success();
    let shown: Vec<String> = (out_text(&flow).lines())
        .map(|line| {
            line.split('|')
                .nth(1)
                .unwrap()
                .replace(&log.display().to_string(), "P")
        })
        .collect();
    assert_eq!(
        shown,
        [
            "path=P line=1 offset=0 A",
            "path=P line=2 offset=2 BB",
            "path=P line=3 offset=5 CCC",
            "path=P line=4 offset=9 DDDD",
        ]
    );
}

#[test]
fn standard_input_numbers_its_lines_and_a_source_and_an_aggregator_set_their_own() {
    let stdin = project(
        r#"
[components.show]
path = "{attributes}"
config = '{"show_all": true}'

[sources.input]
type = "stdin"

[sinks.output]
type = "stdout"

[flows.main]
nodes = ["input", "show", "output"]
edges = [{ from = "input", to = "show" }, { from = "show", to = "output" }]
"#,
    );
    let mut child = torvyn()
        .args(["torvyn", "run", "--manifest-path"])
        .arg(stdin.write_manifest())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"x\r\nyy\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text, "line=1;offset=0;|x\nline=2;offset=3;|yy\n");

    // A source's outputs carry what it set, one by one and in batches; an aggregator's
    // carry what it set, and nothing of what it absorbed.
    for source in ["{source}", "{batch-source}"] {
        let flow = project(&format!(
            r#"
[components.src]
path = "{source}"
config = '{{"count": 7, "tag": true}}'

[components.sum]
path = "{{aggregator}}"
config = '{{"every": 3, "tag": true}}'

[components.show]
path = "{{attributes}}"
config = '{{"show": ["n", "count"]}}'

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["src", "sum", "show", "out"]
edges = [{{ from = "src", to = "sum" }}, {{ from = "sum", to = "show" }}, {{ from = "show", to = "out" }}]
"#
        ));
        flow.run(&[]).success();
        let expected = "n=- count=3 count=3 bytes=18\nn=- count=3 count=3 bytes=18\n\
                        n=- count=1 count=1 bytes=6\n";
        assert_eq!(out_text(&flow), expected, "{source}");
    }
}

#[test]
fn a_component_that_sets_more_attributes_than_the_bound_fails_its_call_and_nothing_more() {
    let flow = project(
        r#"
[components.src]
path = "{source}"
config = '{"count": 3}'

[components.flood]
path = "{attributes}"
config = '{"many": 65}'

[components.fits]
path = "{attributes}"
config = '{"many": 64, "show": ["k63"]}'

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["src", "flood", "fits", "out"]
edges = [{ from = "src", to = "fits" }, { from = "src", to = "flood" }, { from = "flood", to = "out" }, { from = "fits", to = "out" }]
on-error = { flood = "skip" }
"#,
    );
    let run = flow.run(&[]).success();
    let report = run.report();
    assert_eq!(count(&report, "failed"), 3, "{}", run.stderr);
    assert_eq!(count(&report, "delivered"), 3);
    assert!(
        run.stdout
            .contains("an element carries at most 64 attributes"),
        "{}",
        run.stdout
    );
    assert_eq!(
        out_text(&flow),
        "k63=- item 0\nk63=- item 1\nk63=- item 2\n"
    );
}

#[test]
fn a_source_output_whose_attributes_are_refused_fails_alone_in_a_batch_too() {
    for source in ["{source}", "{batch-source}"] {
        let flow = project(&format!(
            r#"
[components.src]
path = "{source}"
config = '{{"count": 7, "flood_at": 2}}'

[sinks.out]
type = "file"
path = "out/out.txt"

[flows.main]
nodes = ["src", "out"]
edges = [{{ from = "src", to = "out" }}]
on-error = {{ src = "skip" }}
"#
        ));
        let run = flow.run(&[]).success();
        let report = run.report();
        // A failed pull is not an element: the source's error is counted, and the rest
        // are delivered.
        assert_eq!(count(&report, "delivered"), 6, "{source}: {}", run.stderr);
        assert!(
            run.stderr.contains("cannot write attribute `k64`"),
            "{source}: {}",
            run.stderr
        );
        let expected = "item 0\nitem 1\nitem 3\nitem 4\nitem 5\nitem 6\n";
        assert_eq!(out_text(&flow), expected, "{source}");
    }
}

#[test]
fn cargo_torvyn_test_feeds_attributes_and_compares_them() {
    let flow = project(
        r#"
[components.show]
path = "{attributes}"
config = '{"show": ["path", "line"], "set": {"stage": "t"}}'

[tests.show]
component = "show"
input = "in.jsonl"
expected = "expected.jsonl"
"#,
    );
    let input = r#"{"payload": "x", "attributes": {"path": "/a.log", "line": "3"}}"#;
    std::fs::write(flow.dir().join("in.jsonl"), format!("{input}\n\"y\"\n")).unwrap();
    let expected = concat!(
        r#"{"payload": "path=/a.log line=3 x", "attributes": {"stage": "t", "line": "3", "path": "/a.log"}}"#,
        "\n",
        r#"{"payload": "path=- line=- y", "attributes": {"stage": "t"}}"#,
        "\n"
    );
    std::fs::write(flow.dir().join("expected.jsonl"), expected).unwrap();
    let run = flow.command(&["test"]).success();
    assert!(run.stderr.contains("1 passed"), "{}", run.stderr);

    // An expected element that lists no attributes does not check them.
    let unchecked = "\"path=/a.log line=3 x\"\n\"path=- line=- y\"\n";
    std::fs::write(flow.dir().join("expected.jsonl"), unchecked).unwrap();
    flow.command(&["test"]).success();

    // A fixture's attributes keep to the bounds components' writes keep to.
    let empty_key = r#"{"payload": "x", "attributes": {"": "v"}}"#;
    std::fs::write(flow.dir().join("in.jsonl"), format!("\"y\"\n{empty_key}\n")).unwrap();
    let run = flow.command(&["test"]).failure();
    assert!(
        run.stderr.contains("in.jsonl:2: `attributes`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("no key is empty"), "{}", run.stderr);
    std::fs::write(flow.dir().join("in.jsonl"), format!("{input}\n\"y\"\n")).unwrap();

    // An attribute that differs is a failure, shown in the diff.
    let wrong = expected.replace(r#""stage": "t""#, r#""stage": "u""#);
    std::fs::write(flow.dir().join("expected.jsonl"), wrong).unwrap();
    let run = flow.command(&["test"]).failure();
    assert!(
        run.stderr
            .contains(r#"+{"attributes":{"line":"3","path":"/a.log","stage":"t"}"#),
        "{}",
        run.stderr
    );
}

#[test]
fn a_component_that_never_touches_attributes_does_not_import_them() {
    // So it also runs on a host that predates `torvyn:attributes`.
    let plain = Guest::Upper.inspected();
    assert!(plain.contains("torvyn:streaming/types@0.1.0"), "{plain}");
    assert!(!plain.contains("torvyn:attributes"), "{plain}");
    let source = Guest::Source.inspected();
    assert!(
        source.contains("torvyn:attributes/element-attributes@0.1.0"),
        "{source}"
    );
}
