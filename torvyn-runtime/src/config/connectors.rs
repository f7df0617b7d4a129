//! The `[sources.NAME]` and `[sinks.NAME]` tables: built-in connectors, nodes the host
//! plays itself, and their checks.
//!
//! ```toml
//! [sources.access-log]
//! type = "file"
//! include = ["logs/*.log"]      # globs, relative to Torvyn.toml
//! framing = "lines"             # lines (LF or CRLF) | ndjson | whole (one element per file)
//! max-element-size = "1MiB"     # longer elements go through `oversize`
//! oversize = "skip"             # skip | truncate | fail (the default)
//! follow = false                # true: read appends, and rotated or truncated files, as `tail -F`
//! state = ".torvyn/state"       # where checkpoints are kept, relative to Torvyn.toml
//!
//! [sources.input]
//! type = "stdin"
//!
//! [sinks.redacted]
//! type = "file"
//! path = "out/redacted.ndjson"  # appended to; created with its folder when missing
//! fsync = false                 # true: each batch is on disk before it counts delivered
//!
//! [sinks.out]
//! type = "stdout"
//! ```

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::bounds;
use super::nats::Retention;
use super::{ManifestError, ProjectManifest};
use crate::contracts::Role;

/// Where a built-in source reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceType {
    /// Files named by globs, with checkpoints.
    File,
    /// The host's standard input.
    Stdin,
    /// A durable pull consumer on a NATS JetStream stream.
    Nats,
}

/// Where a built-in sink writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkType {
    /// A file, appended to.
    File,
    /// The host's standard output.
    Stdout,
    /// JetStream publishes to a NATS subject.
    Nats,
}

/// How bytes are cut into elements, and how elements are written back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// One element per line, without its `\n` or `\r\n`; a sink writes `\n` after each.
    #[default]
    Lines,
    /// As `lines`, and a source checks each line is one JSON value: a line that is not
    /// goes through the node's error policy.
    Ndjson,
    /// One element per file (or the whole of standard input); a sink writes each element's
    /// bytes as they are.
    Whole,
}

impl Framing {
    /// The content type of elements read under this framing.
    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Lines => "text/plain",
            Framing::Ndjson => "application/json",
            Framing::Whole => "application/octet-stream",
        }
    }
}

/// What a source does with an element longer than its `max-element-size`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Oversize {
    /// The flow fails, naming the file and line.
    #[default]
    Fail,
    /// The element is not emitted, and counted (`skipped-oversize`).
    Skip,
    /// Its first `max-element-size` bytes are emitted, and it is counted (`truncated`).
    Truncate,
}

/// The largest element a source emits when `max-element-size` is not set.
pub const DEFAULT_MAX_ELEMENT_SIZE: u64 = 1 << 20;

/// Where a source connector keeps its checkpoints when `state` is not set, relative to
/// the manifest.
pub const DEFAULT_STATE_DIR: &str = ".torvyn/state";

/// A `[sources.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceDecl {
    /// `file` or `stdin`.
    #[serde(rename = "type")]
    pub kind: Spanned<SourceType>,
    /// `file`: globs naming the files to read, relative to the manifest; read one after
    /// another in the order of the globs, each glob's matches sorted by path.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// How bytes are cut into elements (default `lines`).
    #[serde(default)]
    pub framing: Option<Spanned<Framing>>,
    /// The longest element, within [`bounds::MAX_ELEMENT_SIZE`] (default 1 MiB).
    pub max_element_size: Option<Spanned<bytesize::ByteSize>>,
    /// What a longer element becomes (default `fail`).
    pub oversize: Option<Spanned<Oversize>>,
    /// `file`: keep reading as `tail -F` does, until the flow is stopped.
    pub follow: Option<Spanned<bool>>,
    /// `file`: the folder checkpoints are kept in (default [`DEFAULT_STATE_DIR`]).
    pub state: Option<Spanned<String>>,
    /// `nats`: the server's URL (default [`DEFAULT_NATS_URL`](super::DEFAULT_NATS_URL)).
    pub url: Option<Spanned<String>>,
    /// `nats`: the JetStream stream, created when missing.
    pub stream: Option<Spanned<String>>,
    /// `nats`: the subjects the stream captures, when it is created; checked against an
    /// existing stream's when set.
    #[serde(default)]
    pub subjects: Vec<Spanned<String>>,
    /// `nats`: the stream's retention when it is created (default `work-queue`); checked
    /// against an existing stream's when set.
    pub retention: Option<Spanned<Retention>>,
    /// `nats`: the durable consumer's name (default `torvyn-FLOW-NODE`), shared by every
    /// host that runs the flow.
    pub consumer: Option<Spanned<String>>,
    /// `nats`: how long the server waits for an element's acknowledgement before it
    /// delivers the message again (default 30s).
    pub ack_wait: Option<Spanned<String>>,
    /// `nats`: the most times a message is delivered (default 5).
    pub max_deliver: Option<Spanned<u32>>,
    /// `nats`: the most messages one pull request asks for (default 256).
    pub pull_batch: Option<Spanned<u32>>,
    /// `nats`: how long the server keeps a pull request that found no message (default
    /// 1s): a stopped flow waits at most this long for its last request.
    pub pull_expires: Option<Spanned<String>>,
}

impl SourceDecl {
    /// Its framing, `lines` when not set.
    pub fn framing(&self) -> Framing {
        self.framing
            .as_ref()
            .map_or_else(Framing::default, |f| *f.get_ref())
    }

    /// The span naming it, for diagnostics about the whole table.
    pub fn span(&self) -> Range<usize> {
        self.kind.span()
    }
}

/// A `[sinks.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SinkDecl {
    /// `file` or `stdout`.
    #[serde(rename = "type")]
    pub kind: Spanned<SinkType>,
    /// `file`: the file to append to, relative to the manifest.
    pub path: Option<Spanned<String>>,
    /// How elements are written (default `lines`: a `\n` after each).
    pub framing: Option<Spanned<Framing>>,
    /// `file`: flush each batch to disk (`fsync`) before it counts delivered.
    pub fsync: Option<Spanned<bool>>,
    /// `nats`: the server's URL (default [`DEFAULT_NATS_URL`](super::DEFAULT_NATS_URL)).
    pub url: Option<Spanned<String>>,
    /// `nats`: the subject each element is published to.
    pub subject: Option<Spanned<String>>,
    /// `nats`: the attribute naming each element's subject, instead of `subject`.
    pub subject_attribute: Option<Spanned<String>>,
    /// `nats`: the stream published to, created when missing (capturing `subject`, or
    /// `subjects`).
    pub stream: Option<Spanned<String>>,
    /// `nats`: the subjects the stream captures when it is created; checked against an
    /// existing stream's when set.
    #[serde(default)]
    pub subjects: Vec<Spanned<String>>,
    /// `nats`: the stream's retention when it is created (default `limits`: it keeps
    /// what it is given); checked against an existing stream's when set.
    pub retention: Option<Spanned<Retention>>,
}

impl SinkDecl {
    /// Its framing, `lines` when not set.
    pub fn framing(&self) -> Framing {
        self.framing
            .as_ref()
            .map_or_else(Framing::default, |f| *f.get_ref())
    }
}

impl ProjectManifest {
    /// The problems of the `[sources]` and `[sinks]` tables: names, keys that do not go
    /// with the connector's type, missing keys, sizes out of range, globs that are not.
    pub(super) fn check_connectors(&self, keep: &mut impl FnMut(Result<(), ManifestError>)) {
        let manifest = &self.manifest;
        for (name, decl) in &manifest.sources {
            keep(self.check_connector_name(name, decl.span()));
            let kind = *decl.kind.get_ref();
            let file = kind == SourceType::File;
            if kind == SourceType::Nats {
                self.check_nats_source(name, decl, keep);
                // A message is one element, as it is.
                let only_framed = [
                    ("framing", decl.framing.as_ref().map(Spanned::span)),
                    (
                        "max-element-size",
                        (decl.max_element_size.as_ref()).map(Spanned::span),
                    ),
                    ("oversize", decl.oversize.as_ref().map(Spanned::span)),
                ];
                keep(self.only_for(name, "a `file` or `stdin` source", &only_framed));
            } else {
                let only_nats = [
                    ("url", decl.url.as_ref().map(Spanned::span)),
                    ("stream", decl.stream.as_ref().map(Spanned::span)),
                    ("subjects", decl.subjects.first().map(Spanned::span)),
                    ("retention", decl.retention.as_ref().map(Spanned::span)),
                    ("consumer", decl.consumer.as_ref().map(Spanned::span)),
                    ("ack-wait", decl.ack_wait.as_ref().map(Spanned::span)),
                    ("max-deliver", decl.max_deliver.as_ref().map(Spanned::span)),
                    ("pull-batch", decl.pull_batch.as_ref().map(Spanned::span)),
                    (
                        "pull-expires",
                        decl.pull_expires.as_ref().map(Spanned::span),
                    ),
                ];
                keep(self.only_for(name, "a `nats` source", &only_nats));
            }
            if !file {
                let only_file = [
                    ("include", decl.include.first().map(Spanned::span)),
                    ("follow", decl.follow.as_ref().map(Spanned::span)),
                    ("state", decl.state.as_ref().map(Spanned::span)),
                ];
                keep(self.only_for(name, "a `file` source", &only_file));
            }
            if let Some(follow) = &decl.follow
                && *follow.get_ref()
                && decl.framing() == Framing::Whole
            {
                keep(Err(self.error_at(
                    follow.span(),
                    format!("file source `{name}` follows its files, but `framing = \"whole\"` makes an element of a whole file, which a followed file never finishes"),
                    Some("use `lines` or `ndjson` framing to follow files".into()),
                )));
            }
            if file && decl.include.is_empty() {
                keep(Err(self.error_at(
                    decl.span(),
                    format!("file source `{name}` names no files"),
                    Some("add `include = [\"logs/*.log\"]` (globs relative to Torvyn.toml)".into()),
                )));
            }
            for pattern in &decl.include {
                if let Err(error) = glob::Pattern::new(pattern.get_ref()) {
                    keep(Err(self.error_at(
                        pattern.span(),
                        format!("`{}` is not a glob: {error}", pattern.get_ref()),
                        None,
                    )));
                }
            }
            if let Some(size) = &decl.max_element_size
                && let Err(why) = bounds::MAX_ELEMENT_SIZE.check_size(size.get_ref().as_u64())
            {
                keep(Err(self.error_at(
                    size.span(),
                    format!("`max-element-size` of {why}"),
                    None,
                )));
            }
        }
        let stdin = manifest
            .sources
            .iter()
            .filter(|(_, d)| *d.kind.get_ref() == SourceType::Stdin);
        for (name, decl) in stdin.skip(1) {
            keep(Err(self.error_at(
                decl.span(),
                format!("`{name}` is a second `stdin` source: there is one standard input, and two readers would each get part of it"),
                Some("read standard input in one source, and fan its elements out with edges".into()),
            )));
        }
        for (name, decl) in &manifest.sources {
            if *decl.kind.get_ref() != SourceType::Stdin {
                continue;
            }
            let nodes = manifest.flows.values().flat_map(|flow| &flow.nodes);
            for node in nodes.filter(|n| n.get_ref() == name).skip(1) {
                keep(Err(self.error_at(
                    node.span(),
                    format!("`stdin` source `{name}` is a node of more than one flow: run together, each would get part of standard input"),
                    Some("read standard input in one flow".into()),
                )));
            }
        }
        for (name, decl) in &manifest.sinks {
            keep(self.check_connector_name(name, decl.kind.span()));
            if *decl.kind.get_ref() == SinkType::Nats {
                self.check_nats_sink(name, decl, keep);
                let only_file = [
                    ("path", decl.path.as_ref().map(Spanned::span)),
                    ("fsync", decl.fsync.as_ref().map(Spanned::span)),
                    ("framing", decl.framing.as_ref().map(Spanned::span)),
                ];
                keep(self.only_for(name, "a `file` or `stdout` sink", &only_file));
                continue;
            }
            let only_nats = [
                ("url", decl.url.as_ref().map(Spanned::span)),
                ("subject", decl.subject.as_ref().map(Spanned::span)),
                (
                    "subject-attribute",
                    (decl.subject_attribute.as_ref()).map(Spanned::span),
                ),
                ("stream", decl.stream.as_ref().map(Spanned::span)),
                ("subjects", decl.subjects.first().map(Spanned::span)),
                ("retention", decl.retention.as_ref().map(Spanned::span)),
            ];
            keep(self.only_for(name, "a `nats` sink", &only_nats));
            match (*decl.kind.get_ref(), &decl.path) {
                (SinkType::File, None) => keep(Err(self.error_at(
                    decl.kind.span(),
                    format!("file sink `{name}` names no file"),
                    Some("add `path = \"out/NAME.ndjson\"` (relative to Torvyn.toml)".into()),
                ))),
                (SinkType::File, Some(path)) if path.get_ref().trim().is_empty() => keep(Err(
                    self.error_at(path.span(), "the sink's path is empty", None)
                )),
                (SinkType::Stdout, _) => {
                    let only_file = [
                        ("path", decl.path.as_ref().map(Spanned::span)),
                        ("fsync", decl.fsync.as_ref().map(Spanned::span)),
                    ];
                    keep(self.only_for(name, "a `file` sink", &only_file));
                }
                _ => {}
            }
        }
    }

    /// A connector's name is a usable name, and no component or other connector has it.
    fn check_connector_name(&self, name: &str, span: Range<usize>) -> Result<(), ManifestError> {
        self.check_file_name("connector", name, span.clone())?;
        let manifest = &self.manifest;
        let taken = [
            manifest.components.contains_key(name),
            manifest.sources.contains_key(name),
            manifest.sinks.contains_key(name),
        ];
        if taken.into_iter().filter(|&t| t).count() > 1 {
            return Err(self.error_at(
                span,
                format!("`{name}` names more than one node (components, sources and sinks share one set of names)"),
                Some("rename one of them".into()),
            ));
        }
        Ok(())
    }

    /// A problem for the first key of `keys` that is set, since only `what` takes it.
    fn only_for(
        &self,
        name: &str,
        what: &str,
        keys: &[(&str, Option<Range<usize>>)],
    ) -> Result<(), ManifestError> {
        match keys
            .iter()
            .find_map(|(key, span)| Some((key, span.clone()?)))
        {
            Some((key, span)) => Err(self.error_at(
                span,
                format!("`{key}` of `{name}`: only {what} takes it"),
                Some(format!("remove `{key}`, or change `type`")),
            )),
            None => Ok(()),
        }
    }
}

impl super::Manifest {
    /// Whether `name` is declared as a node: a component, a source or a sink.
    pub fn declares_node(&self, name: &str) -> bool {
        self.components.contains_key(name)
            || self.sources.contains_key(name)
            || self.sinks.contains_key(name)
    }

    /// The role of node `name` as far as the manifest says: a connector's, or the one a
    /// component declares.
    pub fn declared_role(&self, name: &str) -> Option<Role> {
        if self.sources.contains_key(name) {
            return Some(Role::Source);
        }
        if self.sinks.contains_key(name) {
            return Some(Role::Sink);
        }
        Some(*self.components.get(name)?.role.as_ref()?.get_ref())
    }

    /// Every name a node of a flow may have, for a hint.
    pub fn node_names(&self) -> Vec<&str> {
        let names = self.components.keys().chain(self.sources.keys());
        names.chain(self.sinks.keys()).map(String::as_str).collect()
    }
}
