//! The NATS JetStream connectors through the real CLI, against a real `nats-server` (Debian
//! packages 2.9.10) started on a free loopback port with its store in a temporary folder:
//! several hosts sharing one durable consumer, hosts killed and stopped in the middle,
//! and what the server holds at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::connectors::{Running, project};
use crate::registry::block_on;
use crate::support::{
    Run, TestProject, count, free_port, installed, node, run_json, wait_until_listening,
};

/// A `nats-server` with JetStream on loopback, stopped when dropped.
pub(crate) struct Nats {
    child: Child,
    pub(crate) url: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    /// Starts a server; `None` when `nats-server` is not installed and the tests do not
    /// require it (`TORVYN_TEST_REQUIRE_NATS`, set by CI).
    pub(crate) fn start() -> Option<Nats> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let spawned = spawn_server(dir.path(), port);
        let require = "TORVYN_TEST_REQUIRE_NATS";
        let child = installed(spawned, "nats-server", "nats-server", require)?;
        let mut nats = Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            dir,
        };
        nats.wait_until_listening();
        Some(nats)
    }

    fn wait_until_listening(&mut self) {
        let address = format!("127.0.0.1:{}", self.port);
        let log = self.dir.path().join("log");
        wait_until_listening(&mut self.child, "nats-server", &address, &log);
    }

    /// Waits (up to a minute) until consumer `name` of `stream` exists and has pull
    /// requests from at least `hosts` clients waiting: every host is ready for work.
    pub(crate) fn wait_for_hosts(&self, stream: &str, name: &str, hosts: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let waiting = self.with(|js| async move {
                let stream = js.get_stream(stream).await.ok()?;
                Some(stream.consumer_info(name).await.ok()?.num_waiting)
            });
            if waiting.is_some_and(|w| w >= hosts) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting:?} of {hosts} hosts wait for work"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and starts it again on the same port and store: what the
    /// clients see of a crashed and restarted server.
    pub(crate) fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn_server(self.dir.path(), self.port).unwrap();
        self.wait_until_listening();
    }

    /// Runs `work` with a JetStream context on this server.
    pub(crate) fn with<T, F: Future<Output = T>>(
        &self,
        work: impl FnOnce(jetstream::Context) -> F,
    ) -> T {
        block_on(async {
            let client = async_nats::connect(&self.url).await.unwrap();
            let context = jetstream::new(client.clone());
            let result = work(context).await;
            client.flush().await.unwrap();
            result
        })
    }

    /// Creates stream `name` capturing `subjects` with `retention`.
    pub(crate) fn create_stream(
        &self,
        name: &str,
        subjects: &[&str],
        retention: stream::RetentionPolicy,
    ) {
        let config = stream::Config {
            name: name.to_owned(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            retention,
            ..Default::default()
        };
        self.with(|js| async move { js.create_stream(config).await.unwrap() });
    }

    /// Publishes `payloads` to `subject`, each stored before the next.
    pub(crate) fn publish(&self, subject: &str, payloads: impl IntoIterator<Item = String>) {
        let payloads: Vec<String> = payloads.into_iter().collect();
        self.with(|js| async move {
            let mut acks = Vec::new();
            for payload in payloads {
                acks.push(
                    js.publish(subject.to_owned(), payload.into())
                        .await
                        .unwrap(),
                );
                if acks.len() == 256 {
                    for ack in acks.drain(..) {
                        ack.await.unwrap();
                    }
                }
            }
            for ack in acks {
                ack.await.unwrap();
            }
        });
    }

    /// Every message stream `name` holds, in order, as text.
    pub(crate) fn messages(&self, name: &str) -> Vec<String> {
        self.with(|js| async move {
            let stream = js.get_stream(name).await.unwrap();
            let held = stream.cached_info().state.messages as usize;
            let reader = stream
                // An ephemeral reader (a pull consumer of a 2.9 server must acknowledge,
                // or it gets no more than its max_ack_pending).
                .create_consumer(consumer::pull::Config::default())
                .await
                .unwrap();
            let mut messages = Vec::new();
            while messages.len() < held {
                let mut batch = reader.fetch().max_messages(1000).messages().await.unwrap();
                while let Some(message) = batch.next().await {
                    let message = message.unwrap();
                    message.ack().await.unwrap();
                    messages.push(String::from_utf8(message.payload.to_vec()).unwrap());
                }
            }
            messages
        })
    }

    /// How many messages stream `name` holds.
    pub(crate) fn held(&self, name: &str) -> u64 {
        self.with(|js| async move {
            let mut stream = js.get_stream(name).await.unwrap();
            stream.info().await.unwrap().state.messages
        })
    }

    /// Consumer `name` of stream `stream`: messages not yet delivered, and delivered and
    /// not yet acknowledged.
    pub(crate) fn pending(&self, stream: &str, name: &str) -> (u64, usize) {
        self.with(|js| async move {
            let stream = js.get_stream(stream).await.unwrap();
            let info = stream.consumer_info(name).await.unwrap();
            (info.num_pending, info.num_ack_pending)
        })
    }
}

/// `nats-server` with JetStream on `port`, its store and log in `dir`.
fn spawn_server(dir: &Path, port: u16) -> std::io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))?;
    Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("store"))
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// The source `work` reading stream `WORK` (subjects `work.>`, extra settings `source`)
/// and the sink `results` publishing to stream `RESULTS`, as the flows of these tests
/// name them.
fn connectors(nats: &Nats, source: &str) -> String {
    format!(
        r#"
[sources.work]
type = "nats"
url = "{url}"
stream = "WORK"
subjects = ["work.>"]
{source}

[sinks.results]
type = "nats"
url = "{url}"
subject = "results"
stream = "RESULTS"
"#,
        url = nats.url
    )
}

/// The work queue's messages go through `upper` to stream `RESULTS`: `WORK` (subjects
/// `work.>`) → `upper` → `RESULTS` (subject `results`), with extra source settings.
pub(crate) fn work_queue(nats: &Nats, source: &str) -> TestProject {
    project(&work_queue_body(nats, source))
}

/// The manifest of [`work_queue`] after its `[project]` table.
pub(crate) fn work_queue_body(nats: &Nats, source: &str) -> String {
    format!(
        r#"
[components.upper]
path = "{{upper}}"

{connectors}
[flows.main]
nodes = ["work", "upper", "results"]
edges = [{{ from = "work", to = "upper" }}, {{ from = "upper", to = "results" }}]
"#,
        connectors = connectors(nats, source)
    )
}

pub(crate) fn numbered(range: std::ops::Range<u32>) -> impl Iterator<Item = String> {
    range.map(|i| format!("n {i}"))
}

/// Starts `cargo torvyn run` of `flow` in the background, its JSON messages piped. The
/// manifest is written by [`hosts`], once for all of them: a host must never read it
/// while another start writes it.
pub(crate) fn host(manifest: &Path, args: &[&str]) -> Running {
    Running::spawned(
        run_json(manifest, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// `n` hosts running `flow`.
pub(crate) fn hosts(flow: &TestProject, n: usize) -> Vec<Running> {
    let manifest = flow.write_manifest();
    (0..n).map(|_| host(&manifest, &[])).collect()
}

/// Waits (up to two minutes) until stream `name` holds at least `n` messages, while
/// every host of `running` runs.
pub(crate) fn wait_until_held(nats: &Nats, running: &mut [Running], name: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for host in running.iter_mut() {
            if let Some(status) = host.child().try_wait().unwrap() {
                let mut stderr = String::new();
                let pipe = host.child().stderr.as_mut().unwrap();
                std::io::Read::read_to_string(pipe, &mut stderr).unwrap();
                panic!("a host ended ({status}) while waiting for {name}:\n{stderr}");
            }
        }
        let held = nats.with(|js| async move {
            match js.get_stream(name).await {
                Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
                Err(_) => 0,
            }
        });
        if held >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stream {name} holds {held} of {n} messages"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a host with SIGTERM and returns what it printed, with its exit code.
/// Every number of `0..n` appears in `messages` (`N 17`, as `upper` makes them) at least
/// once; how many appear more than once.
fn check_numbers(messages: &[String], n: u32) -> usize {
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for message in messages {
        let number = message.strip_prefix("N ").expect("an uppercased number");
        *seen.entry(number.parse().unwrap()).or_default() += 1;
    }
    let missing: Vec<u32> = (0..n).filter(|i| !seen.contains_key(i)).take(10).collect();
    assert!(missing.is_empty(), "numbers never delivered: {missing:?}…");
    seen.values().map(|&times| times - 1).sum()
}

pub(crate) fn connector<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &node(report, name)["connector"]
}

pub(crate) fn sum(reports: &[serde_json::Value], node: &str, key: &str) -> u64 {
    reports
        .iter()
        .map(|r| connector(r, node)[key].as_u64().unwrap())
        .sum()
}

#[test]
fn three_hosts_share_a_work_queue_and_a_graceful_stop_redelivers_nothing() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    let flow = work_queue(&nats, "pull-batch = 64");
    let mut hosts = hosts(&flow, 3);
    // Published once every host asks for work, so that each takes part.
    nats.wait_for_hosts("WORK", "torvyn-main-work", 3);
    nats.publish("work.items", numbered(0..10_000));
    wait_until_held(&nats, &mut hosts, "RESULTS", 3_000);
    // One host stops in the middle; the two others take the rest.
    let stopped = hosts.remove(0).terminate().success();
    wait_until_held(&nats, &mut hosts, "RESULTS", 10_000);
    let mut runs = vec![stopped];
    runs.extend(hosts.into_iter().map(|host| host.terminate().success()));
    let reports: Vec<serde_json::Value> = runs.iter().map(Run::report).collect();

    assert_eq!(check_numbers(&nats.messages("RESULTS"), 10_000), 0);
    assert_eq!(nats.held("RESULTS"), 10_000);
    assert_eq!(
        sum(&reports, "work", "redelivered"),
        0,
        "no message was delivered twice"
    );
    assert_eq!(sum(&reports, "work", "acks"), 10_000);
    assert_eq!(sum(&reports, "work", "naks"), 0);
    assert_eq!(sum(&reports, "results", "duplicates"), 0);
    let emitted: u64 = reports.iter().map(|r| count(r, "emitted")).sum();
    assert_eq!(emitted, 10_000);
    assert!(
        reports.iter().all(|r| count(r, "emitted") > 0),
        "every host took part: {:?}",
        reports
            .iter()
            .map(|r| count(r, "emitted"))
            .collect::<Vec<_>>()
    );
    assert_eq!(nats.held("WORK"), 0, "the work queue is empty");
    assert_eq!(nats.pending("WORK", "torvyn-main-work"), (0, 0));
    // The hosts stopped last saw the consumer with nothing left to deliver.
    for report in &reports[1..] {
        assert_eq!(connector(report, "work")["lag"], 0);
    }
}

#[test]
fn a_host_killed_in_the_middle_loses_nothing_and_its_redeliveries_are_bounded_and_not_stored_twice()
{
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..10_000));
    let flow = work_queue(&nats, "pull-batch = 64\nack-wait = \"2s\"");
    let mut hosts = hosts(&flow, 3);
    wait_until_held(&nats, &mut hosts, "RESULTS", 3_000);
    let mut killed = hosts.remove(0);
    killed.child().kill().unwrap();
    let _ = killed.child().wait();
    wait_until_held(&nats, &mut hosts, "RESULTS", 10_000);
    // What the killed host held comes back after the ack wait: the survivors run on
    // until the consumer has nothing left to deliver or to wait for.
    wait_until_done(&nats);
    let runs: Vec<Run> = hosts
        .into_iter()
        .map(|host| host.terminate().success())
        .collect();
    let reports: Vec<serde_json::Value> = runs.iter().map(Run::report).collect();

    assert_eq!(
        check_numbers(&nats.messages("RESULTS"), 10_000),
        0,
        "stored once each"
    );
    assert_eq!(nats.held("RESULTS"), 10_000);
    let redelivered = sum(&reports, "work", "redelivered");
    assert!(redelivered > 0, "the killed host held nothing");
    // The most a host holds: a pull request's messages (64), two queues of 64, an
    // element in `upper`, a batch in the sink's call and one whose acknowledgements were
    // on their way (32 each).
    let most_held = 64 + 2 * 64 + 1 + 2 * 32;
    assert!(redelivered <= most_held, "{redelivered} redelivered");
    let duplicates = sum(&reports, "results", "duplicates");
    assert!(
        duplicates <= redelivered,
        "{duplicates} duplicates of {redelivered}"
    );
    assert_eq!(nats.held("WORK"), 0, "the work queue is empty");
}

/// `WORK` → `upper` (configured with `config`, failing under `policy`) → `RESULTS`, with
/// extra source settings; a policy that dead-letters names `dead`, a NATS sink
/// publishing to `DEAD`.
fn with_policy(nats: &Nats, config: &str, policy: &str, source: &str) -> TestProject {
    let dead = match policy.contains("dead-letter") {
        true => format!(
            "[sinks.dead]\ntype = \"nats\"\nurl = \"{}\"\nsubject = \"dead\"\nstream = \"DEAD\"\n",
            nats.url
        ),
        false => String::new(),
    };
    let nodes = match dead.is_empty() {
        true => r#"["work", "upper", "results"]"#,
        false => r#"["work", "upper", "results", "dead"]"#,
    };
    project(&format!(
        r#"
[components.upper]
path = "{{upper}}"
config = '{config}'

{connectors}
{dead}
[flows.main]
nodes = {nodes}
edges = [{{ from = "work", to = "upper" }}, {{ from = "upper", to = "results" }}]
on-error = {{ upper = {policy} }}
"#,
        connectors = connectors(nats, source)
    ))
}

/// Runs one host of `flow` until `RESULTS` holds `results` messages and `DEAD` holds
/// `dead`, then stops it: its report.
fn run_until(nats: &Nats, flow: &TestProject, results: u64, dead: u64) -> serde_json::Value {
    let mut running = hosts(flow, 1);
    wait_until_held(nats, &mut running, "RESULTS", results);
    if dead > 0 {
        wait_until_held(nats, &mut running, "DEAD", dead);
    }
    running.remove(0).terminate().success().report()
}

/// The headers of every message stream `name` holds, in order.
fn headers(nats: &Nats, name: &str) -> Vec<BTreeMap<String, String>> {
    nats.with(|js| async move {
        let stream = js.get_stream(name).await.unwrap();
        let last = stream.cached_info().state.last_sequence;
        let mut all = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let headers = message.headers;
            let pairs = headers.iter().flat_map(|(name, values)| {
                let value = values.first().map(|v| v.as_str().to_owned());
                value.map(|v| (name.to_string(), v))
            });
            all.push(pairs.collect());
        }
        all
    })
}

#[test]
fn a_content_type_header_longer_than_a_component_may_give_keeps_its_media_type() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    for (subject, content_type) in [
        ("work.1", format!("text/csv; header={}", "x".repeat(9000))),
        ("work.2", "text/csv; header=present".to_owned()),
    ] {
        nats.with(|js| async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Type", content_type.as_str());
            let ack = js.publish_with_headers(subject, headers, "a,b".into());
            ack.await.unwrap().await.unwrap();
        });
    }
    let flow = project(&format!(
        "{}\n[flows.main]\nnodes = [\"work\", \"results\"]\nedges = [{{ from = \"work\", to = \"results\" }}]\n",
        connectors(&nats, "")
    ));
    let report = run_until(&nats, &flow, 2, 0);
    assert_eq!(connector(&report, "work")["acks"], 2);
    let written: Vec<String> = (headers(&nats, "RESULTS").into_iter())
        .map(|mut h| h.remove("Content-Type").unwrap())
        .collect();
    assert_eq!(written, ["text/csv", "text/csv; header=present"]);
}

#[test]
fn a_failed_element_is_acknowledged_under_skip() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..100).chain(["poison".to_owned()]));
    let config = r#"{"fail_payload": "poison"}"#;
    let report = run_until(&nats, &with_policy(&nats, config, r#""skip""#, ""), 100, 0);
    let work = connector(&report, "work");
    assert_eq!(work["acks"], 101);
    assert_eq!(work["failed"], 1);
    assert_eq!(work["naks"], 0);
    assert_eq!(count(&report, "failed"), 1);
    assert_eq!(nats.held("WORK"), 0, "the failed message was acknowledged");
    assert_eq!(nats.pending("WORK", "torvyn-main-work"), (0, 0));
}

#[test]
fn a_retried_element_is_given_back_and_comes_back_until_its_attempts_end_in_the_dead_letter_sink() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..100).chain(["poison".to_owned()]));
    let config = r#"{"fail_payload": "poison", "fail_kind": "unavailable"}"#;
    let policy = r#"{ retry = 2, backoff = "10ms", then = { dead-letter = "dead" } }"#;
    let report = run_until(&nats, &with_policy(&nats, config, policy, ""), 100, 1);
    let work = connector(&report, "work");
    // Delivered three times: the first attempt and two retries, each a delivery.
    assert_eq!(work["naks"], 2);
    assert_eq!(work["redelivered"], 2);
    assert_eq!(work["acks"], 101);
    assert_eq!(node(&report, "upper")["retries"], 2);
    let dead = headers(&nats, "DEAD");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["Torvyn-delivered"], "3");
    assert_eq!(dead[0]["Torvyn-subject"], "work.items");
    assert!(
        dead[0]["Content-Type"].contains("torvyn-error"),
        "{:?}",
        dead[0]
    );
    assert_eq!(nats.messages("DEAD"), ["poison"]);
    assert_eq!(nats.held("WORK"), 0);
    assert_eq!(nats.pending("WORK", "torvyn-main-work"), (0, 0));
}

#[test]
fn a_poison_message_stops_at_max_deliver_and_lands_in_the_dead_letter_sink_with_its_count() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..100).chain(["poison".to_owned()]));
    let config = r#"{"fail_payload": "poison", "fail_kind": "unavailable"}"#;
    let policy = r#"{ retry = 100, backoff = "1ms", then = { dead-letter = "dead" } }"#;
    let flow = with_policy(&nats, config, policy, "max-deliver = 4");
    let report = run_until(&nats, &flow, 100, 1);
    assert_eq!(connector(&report, "work")["naks"], 3);
    assert_eq!(headers(&nats, "DEAD")[0]["Torvyn-delivered"], "4");
    assert_eq!(nats.held("WORK"), 0, "acknowledged once dead-lettered");
}

/// `WORK` fanned out to the NATS sink `results` and to a test sink `slow` spinning
/// `spin_ms` per element, with extra source settings.
fn fan_out_to_slow(nats: &Nats, spin_ms: u64, source: &str) -> TestProject {
    let sink = crate::support::Guest::Sink.wasm().display().to_string();
    project(&format!(
        r#"
[components.slow]
path = "{sink}"
config = '{{"label": "slow", "spin_ms": {spin_ms}}}'

{connectors}
[flows.main]
nodes = ["work", "results", "slow"]
edges = [{{ from = "work", to = "results" }}, {{ from = "work", to = "slow" }}]
"#,
        connectors = connectors(nats, source)
    ))
}

/// Waits (up to a minute) until the work consumer has nothing left to deliver or to
/// wait for.
fn wait_until_done(nats: &Nats) {
    wait_until_consumed(nats, "WORK", "torvyn-main-work");
}

/// Waits (up to a minute) until consumer `name` of `stream` has nothing left to deliver
/// or to wait for.
pub(crate) fn wait_until_consumed(nats: &Nats, stream: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while nats.pending(stream, name) != (0, 0) {
        assert!(Instant::now() < deadline, "the consumer still has work");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The numbers the `slow` test sink printed.
fn slow_numbers(run: &Run) -> Vec<u32> {
    let delivered = run.delivered_to("slow");
    let numbers = delivered.iter().map(|(_, payload)| {
        let number = payload.strip_prefix("n ").expect("a numbered payload");
        number.parse().unwrap()
    });
    numbers.collect()
}

#[test]
fn messages_held_longer_than_half_the_ack_wait_are_reported_in_progress_and_not_redelivered() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..30));
    // 30 elements at 100 ms each in the slow sink: most wait longer than the ack wait.
    let flow = fan_out_to_slow(&nats, 100, "ack-wait = \"1s\"");
    let mut running = hosts(&flow, 1);
    wait_until_held(&nats, &mut running, "RESULTS", 30);
    wait_until_done(&nats);
    let run = running.remove(0).terminate().success();
    let work = connector(&run.report(), "work").clone();
    assert_eq!(work["redelivered"], 0, "{work:#}");
    assert!(work["progress-acks"].as_u64().unwrap() > 0, "{work:#}");
    assert_eq!(work["acks"], 30);
    assert_eq!(slow_numbers(&run), (0..30).collect::<Vec<_>>());
}

#[test]
fn a_host_killed_after_one_branch_delivered_and_before_the_other_did_gets_the_message_again() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..20));
    let flow = fan_out_to_slow(&nats, 200, "ack-wait = \"1s\"");
    let mut first = hosts(&flow, 1);
    // The fast branch has delivered every message; the slow one has not.
    wait_until_held(&nats, &mut first, "RESULTS", 20);
    let mut killed = first.remove(0);
    killed.child().kill().unwrap();
    let killed = Run::from(killed.wait_with_output());
    let before = slow_numbers(&killed);
    assert!(
        before.len() < 20,
        "the slow branch had delivered everything"
    );

    let mut second = hosts(&flow, 1);
    wait_until_done(&nats);
    let run = second.remove(0).terminate().success();
    let report = run.report();
    let after = slow_numbers(&run);
    let missed: Vec<u32> = (0..20).filter(|n| !before.contains(n)).collect();
    assert!(
        missed.iter().all(|n| after.contains(n)),
        "the slow branch never got {missed:?}: before {before:?}, after {after:?}"
    );
    let work = connector(&report, "work");
    assert!(
        work["redelivered"].as_u64().unwrap() >= missed.len() as u64,
        "{work:#}"
    );
    // The fast branch had stored them: stored again, they are duplicates, not copies.
    let results = connector(&report, "results");
    assert_eq!(results["duplicates"], work["redelivered"], "{results:#}");
    assert_eq!(nats.held("RESULTS"), 20);
}

#[test]
fn a_server_that_restarts_under_a_running_host_costs_retries_not_messages() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..2_000));
    let flow = work_queue(&nats, "pull-batch = 64\nack-wait = \"2s\"");
    let mut running = hosts(&flow, 1);
    wait_until_held(&nats, &mut running, "RESULTS", 500);
    nats.restart();
    nats.publish("work.items", numbered(2_000..3_000));
    wait_until_held(&nats, &mut running, "RESULTS", 3_000);
    wait_until_done(&nats);
    let run = running.remove(0).terminate().success();
    let report = run.report();
    assert_eq!(check_numbers(&nats.messages("RESULTS"), 3_000), 0);
    let work = connector(&report, "work");
    assert!(work["transient-errors"].as_u64().unwrap() > 0, "{work:#}");
    assert_eq!(nats.held("WORK"), 0);
    // Both connectors said they lost the server and found it again, as it happened.
    for node in ["work", "results"] {
        let lost = format!(
            "`{node}` of flow `main` lost its connection to {}",
            nats.url
        );
        let back = format!("Reconnected `{node}` of flow `main` to {}", nats.url);
        let (at_lost, at_back) = (run.stderr.find(&lost), run.stderr.find(&back));
        assert!(
            at_lost.is_some() && at_back > at_lost,
            "{node}: {}",
            run.stderr
        );
    }
}
