//! The keys of `nats` sources and sinks, and their checks.
//!
//! ```toml
//! [sources.work]
//! type = "nats"
//! url = "nats://127.0.0.1:4222"  # the default
//! stream = "WORK"                 # created when missing
//! subjects = ["work.>"]           # what the stream captures (when created; checked when set)
//! retention = "work-queue"        # work-queue (the default) | limits | interest
//! consumer = "torvyn-FLOW-NODE"   # the durable consumer every host of the flow shares
//! ack-wait = "30s"                # redelivered when not acknowledged for this long
//! max-deliver = 5                 # then the message goes through the node's error policy
//! pull-batch = 256                # messages one pull request asks for
//! pull-expires = "1s"             # how long a pull request waits for messages
//!
//! [sinks.results]
//! type = "nats"
//! subject = "results.all"         # or: subject-attribute = "NAME"
//! stream = "RESULTS"              # optional: created when missing, capturing `subject`
//! retention = "limits"            # the stream's, when created (the default) or checked
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::bounds;
use super::connectors::{SinkDecl, SourceDecl, SourceType};
use super::{ManifestError, ProjectManifest};

/// The server a `nats` connector connects to when it names none.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// How long a message may wait for its acknowledgement when `ack-wait` is not set
/// (JetStream's own default).
pub const DEFAULT_ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How many times a message is delivered when `max-deliver` is not set: a few retries,
/// and never a loop (JetStream's own default is no limit).
pub const DEFAULT_MAX_DELIVER: u32 = 5;

/// Messages a pull request asks for when `pull-batch` is not set.
pub const DEFAULT_PULL_BATCH: u32 = 256;

/// How long a pull request waits for messages when `pull-expires` is not set.
pub const DEFAULT_PULL_EXPIRES: std::time::Duration = std::time::Duration::from_secs(1);

/// When a JetStream stream lets its messages go (JetStream's `retention`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retention {
    /// Each message is removed once a consumer acknowledged it: a queue of work.
    #[default]
    WorkQueue,
    /// Messages are kept up to the stream's limits, whoever read them.
    Limits,
    /// Messages are kept while a consumer has not acknowledged them.
    Interest,
}

impl Retention {
    /// Its name in `Torvyn.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Retention::WorkQueue => "work-queue",
            Retention::Limits => "limits",
            Retention::Interest => "interest",
        }
    }
}

impl ProjectManifest {
    /// A `nats` source's keys: a stream, a URL that parses, durations and counts within
    /// their bounds.
    pub(super) fn check_nats_source(
        &self,
        name: &str,
        decl: &SourceDecl,
        keep: &mut impl FnMut(Result<(), ManifestError>),
    ) {
        if decl.stream.is_none() {
            keep(Err(self.error_at(
                decl.span(),
                format!("nats source `{name}` names no stream"),
                Some("add `stream = \"WORK\"` (created when missing, with `subjects`)".into()),
            )));
        }
        keep(self.check_nats_url(decl.url.as_ref()));
        keep(self.check_nats_names(decl.stream.iter().chain(&decl.consumer)));
        if let Some(wait) = &decl.ack_wait {
            keep(self.duration(wait, bounds::ACK_WAIT).map(drop));
        }
        if let Some(expires) = &decl.pull_expires {
            keep(self.duration(expires, bounds::PULL_EXPIRES).map(drop));
        }
        let counts = [
            (&decl.max_deliver, bounds::MAX_DELIVER, "max-deliver"),
            (&decl.pull_batch, bounds::PULL_BATCH, "pull-batch"),
        ];
        for (value, range, key) in counts {
            if let Some(value) = value
                && let Err(why) = range.check_count(*value.get_ref())
            {
                keep(Err(self.error_at(
                    value.span(),
                    format!("`{key}` of {why}"),
                    None,
                )));
            }
        }
    }

    /// A `nats` sink's keys: one of `subject` and `subject-attribute`, a URL that parses.
    pub(super) fn check_nats_sink(
        &self,
        name: &str,
        decl: &SinkDecl,
        keep: &mut impl FnMut(Result<(), ManifestError>),
    ) {
        match (&decl.subject, &decl.subject_attribute) {
            (None, None) => keep(Err(self.error_at(
                decl.kind.span(),
                format!("nats sink `{name}` names no subject"),
                Some("add `subject = \"results\"`, or `subject-attribute = \"NAME\"` to take each element's from an attribute".into()),
            ))),
            (Some(_), Some(attribute)) => keep(Err(self.error_at(
                attribute.span(),
                format!("nats sink `{name}` has both `subject` and `subject-attribute`"),
                Some("keep one of them".into()),
            ))),
            (Some(subject), None) if !valid_subject(subject.get_ref()) => {
                keep(Err(self.error_at(
                    subject.span(),
                    format!("`{}` is not a subject to publish to", subject.get_ref()),
                    Some(format!("write tokens separated by dots, without spaces or the wildcards `*` and `>`, in at most {MAX_SUBJECT_BYTES} bytes")),
                )))
            }
            _ => {}
        }
        let of_stream = [
            ("subjects", decl.subjects.first().map(Spanned::span)),
            ("retention", decl.retention.as_ref().map(Spanned::span)),
        ];
        let stray = (of_stream.into_iter()).find_map(|(key, span)| Some((key, span?)));
        if decl.stream.is_none()
            && let Some((key, span)) = stray
        {
            keep(Err(self.error_at(
                span,
                format!("`{key}` of `{name}` is a stream's, and it names none"),
                Some(format!("add `stream = \"NAME\"`, or remove `{key}`")),
            )));
        }
        keep(self.check_nats_url(decl.url.as_ref()));
        keep(self.check_nats_names(decl.stream.iter()));
    }

    fn check_nats_url(&self, url: Option<&Spanned<String>>) -> Result<(), ManifestError> {
        let Some(url) = url else {
            return Ok(());
        };
        url.get_ref()
            .parse::<async_nats::ServerAddr>()
            .map(drop)
            .map_err(|error| {
                self.error_at(
                    url.span(),
                    format!("`{}` is not a NATS server address: {error}", url.get_ref()),
                    Some("write `nats://HOST:PORT`".into()),
                )
            })
    }

    /// Stream and consumer names: JetStream refuses names with spaces, dots, `*`, `>`,
    /// path separators, empty, or longer than [`MAX_NAME_BYTES`].
    fn check_nats_names<'a>(
        &self,
        names: impl Iterator<Item = &'a Spanned<String>>,
    ) -> Result<(), ManifestError> {
        for name in names {
            let text = name.get_ref();
            if !is_jetstream_name(text) {
                return Err(self.error_at(
                    name.span(),
                    format!("`{text}` is not a JetStream stream or consumer name"),
                    Some(format!(
                        "use letters, digits, `-` and `_`, at most {MAX_NAME_BYTES} bytes"
                    )),
                ));
            }
        }
        Ok(())
    }

    /// Node `node` of flow `flow`, when it is a `nats` source that names no consumer: the
    /// consumer it gets, [`default_consumer`], must be a JetStream name too, which a flow
    /// or source named with a dot or a space, or long names, keep it from being.
    pub(super) fn check_default_consumer(
        &self,
        flow: &str,
        node: &Spanned<String>,
    ) -> Result<(), ManifestError> {
        let Some(decl) = self.manifest.sources.get(node.get_ref()) else {
            return Ok(());
        };
        if *decl.kind.get_ref() != SourceType::Nats || decl.consumer.is_some() {
            return Ok(());
        }
        let consumer = default_consumer(flow, node.get_ref());
        match is_jetstream_name(&consumer) {
            true => Ok(()),
            false => Err(self.error_at(
                node.span(),
                format!(
                    "nats source `{}` of flow `{flow}` would read through the consumer \
                     `{consumer}`, which is not a JetStream consumer name",
                    node.get_ref()
                ),
                Some(format!(
                    "name it with `consumer = \"NAME\"` in `[sources.{}]` (letters, \
                     digits, `-` and `_`, at most {MAX_NAME_BYTES} bytes)",
                    node.get_ref()
                )),
            )),
        }
    }
}

/// The durable consumer of `nats` source `node` in flow `flow` when its table names none:
/// named after both, so that every host running the same manifest shares it.
pub(crate) fn default_consumer(flow: &str, node: &str) -> String {
    format!("torvyn-{flow}-{node}")
}

/// Whether JetStream takes `name` as a stream or consumer name: not empty, at most
/// [`MAX_NAME_BYTES`], without spaces, dots, `*`, `>` or path separators.
fn is_jetstream_name(name: &str) -> bool {
    let bad = |c: char| c.is_whitespace() || ".*>/\\".contains(c);
    !name.is_empty() && !name.contains(bad) && name.len() <= MAX_NAME_BYTES
}

/// The longest stream or consumer name JetStream takes (nats-server's `JSMaxNameLen`): a
/// longer one is refused when the stream or consumer is made.
const MAX_NAME_BYTES: usize = 255;

/// The longest subject a message is published to: nats-server's default
/// `max_control_line` (4 096 bytes, the longest protocol line it reads; it is not told to
/// clients) less 128 bytes for the rest of a publish's line (`HPUB`, the reply inbox and
/// the sizes). The server closes the connection on a longer line, which would fail every
/// message in flight on it.
pub const MAX_SUBJECT_BYTES: usize = 4096 - 128;

/// Whether `subject` is one a message can be published to: dot-separated tokens, none
/// empty, without spaces or wildcards, at most [`MAX_SUBJECT_BYTES`] long.
pub(crate) fn valid_subject(subject: &str) -> bool {
    subject.len() <= MAX_SUBJECT_BYTES
        && !subject.is_empty()
        && subject
            .split('.')
            .all(|token| !token.is_empty() && token != "*" && token != ">")
        && !subject.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::{MAX_SUBJECT_BYTES, valid_subject};

    #[test]
    fn a_subject_is_dotted_tokens_without_wildcards_within_a_protocol_line() {
        assert!(valid_subject("results.all"));
        for refused in ["", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert!(!valid_subject(refused), "{refused:?}");
        }
        let longest = "x".repeat(MAX_SUBJECT_BYTES);
        assert!(valid_subject(&longest));
        assert!(!valid_subject(&(longest + "x")));
    }
}
