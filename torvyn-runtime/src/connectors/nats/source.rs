//! The `nats` source: a durable pull consumer on a JetStream stream, shared by every host
//! that runs the flow, each message acknowledged once its element has settled.
//!
//! # Protocol
//!
//! 1. Opening connects, creates the stream and the consumer when missing (explicit
//!    acknowledgements), refuses them when they differ from the manifest, and starts the
//!    client's thread (`nats/mod.rs`).
//! 2. The thread asks for messages with pull requests of at most `pull-batch` messages,
//!    each with an expiry (`pull-expires`), one request at a time, and only while fewer
//!    than `pull-batch` messages it received wait for the flow: a flow that is held back
//!    holds the consumer back, and the server gives the rest of the work to other hosts.
//!    A failed request is counted and tried again after a backoff (doubling from 100 ms
//!    to 5 s): a lost connection, a restarted server or a missing responder never fails
//!    the flow. But after a failed request the consumer is looked up, and one the server
//!    no longer has (twice, a second apart), or has made again since, stops the pulling:
//!    the flow's next tick fails the flow, naming it (`consumer_gone`). A request whose
//!    end never comes (a connection that died silently) is given up 5 s after its
//!    expiry, and the client's own pings notice the dead connection. (Requests carry no
//!    idle heartbeat: async-nats 0.42's batch stalls on one until something else wakes
//!    it, and checks for none missed.)
//! 3. The flow pulls what was received: each message becomes an element (its payload
//!    copied once into a host buffer), with a ticket, and as attributes: `subject`,
//!    `stream`, `sequence` (in the stream), `published` (when the stream stored it, in
//!    nanoseconds since the Unix epoch), `delivered` (the delivery count, from 1), and
//!    each header as `header.NAME`, but for those a NATS sink wrote of an element's
//!    attributes (`Torvyn-KEY`), which are `KEY` again (not the five above, which are
//!    this delivery's own). A message delivered before
//!    (delivery count above 1) is counted redelivered.
//! 4. When an element has settled in every branch (`reactor::acks`), its message is
//!    acknowledged: `+ACK`, through the thread. An element that failed under a policy
//!    that went on (`skip`) has settled too, and is acknowledged and counted failed; one
//!    dead-lettered has been delivered, to its dead-letter sink. An element that failed
//!    with a retryable error under a `retry` policy is given back (`-NAK` with the
//!    policy's backoff, doubled for each delivery before) while its deliveries are
//!    within the policy's attempts and the consumer's `max-deliver` (the message's
//!    delivery count is known); past them, the policy's `then` applies, and the message
//!    is acknowledged as above: a poison message never loops.
//! 5. A few times a second, every message held for longer than half of the consumer's ack
//!    wait since it was received (or last reported) gets a progress acknowledgement
//!    (`+WPI`): a slow sink, a long aggregation window or backpressure do not get it
//!    delivered to another host. The consumer's pending count is read as the lag, once a
//!    second and when the source closes.
//! 6. A stop (a signal, `--timeout`) ends the source by draining it: no new pull request
//!    is sent, and what the last one brings is still emitted, so that everything the
//!    server delivered to this host reaches the flow; the source's stream then ends and
//!    the flow drains, acknowledging each element as it settles. `--limit` and a closed
//!    output end it at once (and send no new pull request either).
//! 7. Closing gives back every message the flow did not settle (it failed, it was
//!    stopped by `--limit`, its output closed), and every one its last pull request brings
//!    after: `-NAK` for another delivery once that request has ended ([`give_back`]), then
//!    flushes the connection, so that every acknowledgement has reached the server before
//!    the host exits. A host killed before it acknowledged has its messages delivered
//!    again after the ack wait: at-least-once, with duplicates bounded by what it held.
//!    Either way, each such message has used one of its `max-deliver` deliveries.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer};
use async_nats::{Subject, jetstream::consumer::pull};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};

use super::{
    ATTRIBUTE_HEADER, Connection, Counters, FIRST_BACKOFF, FLUSH_TIMEOUT, MOST_BACKOFF,
    NatsSourceSpec, connect, ensure_stream, join, spawn,
};
use crate::attributes::Attributes;
use crate::config::{DEFAULT_ACK_WAIT, DEFAULT_MAX_DELIVER};
use crate::connectors::Pulled;
use crate::observability::ConnectorReport;
use crate::reactor::{CallError, Deliveries, host_output};
use crate::resources::{BufferTable, MAX_CONTENT_TYPE_BYTES, fitted_content_type};

/// How long an acknowledgement may wait for the client to take it.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the consumer's pending count is read.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// How much longer than a pull request may stay open (`pull-expires`) a closing flow's
/// message is given back for: one second, for the server's timers. Given back for at once
/// while the request is open, the server hands it straight back to that request, the closed
/// flow gives it back again, and so on until its deliveries run out (`max-deliver`).
const GIVE_BACK_MARGIN: Duration = Duration::from_secs(1);

/// The `-NAK` of a closing flow's message: redelivered once no pull request of this
/// source, which lasts at most `pull_expires`, can take it ([`GIVE_BACK_MARGIN`]).
fn give_back(pull_expires: Duration) -> AckKind {
    AckKind::Nak(Some(pull_expires + GIVE_BACK_MARGIN))
}

/// The attributes a NATS source gives every element itself.
const OWN_ATTRIBUTES: [&str; 5] = ["subject", "stream", "sequence", "published", "delivered"];

/// A message the thread received, on its way to the flow.
struct Delivery {
    reply: Subject,
    /// Its delivery count, from 1.
    delivered: u32,
    payload: Bytes,
    content_type: String,
    attributes: Vec<(String, String)>,
    received: Instant,
}

/// What the flow asks of the thread.
enum Command {
    /// Send this acknowledgement for the message whose reply subject this is.
    Ack(Subject, AckKind),
}

/// What the flow and the thread share.
#[derive(Default)]
struct Shared {
    counters: Arc<Counters>,
    /// Messages the last pull request brought after the flow closed the source, given
    /// back by the thread (counted among the source's `naks`).
    given_back: AtomicU64,
    /// Set once the flow stops: no new pull request.
    stop: AtomicBool,
    /// Messages received and not yet pulled by the flow (step 2).
    waiting: AtomicUsize,
    /// Notified when the flow pulled messages, or stopped.
    taken: Notify,
    /// Why the source cannot go on: its consumer was deleted (or made again) under it.
    /// The flow's next tick fails it with this.
    gone: std::sync::OnceLock<String>,
}

/// A message the flow holds, until it settles.
struct Held {
    reply: Subject,
    delivered: u32,
    /// When it was received, or last reported in progress.
    since: Instant,
}

pub(crate) struct NatsSource {
    index: usize,
    shared: Arc<Shared>,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    /// Received and not yet pulled by the flow.
    inbox: VecDeque<Delivery>,
    /// The thread has sent its last message.
    ended: bool,
    held: HashMap<u64, Held>,
    next_ticket: u64,
    /// Tickets and attributes of the elements pulled, not yet taken by the driver.
    tickets: VecDeque<u64>,
    attributes: VecDeque<Attributes>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Half the consumer's ack wait (step 5).
    progress_after: Duration,
    /// How long a pull request stays open at most (step 7).
    pull_expires: Duration,
    /// The consumer's most deliveries of a message.
    max_deliver: u32,
    connection: Connection,
    report: ConnectorReport,
}

impl NatsSource {
    /// Step 1: connects, checks or creates the stream and the durable consumer, and starts
    /// pulling.
    pub(crate) fn open(
        spec: &NatsSourceSpec,
        index: usize,
        wake: Arc<Notify>,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared::default());
        let (sender, deliveries) = mpsc::unbounded_channel();
        let (commands, orders) = mpsc::unbounded_channel();
        let connection = Connection::new(&spec.url, &shared.counters);
        let pull_expires = spec.pull_expires;
        let (spec, thread_shared) = (spec.clone(), shared.clone());
        let ((ack_wait, max_deliver), thread) =
            spawn("torvyn-nats-source", move |ready| async move {
                let (client, consumer) = match set_up(&spec, &thread_shared.counters).await {
                    Ok(set) => set,
                    Err(why) => {
                        let _ = ready.send(Err(why));
                        return;
                    }
                };
                let config = &consumer.cached_info().config;
                let _ = ready.send(Ok((config.ack_wait, config.max_deliver)));
                let pulling = pull(
                    &spec,
                    &client,
                    consumer.clone(),
                    &thread_shared,
                    sender,
                    wake,
                );
                let acking = acknowledge(&client, orders, &thread_shared.counters);
                let lag = watch_lag(consumer.clone(), &thread_shared);
                tokio::select! {
                    () = async { tokio::join!(pulling, acking); } => {}
                    () = lag => {}
                }
                // Last, after what the pulling gave back of a closed flow's messages too.
                let flushed = tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await;
                if !matches!(flushed, Ok(Ok(()))) {
                    thread_shared.counters.error();
                }
                // The lag as the flow's final report leaves it.
                let mut consumer = consumer;
                let _ =
                    tokio::time::timeout(LAG_EVERY, read_lag(&mut consumer, &thread_shared)).await;
            })?;
        Ok(NatsSource {
            index,
            shared,
            deliveries,
            inbox: VecDeque::new(),
            ended: false,
            held: HashMap::new(),
            next_ticket: 0,
            tickets: VecDeque::new(),
            attributes: VecDeque::new(),
            commands: Some(commands),
            thread: Some(thread),
            progress_after: ack_wait / 2,
            pull_expires,
            // No most (-1) is as good as the most a count can say.
            max_deliver: u32::try_from(max_deliver).unwrap_or(u32::MAX),
            connection,
            report: ConnectorReport::new("nats"),
        })
    }

    /// Whether a message has come that the flow has not pulled, or the source has ended.
    pub(crate) fn ready(&mut self) -> bool {
        self.receive();
        self.ended || !self.inbox.is_empty()
    }

    fn receive(&mut self) {
        loop {
            match self.deliveries.try_recv() {
                Ok(delivery) => self.inbox.push_back(delivery),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    // A thread that stopped for its consumer gone ends no stream: the
                    // flow's next tick fails it.
                    self.ended = self.shared.gone.get().is_none();
                    return;
                }
            }
        }
    }

    /// Step 3: up to `max` of the messages received, as elements; the end of the stream
    /// once the source was stopped and the last pull request's messages are all out.
    pub(crate) fn pull_batch(
        &mut self,
        table: &mut BufferTable,
        max: u32,
    ) -> Result<Pulled, CallError> {
        self.receive();
        let mut results = Vec::new();
        while results.len() < max as usize {
            let Some(delivery) = self.inbox.pop_front() else {
                if self.ended {
                    results.push(Ok(None));
                }
                break;
            };
            let output = match host_output(
                table,
                self.index,
                &delivery.payload,
                delivery.content_type.clone().into(),
            ) {
                Ok(output) => output,
                Err(error) => {
                    self.inbox.push_front(delivery);
                    return Err(error.into());
                }
            };
            self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
            self.report.bytes += delivery.payload.len() as u64;
            self.report.redelivered += (delivery.delivered > 1) as u64;
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            self.tickets.push_back(ticket);
            let held = Held {
                reply: delivery.reply,
                delivered: delivery.delivered,
                since: delivery.received,
            };
            self.held.insert(ticket, held);
            // Within the bounds: a few fixed attributes, and headers until the bounds end.
            let mut attributes = Attributes::default();
            for (key, value) in &delivery.attributes {
                let _ = attributes.set(key, value);
            }
            self.attributes.push_back(attributes);
            results.push(Ok(Some(output)));
        }
        self.shared.taken.notify_one();
        Ok(results)
    }

    pub(crate) fn take_ticket(&mut self) -> Option<u64> {
        self.tickets.pop_front()
    }

    pub(crate) fn take_attributes(&mut self) -> Attributes {
        self.attributes.pop_front().unwrap_or_default()
    }

    /// Step 4: the element of `ticket` settled, and its message is acknowledged; or it is
    /// to be delivered again after `redeliver`, and its message is given back.
    pub(crate) fn settled(&mut self, ticket: u64, failed: bool, redeliver: Option<Duration>) {
        let Some(held) = self.held.remove(&ticket) else {
            return;
        };
        if let Some(wait) = redeliver {
            self.report.naks += 1;
            self.send(held.reply, AckKind::Nak(Some(wait)));
            return;
        }
        self.report.settled += 1;
        self.report.failed += failed as u64;
        self.report.acks += 1;
        self.send(held.reply, AckKind::Ack);
    }

    /// Step 4: how many times the message of `ticket` was delivered, and the most it will.
    pub(crate) fn deliveries(&self, ticket: u64) -> Option<Deliveries> {
        let held = self.held.get(&ticket)?;
        Some(Deliveries {
            delivered: held.delivered,
            most: self.max_deliver,
        })
    }

    fn send(&self, reply: Subject, kind: AckKind) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(Command::Ack(reply, kind));
        }
    }

    /// Step 5: progress acknowledgements for the messages held long.
    ///
    /// Fails once the consumer was deleted or made again under the flow (see
    /// [`consumer_gone`]).
    pub(crate) fn tick(&mut self) -> Result<(), String> {
        if let Some(why) = self.shared.gone.get() {
            return Err(why.clone());
        }
        self.receive();
        let now = Instant::now();
        let mut progressed = Vec::new();
        let held = self.held.values_mut().map(|h| (&h.reply, &mut h.since));
        let waiting = self.inbox.iter_mut().map(|d| (&d.reply, &mut d.received));
        for (reply, since) in held.chain(waiting) {
            if now.duration_since(*since) >= self.progress_after {
                *since = now;
                progressed.push(reply.clone());
            }
        }
        self.report.progress_acks += progressed.len() as u64;
        for reply in progressed {
            self.send(reply, AckKind::Progress);
        }
        Ok(())
    }

    /// Step 6: no new pull request; the source ends once the last one's messages are out.
    pub(crate) fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.taken.notify_one();
    }

    /// Step 7: gives back what did not settle, and flushes every acknowledgement.
    pub(crate) fn close(&mut self) -> Result<(), String> {
        self.stop();
        // Closed first, so that what comes after is given back by the thread itself.
        self.deliveries.close();
        self.receive();
        let unsettled: Vec<Subject> = (self.held.drain().map(|(_, h)| h.reply))
            .chain(self.inbox.drain(..).map(|d| d.reply))
            .collect();
        self.report.naks += unsettled.len() as u64;
        for reply in unsettled {
            self.send(reply, give_back(self.pull_expires));
        }
        // The thread ends once its last pull request has ended and every command is sent.
        self.commands = None;
        join(self.thread.take())
    }

    pub(crate) fn connection(&self) -> Connection {
        self.connection.clone()
    }

    pub(crate) fn report(&self) -> ConnectorReport {
        let mut report = self.report.clone();
        report.transient_errors = self.shared.counters.errors.load(Ordering::Relaxed);
        report.lag = Some(self.shared.counters.lag.load(Ordering::Relaxed));
        report.naks += self.shared.given_back.load(Ordering::Relaxed);
        report
    }
}

impl Drop for NatsSource {
    fn drop(&mut self) {
        // A source dropped without `close` (a flow that failed to start) still stops its
        // thread; what it received is delivered again after the ack wait.
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.taken.notify_one();
    }
}

/// Step 1 on the thread: the connection, the stream and the durable consumer.
async fn set_up(
    spec: &NatsSourceSpec,
    counters: &Arc<Counters>,
) -> Result<(async_nats::Client, consumer::PullConsumer), String> {
    let client = connect(&spec.url, counters).await?;
    let context = jetstream::new(client.clone());
    let stream = ensure_stream(&context, &spec.stream).await?;
    let (name, stream_name) = (&spec.consumer, &spec.stream.name);
    match stream.consumer_info(name).await {
        Ok(info) => {
            let config = &info.config;
            let differs = [
                (
                    "ack_policy",
                    config.ack_policy != consumer::AckPolicy::Explicit,
                    "explicit".to_owned(),
                    format!("{:?}", config.ack_policy),
                ),
                (
                    "deliver_subject",
                    config.deliver_subject.is_some(),
                    "none: a pull consumer".to_owned(),
                    format!("{:?}", config.deliver_subject),
                ),
                (
                    "ack-wait",
                    spec.ack_wait.is_some_and(|w| w != config.ack_wait),
                    spec.ack_wait.map(humantime_of).unwrap_or_default(),
                    humantime_of(config.ack_wait),
                ),
                (
                    "max-deliver",
                    spec.max_deliver
                        .is_some_and(|m| i64::from(m) != config.max_deliver),
                    spec.max_deliver.map(|m| m.to_string()).unwrap_or_default(),
                    config.max_deliver.to_string(),
                ),
            ];
            if let Some((field, _, asked, has)) = differs.into_iter().find(|d| d.1) {
                return Err(format!(
                    "JetStream consumer `{name}` of stream `{stream_name}` has {field} {has}, and the manifest asks for {asked}"
                ));
            }
            let consumer = stream.get_consumer(name).await;
            let consumer = consumer
                .map_err(|error| format!("cannot use JetStream consumer `{name}`: {error}"))?;
            Ok((client, consumer))
        }
        Err(error) if error.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
            let config = pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: spec.ack_wait.unwrap_or(DEFAULT_ACK_WAIT),
                max_deliver: i64::from(spec.max_deliver.unwrap_or(DEFAULT_MAX_DELIVER)),
                ..Default::default()
            };
            let consumer = stream.create_consumer(config).await.map_err(|error| {
                format!(
                    "cannot create JetStream consumer `{name}` of stream `{stream_name}`: {error}"
                )
            })?;
            Ok((client, consumer))
        }
        Err(error) => Err(format!(
            "cannot look up JetStream consumer `{name}` of stream `{stream_name}`: {error}"
        )),
    }
}

/// After a failed pull request: whether the source stops pulling, its consumer (`first`
/// as it was set up) gone ([`consumer_gone`]); the flow is woken, to fail at its next
/// tick.
async fn gives_up(
    client: &async_nats::Client,
    spec: &NatsSourceSpec,
    first: &consumer::Info,
    shared: &Shared,
    wake: &Notify,
) -> bool {
    let Some(why) = consumer_gone(client, spec, first, shared).await else {
        return false;
    };
    let _ = shared.gone.set(why);
    wake.notify_one();
    true
}

/// After a failed pull request: why the source cannot go on, when the server no longer
/// has the consumer `first` (deleted alone, or with its stream, or made again since
/// under the same name). Its pull requests would fail for as long as the flow ran; a new
/// run makes the consumer again, as a start does. Making it again here, or pulling from
/// one made again, could replay a whole `limits` stream, and acknowledgements of the
/// messages still held would reach another stream made under the same name; so the
/// flow fails, naming it. A missing consumer counts only when two lookups a second apart
/// both find it missing (a server that restarts may answer before it has read its
/// streams back); a lookup that fails or takes longer than [`ACK_TIMEOUT`] (a lost
/// connection), or a flow that stops meanwhile, says nothing.
async fn consumer_gone(
    client: &async_nats::Client,
    spec: &NatsSourceSpec,
    first: &consumer::Info,
    shared: &Shared,
) -> Option<String> {
    use jetstream::context::ConsumerInfoErrorKind::{NotFound, StreamNotFound};
    let stopped = || shared.stop.load(Ordering::Relaxed);
    let context = jetstream::new(client.clone());
    let stream = context.get_stream_no_info(&spec.stream.name).await.ok()?;
    let (name, stream_name) = (&spec.consumer, &spec.stream.name);
    let mut why = None;
    for look in 0..2 {
        let until = tokio::time::Instant::now() + ACK_TIMEOUT * look;
        while !stopped() && tokio::time::Instant::now() < until {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = shared.taken.notified() => {}
            }
        }
        if stopped() {
            return None;
        }
        let looked_up = tokio::time::timeout(ACK_TIMEOUT, stream.consumer_info(name));
        why = Some(match looked_up.await.ok()? {
            Ok(info) if info.created == first.created => return None,
            Ok(_) => {
                return Some(format!(
                    "JetStream consumer `{name}` of stream `{stream_name}` was deleted and made again under the flow; a new run uses it"
                ));
            }
            Err(error) if error.kind() == NotFound => format!(
                "JetStream consumer `{name}` of stream `{stream_name}` was deleted under the flow; a new run makes it again"
            ),
            Err(error) if error.kind() == StreamNotFound => format!(
                "JetStream stream `{stream_name}` was deleted under the flow, with its consumer `{name}`; a new run makes them again"
            ),
            Err(_) => return None,
        });
    }
    why
}

fn humantime_of(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Step 2: pull requests, one at a time, while the flow keeps up and has not stopped.
async fn pull(
    spec: &NatsSourceSpec,
    client: &async_nats::Client,
    consumer: consumer::PullConsumer,
    shared: &Shared,
    deliveries: mpsc::UnboundedSender<Delivery>,
    wake: Arc<Notify>,
) {
    let batch = spec.pull_batch as usize;
    let mut backoff = FIRST_BACKOFF;
    while !shared.stop.load(Ordering::Relaxed) {
        let waiting = shared.waiting.load(Ordering::Relaxed);
        if waiting >= batch {
            shared.taken.notified().await;
            continue;
        }
        let request = consumer
            .batch()
            .max_messages(batch - waiting)
            .expires(spec.pull_expires)
            .messages()
            .await;
        let mut messages = match request {
            Ok(messages) => messages,
            Err(_) => {
                shared.counters.error();
                if gives_up(client, spec, consumer.cached_info(), shared, &wake).await {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MOST_BACKOFF);
                continue;
            }
        };
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(message) => message,
                Err(_) => {
                    shared.counters.error();
                    if gives_up(client, spec, consumer.cached_info(), shared, &wake).await {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MOST_BACKOFF);
                    break;
                }
            };
            backoff = FIRST_BACKOFF;
            let reply = message.reply.clone();
            let Some(delivery) = delivery(message) else {
                // Not a consumer's message: it cannot be told apart from another, and is
                // ended rather than delivered again.
                shared.counters.error();
                if let Some(reply) = reply {
                    acknowledged(client, reply, AckKind::Term, &shared.counters).await;
                }
                continue;
            };
            shared.waiting.fetch_add(1, Ordering::Relaxed);
            if let Err(refused) = deliveries.send(delivery) {
                // The flow closed the source: the message goes back for another host.
                shared.waiting.fetch_sub(1, Ordering::Relaxed);
                shared.given_back.fetch_add(1, Ordering::Relaxed);
                let kind = give_back(spec.pull_expires);
                acknowledged(client, refused.0.reply, kind, &shared.counters).await;
                continue;
            }
            wake.notify_one();
        }
    }
    drop(deliveries);
    wake.notify_one();
}

/// A received message as the flow takes it; `None` for one without JetStream's reply
/// subject (which a consumer's messages always have).
fn delivery(message: jetstream::Message) -> Option<Delivery> {
    let info = message.info().ok()?;
    // First, so that the bounds on attributes never leave them out, and no header can
    // stand in for them.
    let mut attributes = vec![
        ("subject".to_owned(), message.subject.to_string()),
        ("stream".to_owned(), info.stream.to_owned()),
        ("sequence".to_owned(), info.stream_sequence.to_string()),
        ("published".to_owned(), published(&info)),
        ("delivered".to_owned(), info.delivered.to_string()),
    ];
    let mut content_type = "application/octet-stream".to_owned();
    if let Some(headers) = &message.headers {
        for (name, values) in headers.iter() {
            let name = name.to_string();
            let value = values.first().map(|v| v.as_str()).unwrap_or_default();
            if name.eq_ignore_ascii_case("content-type") {
                // No longer than a component may give one; the header is also an attribute,
                // as far as the bounds on attributes allow.
                content_type = fitted_content_type(value, MAX_CONTENT_TYPE_BYTES).to_owned();
            }
            // What a NATS sink wrote of an element's attributes comes back as they were.
            let key = match name.strip_prefix(ATTRIBUTE_HEADER) {
                Some(key) if !OWN_ATTRIBUTES.contains(&key) => key.to_owned(),
                // What an earlier delivery said of itself is not what this one is.
                Some(_) => continue,
                None => format!("header.{name}"),
            };
            attributes.push((key, value.to_owned()));
        }
    }
    let delivered = u32::try_from(info.delivered).unwrap_or(u32::MAX);
    let reply = message.reply.clone()?;
    Some(Delivery {
        reply,
        payload: message.message.payload,
        content_type,
        attributes,
        delivered,
        received: Instant::now(),
    })
}

/// When a message was stored in its stream, in nanoseconds since the Unix epoch (the
/// `published` attribute, as an element's `timestamp-ns` is): with its stream and
/// sequence, what names it apart from a message of an earlier stream of the same name,
/// whose sequences started at 1 too.
fn published(info: &jetstream::message::Info<'_>) -> String {
    info.published.unix_timestamp_nanos().to_string()
}

/// Steps 4 and 5 on the thread: sends each acknowledgement the flow asks for, until the
/// flow closes the source. One the client cannot take within [`ACK_TIMEOUT`] (its
/// connection is lost and its buffer full) is counted and dropped: its message is
/// delivered again after the ack wait, and the source's close never waits on a server
/// that is gone.
async fn acknowledge(
    client: &async_nats::Client,
    mut orders: mpsc::UnboundedReceiver<Command>,
    counters: &Counters,
) {
    while let Some(Command::Ack(reply, kind)) = orders.recv().await {
        acknowledged(client, reply, kind, counters).await;
    }
}

/// Sends acknowledgement `kind` for the message whose reply subject is `reply`. One the
/// client cannot take within [`ACK_TIMEOUT`] is counted as an error and dropped: its
/// message is delivered again after the ack wait.
async fn acknowledged(
    client: &async_nats::Client,
    reply: Subject,
    kind: AckKind,
    counters: &Counters,
) {
    let sent = tokio::time::timeout(ACK_TIMEOUT, client.publish(reply, kind.into())).await;
    if !matches!(sent, Ok(Ok(()))) {
        counters.error();
    }
}

/// Step 5 on the thread: the consumer's pending count, once a second, until the thread
/// ends.
async fn watch_lag(mut consumer: consumer::PullConsumer, shared: &Shared) {
    loop {
        read_lag(&mut consumer, shared).await;
        tokio::time::sleep(LAG_EVERY).await;
    }
}

/// The consumer's pending count, now.
async fn read_lag(consumer: &mut consumer::PullConsumer, shared: &Shared) {
    if let Ok(info) = consumer.info().await {
        (shared.counters.lag).store(info.num_pending, Ordering::Relaxed);
    }
}
