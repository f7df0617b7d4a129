//! Diagnostics about `Torvyn.toml`, pointing at the offending line.

use std::path::{Path, PathBuf};

use miette::{NamedSource, SourceSpan};

/// What is wrong with a manifest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read `{path}`")]
    #[diagnostic(code(torvyn::manifest::read))]
    Read {
        /// The manifest.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Something at a place in the file.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<Located>),
    /// Several problems, each at its place.
    #[error("{} problems in the manifest", problems.len())]
    #[diagnostic(code(torvyn::manifest::several))]
    Several {
        /// Each problem.
        #[related]
        problems: Vec<ManifestError>,
    },
    /// The named flow does not exist.
    #[error("`{path}` has no flow `{flow}`")]
    #[diagnostic(code(torvyn::manifest::no_such_flow), help("flows: {known}"))]
    NoSuchFlow {
        /// The manifest.
        path: PathBuf,
        /// The flow asked for.
        flow: String,
        /// The flows there are.
        known: String,
    },
    /// A flow has no nodes.
    #[error("flow `{flow}` of `{path}` has no nodes")]
    #[diagnostic(
        code(torvyn::manifest::no_nodes),
        help("list its components in `nodes` and join them with `edges`")
    )]
    NoNodes {
        /// The manifest.
        path: PathBuf,
        /// The flow.
        flow: String,
    },
    /// There is no flow at all.
    #[error("`{path}` declares no flow")]
    #[diagnostic(
        code(torvyn::manifest::no_flows),
        help("add a `[flows.main]` table with `nodes` and `edges`")
    )]
    NoFlows {
        /// The manifest.
        path: PathBuf,
    },
}

/// A problem at a place in a manifest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(torvyn::manifest::invalid))]
pub struct Located {
    /// What is wrong.
    message: String,
    /// The manifest text.
    #[source_code]
    source_code: NamedSource<String>,
    /// Where.
    #[label("here")]
    span: SourceSpan,
    /// How to fix it.
    #[help]
    help: Option<String>,
}

impl ManifestError {
    /// `problems` as one result: none is success, one is itself, more are
    /// [`ManifestError::Several`].
    pub(crate) fn gather(mut problems: Vec<ManifestError>) -> Result<(), ManifestError> {
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            _ => Err(ManifestError::Several { problems }),
        }
    }

    pub(crate) fn at(
        path: &Path,
        text: &str,
        span: std::ops::Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Self {
        ManifestError::Invalid(Located::new(path, text, span, message, help))
    }
}

impl Located {
    pub(crate) fn new(
        path: &Path,
        text: &str,
        span: std::ops::Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Box<Self> {
        Box::new(Located {
            message,
            source_code: NamedSource::new(path.display().to_string(), text.to_owned()),
            span: span.into(),
            help,
        })
    }
}
