//! `cargo torvyn bench`, and the per-call counts it is built on. Counts are asserted;
//! times never are.

use crate::support::{Guest, Run, TestProject, torvyn};

fn three_stages(count: u64) -> TestProject {
    TestProject::new()
        .component(
            "src",
            Guest::Source,
            &format!(r#"{{"count": {count}, "size": 64}}"#),
        )
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
}

/// `(calls, host calls)` of each node, from `bench --json` over `elements` elements.
fn calls(elements: u64) -> Vec<(u64, u64)> {
    let project = three_stages(1_000_000);
    let output = torvyn()
        .args(["torvyn", "bench", "--dev", "--json", "--warmup", "0s"])
        .args(["--elements", &elements.to_string(), "--manifest-path"])
        .arg(project.write_manifest())
        .output()
        .unwrap();
    let run = Run::from(output).success();
    let figures: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    (figures["stages"].as_array().unwrap().iter())
        .map(|s| {
            (
                s["calls"].as_u64().unwrap(),
                s["host_calls"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn each_element_costs_a_fixed_number_of_sandbox_crossings() {
    let (small, large) = (calls(100), calls(300));
    // Over 200 more elements: one call into each stage per element, and the host calls
    // the test guests make for one. The source makes its buffer in one call
    // (`buffer-builder.from-bytes`; `allocate`, `append`, `freeze` and dropping the mutable
    // handle counted 5 here), the processor reads and makes another (8 before), the sink
    // reads.
    let per_element: Vec<(u64, u64)> = (small.iter().zip(&large))
        .map(|(s, l)| ((l.0 - s.0) / 200, (l.1 - s.1) / 200))
        .collect();
    assert_eq!(per_element, [(1, 1), (1, 4), (1, 3)], "{small:?} {large:?}");
    for (s, l) in small.iter().zip(&large) {
        assert_eq!(l.0 - s.0, 200, "calls grow by exactly one per element");
        assert_eq!((l.1 - s.1) % 200, 0, "{small:?} {large:?}");
    }
}

#[test]
fn sdk_components_make_buffers_in_one_call_and_components_built_for_0_1_0_need_not() {
    // What the counts above rest on: the SDK's outputs go through `torvyn:buffers`, which
    // a component built for the 0.1.0 contract alone does not import and runs without.
    let sdk = Guest::Upper.inspected();
    assert!(sdk.contains("torvyn:buffers/buffer-builder@0.1.0"), "{sdk}");
    let raw = Guest::RawUpper.inspected();
    assert!(
        raw.contains("torvyn:streaming/buffer-allocator@0.1.0"),
        "{raw}"
    );
    assert!(!raw.contains("torvyn:buffers"), "{raw}");
}

#[test]
fn bench_prints_figures_saves_a_baseline_and_plots_a_report() {
    let project = three_stages(1_000_000);
    let manifest = project.write_manifest();
    // Reports and baselines go to Cargo's target folder, wherever that is.
    let target = project.dir().join("elsewhere");
    let bench = |extra: &[&str]| {
        let output = torvyn()
            .env("CARGO_TARGET_DIR", &target)
            .args([
                "torvyn",
                "bench",
                "--dev",
                "--warmup",
                "100ms",
                "--elements",
                "2000",
            ])
            .args(extra)
            .arg("--manifest-path")
            .arg(&manifest)
            .output()
            .unwrap();
        Run::from(output).success()
    };
    let run = bench(&["--json", "--save-baseline", "first"]);
    let figures: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(figures["flow"], "main");
    assert_eq!(figures["elements"], 2000);
    assert_eq!(figures["copies_per_element"], 4.0);
    assert_eq!(figures["bytes_copied_per_element"], 256.0);
    let crossings = figures["crossings_per_element"].as_f64().unwrap();
    // 3 calls into the stages and 8 back into the host (see above), with the calls the
    // run's start and end make spread over its elements.
    assert!((11.0..11.1).contains(&crossings), "{crossings}");
    let latency = &figures["latency_ns"];
    let (p50, p99, max) = (
        latency["p50"].as_u64(),
        latency["p99"].as_u64(),
        latency["max"].as_u64(),
    );
    assert!(p50 > Some(0) && p50 <= p99 && p99 <= max, "{latency}");
    let stages = figures["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["src", "up", "out"]);
    let shares: f64 = stages
        .iter()
        .map(|s| s["share"].as_f64().unwrap())
        .sum::<f64>()
        + figures["host_share"].as_f64().unwrap();
    assert!(
        (0.99..=1.01).contains(&shares),
        "the shares add up: {shares}"
    );

    let bench_dir = target.join("torvyn/bench");
    assert!(bench_dir.join("baselines/first.json").is_file());
    let html = std::fs::read_to_string(bench_dir.join("main/report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2, "two plots");

    let compared = bench(&["--baseline", "first"]);
    for label in ["Throughput", "Latency", "Copies", "Crossings"] {
        assert!(compared.stderr.contains(label), "{}", compared.stderr);
    }
    assert!(compared.stderr.contains("(+0.0 %)"), "{}", compared.stderr);
    let missing = torvyn()
        .args([
            "torvyn",
            "bench",
            "--dev",
            "--baseline",
            "nope",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .unwrap();
    let missing = Run::from(missing).failure();
    assert!(
        missing.stderr.contains("no baseline `nope`"),
        "{}",
        missing.stderr
    );
    // A name it could not save under, and no element to measure, are refused before
    // anything is measured (a usage error exits with 2, as clap's do).
    for (args, said, code) in [
        (
            &["--save-baseline", "../x"][..],
            "a baseline name is letters",
            1,
        ),
        (&["--elements", "0"][..], "0 is not in 1..", 2),
    ] {
        let refused = torvyn()
            .args(["torvyn", "bench", "--dev"])
            .args(args)
            .arg("--manifest-path")
            .arg(&manifest)
            .output()
            .unwrap();
        let refused = Run::from(refused);
        assert_eq!(refused.code, Some(code), "{}", refused.stderr);
        assert!(refused.stderr.contains(said), "{}", refused.stderr);
        assert!(!refused.stderr.contains("Measuring"), "{}", refused.stderr);
    }
}

#[test]
fn the_copying_processor_of_the_benchmarks_passes_payloads_on_unchanged() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 5}"#)
        .component("up", Guest::Upper, r#"{"copy": true}"#)
        .component("out", Guest::Sink, "")
        .run(&[])
        .success();
    let delivered = run.delivered();
    assert_eq!(delivered.len(), 5);
    assert_eq!(delivered[3].1, "item 3");
    assert_eq!(run.report()["copies"]["copies"], 20);
}
