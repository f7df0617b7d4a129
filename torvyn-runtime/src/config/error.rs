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
    /// A component that cannot be used, pointing at its entry: the fault is in the
    /// component, and the diagnostic keeps the code of what was found wrong with it.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Component(Box<ComponentProblem>),
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

/// A component that cannot be used, at its entry in a manifest.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ComponentProblem {
    /// What is wrong.
    message: String,
    /// The code of the diagnostic that found it (e.g. `torvyn::engine::imports`).
    code: String,
    /// How to fix it.
    help: Option<String>,
    /// The manifest text.
    source_code: NamedSource<String>,
    /// The component's entry.
    span: SourceSpan,
}

impl miette::Diagnostic for ComponentProblem {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        (self.help.as_ref()).map(|help| Box::new(help) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let label = miette::LabeledSpan::new_with_span(Some("this component".into()), self.span);
        Some(Box::new(std::iter::once(label)))
    }
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

    /// The component at `span` of the manifest cannot be used, as `problem` says.
    pub(crate) fn component(
        path: &Path,
        text: &str,
        span: std::ops::Range<usize>,
        message: String,
        problem: &dyn miette::Diagnostic,
    ) -> Self {
        let code = problem
            .code()
            .map_or_else(String::new, |code| code.to_string());
        ManifestError::Component(Box::new(ComponentProblem {
            message,
            code,
            help: problem.help().map(|help| help.to_string()),
            source_code: shown(path, text),
            span: span.into(),
        }))
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
            source_code: shown(path, text),
            span: span.into(),
            help,
        })
    }
}

/// The text of the file at `path` as a diagnostic shows it: with the value of every
/// `password` key hidden, so that a diagnostic about a nearby line (a syntax error, a key
/// refused where it stands) never prints a credential to a terminal or a CI log.
fn shown(path: &Path, text: &str) -> NamedSource<String> {
    NamedSource::new(path.display().to_string(), redacted(text))
}

/// `text` with the value after each `password =` (in any case, quoted or bare, in a
/// table or an inline table) replaced by as many `*` as it has bytes, so that every span
/// into the text still points where it did.
fn redacted(text: &str) -> String {
    const KEY: &[u8] = b"password";
    let mut bytes = text.as_bytes().to_vec();
    let mut at = 0;
    while let Some(found) = (bytes[at..].windows(KEY.len()))
        .position(|w| w.eq_ignore_ascii_case(KEY))
        .map(|found| at + found)
    {
        at = found + KEY.len();
        // After the key: an optional closing quote, blanks, `=`, blanks, then the value.
        let mut next = at + usize::from(matches!(bytes.get(at), Some(b'"' | b'\'')));
        let blanks = |mut i: usize, bytes: &[u8]| {
            while matches!(bytes.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
            i
        };
        next = blanks(next, &bytes);
        if bytes.get(next) != Some(&b'=') {
            continue;
        }
        let start = blanks(next + 1, &bytes);
        let end = value_end(&bytes, start);
        bytes[start..end].fill(b'*');
        at = end;
    }
    // Only ASCII bytes were written, each in place of a whole value.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
}

/// Where the TOML value that starts at `start` ends: after its closing quote, or at the
/// end of the line, a comment, a `,` or a `}` for a bare value.
fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(&quote @ (b'"' | b'\'')) => {
            let mut i = start + 1;
            while let Some(&byte) = bytes.get(i) {
                match byte {
                    b'\\' if quote == b'"' => i += 2,
                    b'\n' => return i,
                    _ if byte == quote => return i + 1,
                    _ => i += 1,
                }
            }
            bytes.len()
        }
        _ => {
            let mut end = (start..bytes.len())
                .find(|&i| matches!(bytes[i], b'\n' | b'#' | b',' | b'}'))
                .unwrap_or(bytes.len());
            while end > start && matches!(bytes[end - 1], b' ' | b'\t' | b'\r') {
                end -= 1;
            }
            end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown_and_spans_still_point_where_they_did() {
        let text = "[registry]\nusername = \"me\"\npassword = \"s3cr\\\"et é\"  # mine\n\
                    PASSWORD='x'\nregistry = { username = \"u\", password = hunter2 }\n\
                    \"password\" = \"quoted key\"\npasswords_seen = 3\n";
        let shown = redacted(text);
        assert_eq!(shown.len(), text.len());
        for secret in ["s3cr", "et é", "'x'", "hunter2", "quoted key"] {
            assert!(!shown.contains(secret), "{secret}: {shown}");
        }
        // What is not a password's value stays, at its place.
        for kept in [
            "username = \"me\"",
            "# mine",
            "username = \"u\"",
            " }",
            "passwords_seen = 3",
        ] {
            assert!(shown.contains(kept), "{kept}: {shown}");
        }
        assert_eq!(shown.find("# mine"), text.find("# mine"));
    }
}
