//! Watching a running host: Prometheus `/metrics` (checked by the real `promtool`), the
//! inspection API, and backpressure named on the edge that causes it.
//!
//! The `promtool` check needs Debian's `prometheus` package. Without it the check is
//! skipped with a message, unless `TORVYN_TEST_REQUIRE_PROMTOOL` is set, as `.ci/run` sets
//! it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Guest, TestProject, installed};

/// `cargo torvyn run --listen 127.0.0.1:0` in the background, and where it serves.
pub(crate) struct Served {
    child: Child,
    address: String,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    pub(crate) fn start(project: &TestProject, args: &[&str]) -> Served {
        let args = [&["--listen", "127.0.0.1:0"], args].concat();
        let mut child = (project.run_command(&args))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo-torvyn runs");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut address = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            stderr.lock().unwrap().push_str(&(line.clone() + "\n"));
            if let Some(served) = line.trim().strip_prefix("Serving http://") {
                address = served.split('/').next().map(str::to_owned);
                break;
            }
        }
        let Some(address) = address else {
            panic!("no `Serving` line: {}", stderr.lock().unwrap());
        };
        // Keep reading, so that the run never blocks on a full pipe.
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Served {
            child,
            address,
            stderr,
        }
    }

    pub(crate) fn get(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.address);
        let mut response = ureq::get(&url)
            .call()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        response.body_mut().read_to_string().unwrap()
    }

    fn json(&self, path: &str) -> Value {
        serde_json::from_str(&self.get(path)).unwrap()
    }

    /// The status of a `POST` to `path`.
    fn post(&self, path: &str) -> u16 {
        let url = format!("http://{}{path}", self.address);
        match ureq::post(&url).send_empty() {
            Ok(response) => response.status().as_u16(),
            Err(ureq::Error::StatusCode(status)) => status,
            Err(error) => panic!("{url}: {error}"),
        }
    }

    /// `GET /flows/main` until `ready` holds for it.
    pub(crate) fn wait_for(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = format!("http://{}/flows/main", self.address);
            // The flow publishes its first figures once it runs: a 503 until then.
            if let Ok(mut response) = ureq::get(&url).call() {
                let text = response.body_mut().read_to_string().unwrap();
                let flow: Value = serde_json::from_str(&text).unwrap();
                if ready(&flow) {
                    return flow;
                }
                assert!(Instant::now() < deadline, "waited for {what}: {flow}");
            }
            assert!(Instant::now() < deadline, "waited for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn edge<'a>(flow: &'a Value, from: &str, to: &str) -> &'a Value {
    (flow["report"]["edges"].as_array().unwrap().iter())
        .find(|e| e["from"] == from && e["to"] == to)
        .unwrap_or_else(|| panic!("no edge {from} -> {to} in {flow}"))
}

/// `(labels, value)` of each sample of `name` in a Prometheus text exposition.
pub(crate) fn samples<'a>(metrics: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    (metrics.lines())
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .map(|rest| {
            let (labels, value) = rest.split_once("} ").unwrap();
            (labels, value.parse().unwrap())
        })
        .collect()
}

/// What `cargo torvyn ARGS` printed on stdout; it must succeed.
fn succeeds(args: &[&str]) -> String {
    let output = crate::support::torvyn()
        .arg("torvyn")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// `promtool check metrics` on `metrics`: it must accept them, lint included.
pub(crate) fn promtool_accepts(metrics: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let require = "TORVYN_TEST_REQUIRE_PROMTOOL";
    let Some(mut child) = installed(spawned, "promtool", "prometheus", require) else {
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool refused the metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_pausing_sinks_input_edge_is_named_blocked_with_its_depth_in_the_api_and_metrics() {
    // The sink takes one element and asks for a pause that lasts an hour: the queue into it
    // fills and holds `up` back, while the source is paused by its own full queue.
    let project = TestProject::pausing_sink(8, "1h");
    let served = Served::start(&project, &[]);
    // Then nothing moves: wait for a snapshot of that state (one taken while the source
    // was still filling its queue would not be).
    let flow = served.wait_for("the queue into the sink to hold `up` back", |flow| {
        let into_sink = edge(flow, "up", "out");
        into_sink["depth"] == 8
            && into_sink["blocked_ns"].as_u64().unwrap() > 0
            && flow["report"]["nodes"][0]["pauses"] == 1
    });
    let report = &flow["report"];
    assert_eq!(report["outcome"], "running");
    let from_source = edge(&flow, "src", "up");
    assert_eq!(from_source["depth"], 64);
    assert_eq!(from_source["blocked_ns"], 0);
    let sink = &report["nodes"][2];
    assert_eq!(sink["name"], "out");
    assert_eq!(sink["delivered"], 1);
    assert_eq!(sink["pauses"], 1);
    assert_eq!(report["nodes"][0]["pauses"], 1);

    let metrics = served.get("/metrics");
    assert!(
        metrics.contains(r#"torvyn_edge_queue_depth{flow="main",from="up",to="out"} 8"#),
        "{metrics}"
    );
    let blocked = samples(&metrics, "torvyn_edge_blocked_seconds_total");
    let (most, seconds) = (blocked.iter()).max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(*most, r#"flow="main",from="up",to="out""#, "{blocked:?}");
    assert!(*seconds > 0.0);
    assert!(
        metrics.contains(r#"torvyn_node_call_duration_seconds_count{flow="main",node="up"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"torvyn_edge_dropped_total{flow="main",from="up",to="out",overflow="block"} 0"#
        ),
        "{metrics}"
    );
    // Buffer reuse by tier: these payloads take the 256-byte tier, and are reused.
    let hits = samples(&metrics, "torvyn_flow_buffer_pool_hits_total");
    let tiers: Vec<_> = hits.iter().map(|(labels, _)| *labels).collect();
    assert_eq!(
        tiers,
        ["256", "4096", "65536", "1048576", "larger"].map(|t| format!(r#"flow="main",tier="{t}""#))
    );
    assert!(
        hits[0].1 > 0.0 && hits[1..].iter().all(|(_, n)| *n == 0.0),
        "{hits:?}"
    );
    promtool_accepts(&metrics);

    // `top` names the same queue, and the sink behind it.
    let frame = succeeds(&["top", &served.address, "--once", "--interval", "300ms"]);
    assert!(frame.contains("flow `main`: running"), "{frame}");
    assert!(
        frame.contains("Bottleneck: `out`. Its input queue up → out was full"),
        "{frame}"
    );

    // `inspect` shows the same state as text.
    let text = succeeds(&["inspect", &format!("http://{}", served.address)]);
    assert!(text.contains("flow main: running after"), "{text}");
    assert!(text.contains("queue up -> out: 8/8 held"), "{text}");
    assert!(
        text.contains("queue src -> up: 64/64 held, 0.000s blocked"),
        "{text}"
    );
}

#[test]
fn the_inspection_api_lists_pauses_resumes_and_cancels_a_flow() {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 100000000}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#);
    let events = tempfile::NamedTempFile::new().unwrap();
    let mut served = Served::start(&project, &["--events", events.path().to_str().unwrap()]);
    served.wait_for("elements", |flow| {
        flow["report"]["emitted"].as_u64() > Some(0)
    });
    let listed = served.json("/flows");
    assert_eq!(listed["flows"][0]["name"], "main");
    assert_eq!(listed["flows"][0]["outcome"], "running");

    assert_eq!(served.post("/flows/main/pause"), 200);
    served.wait_for("the pause", |flow| flow["paused"] == true);
    // The flow stops between two elements, having published what it did.
    std::thread::sleep(Duration::from_millis(300));
    let before = served.json("/flows/main")["report"]["emitted"].clone();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(served.json("/flows/main")["report"]["emitted"], before);

    assert_eq!(served.post("/flows/main/resume"), 200);
    served.wait_for("the flow to go on", |flow| {
        flow["paused"] == false && flow["report"]["emitted"].as_u64() > before.as_u64()
    });
    assert_eq!(served.post("/flows/nope/pause"), 404);
    assert_eq!(served.post("/flows/main/explode"), 404);

    // Cancelled while paused: the pause ends once, and the flow drains and ends.
    assert_eq!(served.post("/flows/main/pause"), 200);
    served.wait_for("the second pause", |flow| flow["paused"] == true);
    assert_eq!(served.post("/flows/main/cancel"), 200);
    let status = served.child.wait().unwrap();
    let stderr = served.stderr.lock().unwrap().clone();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("stopped by a signal or the inspection API"),
        "{stderr}"
    );
    assert!(stderr.contains("Paused flow `main`"), "{stderr}");
    assert!(stderr.contains("Resumed flow `main`"), "{stderr}");
    // The same events, and the flow's start and end, in the events file.
    let (events, kinds) = crate::support::events(&events);
    assert_eq!(
        kinds,
        ["started", "paused", "resumed", "paused", "resumed", "ended"]
    );
    assert_eq!(events[5]["outcome"], "cancelled");
    assert_eq!(events[5]["error"], Value::Null);
}

#[test]
fn a_flow_stuck_in_a_call_is_shown_inside_it() {
    // The processor spins in its first call, for up to the 30 s it is allowed.
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 5}"#)
        .component("spin", Guest::Hostile, r#"{"mode": "loop"}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .set("spin", "limits", r#"{ invocation-time = "30s" }"#);
    let served = Served::start(&project, &[]);
    let flow = served.wait_for("the call to run for a second", |flow| {
        flow["in_call"]["for_ms"].as_u64() >= Some(1000)
    });
    assert_eq!(flow["in_call"]["node"], "spin");
    // `top` finds the host where the `listen` setting says.
    let listen = format!("listen={}", served.address);
    let frame = succeeds(&["top", "--config", &listen, "--once", "--interval", "200ms"]);
    assert!(
        frame.contains("Stuck: `spin` has been inside one call for"),
        "{frame}"
    );
    let text = succeeds(&["inspect", &format!("http://{}", served.address)]);
    assert!(text.contains("inside a call of node spin for"), "{text}");
}

#[test]
fn connectors_are_nodes_with_their_own_figures_in_the_api_and_metrics() {
    let project = TestProject::new().manifest(
        r#"[project]
name = "watched"

[sources.logs]
type = "file"
include = ["*.log"]
follow = true

[sinks.out]
type = "file"
path = "out.txt"

[flows.main]
nodes = ["logs", "out"]
edges = [{ from = "logs", to = "out" }]
"#,
    );
    std::fs::write(project.dir().join("a.log"), "one\ntwo\nthree\n").unwrap();
    let served = Served::start(&project, &[]);
    let flow = served.wait_for("three lines settled", |flow| {
        flow["report"]["nodes"][0]["connector"]["settled"] == 3
    });
    let sink = &flow["report"]["nodes"][1];
    assert_eq!(sink["delivered"], 3);
    assert_eq!(sink["connector"]["kind"], "file");
    assert_eq!(sink["connector"]["bytes"], 14);
    let metrics = served.get("/metrics");
    for sample in [
        r#"torvyn_connector_settled_total{flow="main",node="logs",type="file"} 3"#,
        r#"torvyn_connector_transferred_bytes_total{flow="main",node="logs",type="file"} 14"#,
        r#"torvyn_connector_transferred_bytes_total{flow="main",node="out",type="file"} 14"#,
        r#"torvyn_connector_files_made_again_total{flow="main",node="out",type="file"} 0"#,
        r#"torvyn_node_delivered_total{flow="main",node="out"} 3"#,
    ] {
        assert!(metrics.contains(sample), "no {sample} in\n{metrics}");
    }
    promtool_accepts(&metrics);
}

#[test]
fn nats_connectors_show_acknowledgements_lag_and_duplicates_in_the_api_metrics_top_and_inspect() {
    use async_nats::jetstream::stream::RetentionPolicy;
    let Some(nats) = crate::nats::Nats::start() else {
        return;
    };
    nats.create_stream("WORK", &["work.>"], RetentionPolicy::WorkQueue);
    nats.publish("work.items", (0..5).map(|i| format!("n {i}")));
    let project = TestProject::new().manifest(&format!(
        r#"[project]
name = "watched"

[sources.work]
type = "nats"
url = "{url}"
stream = "WORK"

[sinks.results]
type = "nats"
url = "{url}"
subject = "results"
stream = "RESULTS"

[flows.main]
nodes = ["work", "results"]
edges = [{{ from = "work", to = "results" }}]
"#,
        url = nats.url
    ));
    let served = Served::start(&project, &[]);
    let flow = served.wait_for("five messages acknowledged", |flow| {
        flow["report"]["nodes"][0]["connector"]["acks"] == 5
    });
    assert_eq!(flow["report"]["nodes"][1]["connector"]["kind"], "nats");
    let metrics = served.get("/metrics");
    for sample in [
        r#"torvyn_connector_acks_total{flow="main",node="work",type="nats"} 5"#,
        r#"torvyn_connector_redelivered_total{flow="main",node="work",type="nats"} 0"#,
        r#"torvyn_connector_duplicates_total{flow="main",node="results",type="nats"} 0"#,
        r#"torvyn_connector_naks_total{flow="main",node="work",type="nats"} 0"#,
        r#"torvyn_connector_progress_acks_total{flow="main",node="work",type="nats"} 0"#,
        r#"torvyn_connector_transient_errors_total{flow="main",node="work",type="nats"} 0"#,
    ] {
        assert!(metrics.contains(sample), "no {sample} in\n{metrics}");
    }
    // The lag is read once a second: everything was delivered, so it comes to 0.
    assert!(
        samples(&metrics, "torvyn_connector_lag")
            .iter()
            .any(|(labels, _)| labels.contains(r#"node="work""#)),
        "{metrics}"
    );
    promtool_accepts(&metrics);
    let frame = succeeds(&["top", &served.address, "--once", "--interval", "200ms"]);
    assert!(
        frame.contains("work (nats):") && frame.contains("5 messages acknowledged"),
        "{frame}"
    );
    let text = succeeds(&["inspect", &format!("http://{}", served.address)]);
    assert!(
        text.contains("nats connector:") && text.contains("5 messages acknowledged"),
        "{text}"
    );
}

#[test]
fn serve_after_keeps_the_final_figures_up_until_stopped() {
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 5}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#);
    let mut served = Served::start(&project, &["--serve-after"]);
    let flow = served.wait_for("the flow to end", |flow| {
        flow["report"]["outcome"] == "completed"
    });
    assert_eq!(flow["report"]["delivered"], 5);
    // Ended, and still served.
    std::thread::sleep(Duration::from_millis(300));
    let metrics = served.get("/metrics");
    assert!(
        metrics.contains(r#"torvyn_flow_delivered_total{flow="main"} 5"#),
        "{metrics}"
    );
    assert!(
        served
            .stderr
            .lock()
            .unwrap()
            .contains("Serving the final figures"),
        "{}",
        served.stderr.lock().unwrap()
    );
    let pid = served.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = served.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_api_is_served_on_a_unix_socket_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 5}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#);
    let socket = project.dir().join("host.sock");
    let listen = format!("unix:{}", socket.display());
    let mut child = project
        .run_command(&["--listen", &listen, "--serve-after"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut served = lines.by_ref().map_while(Result::ok);
    assert!(served.any(|line| line.contains("Serving the final figures")));
    // Kept reading, so that the host never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let inspected = succeeds(&["inspect", &listen, "--message-format", "json"]);
    let inspected: Value = serde_json::from_str(inspected.lines().next().unwrap()).unwrap();
    assert_eq!(
        inspected["flows"][0]["report"]["delivered"], 5,
        "{inspected}"
    );
    let top = succeeds(&["top", &listen, "--once", "--interval", "10ms"]);
    assert!(top.contains("main"), "{top}");
    // A second host cannot take a socket one answers on.
    let second = project.run(&["--listen", &listen]);
    assert_eq!(second.code, Some(1));
    assert!(
        second.stderr.contains("a host is serving there"),
        "{}",
        second.stderr
    );
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
