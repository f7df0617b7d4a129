//! Reading `Torvyn.toml` so that a table nobody knows does not hide the file's other
//! problems: each unknown top-level table is reported at its name and set aside, and
//! the rest is read and checked as usual.

use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, Deserializer};

use super::{Manifest, ManifestError};

/// The manifest in `text`, with a problem for each unknown top-level table it holds; or
/// every problem found when even the rest cannot be read.
pub(super) fn read(
    path: &Path,
    text: &str,
) -> Result<(Manifest, Vec<ManifestError>), ManifestError> {
    let error = |error: toml::de::Error| {
        let span = error.span().unwrap_or(0..0);
        ManifestError::at(path, text, span, error.message().to_owned(), None)
    };
    let mut table = DeTable::parse(text).map_err(error)?;
    let mut unknown = Vec::new();
    // Each attempt either reads the manifest, or names one more table to set aside, or
    // fails on something else: at most one attempt per table, and one more.
    loop {
        let failed = match Manifest::deserialize(Deserializer::from(table.clone())) {
            Ok(manifest) => return Ok((manifest, unknown)),
            Err(failed) => failed,
        };
        let span = failed.span();
        let key = (table.get_ref().keys())
            .find(|key| Some(key.span()) == span)
            .cloned();
        match key {
            Some(key) if failed.message().starts_with("unknown field") => {
                table.get_mut().remove(&key);
                unknown.push(error(failed));
            }
            _ if unknown.is_empty() => return Err(error(failed)),
            _ => {
                unknown.push(error(failed));
                return Err(ManifestError::Several { problems: unknown });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ProjectManifest;
    use crate::config::tests::render;

    #[test]
    fn an_unknown_table_does_not_hide_the_other_problems() {
        let text = r#"
[project]
name = "p"

[component.typo]
path = "a.wasm"

[flow.main]
nodes = ["a"]

[components.a]
path = "a.wasm"

[flows.main]
nodes = ["a", "missing"]
"#;
        let error = ProjectManifest::parse("/p/Torvyn.toml".as_ref(), text.into()).unwrap_err();
        let rendered = render(&error);
        for problem in [
            "unknown field `component`",
            "unknown field `flow`",
            "node `missing` of flow `main` names no component",
        ] {
            assert!(rendered.contains(problem), "{problem}: {rendered}");
        }
    }
}
