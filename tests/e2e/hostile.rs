//! Damaged input never panics: truncated, mutated and random components, and mutated and
//! random manifests, each get an error or (for a mutation that happens to stay valid) load
//! normally.

use std::path::Path;

use torvyn_runtime::{Host, HostOptions, ProjectManifest, Role, plan_flow};

use crate::support::{Guest, TestProject};

/// A small deterministic generator (xorshift64), so a failure can be replayed.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncated_and_mutated_components_are_errors_not_panics() {
    let bytes = std::fs::read(Guest::Upper.wasm()).unwrap();
    let host = Host::new(HostOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.wasm");
    let step = (bytes.len() / 200).max(1);
    for len in (0..bytes.len()).step_by(step) {
        let cut = &bytes[..len];
        std::fs::write(&path, cut).unwrap();
        // A cut that falls between sections and leaves out only trailing custom sections
        // (names, producers) is still a whole component: only that may load.
        let whole = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(cut)
            .is_ok();
        assert!(
            host.load(&path).is_err() || whole,
            "a component cut at {len} bytes, no longer valid, loaded"
        );
    }
    let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
    // Each mutation that still parses costs a compile, so a few dozen: enough to reach the
    // checks after parsing (exports, roles, linking) with damaged but well-formed input.
    for _ in 0..40 {
        let mut damaged = bytes.clone();
        for _ in 0..=random.below(4) {
            let at = random.below(damaged.len());
            damaged[at] = random.next() as u8;
        }
        std::fs::write(&path, &damaged).unwrap();
        // Loading may fail or, rarely, succeed; it must return either way.
        let _ = host.load(&path);
    }
}

#[test]
fn mutated_manifests_are_errors_not_panics() {
    let text = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3}"#)
        .component("split", Guest::Router, "")
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, "")
        .component("dlq", Guest::Sink, "")
        .flow(
            r#"nodes = ["src", "split", "up", "out", "dlq"]
queue-capacity = 4
edges = [
    { from = "src", to = "split", capacity = 8, overflow = "drop-oldest", low-watermark = 2 },
    { from = "split", port = "a", to = "up" },
    { from = "split", port = "b", to = "out" },
    { from = "up", to = "out" },
]
on-error = { up = { retry = 2, backoff = "1ms", then = { dead-letter = "dlq" } }, split = "skip" }"#,
        )
        .manifest_text()
        .into_bytes();
    let role = |name: &str| match name {
        "src" => Role::Source,
        "split" => Role::Router,
        "out" | "dlq" => Role::Sink,
        _ => Role::Processor,
    };
    let mut random = Xorshift(0x2545_f491_4f6c_dd1d);
    let path = Path::new("Torvyn.toml");
    for _ in 0..2000 {
        let mut damaged = text.clone();
        match random.below(3) {
            0 => damaged.truncate(random.below(text.len())),
            1 => {
                let at = random.below(damaged.len());
                let alphabet = b"[]{}=\",.#\n\0az19-";
                damaged[at] = alphabet[random.below(alphabet.len())];
            }
            _ => {
                let at = random.below(damaged.len());
                damaged.remove(at);
            }
        }
        let damaged = String::from_utf8_lossy(&damaged).into_owned();
        if let Ok(project) = ProjectManifest::parse(path, damaged)
            && let Ok(flows) = project.select_flows(&[])
        {
            for (flow, decl) in flows {
                let _ = plan_flow(&project, flow, decl, role);
            }
        }
    }
}

#[test]
fn random_bytes_are_neither_a_component_nor_a_manifest() {
    let mut random = Xorshift(0xd1b5_4a32_d192_ed03);
    let path = Path::new("Torvyn.toml");
    for _ in 0..2000 {
        let len = random.below(512);
        let mut bytes: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
        // Half of them start like a component, to get past the first check.
        if random.below(2) == 0 {
            bytes.splice(0..0, *b"\0asm\x0d\0\x01\0");
        }
        assert!(
            torvyn_runtime::inspect(&bytes)
                .map(|i| i.exports.is_empty())
                .unwrap_or(true)
        );
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(ProjectManifest::parse(path, text).is_err());
    }
}
