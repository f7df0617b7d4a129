//! `cargo torvyn init`: an existing folder made a Torvyn project, on its own or inside a
//! Cargo workspace, and a folder that is one already left as it was.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{Run, torvyn};

/// `cargo torvyn init ARGS` run in `dir`.
fn init(dir: &Path, args: &[&str]) -> Run {
    let output = torvyn()
        .current_dir(dir)
        .args(["torvyn", "init"])
        .args(args)
        .output()
        .unwrap();
    Run::from(output)
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                let relative = relative.to_string_lossy().replace('\\', "/");
                found.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(dir, dir, &mut found);
    found
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn init_makes_an_empty_folder_a_pipeline_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    std::fs::create_dir(&project).unwrap();
    let run = init(&project, &[]).success();
    assert!(
        run.stderr.contains("Created pipeline `demo` in ."),
        "{}",
        run.stderr
    );
    let written: Vec<String> = files(&project).into_keys().collect();
    for file in [
        "Torvyn.toml",
        "Cargo.toml",
        "components/source/src/lib.rs",
        "components/transform/Cargo.toml",
        "components/sink/Cargo.toml",
        "tests/shout.input.jsonl",
    ] {
        assert!(written.iter().any(|w| w == file), "{file}: {written:?}");
    }
    let run = torvyn()
        .current_dir(&project)
        .args(["torvyn", "run"])
        .output()
        .unwrap();
    let run = Run::from(run).success();
    assert!(run.stdout.contains("HELLO 4"), "{}", run.stdout);

    // A component template, into a folder named on the command line.
    let other = dir.path().join("counter");
    std::fs::create_dir(&other).unwrap();
    init(dir.path(), &["counter", "--template", "aggregator"]).success();
    let written: Vec<String> = files(&other).into_keys().collect();
    assert_eq!(
        written,
        [
            "Cargo.toml",
            "Torvyn.toml",
            "components/counter/Cargo.toml",
            "components/counter/src/lib.rs",
            "tests/count.expected.jsonl",
            "tests/count.input.jsonl",
        ],
    );
    let manifest = std::fs::read_to_string(other.join("Torvyn.toml")).unwrap();
    assert!(
        manifest.contains("[components.counter]\npath = \"components/counter\""),
        "{manifest}"
    );
    // Its test, at the top of the project, finds the crate below.
    let test = torvyn()
        .current_dir(&other)
        .args(["torvyn", "test"])
        .output()
        .unwrap();
    let test = Run::from(test).success();
    assert!(test.stderr.contains("ok test `count`"), "{}", test.stderr);
}

#[test]
fn init_adds_its_crate_to_the_workspace_of_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path();
    let workspace = "# The shop's crates.\n[workspace]\nresolver = \"3\"\nmembers = [\n    \"crates/util\", # shared code\n]\n";
    write(&shop.join("Cargo.toml"), workspace);
    write(
        &shop.join("crates/util/Cargo.toml"),
        "[package]\nname = \"util\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    write(&shop.join("crates/util/src/lib.rs"), "//! Shared code.\n");

    let run = init(shop, &["--template", "processor", "--name", "upper"]).success();
    assert!(
        run.stderr.contains("Added `components/upper`"),
        "{}",
        run.stderr
    );
    // The crate is a member; the rest of the file is as it was, comments and all.
    assert_eq!(
        std::fs::read_to_string(shop.join("Cargo.toml")).unwrap(),
        workspace.replace("code\n", "code\n    \"components/upper\",\n")
    );

    let built = torvyn()
        .current_dir(shop)
        .args(["torvyn", "build", "--message-format", "json"])
        .output()
        .unwrap();
    let built = Run::from(built).success();
    let message: serde_json::Value = serde_json::from_str(built.stdout.trim()).unwrap();
    assert_eq!(message["reason"], "component-built");
    assert_eq!(message["package"], "upper");
    assert_eq!(message["role"], "processor");
}

#[test]
fn init_refuses_a_torvyn_project_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = &dir.path().join("mine");
    write(&project.join("Torvyn.toml"), "[project]\nname = \"mine\"\n");
    write(&project.join("Cargo.toml"), "[workspace]\nmembers = []\n");
    let before = files(project);
    let run = init(project, &["--template", "sink"]).failure();
    assert!(
        run.stderr.contains("is a Torvyn project already") && run.stderr.contains("Torvyn.toml"),
        "{}",
        run.stderr
    );
    assert_eq!(files(project), before);

    // Nor is any other file the template would write overwritten, nor the workspace edited.
    std::fs::remove_file(project.join("Torvyn.toml")).unwrap();
    write(
        &project.join("components/transform/src/lib.rs"),
        "// mine\n",
    );
    let before = files(project);
    let run = init(project, &[]).failure();
    assert!(
        run.stderr
            .contains("holds files the pipeline template would write")
            && run.stderr.contains("components/transform/src/lib.rs"),
        "{}",
        run.stderr
    );
    assert_eq!(files(project), before);

    // And a folder that does not exist is `new`'s work.
    let run = init(project, &["elsewhere"]).failure();
    assert!(
        run.stderr.contains("not an existing folder") && run.stderr.contains("cargo torvyn new"),
        "{}",
        run.stderr
    );
}
