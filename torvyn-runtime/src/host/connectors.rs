//! Linking built-in connectors: each `[sources.NAME]` and `[sinks.NAME]` table a flow
//! names becomes a stage the host plays, with its paths resolved against the manifest's
//! folder; a file source whose globs match no file (and that does not follow) is a
//! problem at its `include`, and so is one stream declared two ways at the second way.

use std::sync::Arc;

use crate::config::{
    DEFAULT_MAX_ELEMENT_SIZE, DEFAULT_NATS_URL, DEFAULT_PULL_BATCH, DEFAULT_PULL_EXPIRES,
    ManifestError, ProjectManifest, Retention, SinkDecl, SinkType, SourceDecl, SourceType,
    default_consumer,
};
use crate::connectors::{
    ConnectorSpec, FileSinkSpec, FileSourceSpec, FramingSpec, NatsSinkSpec, NatsSourceSpec,
    SinkSubject, StreamSpec, glob_files, glob_in,
};
use crate::reactor::{StageBody, StageSpec};

/// The stage of connector `name` as a node of flow `flow`, or `None` when `name` is not
/// a connector of `project`.
pub(super) fn connector_stage(
    project: &ProjectManifest,
    flow: &str,
    name: &str,
) -> Option<Result<StageSpec, ManifestError>> {
    let manifest = project.manifest();
    let spec = if let Some(decl) = manifest.sources.get(name) {
        let framing = FramingSpec {
            framing: decl.framing(),
            max_element_size: (decl.max_element_size.as_ref())
                .map_or(DEFAULT_MAX_ELEMENT_SIZE, |s| s.get_ref().as_u64()),
            oversize: decl
                .oversize
                .as_ref()
                .map(|o| *o.get_ref())
                .unwrap_or_default(),
        };
        match decl.kind.get_ref() {
            SourceType::Stdin => Ok(ConnectorSpec::Stdin(framing)),
            SourceType::Nats => Ok(ConnectorSpec::NatsSource(nats_source(flow, name, decl))),
            SourceType::File => {
                let include: Vec<String> = (decl.include.iter())
                    .map(|pattern| glob_in(project.dir(), pattern.get_ref()))
                    .collect();
                let follow = decl.follow.as_ref().is_some_and(|f| *f.get_ref());
                let checkpoint = project.checkpoint_path(decl, flow, name);
                let matched = glob_files(&include).map(|files| files.len());
                let at = decl
                    .include
                    .first()
                    .map_or_else(|| decl.span(), |p| p.span());
                match matched {
                    Ok(0) if !follow => {
                        // Paths the globs match that cannot be read as files, and why.
                        let others: Vec<String> = (crate::connectors::glob_others(&include, 3))
                            .iter()
                            .map(|(path, what)| {
                                let shown = path.strip_prefix(project.dir()).unwrap_or(path);
                                format!("`{}` is {what}", shown.display())
                            })
                            .collect();
                        let matched = match others.is_empty() {
                            true => String::new(),
                            false => format!(" (of what they match, {})", others.join(", ")),
                        };
                        Err(project.error_at(
                            at,
                            format!(
                                "file source `{name}`: no file matches {}{matched}",
                                quoted(&decl.include)
                            ),
                            Some("fix the globs (relative to Torvyn.toml), or set `follow = true` to wait for the files".into()),
                        ))
                    }
                    Err(why) => Err(project.error_at(at, why, None)),
                    Ok(_) => Ok(ConnectorSpec::FileSource(FileSourceSpec {
                        include,
                        framing,
                        follow,
                        checkpoint,
                    })),
                }
            }
        }
    } else if let Some(decl) = manifest.sinks.get(name) {
        Ok(match decl.kind.get_ref() {
            SinkType::Stdout => ConnectorSpec::Stdout(decl.framing()),
            SinkType::Nats => ConnectorSpec::NatsSink(nats_sink(decl)),
            SinkType::File => ConnectorSpec::FileSink(FileSinkSpec {
                path: project
                    .dir()
                    .join(decl.path.as_ref().map_or("", |p| p.get_ref())),
                framing: decl.framing(),
                fsync: decl.fsync.as_ref().is_some_and(|f| *f.get_ref()),
            }),
        })
    } else {
        return None;
    };
    Some(spec.map(|spec| StageSpec {
        name: name.to_owned(),
        body: StageBody::Connector(spec),
        config: String::new(),
        limits: Default::default(),
        grants: Arc::new(Default::default()),
    }))
}

/// The problems of `project`'s connectors that only the file system shows (a file source
/// whose globs match no file), and the JetStream streams that two connectors declare in
/// ways a server cannot both have, each at its line: what `check` adds to the manifest's
/// own checks (`link` finds the first kind for the connectors of the flows it links).
pub fn connector_problems(project: &ProjectManifest) -> Vec<ManifestError> {
    let manifest = project.manifest();
    let names = manifest.sources.keys().chain(manifest.sinks.keys());
    // The flow a connector is linked for only names its checkpoint file.
    let problems = names.filter_map(|name| connector_stage(project, "check", name)?.err());
    let mut problems: Vec<ManifestError> = problems.collect();
    problems.extend(stream_conflicts(project));
    problems
}

/// A JetStream stream as one `nats` connector declares it.
struct Declared<'a> {
    node: &'a str,
    url: String,
    stream: StreamSpec,
    /// Where its `retention` is set, and its `subjects`.
    retention_at: Option<std::ops::Range<usize>>,
    subjects_at: Option<std::ops::Range<usize>>,
}

/// Each pair of `nats` connectors that declare one stream (the same name on the same
/// server) in two ways the server cannot both have, whichever starts first: a `retention`
/// one of them sets that the other would create the stream without, or `subjects` both
/// set that differ. Each is a problem at the key that cannot be met, naming the other.
fn stream_conflicts(project: &ProjectManifest) -> Vec<ManifestError> {
    let manifest = project.manifest();
    let sources = (manifest.sources.iter())
        .filter(|(_, decl)| *decl.kind.get_ref() == SourceType::Nats && decl.stream.is_some())
        .map(|(name, decl)| {
            let spec = nats_source("", name, decl);
            let spans = (decl.retention.as_ref(), decl.subjects.first());
            (name.as_str(), spec.url, spec.stream, spans)
        });
    let sinks = (manifest.sinks.iter())
        .filter(|(_, decl)| *decl.kind.get_ref() == SinkType::Nats)
        .filter_map(|(name, decl)| {
            let spec = nats_sink(decl);
            let spans = (decl.retention.as_ref(), decl.subjects.first());
            Some((name.as_str(), spec.url, spec.stream?, spans))
        });
    let declared: Vec<Declared<'_>> = sources
        .chain(sinks)
        .map(|(node, url, stream, (retention, subjects))| Declared {
            node,
            url,
            stream,
            retention_at: retention.map(toml::Spanned::span),
            subjects_at: subjects.map(toml::Spanned::span),
        })
        .collect();
    let mut problems = Vec::new();
    for (i, b) in declared.iter().enumerate() {
        for a in &declared[..i] {
            if (a.url.as_str(), &a.stream.name) != (b.url.as_str(), &b.stream.name) {
                continue;
            }
            let name = &b.stream.name;
            if a.stream.retention != b.stream.retention {
                // The one that sets it is refused when the other created the stream.
                let (set, other) = if b.stream.retention_set {
                    (b, a)
                } else {
                    (a, b)
                };
                if let Some(at) = set.retention_at.clone() {
                    problems.push(project.error_at(
                        at,
                        format!(
                            "`{}` asks JetStream stream `{name}` for retention `{}`, and `{}` would create it with retention `{}`",
                            set.node,
                            set.stream.retention.name(),
                            other.node,
                            other.stream.retention.name()
                        ),
                        Some(format!("set the same `retention` on `{}` and `{}`", a.node, b.node)),
                    ));
                }
            }
            let sorted = |s: &StreamSpec| {
                let mut subjects = s.subjects.clone();
                subjects.sort();
                subjects
            };
            if a.stream.subjects_set
                && b.stream.subjects_set
                && sorted(&a.stream) != sorted(&b.stream)
                && let Some(at) = b.subjects_at.clone()
            {
                problems.push(project.error_at(
                    at,
                    format!(
                        "`{}` and `{}` declare JetStream stream `{name}` with different `subjects`",
                        a.node, b.node
                    ),
                    Some(
                        "declare the stream's subjects the same way on both, or on one only".into(),
                    ),
                ));
            }
        }
    }
    problems
}

/// A `nats` source as its (checked) table declares it: the durable consumer is named
/// after the flow and the node unless the table names it, so that every host running
/// the same manifest shares it.
fn nats_source(flow: &str, name: &str, decl: &SourceDecl) -> NatsSourceSpec {
    let stream = decl.stream.as_ref().map_or("", |s| s.get_ref()).to_owned();
    let duration = |text: &Option<toml::Spanned<String>>| {
        (text.as_ref()).and_then(|t| humantime::parse_duration(t.get_ref()).ok())
    };
    NatsSourceSpec {
        url: nats_url(decl.url.as_ref()),
        stream: stream_spec(
            stream,
            &decl.subjects,
            (decl.retention.as_ref(), Retention::WorkQueue),
            None,
        ),
        consumer: (decl.consumer.as_ref())
            .map_or_else(|| default_consumer(flow, name), |c| c.get_ref().clone()),
        ack_wait: duration(&decl.ack_wait),
        max_deliver: decl.max_deliver.as_ref().map(|m| *m.get_ref()),
        pull_batch: (decl.pull_batch.as_ref()).map_or(DEFAULT_PULL_BATCH, |b| *b.get_ref()),
        pull_expires: duration(&decl.pull_expires).unwrap_or(DEFAULT_PULL_EXPIRES),
    }
}

/// A `nats` sink as its (checked) table declares it.
fn nats_sink(decl: &SinkDecl) -> NatsSinkSpec {
    let subject = match (&decl.subject, &decl.subject_attribute) {
        (Some(subject), _) => SinkSubject::Fixed(subject.get_ref().clone()),
        (None, attribute) => {
            SinkSubject::Attribute(attribute.as_ref().map_or("", |a| a.get_ref()).to_owned())
        }
    };
    let fixed = match &subject {
        SinkSubject::Fixed(subject) => Some(subject.clone()),
        SinkSubject::Attribute(_) => None,
    };
    NatsSinkSpec {
        url: nats_url(decl.url.as_ref()),
        stream: (decl.stream.as_ref()).map(|stream| {
            let retention = (decl.retention.as_ref(), Retention::Limits);
            stream_spec(stream.get_ref().clone(), &decl.subjects, retention, fixed)
        }),
        subject,
    }
}

/// A stream named `name`, capturing `subjects` when set, or else `fallback` (a sink's
/// subject), or else every subject under its name in lower case; with the retention the
/// manifest sets, or else the default given (work-queue for a source's stream: a queue of
/// work; limits for a sink's: it keeps what it is given).
fn stream_spec(
    name: String,
    subjects: &[toml::Spanned<String>],
    retention: (Option<&toml::Spanned<Retention>>, Retention),
    fallback: Option<String>,
) -> StreamSpec {
    let set = !subjects.is_empty();
    let (retention, default) = retention;
    let subjects = match set {
        true => subjects.iter().map(|s| s.get_ref().clone()).collect(),
        false => vec![fallback.unwrap_or_else(|| format!("{}.>", name.to_lowercase()))],
    };
    StreamSpec {
        name,
        subjects,
        subjects_set: set,
        retention: retention.map_or(default, |r| *r.get_ref()),
        retention_set: retention.is_some(),
    }
}

fn nats_url(url: Option<&toml::Spanned<String>>) -> String {
    url.map_or(DEFAULT_NATS_URL, |u| u.get_ref()).to_owned()
}

fn quoted(patterns: &[toml::Spanned<String>]) -> String {
    let quoted: Vec<String> = patterns
        .iter()
        .map(|p| format!("`{}`", p.get_ref()))
        .collect();
    quoted.join(", ")
}
