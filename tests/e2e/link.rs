//! `cargo torvyn link`, and the same checks at the start of `run`: every problem reported
//! at once, before anything runs.

use crate::support::{Guest, TestProject};

/// A project whose flow uses three components that cannot run as they are: one with no
/// role, one of a future contract version, and one that needs a capability it is not
/// granted (a copy of `test-upper` that says it needs `filesystem:read`).
fn broken() -> TestProject {
    let project = TestProject::new();
    // Copies beside the manifest, so that diagnostics show the same paths everywhere.
    let copy = |guest: Guest, file: &str| {
        std::fs::copy(guest.wasm(), project.dir().join(file)).unwrap();
    };
    copy(Guest::NotAStage, "cli.wasm");
    copy(Guest::Future, "next.wasm");
    let bytes = std::fs::read(Guest::Upper.wasm()).unwrap();
    let marked = torvyn_runtime::with_capabilities(&bytes, &["filesystem:read".into()]).unwrap();
    std::fs::write(project.dir().join("needy.wasm"), marked).unwrap();
    project
        .component("src", Guest::Source, "")
        .component_at("cli", "cli.wasm", "")
        .component_at("next", "next.wasm", "")
        .component_at("needy", "needy.wasm", "")
        .component("out", Guest::Sink, "")
}

/// `stderr` with the paths and versions that differ between machines replaced.
fn normalise(stderr: &str, project: &TestProject) -> String {
    let mut text = stderr.replace(&project.dir().display().to_string(), "[project]");
    // The WASI version the toolchain's standard library was built against.
    let prefix = "wasi:cli/run@0.2.";
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix).map(|i| from + i) {
        let start = at + prefix.len();
        let digits = text[start..].find(|c: char| !c.is_ascii_digit());
        let end = start + digits.unwrap_or(text.len() - start);
        text.replace_range(start..end, "N");
        from = start;
    }
    text
}

#[test]
fn link_reports_every_problem_at_once_and_run_refuses_to_start() {
    let project = broken();
    let link = project.command(&["link"]).failure();
    assert!(
        link.stderr
            .contains("3 problems must be fixed before the flows can run"),
        "{}",
        link.stderr
    );
    insta::assert_snapshot!(normalise(&link.stderr, &project));

    let run = project.run(&[]).failure();
    assert!(!run.stderr.contains("Running"), "{}", run.stderr);
    assert_eq!(
        normalise(&run.stderr, &project),
        normalise(&link.stderr, &project)
    );
}

#[test]
fn a_granted_capability_links_and_runs() {
    let project = broken();
    let project = project
        .set(
            "needy",
            "capabilities",
            r#"{ filesystem = [{ path = ".", access = "read" }] }"#,
        )
        .flow(
            r#"nodes = ["src", "needy", "out"]
edges = [{ from = "src", to = "needy" }, { from = "needy", to = "out" }]"#,
        );
    let link = project.command(&["link"]).success();
    assert!(
        link.stderr.contains("Linked flow `main`: 3 nodes, 2 edges"),
        "{}",
        link.stderr
    );
    let run = project.run(&[]).success();
    assert_eq!(run.delivered().len(), 10);
}

#[test]
fn counts_agree_with_their_nouns() {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 1}"#)
        .component("out", Guest::Sink, "");
    let link = project.command(&["link"]).success();
    assert!(
        link.stderr
            .contains("Linked flow `main`: 2 nodes, 1 edge\n"),
        "{}",
        link.stderr
    );
    let run = project.run(&[]).success();
    assert!(
        run.stderr.contains("completed: 1 element delivered"),
        "{}",
        run.stderr
    );
}
