//! Components made by other toolchains and other copies of the contract: names without a
//! package version are read as 0.1.0 with a warning, and imports the host does not provide
//! are found before anything is compiled.

use sha2::{Digest, Sha256};

use crate::support::{Guest, Run, TestProject, files_in, torvyn};

const UNVERSIONED: [&str; 3] = [
    "`torvyn:streaming/types`",
    "`torvyn:filtering/filter`",
    "`torvyn:streaming/lifecycle`",
];

fn assert_names_unversioned(stderr: &str) {
    assert!(stderr.contains("Warning"), "{stderr}");
    for name in UNVERSIONED {
        assert!(stderr.contains(name), "{name} not named in:\n{stderr}");
    }
    assert!(stderr.contains("read as version 0.1.0"), "{stderr}");
}

#[test]
fn a_component_whose_wit_has_no_package_version_runs_as_0_1_0_with_a_warning() {
    let inspect = Run::from(
        torvyn()
            .args(["torvyn", "inspect"])
            .arg(Guest::UnversionedFilter.wasm())
            .output()
            .unwrap(),
    )
    .success();
    assert_names_unversioned(&inspect.stderr);
    assert!(
        inspect.stdout.contains("role: filter"),
        "{}",
        inspect.stdout
    );
    assert!(
        inspect
            .stdout
            .contains("world: torvyn:filtering/content-filter@0.1.0"),
        "{}",
        inspect.stdout
    );

    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 10}"#)
        .component("even", Guest::UnversionedFilter, "")
        .component("out", Guest::Sink, "");
    let link = project.command(&["link"]).success();
    assert_names_unversioned(&link.stderr);
    assert!(
        link.stderr.contains("component `even` names"),
        "{}",
        link.stderr
    );

    let run = project.run(&[]).success();
    assert_names_unversioned(&run.stderr);
    let sequences: Vec<u64> = run.delivered().iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, [0, 2, 4, 6, 8]);
    assert_eq!(run.report()["nodes"][1]["filtered"], 5);
}

#[test]
fn an_import_the_host_lacks_is_named_at_the_component_before_it_is_compiled() {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3}"#)
        .component("odd", Guest::MissingImport, "")
        .component("out", Guest::Sink, "");
    let cache = tempfile::tempdir().unwrap();
    let manifest = project.write_manifest();
    for command in ["link", "run"] {
        let failed = Run::from(
            torvyn()
                .env("TORVYN_CACHE_DIR", cache.path())
                .args(["torvyn", command, "--manifest-path"])
                .arg(&manifest)
                .output()
                .unwrap(),
        )
        .failure();
        let stderr = &failed.stderr;
        for wanted in [
            "component `odd`: cannot link component",
            "it imports `acme:nothing/thing@1.0.0` (asked for at 1.0.0; the host provides no \
             package of `acme:`)",
            "torvyn::engine::imports",
            "this component",
            "build the component without these imports, or run it on a host that provides them",
            "this host provides torvyn:streaming@0.1.0",
        ] {
            assert!(stderr.contains(wanted), "`{wanted}` not in:\n{stderr}");
        }
        assert!(!stderr.contains("torvyn::manifest::invalid"), "{stderr}");
        assert!(!stderr.contains("Running"), "{stderr}");
    }
    // The other two components were compiled and cached; this one never was.
    let digest = Sha256::digest(std::fs::read(Guest::MissingImport.wasm()).unwrap());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let entries: Vec<String> = (files_in(cache.path()).iter())
        .map(|path| path.display().to_string())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        !entries.iter().any(|e| e.contains(&hex)),
        "{hex} was compiled: {entries:?}"
    );
}

/// Runs `odd` as the processor of a three-stage flow, which must fail before any element
/// enters it, with each of `wanted` in its diagnostic.
fn fails_to_start(odd: Guest, wanted: &[&str]) {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3}"#)
        .component("odd", odd, "")
        .component("out", Guest::Sink, "")
        .run(&[])
        .failure();
    for wanted in wanted {
        assert!(
            run.stderr.contains(wanted),
            "`{wanted}` not in:\n{}",
            run.stderr
        );
    }
    let report = run.report();
    assert_eq!(report["emitted"], 0);
    crate::support::assert_balanced(&report);
}

#[test]
fn an_export_of_another_type_than_the_contracts_fails_its_flow_before_any_element() {
    // Its name is the contract's, so `link` takes it (the types of an export are checked
    // against the host's bindings only in an instance); its flow must not start.
    fails_to_start(
        Guest::MistypedProcessor,
        &[
            "flow `main`: node `odd` could not be instantiated",
            "type mismatch with parameters",
            "expected `record` found `list`",
        ],
    );
}

#[test]
fn a_batch_export_of_another_type_than_the_contracts_fails_its_flow_naming_it() {
    // The host calls `process-batch` through a record of its own (`engine/batch.rs`),
    // whose types it checks against the instance's export.
    fails_to_start(
        Guest::MistypedBatch,
        &[
            "flow `main`: node `odd` could not be instantiated",
            "`torvyn:batching/batch-processor@0.1.0`.`process-batch` does not have the \
             contract's types",
            "type mismatch for field payload",
            "expected `list` found `string`",
        ],
    );
}
