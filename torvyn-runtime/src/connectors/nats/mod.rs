//! The `nats` connectors: a durable pull consumer on a JetStream stream (`source`), and
//! JetStream publishes (`sink`).
//!
//! Each runs its NATS client on a thread of its own, with a single-threaded tokio runtime:
//! the flow talks to it through channels and never waits on the network itself, and the
//! connector does not depend on the runtime the flow runs on (the CLI's `run` uses a
//! multi-threaded one, `bench` and `trace` a single-threaded one).
//!
//! What the manifest asks of the stream and the consumer is checked against what the
//! server has: they are created when missing, and an existing one that differs in a field
//! the manifest sets refuses the flow's start, naming the field.

mod sink;
mod source;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::ServerAddr;
use async_nats::jetstream::{self, stream};

pub(crate) use self::sink::NatsSink;
pub(crate) use self::source::NatsSource;
use crate::config::Retention;

/// The prefix of the headers a NATS sink writes an element's attributes as, and that a
/// NATS source reads them back from: `Torvyn-line: 12` is attribute `line`.
const ATTRIBUTE_HEADER: &str = "Torvyn-";

/// The first wait after a failed pull request or publish; doubled after each next one, up
/// to [`MOST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// How long closing waits for what a connector sent to reach the server: one that is
/// unreachable gets the source's messages delivered again after the ack wait.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting to the server (its greeting included) may take before the flow
/// fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A `nats` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSourceSpec {
    /// The server, `nats://HOST:PORT`.
    pub url: String,
    /// The stream read from, and what the manifest asks of it.
    pub stream: StreamSpec,
    /// The durable consumer's name, shared by every host of the flow.
    pub consumer: String,
    /// The consumer's ack wait, when the manifest sets one (default
    /// [`DEFAULT_ACK_WAIT`](crate::config::DEFAULT_ACK_WAIT) for a consumer it creates).
    pub ack_wait: Option<Duration>,
    /// The consumer's most deliveries of a message, when the manifest sets it (default
    /// [`DEFAULT_MAX_DELIVER`](crate::config::DEFAULT_MAX_DELIVER)).
    pub max_deliver: Option<u32>,
    /// Messages one pull request asks for.
    pub pull_batch: u32,
    /// How long a pull request waits for messages: how long a stop waits for the last.
    pub pull_expires: Duration,
}

/// A `nats` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSinkSpec {
    /// The server, `nats://HOST:PORT`.
    pub url: String,
    /// Where each element is published.
    pub subject: SinkSubject,
    /// The stream to create when missing (or check), when the manifest names one.
    pub stream: Option<StreamSpec>,
}

/// Where a `nats` sink publishes an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSubject {
    /// Always this subject.
    Fixed(String),
    /// The value of this attribute of the element.
    Attribute(String),
}

/// A JetStream stream as the manifest asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Its name.
    pub name: String,
    /// The subjects it captures when created; checked when the manifest sets them.
    pub subjects: Vec<String>,
    /// Whether the manifest set `subjects` (rather than their default).
    pub subjects_set: bool,
    /// Its retention when created: what the manifest sets, or work-queue for a source's
    /// stream and limits for a sink's.
    pub retention: Retention,
    /// Whether the manifest set `retention`, which is then checked.
    pub retention_set: bool,
}

/// Counters a connector's NATS thread keeps, read by the flow for its report.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Transient errors: failed pull requests, acknowledgements or publishes that were
    /// retried, lost connections.
    pub(crate) errors: AtomicU64,
    /// The consumer's messages not yet delivered to any host: its lag.
    pub(crate) lag: AtomicU64,
    /// Connections lost so far.
    pub(crate) lost: AtomicU64,
    /// Connections made again after a loss.
    pub(crate) regained: AtomicU64,
}

impl Counters {
    fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// What the client said of its connection: a loss is a transient error.
    fn saw(&self, event: &async_nats::Event) {
        match event {
            async_nats::Event::Disconnected => {
                self.error();
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
            // The first connection is announced too: only one after a loss counts.
            async_nats::Event::Connected
                if self.lost.load(Ordering::Relaxed) > self.regained.load(Ordering::Relaxed) =>
            {
                self.regained.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// A connector's connection to its NATS server, as its client thread sees it, shared with
/// the flow, which reports each loss and each return as an event.
#[derive(Clone)]
pub(crate) struct Connection {
    /// The server, as the manifest's URL names it, without a user name or password:
    /// `nats://HOST:PORT`.
    pub(crate) endpoint: String,
    counters: Arc<Counters>,
}

impl Connection {
    pub(crate) fn new(url: &str, counters: &Arc<Counters>) -> Self {
        let shown = url
            .split(',')
            .map(|one| match one.trim().parse::<ServerAddr>() {
                Ok(addr) => format!("{}://{}:{}", addr.scheme(), addr.host(), addr.port()),
                Err(_) => "the NATS server".to_owned(),
            });
        Connection {
            endpoint: shown.collect::<Vec<_>>().join(", "),
            counters: counters.clone(),
        }
    }

    /// Connections lost so far, and made again after a loss.
    pub(crate) fn changes(&self) -> (u64, u64) {
        let counters = &self.counters;
        (
            counters.lost.load(Ordering::Relaxed),
            counters.regained.load(Ordering::Relaxed),
        )
    }
}

/// Connects to `url`, counting each lost connection and each return in `counters` (the
/// client reconnects by itself, and what waits for it resumes).
async fn connect(url: &str, counters: &Arc<Counters>) -> Result<async_nats::Client, String> {
    let counted = counters.clone();
    let connecting = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .event_callback(move |event| {
            let counted = counted.clone();
            async move { counted.saw(&event) }
        })
        .connect(url);
    // The client's own timeout covers the TCP connection only: a port that accepts and
    // never speaks NATS (an HTTP port) would hold the flow's start, and its stop, forever.
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(connected) => connected
            .map_err(|error| format!("cannot connect to the NATS server at {url}: {error}")),
        Err(_) => Err(format!(
            "cannot connect to the NATS server at {url}: no NATS greeting within {} s (is it a NATS server's client port?)",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// The stream `spec` names: created when missing; refused, naming the field, when the
/// existing one differs from what the manifest sets.
async fn ensure_stream(
    context: &jetstream::Context,
    spec: &StreamSpec,
) -> Result<jetstream::stream::Stream, String> {
    let name = &spec.name;
    match context.get_stream(name).await {
        Ok(stream) => {
            let config = &stream.cached_info().config;
            if spec.retention_set {
                let (has, retention) = (retention_name(config.retention), spec.retention);
                if has != retention.name() {
                    return Err(format!(
                        "JetStream stream `{name}` has retention `{has}`, and the manifest asks for `{}`",
                        retention.name()
                    ));
                }
            }
            if spec.subjects_set {
                let mut has = config.subjects.clone();
                let mut asked = spec.subjects.clone();
                has.sort();
                asked.sort();
                if has != asked {
                    return Err(format!(
                        "JetStream stream `{name}` captures subjects {has:?}, and the manifest asks for {asked:?}"
                    ));
                }
            }
            Ok(stream)
        }
        Err(error)
            if matches!(error.kind(), jetstream::context::GetStreamErrorKind::JetStream(e)
                if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            let config = stream::Config {
                name: name.clone(),
                subjects: spec.subjects.clone(),
                retention: match spec.retention {
                    Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
                    Retention::Limits => stream::RetentionPolicy::Limits,
                    Retention::Interest => stream::RetentionPolicy::Interest,
                },
                storage: stream::StorageType::File,
                ..Default::default()
            };
            context
                .create_stream(config)
                .await
                .map_err(|error| format!("cannot create JetStream stream `{name}`: {error}"))
        }
        Err(error) => Err(format!("cannot look up JetStream stream `{name}`: {error}")),
    }
}

fn retention_name(retention: stream::RetentionPolicy) -> &'static str {
    match retention {
        stream::RetentionPolicy::WorkQueue => Retention::WorkQueue.name(),
        stream::RetentionPolicy::Limits => Retention::Limits.name(),
        stream::RetentionPolicy::Interest => Retention::Interest.name(),
    }
}

/// Waits for a connector's client thread to end, once told to.
fn join(thread: Option<std::thread::JoinHandle<()>>) -> Result<(), String> {
    match thread.map(std::thread::JoinHandle::join) {
        Some(Err(_)) => Err("the NATS client's thread panicked".to_owned()),
        _ => Ok(()),
    }
}

/// Starts a thread named `name` running `work` on a single-threaded tokio runtime, and
/// waits for what `work` sends on its first argument once it is set up (connected, the
/// stream and consumer checked): its value, or why it could not.
fn spawn<T, W, F>(name: &str, work: W) -> Result<(T, std::thread::JoinHandle<()>), String>
where
    T: Send + 'static,
    W: FnOnce(std::sync::mpsc::SyncSender<Result<T, String>>) -> F + Send + 'static,
    F: Future<Output = ()>,
{
    let (ready, set_up) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(work(ready)),
                Err(error) => {
                    let _ = ready.send(Err(format!("cannot start a NATS client: {error}")));
                }
            }
        })
        .map_err(|error| format!("cannot start a NATS client: {error}"))?;
    match set_up.recv() {
        Ok(Ok(value)) => Ok((value, thread)),
        Ok(Err(why)) => {
            let _ = thread.join();
            Err(why)
        }
        Err(_) => Err("the NATS client's thread ended before it was set up".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_shown_without_its_credentials() {
        let counters = Arc::default();
        let shown = |url| Connection::new(url, &counters).endpoint;
        assert_eq!(shown("nats://me:secret@host:4222"), "nats://host:4222");
        assert_eq!(shown("nats://host"), "nats://host:4222");
        assert_eq!(shown("nats://a:1, nats://b:2"), "nats://a:1, nats://b:2");
    }

    #[test]
    fn a_connection_counts_its_losses_and_returns_but_not_its_first_connect() {
        let counters = Arc::new(Counters::default());
        let connection = Connection::new("nats://127.0.0.1:4222", &counters);
        counters.saw(&async_nats::Event::Connected);
        assert_eq!(connection.changes(), (0, 0));
        counters.saw(&async_nats::Event::Disconnected);
        assert_eq!(connection.changes(), (1, 0));
        counters.saw(&async_nats::Event::Connected);
        counters.saw(&async_nats::Event::Connected);
        assert_eq!(connection.changes(), (1, 1));
        assert_eq!(counters.errors.load(Ordering::Relaxed), 1);
    }
}
