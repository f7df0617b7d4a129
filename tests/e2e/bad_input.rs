//! Bad input: a clear diagnostic and exit code 1, never a panic.

use crate::support::{Guest, TestProject};

#[test]
fn a_missing_wasm_is_named() {
    let run = TestProject::new()
        .component_at("src", "missing.wasm", "")
        .component("out", Guest::Sink, "")
        .run(&[])
        .failure();
    assert!(run.stderr.contains("component `src`"), "{}", run.stderr);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(run.stderr.contains("Torvyn.toml:5:"), "{}", run.stderr);
}

#[test]
fn a_file_that_is_not_webassembly_is_refused() {
    let project = TestProject::new();
    std::fs::write(project.dir().join("junk.wasm"), "hello, not wasm").unwrap();
    let run = project
        .component_at("src", "junk.wasm", "")
        .component("out", Guest::Sink, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr.contains("not a WebAssembly file"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("junk.wasm"), "{}", run.stderr);
}

#[test]
fn a_component_without_a_role_is_refused() {
    let run = TestProject::new()
        .component("src", Guest::Source, "")
        .component("out", Guest::NotAStage, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr.contains("exports no Torvyn role interface"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("wasi:cli/run"), "{}", run.stderr);
}

#[test]
fn a_component_in_the_wrong_place_is_refused() {
    let run = TestProject::new()
        .component("out", Guest::Sink, "")
        .component("src", Guest::Source, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr
            .contains("node `out` is a sink, but it has an edge to `src`"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_manifest_key_names_key_file_and_line() {
    let project = TestProject::new()
        .component("src", Guest::Source, "")
        .component("out", Guest::Sink, "");
    let text = project
        .manifest_text()
        .replace("[flows.main]", "[flows.main]\nqueue-size = 3");
    let run = project.manifest(&text).run(&[]).failure();
    assert!(
        run.stderr.contains("unknown field `queue-size`"),
        "{}",
        run.stderr
    );
    let line = text.lines().position(|l| l == "queue-size = 3").unwrap() + 1;
    assert!(
        run.stderr.contains(&format!("Torvyn.toml:{line}:1")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_dangling_edge_is_named() {
    let project = TestProject::new()
        .component("src", Guest::Source, "")
        .component("out", Guest::Sink, "");
    let text = project
        .manifest_text()
        .replace("to = \"out\"", "to = \"nowhere\"");
    let run = project.manifest(&text).run(&[]).failure();
    assert!(
        run.stderr
            .contains("edge end `nowhere` is not a node of flow `main`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_trap_names_flow_stage_and_sequence() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 20}"#)
        .component("up", Guest::Upper, r#"{"trap_at": 5}"#)
        .component("out", Guest::Sink, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr
            .contains("flow `main`: node `up` trapped in `process` on element 5"),
        "{}",
        run.stderr
    );
    // What reached the sink before the trap was delivered, in order.
    let sequences: Vec<u64> = run.delivered().iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, [0, 1, 2, 3, 4]);
    // A trapped instance is not called again, not even for its teardown.
    assert!(
        !run.stderr.contains("test-upper: teardown"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_process_error_names_flow_stage_and_sequence() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 20}"#)
        .component("up", Guest::Upper, r#"{"fail_at": 3}"#)
        .component("out", Guest::Sink, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr.contains(
            "flow `main`: node `up` returned an error in `process` on element 3: internal error"
        ),
        "{}",
        run.stderr
    );
    // A component that failed cleanly still gets its teardown.
    assert!(
        run.stderr.contains("test-upper: teardown after 3 elements"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_declared_role_must_match_the_exports() {
    let project = TestProject::new()
        .component("src", Guest::Source, "")
        .component("out", Guest::Upper, "");
    let text = project
        .manifest_text()
        .replace("[components.out]", "[components.out]\nrole = \"sink\"");
    let run = project.manifest(&text).run(&[]).failure();
    assert!(
        run.stderr
            .contains("component `out` is declared a sink, but it exports the processor interface"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_config_the_component_rejects_fails_init_with_its_reason() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"cuont": 3}"#)
        .component("out", Guest::Sink, "")
        .run(&[])
        .failure();
    assert!(
        run.stderr.contains(
            "flow `main`: node `src` failed in init: invalid input: config: unknown field `cuont`"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_topologies_name_the_nodes_and_the_line() {
    let project = || {
        TestProject::new()
            .component("src", Guest::Source, "")
            .component("split", Guest::Router, "")
            .component("up", Guest::Upper, "")
            .component("out", Guest::Sink, "")
    };
    let cases = [
        (
            r#"nodes = ["src", "up", "split", "out"]
edges = [
    { from = "src", to = "up" },
    { from = "up", to = "split" },
    { from = "split", port = "again", to = "up" },
    { from = "split", port = "done", to = "out" },
]"#,
            "the edges of flow `main` form a cycle through `up`, `split`",
            "Torvyn.toml:24:",
        ),
        (
            r#"nodes = ["src", "up", "out"]
edges = [{ from = "src", port = "left", to = "up" }, { from = "up", to = "out" }]"#,
            "edge from `src` names port `left`, but `src` is a source, not a router",
            "Torvyn.toml:22:",
        ),
        (
            r#"nodes = ["src", "split", "out"]
edges = [{ from = "src", to = "split" }, { from = "split", to = "out" }]"#,
            "edge from router `split` to `out` names no port",
            "Torvyn.toml:22:",
        ),
        (
            r#"nodes = ["src", "out"]
edges = [{ from = "src", to = "sink" }]"#,
            "edge end `sink` is not a node of flow `main`",
            "Torvyn.toml:22:",
        ),
        (
            r#"nodes = ["src", "out", "up"]
edges = [{ from = "src", to = "out" }, { from = "out", to = "up" }]"#,
            "node `out` is a sink, but it has an edge to `up`",
            "Torvyn.toml:22:",
        ),
        (
            r#"nodes = ["src", "up", "out"]
edges = [{ from = "src", to = "out" }]"#,
            "node `up` of flow `main` is joined by no edge",
            "Torvyn.toml:21:",
        ),
    ];
    for (flow, message, line) in cases {
        let run = project().flow(flow).run(&[]).failure();
        assert!(run.stderr.contains(message), "{flow}\n{}", run.stderr);
        assert!(run.stderr.contains(line), "{flow}\n{}", run.stderr);
    }
}
