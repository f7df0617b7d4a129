//! The project templates of `templates/`, built into the binary, and their rendering.
//!
//! A template is a folder of files; `{{name}}` and `{{sdk}}` in them are replaced, and a
//! `.tmpl` suffix (which keeps Cargo from reading `Cargo.toml.tmpl` as a manifest) is
//! dropped.

use std::path::Path;

use include_dir::{Dir, DirEntry, include_dir};
use miette::{Context, IntoDiagnostic, miette};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../templates");

/// Values substituted into a template.
pub(crate) struct Values<'a> {
    /// The name of the crate or project.
    pub(crate) name: &'a str,
    /// The TOML value of the `torvyn-sdk` dependency.
    pub(crate) sdk: &'a str,
}

/// Writes template `template` into `dest`, which must not exist yet.
pub(crate) fn render(template: &str, dest: &Path, values: &Values<'_>) -> miette::Result<()> {
    let dir = TEMPLATES
        .get_dir(template)
        .ok_or_else(|| miette!("no template `{template}` in this build"))?;
    write_dir(dir, Path::new(template), dest, values)
}

fn write_dir(dir: &Dir<'_>, root: &Path, dest: &Path, values: &Values<'_>) -> miette::Result<()> {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(sub) => write_dir(sub, root, dest, values)?,
            DirEntry::File(file) => {
                let relative = file.path().strip_prefix(root).into_diagnostic()?;
                let relative = relative
                    .to_str()
                    .map(|p| p.strip_suffix(".tmpl").unwrap_or(p))
                    .ok_or_else(|| miette!("template file name is not UTF-8"))?;
                let target = dest.join(relative);
                let text = file
                    .contents_utf8()
                    .ok_or_else(|| miette!("template file `{relative}` is not UTF-8"))?
                    .replace("{{name}}", values.name)
                    .replace("{{sdk}}", values.sdk);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).into_diagnostic()?;
                }
                std::fs::write(&target, text)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot write `{}`", target.display()))?;
            }
        }
    }
    Ok(())
}
