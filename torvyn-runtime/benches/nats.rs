//! `cargo bench -p torvyn-runtime --bench nats`: NATS JetStream → an upper-casing
//! processor → NATS JetStream, as a flow of the `nats` connectors and a native processor,
//! beside a plain `async-nats` loop doing the same work over the same server in the same
//! run: pull a batch, upper-case each payload, publish it and wait for the stream's
//! acknowledgements, then acknowledge the batch. Elements per second;
//! `docs/performance.md` reads them. Needs `nats-server` (Debian's, 2.9) on the `PATH`:
//! without it the benchmark says so and measures nothing.

mod support;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use torvyn_runtime::{
    ConnectorSpec, HostOptions, NatsSinkSpec, NatsSourceSpec, Retention, RunOptions, SinkSubject,
    StageBody, StreamSpec,
};

use support::{Work, flow, native_processor, stage};

/// Messages per measured run, each [`SIZE`] bytes.
const MESSAGES: usize = 10_000;
const SIZE: usize = 64;
/// Messages a pull request (of the flow and of the plain loop) asks for.
const BATCH: usize = 256;

/// The server, stopped when dropped, and its store, removed after it.
struct Server {
    child: Child,
    _store: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `nats-server` with JetStream on a free loopback port, and its URL.
fn start_server() -> Option<(Server, String)> {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = Server { child, _store: dir };
    Some((server, format!("nats://{address}")))
}

fn stream_spec(name: &str, subject: &str, retention: Retention) -> StreamSpec {
    StreamSpec {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        subjects_set: true,
        retention,
        retention_set: true,
    }
}

/// Fills work stream `work` (subject the same in lower case) with [`MESSAGES`] messages
/// and empties the output stream. Each contender has a work stream of its own: a
/// work-queue stream takes one consumer.
async fn refill(context: &jetstream::Context, work: &str) {
    let config = |name: &str, subject: &str, retention| stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        retention,
        ..Default::default()
    };
    let subject = work.to_lowercase();
    let work = config(work, &subject, stream::RetentionPolicy::WorkQueue);
    context.get_or_create_stream(work).await.unwrap();
    let out = config("OUT", "out", stream::RetentionPolicy::Limits);
    let mut out = context.get_or_create_stream(out).await.unwrap();
    out.purge().await.unwrap();
    let payload = bytes::Bytes::from(vec![b'x'; SIZE]);
    let mut acks = Vec::with_capacity(BATCH);
    for _ in 0..MESSAGES {
        acks.push(
            context
                .publish(subject.clone(), payload.clone())
                .await
                .unwrap(),
        );
        if acks.len() == BATCH {
            for ack in acks.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    assert_eq!(out.info().await.unwrap().state.messages, 0);
}

/// The plain loop: every message pulled, upper-cased, published and stored, then
/// acknowledged.
async fn plain_loop(url: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let context = jetstream::new(client.clone());
    let work = context.get_stream("PLAIN").await.unwrap();
    let consumer = work
        .get_or_create_consumer(
            "plain",
            consumer::pull::Config {
                durable_name: Some("plain".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut done = 0;
    while done < MESSAGES {
        let mut batch = consumer
            .batch()
            .max_messages(BATCH)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .unwrap();
        let mut taken = Vec::with_capacity(BATCH);
        let mut stored = Vec::with_capacity(BATCH);
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let upper = message.payload.to_ascii_uppercase();
            stored.push(context.publish("out", upper.into()).await.unwrap());
            taken.push(message);
        }
        for ack in stored {
            ack.await.unwrap();
        }
        for message in &taken {
            message.ack().await.unwrap();
        }
        done += taken.len();
    }
    client.flush().await.unwrap();
}

fn work_queue(c: &mut Criterion) {
    let Some((_server, url)) = start_server() else {
        eprintln!("nats: skipped, nats-server is not installed (apt-get install nats-server)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let context =
        runtime.block_on(async { jetstream::new(async_nats::connect(&url).await.unwrap()) });
    let mut group = c.benchmark_group("nats/work-queue");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(10);

    group.bench_function("plain-async-nats", |b| {
        b.iter_custom(|iterations| {
            let mut took = Duration::ZERO;
            for _ in 0..iterations {
                runtime.block_on(refill(&context, "PLAIN"));
                let began = Instant::now();
                runtime.block_on(plain_loop(&url));
                took += began.elapsed();
            }
            took
        });
    });

    let host = support::host(HostOptions::default());
    let source = ConnectorSpec::NatsSource(NatsSourceSpec {
        url: url.clone(),
        stream: stream_spec("FLOW", "flow", Retention::WorkQueue),
        consumer: "flow".into(),
        ack_wait: None,
        max_deliver: None,
        pull_batch: BATCH as u32,
        pull_expires: Duration::from_secs(1),
    });
    let sink = ConnectorSpec::NatsSink(NatsSinkSpec {
        url: url.clone(),
        subject: SinkSubject::Fixed("out".into()),
        stream: Some(stream_spec("OUT", "out", Retention::Limits)),
    });
    // The flow's own runtime is the one the CLI's `run` uses: several threads.
    group.bench_function("flow", |b| {
        b.iter_custom(|iterations| {
            let mut took = Duration::ZERO;
            for _ in 0..iterations {
                runtime.block_on(refill(&context, "FLOW"));
                let stages = vec![
                    stage("src", StageBody::Connector(source.clone()), String::new()),
                    native_processor(Work::Upper),
                    stage("out", StageBody::Connector(sink.clone()), String::new()),
                ];
                let options = RunOptions {
                    limit: Some(MESSAGES as u64),
                    ..RunOptions::default()
                };
                let began = Instant::now();
                let report = runtime.block_on(host.run(flow(stages), options)).unwrap();
                took += began.elapsed();
                assert_eq!(report.delivered, MESSAGES as u64);
            }
            took
        });
    });
    group.finish();
}

criterion_group!(benches, work_queue);
criterion_main!(benches);
