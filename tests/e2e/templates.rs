//! `cargo torvyn new` and what it scaffolds, built and run where a user would: outside
//! this repository.

use std::path::{Path, PathBuf};

use crate::support::{Run, in_folder, run_with_input, torvyn};

/// `cargo torvyn new NAME --template TEMPLATE` in `dir`; returns the new project's folder.
fn new_project(dir: &Path, name: &str, template: &str) -> PathBuf {
    let output = torvyn()
        .current_dir(dir)
        .args(["torvyn", "new", name, "--template", template])
        .output()
        .unwrap();
    Run::from(output).success();
    dir.join(name)
}

#[test]
fn a_new_pipeline_runs_out_of_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "demo", "pipeline");
    assert!(project.join("Torvyn.toml").is_file());
    let run = torvyn()
        .current_dir(&project)
        .args(["torvyn", "run"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // The template's source says hello, its processor upper-cases, its sink prints.
    assert!(stdout.contains("HELLO 0"), "{stdout}");
    assert!(stdout.contains("HELLO 4"), "{stdout}");
    assert!(
        stderr.contains("Finished flow `main` completed: 5 elements delivered"),
        "{stderr}"
    );
    assert!(stderr.contains("Copies"), "{stderr}");
    // And its test passes.
    let test = torvyn()
        .current_dir(&project)
        .args(["torvyn", "test"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success(), "{stderr}");
    assert!(stderr.contains("ok test `shout`"), "{stderr}");
}

/// What each component template's flow prints for `a`, `b`, an empty line and `c` on its
/// standard input.
const TEMPLATE_RUNS: [(&str, &str); 6] = [
    ("source", "hello 0\nhello 1\nhello 2\nhello 3\nhello 4\n"),
    ("processor", "A\nB\n\nC\n"),
    ("sink", "a\nb\n\nc\n"),
    ("filter", "a\nb\nc\n"),
    ("router", ""),
    ("aggregator", "4 elements\n"),
];

#[test]
fn every_component_template_builds_tests_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (template, printed) in TEMPLATE_RUNS {
        let role = template;
        let project = new_project(dir.path(), &format!("my-{template}"), template);
        // The processor says what it needs; the build writes that into the component.
        let needs = if template == "processor" {
            let manifest = project.join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).unwrap().replace(
                "[package.metadata.torvyn]",
                "[package.metadata.torvyn]\ncapabilities = [\"env:LANG\"]",
            );
            std::fs::write(manifest, text).unwrap();
            // And its project grants it, so that it runs.
            let manifest = project.join("Torvyn.toml");
            let text = std::fs::read_to_string(&manifest).unwrap()
                + "\n[components.my-processor.capabilities]\nenv = [\"LANG\"]\n";
            std::fs::write(manifest, text).unwrap();
            vec!["env:LANG".to_owned()]
        } else {
            Vec::new()
        };
        let build = || {
            let built = torvyn()
                .current_dir(&project)
                .args(["torvyn", "build", "--message-format", "json"])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&built.stdout);
            assert!(
                built.status.success(),
                "{}",
                String::from_utf8_lossy(&built.stderr)
            );
            serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
        };
        let message = build();
        assert_eq!(message["reason"], "component-built");
        assert_eq!(message["role"], role);
        let wasm = PathBuf::from(message["wasm"].as_str().unwrap());
        let bytes = std::fs::read(&wasm).unwrap();
        assert_eq!(torvyn_runtime::inspect(&bytes).unwrap().capabilities, needs);
        // Building again leaves the component as it is.
        build();
        assert_eq!(std::fs::read(&wasm).unwrap(), bytes, "{template}");

        // Its test passes, and its flow runs between standard input and output.
        let test = in_folder(&project, &["test"]).success();
        assert!(
            test.stderr.contains("Tested 1 passed, 0 failed"),
            "{}",
            test.stderr
        );
        let run = run_with_input(&project, b"a\nb\n\nc\n").success();
        assert_eq!(run.stdout, printed, "{template}: {}", run.stderr);
    }
    // The router's flow wrote its two files: elements 0 and 2 are even.
    let router = dir.path().join("my-router");
    assert_eq!(
        std::fs::read_to_string(router.join("even.txt")).unwrap(),
        "a\n\n"
    );
    assert_eq!(
        std::fs::read_to_string(router.join("odd.txt")).unwrap(),
        "b\nc\n"
    );
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let new = |name: &str| {
        let output = torvyn()
            .current_dir(dir.path())
            .args(["torvyn", "new", name])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(new("1bad").contains("not a valid crate name"));
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    assert!(new("taken").contains("already exists"));
}

#[test]
fn new_takes_a_path_and_names_the_crate_after_its_last_part() {
    let dir = tempfile::tempdir().unwrap();
    let new = |args: &[&str]| {
        let output = torvyn()
            .current_dir(dir.path())
            .args(["torvyn", "new"])
            .args(args)
            .output()
            .unwrap();
        Run::from(output)
    };
    let run = new(&["nested/dir/my-filter", "--template", "filter"]).success();
    let manifest = dir.path().join("nested/dir/my-filter/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("name = \"my-filter\""), "{text}");
    assert!(
        run.stderr
            .contains("Created filter `my-filter` in nested/dir/my-filter"),
        "{}",
        run.stderr
    );

    // A last part that is no crate name is refused, with the way out; --name gives one.
    let run = new(&["nested/2024", "--template", "sink"]).failure();
    assert!(
        run.stderr.contains("`2024` is not a valid crate name") && run.stderr.contains("--name"),
        "{}",
        run.stderr
    );
    new(&["nested/2024", "--name", "sink-2024", "--template", "sink"]).success();
    let text = std::fs::read_to_string(dir.path().join("nested/2024/Cargo.toml")).unwrap();
    assert!(text.contains("name = \"sink-2024\""), "{text}");
}

#[test]
fn a_component_made_inside_a_project_joins_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "shop", "pipeline");
    let made = in_folder(
        &project,
        &["new", "components/keep", "--template", "filter"],
    )
    .success();
    // No manifest of its own, which would hide the project's from the crate's folder.
    let keep = project.join("components/keep");
    assert!(keep.join("Cargo.toml").is_file());
    assert!(!keep.join("Torvyn.toml").exists());
    assert!(!keep.join("tests").exists());
    assert!(
        made.stderr.contains("[components.keep]")
            && made.stderr.contains("path = \"components/keep\""),
        "{}",
        made.stderr
    );
}
