//! `cargo torvyn doctor`: one line per check, exit 1 when any fails.

use std::path::Path;

use crate::support::{Run, guest_target_dir, torvyn};

/// `cargo torvyn doctor` in `dir`, with `cache` as the compile cache.
fn doctor(dir: &Path, cache: &Path) -> Run {
    let output = torvyn()
        .current_dir(dir)
        .env("TORVYN_CACHE_DIR", cache)
        .args(["torvyn", "doctor"])
        .output()
        .unwrap();
    Run::from(output)
}

/// A Cargo workspace of one component crate that depends on torvyn-sdk `version`.
fn workspace(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ntorvyn-sdk = \"{version}\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_healthy_machine_and_project_pass_every_check() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path(), env!("CARGO_PKG_VERSION"));
    let run = doctor(dir.path(), &guest_target_dir().join("compiled")).success();
    for check in [
        "cargo: cargo ",
        "rustc: rustc ",
        "target: wasm32-wasip2",
        "cache: ",
    ] {
        assert!(
            run.stderr.contains(&format!("ok {check}")),
            "{check}\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("ok sdk: probe uses torvyn-sdk ^0.1.0"),
        "{}",
        run.stderr
    );
}

#[test]
fn each_failure_is_named_with_its_fix_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path(), "9.0");
    // A file where the cache folder should be.
    let cache = dir.path().join("not-a-folder");
    std::fs::write(&cache, "").unwrap();
    let run = doctor(dir.path(), &cache).failure();
    assert!(
        run.stderr.contains(
            "FAILED sdk: `probe` asks for torvyn-sdk ^9.0, but this cargo-torvyn is 0.1.0"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("FAILED cache: cannot write to"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: set `cache-dir` (or TORVYN_CACHE_DIR)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 of 5 checks failed"),
        "{}",
        run.stderr
    );

    std::fs::write(dir.path().join("Torvyn.toml"), "[project\n").unwrap();
    let run = doctor(dir.path(), &guest_target_dir().join("compiled")).failure();
    assert!(run.stderr.contains("FAILED project: "), "{}", run.stderr);
}
