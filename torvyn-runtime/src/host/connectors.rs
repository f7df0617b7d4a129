//! Linking built-in connectors: each `[sources.NAME]` and `[sinks.NAME]` table a flow
//! names becomes a stage the host plays, with its paths resolved against the manifest's
//! folder; a file source whose globs match no file (and that does not follow) is a
//! problem at its `include`.

use std::path::Path;
use std::sync::Arc;

use crate::config::{
    DEFAULT_MAX_ELEMENT_SIZE, DEFAULT_STATE_DIR, ManifestError, ProjectManifest, SinkType,
    SourceType,
};
use crate::connectors::{ConnectorSpec, FileSinkSpec, FileSourceSpec, FramingSpec, glob_files};
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
            SourceType::File => {
                let dir = glob::Pattern::escape(&project.dir().to_string_lossy());
                let include: Vec<String> = (decl.include.iter())
                    .map(|pattern| match Path::new(pattern.get_ref()).is_absolute() {
                        true => pattern.get_ref().clone(),
                        false => format!("{dir}/{}", pattern.get_ref()),
                    })
                    .collect();
                let follow = decl.follow.as_ref().is_some_and(|f| *f.get_ref());
                let state = decl
                    .state
                    .as_ref()
                    .map_or(DEFAULT_STATE_DIR, |s| s.get_ref());
                let checkpoint = project
                    .dir()
                    .join(state)
                    .join(flow)
                    .join(format!("{name}.json"));
                let matched = glob_files(&include).map(|files| files.len());
                let at = decl
                    .include
                    .first()
                    .map_or_else(|| decl.span(), |p| p.span());
                match matched {
                    Ok(0) if !follow => Err(project.error_at(
                        at,
                        format!("file source `{name}`: no file matches {}", quoted(&decl.include)),
                        Some("fix the globs (relative to Torvyn.toml), or set `follow = true` to wait for the files".into()),
                    )),
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
/// whose globs match no file), each at its line: what `check` adds to the manifest's own
/// checks, and `link` finds for the connectors of the flows it links.
pub fn connector_problems(project: &ProjectManifest) -> Vec<ManifestError> {
    let manifest = project.manifest();
    let names = manifest.sources.keys().chain(manifest.sinks.keys());
    // The flow a connector is linked for only names its checkpoint file.
    let problems = names.filter_map(|name| connector_stage(project, "check", name)?.err());
    problems.collect()
}

fn quoted(patterns: &[toml::Spanned<String>]) -> String {
    let quoted: Vec<String> = patterns
        .iter()
        .map(|p| format!("`{}`", p.get_ref()))
        .collect();
    quoted.join(", ")
}
