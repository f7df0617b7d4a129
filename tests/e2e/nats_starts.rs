//! NATS connectors that cannot work as declared: refused at their start, naming why,
//! rather than failing elements later or waiting forever. A stream that differs from the
//! manifest, a sink subject its stream does not capture, a port that never speaks NATS.

use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream;

use crate::connectors::{Running, project};
use crate::nats::{Nats, work_queue, work_queue_body};
use crate::support::{Run, torvyn};

#[test]
fn a_manifest_that_disagrees_with_an_existing_stream_is_refused_naming_the_field() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::Limits);
    let flow = work_queue(&nats, "retention = \"work-queue\"");
    let run = flow.run(&[]).failure();
    assert!(
        run.stderr.contains("retention `limits`") && run.stderr.contains("`work-queue`"),
        "{}",
        run.stderr
    );
    let body = work_queue_body(&nats, "retention = \"limits\"");
    let flow = project(&body.replace(r#"["work.>"]"#, r#"["other.>"]"#));
    let run = flow.run(&[]).failure();
    assert!(run.stderr.contains("captures subjects"), "{}", run.stderr);
}

#[test]
fn a_sink_subject_its_stream_does_not_capture_is_refused_at_the_start_naming_both() {
    let Some(nats) = Nats::start() else { return };
    nats.create_stream("RESULTS", &["results.>"], stream::RetentionPolicy::Limits);
    let flow = |sink: &str| {
        project(&format!(
            r#"
[sources.lines]
type = "stdin"

[sinks.results]
type = "nats"
url = "{}"
{sink}

[flows.main]
nodes = ["lines", "results"]
edges = [{{ from = "lines", to = "results" }}]
"#,
            nats.url
        ))
    };
    // Standard input is empty: the flow ends at once, unless its start is refused.
    let run = flow("subject = \"nowhere.x\"\nstream = \"RESULTS\"")
        .run(&[])
        .failure();
    let expected = "JetStream stream `RESULTS` does not capture subject `nowhere.x` (it \
                    captures [\"results.>\"])";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    // A subject it captures, one set per element, and a sink that names no stream (its
    // subject may be stored through an import or a mapping): the start goes on.
    for sink in [
        "subject = \"results.x\"\nstream = \"RESULTS\"",
        "subject-attribute = \"route\"\nstream = \"RESULTS\"",
        "subject = \"nowhere.x\"",
    ] {
        flow(sink).run(&[]).success();
    }
}

#[test]
fn a_url_that_accepts_and_never_speaks_nats_fails_the_start_instead_of_hanging() {
    // A port that accepts connections and says nothing, as an HTTP port does to a client
    // waiting for a NATS greeting.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let flow = project(&format!(
        r#"
[sources.work]
type = "nats"
url = "nats://127.0.0.1:{port}"
stream = "WORK"

[sinks.out]
type = "stdout"

[flows.main]
nodes = ["work", "out"]
edges = [{{ from = "work", to = "out" }}]
"#
    ));
    let mut host = Running::spawned(
        torvyn()
            .args(["torvyn", "run", "--manifest-path"])
            .arg(flow.write_manifest())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // It used to wait for the greeting forever: a minute is a hang.
    let deadline = Instant::now() + Duration::from_secs(60);
    while host.child().try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the start hangs");
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::from(host.wait_with_output()).failure();
    assert!(run.stderr.contains("no NATS greeting"), "{}", run.stderr);
}
