//! Boundaries a machine checks.

use std::process::Command;

use crate::support::workspace;

#[test]
fn the_sdk_never_depends_on_wasmtime_or_tokio() {
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "tree",
            "-p",
            "torvyn-sdk",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--target", "wasm32-wasip2"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.contains("wit-bindgen"), "{tree}");
    for forbidden in ["wasmtime", "tokio"] {
        assert!(
            !tree.contains(forbidden),
            "torvyn-sdk pulls in {forbidden}:\n{tree}"
        );
    }
}
