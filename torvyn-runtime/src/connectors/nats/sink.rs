//! The `nats` sink: each element is published to JetStream, and counts delivered only once
//! the server has acknowledged it (stored in a stream).
//!
//! At its start, a sink that names its stream and a fixed subject checks that the stream
//! captures the subject, and refuses the start, naming both, when it does not.
//!
//! A batch is published in one go, every message before the first acknowledgement is
//! awaited, on the client's thread; the flow's call waits for the answers (the sink runs
//! on its own task from the start, `driver/detached.rs`, so the rest of the flow goes on).
//! Each message carries a `Nats-Msg-Id` made of its source element's identity (a NATS
//! message's stream, sequence and time stored, a file's version and offset, from the
//! element's attributes) and its subject, so that the stream drops an element delivered again within its duplicate
//! window; the server's duplicate answers are counted. What the server does not store
//! (a lost connection, a restarting server) is published again, with the same ids, for up
//! to 30 s, each round counted as a transient error; only then does the element fail,
//! through the node's error policy.
//!
//! An element's content type is its message's `Content-Type` header (a dead-lettered
//! element's names the node and the error), and its attributes are headers too: a
//! message header it was read with (`header.NAME`) under its own name, any other
//! attribute as `Torvyn-KEY` (`Torvyn-delivered: 3`), which a NATS source reads back as
//! the attribute it was. JetStream's own headers (`Nats-…`)
//! are never passed on, and a name or value that would break the protocol's framing is
//! made safe (a line break becomes a space; a name with a `:` or a control character is
//! left out).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::Publish};
use bytes::Bytes;
use bytesize::ByteSize;
use tokio::sync::mpsc;

use super::{
    ATTRIBUTE_HEADER, Connection, Counters, FIRST_BACKOFF, FLUSH_TIMEOUT, MOST_BACKOFF,
    NatsSinkSpec, SinkSubject, connect, ensure_stream, join, spawn,
};
use crate::attributes::Attributes;
use crate::config::{MAX_SUBJECT_BYTES, valid_subject};
use crate::engine::{BackpressureSignal, ProcessError};
use crate::observability::ConnectorReport;
use crate::reactor::{CallError, Handled, Queued, host_read_onto};
use crate::resources::BufferTable;

/// How long a batch's messages that the server did not store are published again before
/// their elements fail (through the node's error policy): long enough for a server to
/// restart.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(30);

/// Whether `stream`, the one the manifest names, stores what is published to `subject`:
/// one of its subjects captures it. Without that, a publish is stored in another stream
/// than the manifest names, or in none, which the server answers as no one there and the
/// sink would retry for [`PUBLISH_RETRY_FOR`] before failing every element: the start
/// says so instead. A sink that names no stream is not looked at, since the subject may
/// be stored by a stream its account imports or through a subject mapping, which no
/// lookup of its own shows. (A mapping into the named stream's subjects is refused: a
/// manifest that names its stream names the subjects it publishes to, or leaves them to
/// be made from its `subject`.)
fn captured(stream: &jetstream::stream::Stream, subject: &str) -> Result<(), String> {
    let config = &stream.cached_info().config;
    match (config.subjects.iter()).any(|pattern| captures(pattern, subject)) {
        true => Ok(()),
        false => Err(format!(
            "JetStream stream `{}` does not capture subject `{subject}` (it captures {:?}): \
             what the sink publishes would not be stored there",
            config.name, config.subjects
        )),
    }
}

/// Whether the subject `pattern` (with `*` for one token and a last `>` for one or more)
/// matches the literal `subject`, as the server matches a stream's subjects (NATS
/// subject-based messaging: tokens separated by `.`).
fn captures(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for wanted in pattern.split('.') {
        match (wanted, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (wanted, Some(token)) if wanted == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// A message to publish.
struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

impl Outgoing {
    /// Its size as the server checks it against `max_payload`: the payload and the
    /// headers as the client writes them (`NATS/1.0`, then `Name: value` per value, each
    /// line ending in CRLF, then an empty line).
    fn size(&self) -> usize {
        // Without headers, the client publishes the payload alone (`PUB`, not `HPUB`).
        if self.headers.is_empty() {
            return self.payload.len();
        }
        let lines = (self.headers.iter())
            .flat_map(|(name, values)| values.iter().map(move |v| (name, v)))
            .map(|(name, value)| {
                AsRef::<str>::as_ref(name).len() + ": ".len() + value.as_str().len() + 2
            });
        let headers = "NATS/1.0\r\n".len() + lines.sum::<usize>() + 2;
        self.payload.len() + headers
    }
}

/// Why `message`, `size` bytes with its headers, is not published to a server whose
/// `max_payload` is `max`.
fn too_large(message: &Outgoing, size: usize, max: usize) -> String {
    format!(
        "the message is {size} B ({} B of payload and {} B of headers), over the server's \
         `max_payload` of {max} B ({}): raise `max_payload` in the server's configuration \
         (nats-server allows up to 64 MiB), or make the elements smaller",
        message.payload.len(),
        size - message.payload.len(),
        ByteSize(max as u64).display().iec()
    )
}

/// A batch for the client's thread, and where its answers go: for each message, whether
/// the server found it a duplicate, or why it was not stored.
struct Request {
    messages: Vec<Outgoing>,
    answers: std::sync::mpsc::SyncSender<Vec<Result<bool, ProcessError>>>,
}

pub(crate) struct NatsSink {
    index: usize,
    subject: SinkSubject,
    requests: Option<mpsc::UnboundedSender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: Arc<Counters>,
    connection: Connection,
    report: ConnectorReport,
    last_write: Duration,
}

impl NatsSink {
    /// Connects, and creates (or checks) the stream when the manifest names one.
    pub(crate) fn open(spec: &NatsSinkSpec, index: usize) -> Result<Self, String> {
        let counters = Arc::new(Counters::default());
        let (requests, mut incoming) = mpsc::unbounded_channel::<Request>();
        let (spec_, counted) = (spec.clone(), counters.clone());
        let ((), thread) = spawn("torvyn-nats-sink", move |ready| async move {
            let spec = spec_;
            let client = match connect(&spec.url, &counted).await {
                Ok(client) => client,
                Err(why) => {
                    let _ = ready.send(Err(why));
                    return;
                }
            };
            let context = jetstream::new(client.clone());
            if let Some(stream) = &spec.stream {
                let stored =
                    ensure_stream(&context, stream)
                        .await
                        .and_then(|stream| match &spec.subject {
                            SinkSubject::Fixed(subject) => captured(&stream, subject),
                            SinkSubject::Attribute(_) => Ok(()),
                        });
                if let Err(why) = stored {
                    let _ = ready.send(Err(why));
                    return;
                }
            }
            let _ = ready.send(Ok(()));
            while let Some(request) = incoming.recv().await {
                let max_payload = client.server_info().max_payload;
                let answers = publish(&context, max_payload, request.messages, &counted).await;
                let _ = request.answers.send(answers);
            }
            // Every publish was answered; a server that went away has nothing to flush.
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await;
        })?;
        Ok(NatsSink {
            index,
            subject: spec.subject.clone(),
            requests: Some(requests),
            thread: Some(thread),
            connection: Connection::new(&spec.url, &counters),
            counters,
            report: ConnectorReport::new("nats"),
            last_write: Duration::ZERO,
        })
    }

    /// Publishes `elements` and waits for the server's acknowledgements.
    pub(crate) fn write(
        &mut self,
        table: &mut BufferTable,
        elements: &[Queued],
    ) -> Vec<Result<Handled, CallError>> {
        let began = Instant::now();
        let mut results: Vec<Option<Result<Handled, CallError>>> = Vec::new();
        let mut messages = Vec::new();
        for element in elements {
            match self.outgoing(table, element) {
                Ok(message) => {
                    messages.push(message);
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        let sizes: Vec<usize> = messages.iter().map(|m| m.payload.len()).collect();
        let mut answers = self.round_trip(messages).into_iter().zip(sizes);
        let results = results.into_iter().map(|result| {
            result.unwrap_or_else(|| match answers.next() {
                Some((Ok(duplicate), size)) => {
                    self.report.bytes += size as u64;
                    self.report.duplicates += duplicate as u64;
                    Ok(Handled::Delivered(BackpressureSignal::Ready))
                }
                Some((Err(error), _)) => Err(CallError::Process(error)),
                None => Err(CallError::Process(ProcessError::Unavailable(
                    "the NATS client's thread ended".into(),
                ))),
            })
        });
        let results = results.collect();
        self.last_write = began.elapsed();
        results
    }

    /// The message for `element`: its subject, its id, its payload copied out once.
    fn outgoing(&self, table: &mut BufferTable, element: &Queued) -> Result<Outgoing, CallError> {
        let subject = match &self.subject {
            SinkSubject::Fixed(subject) => subject.clone(),
            SinkSubject::Attribute(name) => {
                let value = element.attributes.get(name).ok_or_else(|| {
                    CallError::Process(ProcessError::InvalidInput(format!(
                        "the element has no attribute `{name}` to take its subject from"
                    )))
                })?;
                if value.len() > MAX_SUBJECT_BYTES {
                    return Err(CallError::Process(ProcessError::InvalidInput(format!(
                        "attribute `{name}` is a subject of {} bytes; a subject is at most \
                         {MAX_SUBJECT_BYTES}",
                        value.len()
                    ))));
                }
                // Not JetStream's API nor a reply inbox, whatever an element says.
                let system = value.starts_with('$') || value.starts_with("_INBOX.");
                if system || !valid_subject(&value) {
                    return Err(CallError::Process(ProcessError::InvalidInput(format!(
                        "attribute `{name}` is `{value}`, not a subject to publish to"
                    ))));
                }
                value.into_owned()
            }
        };
        let mut payload = Vec::new();
        host_read_onto(table, self.index, element.buffer, &mut payload)
            .map_err(|error| CallError::Trap(wasmtime::Error::msg(error.to_string())))?;
        Ok(Outgoing {
            headers: headers(element, &subject),
            subject,
            payload: Bytes::from(payload),
        })
    }

    fn round_trip(&mut self, messages: Vec<Outgoing>) -> Vec<Result<bool, ProcessError>> {
        if messages.is_empty() {
            return Vec::new();
        }
        let (answers, answered) = std::sync::mpsc::sync_channel(1);
        let request = Request { messages, answers };
        let sent = (self.requests.as_ref()).is_some_and(|r| r.send(request).is_ok());
        match sent {
            true => answered.recv().unwrap_or_default(),
            false => Vec::new(),
        }
    }

    /// How long the latest batch took, acknowledgements included.
    pub(crate) fn last_write(&self) -> Duration {
        self.last_write
    }

    /// Flushes the connection and ends the client's thread.
    pub(crate) fn close(&mut self) -> Result<(), String> {
        self.requests = None;
        join(self.thread.take())
    }

    pub(crate) fn connection(&self) -> Connection {
        self.connection.clone()
    }

    pub(crate) fn report(&self) -> ConnectorReport {
        let mut report = self.report.clone();
        report.transient_errors = self.counters.errors.load(Ordering::Relaxed);
        report
    }
}

/// Publishes every message, then awaits each acknowledgement in order. The messages the
/// server did not store (a lost connection, a restarting server, a timeout) are published
/// again, with the same message ids, after a backoff (doubling from 100 ms to 5 s), each
/// round counted as a transient error, for up to [`PUBLISH_RETRY_FOR`]; past that, each
/// still failing has its error.
///
/// A message larger than the server's `max_payload` (0: not known) fails at once: the
/// server would close the connection on it, again on each retry.
async fn publish(
    context: &jetstream::Context,
    max_payload: usize,
    messages: Vec<Outgoing>,
    counters: &Counters,
) -> Vec<Result<bool, ProcessError>> {
    let began = Instant::now();
    let mut answers: Vec<Option<Result<bool, ProcessError>>> = vec![None; messages.len()];
    let mut pending: Vec<usize> = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        match message.size() {
            size if max_payload > 0 && size > max_payload => {
                let why = too_large(message, size, max_payload);
                answers[i] = Some(Err(ProcessError::InvalidInput(why)));
            }
            _ => pending.push(i),
        }
    }
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut sent = Vec::with_capacity(pending.len());
        for &i in &pending {
            let message = &messages[i];
            let publish = Publish::build()
                .payload(message.payload.clone())
                .headers(message.headers.clone());
            sent.push((
                i,
                context.send_publish(message.subject.clone(), publish).await,
            ));
        }
        // Awaited together: each has the context's timeout, and a batch sent to a server
        // that died waits that long once, not once per message.
        let stored = sent.into_iter().map(|(i, sent)| async move {
            let stored = match sent {
                Ok(ack) => {
                    (ack.await).map_err(|e| format!("JetStream did not store the message: {e}"))
                }
                Err(error) => Err(format!("cannot publish to JetStream: {error}")),
            };
            (i, stored)
        });
        let mut failed = Vec::new();
        for (i, stored) in futures_util::future::join_all(stored).await {
            match stored {
                Ok(ack) => answers[i] = Some(Ok(ack.duplicate)),
                Err(why) => failed.push((i, why)),
            }
        }
        if failed.is_empty() {
            break;
        }
        counters.error();
        if began.elapsed() >= PUBLISH_RETRY_FOR {
            for (i, why) in failed {
                answers[i] = Some(Err(ProcessError::Unavailable(why)));
            }
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MOST_BACKOFF);
        pending = failed.into_iter().map(|(i, _)| i).collect();
    }
    // Every message was answered: stored, or failed past the retries.
    answers.into_iter().flatten().collect()
}

/// The headers of `element`'s message to `subject`: its content type, its attributes, and
/// its message id (see the module's docs).
fn headers(element: &Queued, subject: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let safe_value = |value: &str| value.replace(['\r', '\n'], " ");
    let safe_name = |name: &str| {
        !name.is_empty()
            && !name.to_ascii_lowercase().starts_with("nats-")
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
    };
    for (key, value) in element.attributes.to_vec() {
        let name = match key.strip_prefix("header.") {
            Some(name) => name.to_owned(),
            None => format!("{ATTRIBUTE_HEADER}{key}"),
        };
        if safe_name(&name) {
            headers.append(name.as_str(), safe_value(&value));
        }
    }
    if !element.content_type.is_empty() {
        headers.insert("Content-Type", safe_value(&element.content_type));
    }
    if let Some(id) = message_id(&element.attributes, subject) {
        headers.insert(async_nats::header::NATS_MESSAGE_ID, safe_value(&id));
    }
    headers
}

/// The `Nats-Msg-Id` of an element published to `subject`: its source's identity of it,
/// from its attributes (a NATS message's `stream`, `sequence` and `published`; a file's
/// `file-version` and `offset`), and the subject, so that the branches of a fan-out that
/// publish one element to two subjects of a stream are two messages.
///
/// `None` for an element a source component or an aggregator made, and for one whose
/// identity lacks its version (`published`, `file-version`): sequences start again in a
/// stream deleted and made again, offsets in a file replaced or truncated and written
/// again, and an id that repeated would have the output stream drop new elements as
/// duplicates of old ones. A file's path is left out: a version names one reading of
/// one file, and a file renamed (rotated to a name the globs match too) keeps it.
fn message_id(attributes: &Attributes, subject: &str) -> Option<String> {
    let get = |key: &str| attributes.get(key);
    if let Some(stream) = get("stream") {
        let (sequence, published) = (get("sequence")?, get("published")?);
        return Some(format!("{stream}:{sequence}:{published}:{subject}"));
    }
    let (version, offset) = (get("file-version")?, get("offset")?);
    Some(format!("{version}:{offset}:{subject}"))
}

#[cfg(test)]
mod tests {
    use super::captures;

    #[test]
    fn a_stream_subject_captures_as_the_server_matches_it() {
        for (pattern, subject, captured) in [
            ("results.all", "results.all", true),
            ("results.>", "results.all", true),
            ("results.>", "results.a.b", true),
            ("results.>", "results", false),
            ("results.*", "results.all", true),
            ("results.*", "results.a.b", false),
            ("*.all", "results.all", true),
            ("results", "results.all", false),
            ("results.all", "results", false),
            (">", "any.thing", true),
            ("other.>", "results.all", false),
        ] {
            assert_eq!(captures(pattern, subject), captured, "{pattern} {subject}");
        }
    }
}
