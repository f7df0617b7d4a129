//! NATS connectors at the server's limits, at a source's close and with its consumer
//! deleted under it: a message too large for the server, a subject too long for its
//! protocol lines, messages given back by a flow that stops early, a consumer gone. Each
//! costs its own element at most, never the messages beside it, and none leaves a flow
//! idling without a word.

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::stream;

use crate::connectors::project;
use crate::nats::{Nats, connector, hosts, numbered, wait_until_held, work_queue};
use crate::nats_ids::file_to_nats;
use crate::support::{Run, count};

#[test]
fn an_element_larger_than_the_servers_max_payload_fails_at_once_and_the_others_go_on() {
    let Some(nats) = Nats::start() else { return };
    // nats-server's `max_payload` is 1 MiB unless configured: the second line is past it.
    let long = "x".repeat(1_100_000);
    let flow = file_to_nats(
        &nats,
        r#"max-element-size = "2 MiB""#,
        r#"on-error = { results = "skip" }"#,
        &format!("first\n{long}\nlast\n"),
    );
    let run = flow.run(&[]).success();
    let reasons = [
        "invalid input: the message is ",
        " B (1100000 B of payload and ",
        " B of headers), over the server's `max_payload` of 1048576 B (1.0 MiB)",
    ];
    failed_alone(&nats, &run, &reasons, &["first", "last"]);
}

/// Checks that `run` failed one element, for the `reasons` its messages give, before the
/// sink `results` sent it: the server never closed the connection on it, nothing was
/// published again, and the messages beside it reached `RESULTS`, which holds `delivered`.
fn failed_alone(nats: &Nats, run: &Run, reasons: &[&str], delivered: &[&str]) {
    for reason in reasons {
        assert!(
            run.stderr.contains(reason),
            "no `{reason}` in {}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("lost its connection"),
        "{}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(connector(&report, "results")["transient-errors"], 0);
    assert_eq!(count(&report, "failed"), 1);
    assert_eq!(nats.messages("RESULTS"), delivered);
}

#[test]
fn a_subject_longer_than_a_server_reads_fails_its_element_alone() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    let long = format!("results.{}", "x".repeat(5000));
    for (i, target) in ["results.first", &long, "results.last"]
        .into_iter()
        .enumerate()
    {
        let target = target.to_owned();
        nats.with(|js| async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Target", target.as_str());
            let payload = format!("m{i}").into();
            let ack = js.publish_with_headers(format!("work.{i}"), headers, payload);
            ack.await.unwrap().await.unwrap();
        });
    }
    let flow = project(&format!(
        r#"
[sources.work]
type = "nats"
url = "{url}"
stream = "WORK"

[sinks.results]
type = "nats"
url = "{url}"
subject-attribute = "header.Target"
stream = "RESULTS"
subjects = ["results.>"]

[flows.main]
nodes = ["work", "results"]
edges = [{{ from = "work", to = "results" }}]
on-error = {{ results = "skip" }}
"#,
        url = nats.url
    ));
    let mut running = hosts(&flow, 1);
    wait_until_held(&nats, &mut running, "RESULTS", 2);
    let run = running.remove(0).terminate().success();
    // The server's protocol lines are at most 4 KiB: sent, it would have closed the
    // connection, and the messages beside it would have failed too.
    let reasons =
        ["attribute `header.Target` is a subject of 5008 bytes; a subject is at most 3968"];
    failed_alone(&nats, &run, &reasons, &["m0", "m2"]);
}

#[test]
fn a_flow_stopped_by_its_limit_gives_back_what_it_held_for_one_delivery_each() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..10));
    let flow = project(&format!(
        r#"
[sources.work]
type = "nats"
url = "{}"
stream = "WORK"
max-deliver = 2

[sinks.out]
type = "file"
path = "out.txt"

[flows.main]
nodes = ["work", "out"]
edges = [{{ from = "work", to = "out" }}]
"#,
        nats.url
    ));
    let first = flow.run(&["--limit", "2"]).success();
    let work = connector(&first.report(), "work").clone();
    assert_eq!(work["acks"], 2, "{work:#}");
    assert_eq!(work["naks"], 8, "{work:#}");
    // Each message given back used one of its two deliveries: the next run has them all.
    let next = flow.run(&["--limit", "8", "--timeout", "30s"]).success();
    assert_eq!(count(&next.report(), "delivered"), 8, "{}", next.stderr);
    assert_eq!(nats.held("WORK"), 0);
}

#[test]
fn a_consumer_deleted_under_a_running_flow_fails_it_naming_the_consumer() {
    let Some(run) = consumer_changed_under_a_flow(false) else {
        return;
    };
    let why = "JetStream consumer `torvyn-main-work` of stream `WORK` was deleted under the flow";
    assert!(run.stderr.contains(why), "{}", run.stderr);
}

#[test]
fn a_consumer_made_again_under_a_running_flow_fails_it_rather_than_read_from_it() {
    // Made again at once, as another host's start would: the new consumer would deliver
    // the stream from its start.
    let Some(run) = consumer_changed_under_a_flow(true) else {
        return;
    };
    let why = "JetStream consumer `torvyn-main-work` of stream `WORK` was deleted";
    assert!(run.stderr.contains(why), "{}", run.stderr);
}

/// Runs a flow from a work queue of 5 messages until they are stored, then deletes its
/// consumer (and makes it again, when `again`): the run, which must end by itself,
/// failed, having stored nothing more; `None` without a NATS server.
fn consumer_changed_under_a_flow(again: bool) -> Option<Run> {
    let nats = Nats::start()?;
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
    nats.publish("work.items", numbered(0..5));
    let flow = work_queue(&nats, "");
    let mut running = hosts(&flow, 1);
    wait_until_held(&nats, &mut running, "RESULTS", 5);
    nats.with(|js| async move {
        let stream = js.get_stream("WORK").await.unwrap();
        let config = stream
            .get_consumer::<pull::Config>("torvyn-main-work")
            .await;
        let config = config.unwrap().cached_info().config.clone();
        stream.delete_consumer("torvyn-main-work").await.unwrap();
        if again {
            stream.create_consumer(config).await.unwrap();
        }
    });
    // It ends by itself: its pull requests would fail, or read a new consumer from the
    // stream's start, for as long as it ran.
    let mut host = running.remove(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while host.child().try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the host runs on");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(nats.held("RESULTS"), 5);
    Some(Run::from(host.wait_with_output()).failure())
}
