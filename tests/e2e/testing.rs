//! `cargo torvyn test`: components and flows fed fixture elements, their output compared
//! with what is expected, a diff on mismatch, and `--bless`.

use crate::support::{Guest, Run, TestProject};

/// A project with `test-upper` (`up`) in a flow `main` from `test-source` through a
/// filter of even sequence numbers into `test-sink`, and `tests` appended to its manifest.
fn project(tests: &str) -> TestProject {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 4}"#)
        .component("up", Guest::Upper, "")
        .component("even", Guest::Filter, "")
        .component("out", Guest::Sink, "");
    let manifest = project.manifest_text() + tests;
    project.manifest(&manifest)
}

fn write(project: &TestProject, file: &str, text: &str) {
    std::fs::write(project.dir().join(file), text).unwrap();
}

const UPPER: &str =
    "\n[tests.upper]\ncomponent = \"up\"\ninput = \"in.jsonl\"\nexpected = \"out.jsonl\"\n";

#[test]
fn a_component_is_fed_its_input_and_its_output_compared() {
    let project = project(UPPER);
    write(
        &project,
        "in.jsonl",
        "\"abc\"\n{\"payload\": \"x y\", \"content-type\": \"text/x\"}\n",
    );
    write(
        &project,
        "out.jsonl",
        "{\"payload\": \"ABC\"}\n{\"content-type\": \"text/x\", \"payload\": \"X Y\"}\n",
    );
    let run = project.command(&["test"]).success();
    assert!(run.stderr.contains("ok test `upper`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("Tested 1 passed, 0 failed"),
        "{}",
        run.stderr
    );

    // A wrong expectation fails with a diff.
    write(
        &project,
        "out.jsonl",
        "\"ABD\"\n{\"content-type\": \"text/x\", \"payload\": \"X Y\"}\n",
    );
    let run = project.command(&["test"]).failure();
    assert!(run.stderr.contains("FAILED test `upper`"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("-{\"content-type\":\"text/plain\",\"payload\":\"ABD\"}")
            && run
                .stderr
                .contains("+{\"content-type\":\"text/plain\",\"payload\":\"ABC\"}"),
        "{}",
        run.stderr
    );

    // --bless writes what came out, and says so; the test then passes.
    let run = project.command(&["test", "--bless"]).success();
    assert!(
        run.stderr.contains("Blessed test `upper`: 2 elements into"),
        "{}",
        run.stderr
    );
    let blessed = std::fs::read_to_string(project.dir().join("out.jsonl")).unwrap();
    assert_eq!(
        blessed,
        "{\"content-type\":\"text/plain\",\"payload\":\"ABC\"}\n{\"content-type\":\"text/x\",\"payload\":\"X Y\"}\n"
    );
    project.command(&["test", "upper"]).success();
}

#[test]
fn a_flow_has_its_source_fed_and_its_sinks_recorded() {
    let tests =
        "\n[tests.whole]\nflow = \"main\"\ninput = \"in.jsonl\"\nexpected = \"out.jsonl\"\n";
    let project = project(tests);
    // The flow runs src -> up -> even -> out; the input replaces `src`.
    write(&project, "in.jsonl", "\"a\"\n\"b\"\n\"c\"\n");
    write(
        &project,
        "out.jsonl",
        "{\"payload\": \"A\", \"sink\": \"out\"}\n{\"payload\": \"C\", \"sink\": \"out\"}\n",
    );
    let run: Run = project.command(&["test"]).success();
    assert!(run.stderr.contains("ok test `whole`"), "{}", run.stderr);
}

#[test]
fn an_expected_file_that_cannot_be_read_or_names_no_sink_of_the_flow_fails_its_test_alone() {
    let tests =
        "\n[tests.whole]\nflow = \"main\"\ninput = \"in.jsonl\"\nexpected = \"out.jsonl\"\n";
    let project = project(&(tests.to_owned() + &UPPER.replace("out.jsonl", "missing.jsonl")));
    write(&project, "in.jsonl", "\"a\"\n");
    write(
        &project,
        "out.jsonl",
        "{\"payload\": \"A\", \"sink\": \"nope\"}\n",
    );
    let run = project.command(&["test"]).failure();
    assert!(run.stderr.contains("FAILED test `upper`"), "{}", run.stderr);
    assert!(run.stderr.contains("missing.jsonl"), "{}", run.stderr);
    assert!(run.stderr.contains("FAILED test `whole`"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "out.jsonl:1: `sink` names `nope`, which is not a sink of the flow; its sinks: `out`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Tested 0 passed, 2 failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_test_of_something_undeclared_is_a_manifest_error() {
    let project = project("\n[tests.lost]\ncomponent = \"nobody\"\nexpected = \"out.jsonl\"\n");
    let run = project.command(&["test"]).failure();
    assert!(
        run.stderr
            .contains("test `lost` names component `nobody`, which this manifest does not declare"),
        "{}",
        run.stderr
    );
}

#[test]
fn payloads_are_blessed_and_compared_byte_for_byte() {
    let project = project(UPPER);
    // FF is not UTF-8; `test-upper` leaves it as it is.
    write(&project, "in.jsonl", "{\"payload-hex\": \"ff\"}\n");
    project.command(&["test", "--bless"]).success();
    let blessed = std::fs::read_to_string(project.dir().join("out.jsonl")).unwrap();
    assert_eq!(
        blessed,
        "{\"content-type\":\"text/plain\",\"payload-hex\":\"ff\"}\n"
    );
    project.command(&["test"]).success();

    // Payloads that a lossy comparison would take for FF are not FF.
    for other in ["fe", "efbfbd"] {
        write(
            &project,
            "in.jsonl",
            &format!("{{\"payload-hex\": \"{other}\"}}\n"),
        );
        let run = project.command(&["test"]).failure();
        assert!(run.stderr.contains("FAILED test `upper`"), "{}", run.stderr);
    }

    // Text and hex name the same bytes alike; a malformed element is a clear error.
    write(&project, "in.jsonl", "\"ab\"\n");
    write(&project, "out.jsonl", "{\"payload-hex\": \"4142\"}\n");
    project.command(&["test"]).success();
    write(&project, "out.jsonl", "{\"payload-hex\": \"4g\"}\n");
    let run = project.command(&["test"]).failure();
    assert!(
        run.stderr.contains("out.jsonl:1: `payload-hex` is not hex"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_input_element_larger_than_a_stage_buffer_budget_reaches_the_component() {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#);
    let tests =
        "\n[tests.big]\ncomponent = \"out\"\ninput = \"in.jsonl\"\nexpected = \"out.jsonl\"\n";
    let manifest = project.manifest_text() + tests;
    let project = project.manifest(&manifest);
    // Past the 64 MiB that a stage may hold in buffers by default.
    write(
        &project,
        "in.jsonl",
        &format!("\"{}\"\n", "x".repeat(65 << 20)),
    );
    write(&project, "out.jsonl", "");
    let run = project.command(&["test"]).success();
    assert!(run.stderr.contains("ok test `big`"), "{}", run.stderr);
}
