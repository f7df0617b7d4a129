//! Components made by other toolchains and other copies of the contract: names without a
//! package version are read as 0.1.0 with a warning.

use crate::support::{Guest, Run, TestProject, torvyn};

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
