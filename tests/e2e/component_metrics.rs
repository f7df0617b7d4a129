//! Metrics components keep about themselves (`torvyn:runtime/metrics`): a counter, a
//! gauge and a histogram updated by a real component, seen in the run's report, in
//! `/metrics` (checked by `promtool`) and by an OTLP collector; refused without the
//! `metrics` grant.

use serde_json::Value;

use crate::observability::{Served, promtool_accepts, samples};
use crate::otlp::Collector;
use crate::support::{Guest, TestProject, node};

/// `src` (12 elements: `item 0` to `item 11`, ten of 6 bytes and two of 7) → `meter`
/// → `out`, with `meter`'s capabilities as given.
fn metered(capabilities: &str) -> TestProject {
    metered_with("", capabilities)
}

/// [`metered`] with `meter`'s config.
fn metered_with(config: &str, capabilities: &str) -> TestProject {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 12}"#)
        .component("meter", Guest::Metrics, config)
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .set("meter", "capabilities", capabilities)
}

/// The series of metric `name` in a node's report: `(label values, value)`.
fn series<'a>(node: &'a Value, name: &str) -> &'a Vec<Value> {
    let metrics = node["metrics"].as_array().unwrap();
    let metric = metrics.iter().find(|m| m["name"] == name);
    let metric = metric.unwrap_or_else(|| panic!("no metric {name} in {node}"));
    metric["series"].as_array().unwrap()
}

#[test]
fn a_component_keeps_a_counter_a_gauge_and_a_histogram_in_the_report() {
    let run = metered("{ metrics = true }").run(&[]).success();
    let report = run.report();
    let meter = node(&report, "meter");
    let elements = series(meter, "elements");
    let count = |kind: &str| {
        (elements.iter())
            .find(|s| s[0] == serde_json::json!([kind]))
            .map(|s| s[1]["count"].as_u64().unwrap())
    };
    assert_eq!(
        (count("even"), count("odd")),
        (Some(10), Some(2)),
        "{meter}"
    );
    assert_eq!(series(meter, "last_size")[0][1]["level"], 7.0);
    let histogram = &series(meter, "size")[0][1]["histogram"];
    // Bounds 6 and 16, inclusive: the ten of 6 bytes in the first bucket.
    assert_eq!(histogram["buckets"], serde_json::json!([10, 2, 0]));
    assert_eq!(histogram["sum"], 74.0);
    assert_eq!(histogram["count"], 12);
    // Nodes that keep none report none.
    assert!(node(&report, "src").get("metrics").is_none(), "{report}");
}

#[test]
fn a_restarted_component_declares_its_metrics_again_and_they_go_on() {
    // `item 3` traps the first instance; under `skip` it is given up, and a new instance
    // takes the rest.
    let flow = metered_with(r#""trap:item 3""#, "{ metrics = true }").flow(
        r#"nodes = ["src", "meter", "out"]
edges = [{ from = "src", to = "meter" }, { from = "meter", to = "out" }]
on-error = { meter = "skip" }"#,
    );
    let report = flow.run(&[]).success().report();
    let meter = node(&report, "meter");
    assert_eq!(meter["restarts"], 1, "{meter}");
    assert_eq!(meter["metrics"].as_array().unwrap().len(), 3, "{meter}");
    let elements = series(meter, "elements");
    let counted: u64 = (elements.iter())
        .map(|s| s[1]["count"].as_u64().unwrap())
        .sum();
    // Three counted before the trap, eight after it.
    assert_eq!(counted, 11, "{meter}");
}

#[test]
fn component_metrics_are_served_beside_the_hosts_and_promtool_accepts_them() {
    let project = metered("{ metrics = true }");
    let served = Served::start(&project, &["--serve-after"]);
    served.wait_for("the flow to end", |flow| {
        flow["report"]["outcome"] == "completed"
    });
    let metrics = served.get("/metrics");
    promtool_accepts(&metrics);
    let labels = r#"flow="main",node="meter""#;
    for sample in [
        format!("torvyn_component_elements_total{{{labels},kind=\"even\"}} 10"),
        format!("torvyn_component_elements_total{{{labels},kind=\"odd\"}} 2"),
        format!("torvyn_component_last_size_bytes{{{labels}}} 7.0"),
        format!("torvyn_component_size_bytes_bucket{{{labels},le=\"6\"}} 10"),
        format!("torvyn_component_size_bytes_bucket{{{labels},le=\"16\"}} 12"),
        format!("torvyn_component_size_bytes_bucket{{{labels},le=\"+Inf\"}} 12"),
        format!("torvyn_component_size_bytes_sum{{{labels}}} 74.0"),
        format!("torvyn_component_size_bytes_count{{{labels}}} 12"),
        "# HELP torvyn_component_elements_total Elements seen, by the parity of their length"
            .into(),
    ] {
        assert!(metrics.contains(&sample), "no {sample} in\n{metrics}");
    }
    // A histogram's `+Inf` bucket holds every value, as its count does: the host's
    // own call histograms too.
    let calls = "torvyn_node_call_duration_seconds";
    let count = samples(&metrics, &format!("{calls}_count"));
    let all = samples(&metrics, &format!("{calls}_bucket"));
    let all: Vec<_> = (all.iter())
        .filter(|(labels, _)| labels.ends_with("le=\"+Inf\""))
        .collect();
    assert_eq!(all.len(), 3, "{metrics}");
    for ((_, every), (_, counted)) in all.iter().zip(&count) {
        assert_eq!(every, counted, "{metrics}");
    }
}

#[test]
fn a_component_that_keeps_metrics_needs_the_grant() {
    let run = metered("{ stdout = true }").command(&["link"]).failure();
    assert!(
        run.stderr.contains("needs `metrics` but is not granted it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[components.meter.capabilities] metrics = true"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_otlp_collector_receives_the_component_counters_and_gauges() {
    let collector = Collector::start();
    let args = ["--otlp-endpoint", collector.endpoint.as_str()];
    metered("{ metrics = true }").run(&args).success();
    let metrics = collector.metrics();
    let point = |name: &str, labels: &str| metrics.get(&(name.to_owned(), labels.to_owned()));
    let elements = "torvyn.component.elements";
    assert_eq!(
        point(elements, "flow=main,kind=even,node=meter"),
        Some(&10.0),
        "{metrics:?}"
    );
    assert_eq!(point(elements, "flow=main,kind=odd,node=meter"), Some(&2.0));
    assert_eq!(
        point("torvyn.component.last_size", "flow=main,node=meter"),
        Some(&7.0)
    );
}

#[test]
fn only_a_component_that_keeps_metrics_imports_them() {
    // Built with the same SDK, whose guest world names the interface: no grant needed.
    let plain = Guest::Upper.inspected();
    assert!(plain.contains("torvyn:streaming/types@0.1.0"), "{plain}");
    assert!(!plain.contains("torvyn:runtime"), "{plain}");
    let metered = Guest::Metrics.inspected();
    assert!(
        metered.contains("torvyn:runtime/metrics@0.1.0"),
        "{metered}"
    );
}
