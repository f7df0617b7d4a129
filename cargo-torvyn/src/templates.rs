//! The project templates of `templates/`, built into the binary, and their rendering.
//!
//! A template is a folder of files; `{{name}}`, `{{sdk}}` and `{{path}}` in them are
//! replaced, and a `.tmpl` suffix (which keeps Cargo from reading `Cargo.toml.tmpl` as a
//! manifest) is dropped. The templates of components in other languages also get the
//! contract's WIT in `wit/`, from which their build generates bindings. `new` and `init`
//! both render through [`Template::files`], so that what they scaffold is the same; only
//! where it goes differs.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use clap::builder::PossibleValue;
use include_dir::{Dir, DirEntry, include_dir};
use miette::{Context, IntoDiagnostic, bail, miette};
use torvyn_runtime::{MANIFEST_FILE, Role};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../templates");

/// The `torvyn:streaming` contract's WIT files.
static CONTRACT: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../wit/streaming");

/// What `new` and `init` scaffold: a crate of one role, or a pipeline project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Template {
    /// A component crate of this role.
    Component(Role),
    /// A project with a source, a processor, a sink and a Torvyn.toml that runs them.
    Pipeline,
    /// A project whose one processor is written in Python, between stdin and stdout.
    PythonProcessor,
    /// A project whose one processor is written in JavaScript, between stdin and stdout.
    JavascriptProcessor,
}

/// Every template, in the order the help lists them.
const ALL: [Template; Role::ALL.len() + 3] = {
    let mut all = [Template::Pipeline; Role::ALL.len() + 3];
    all[Role::ALL.len() + 1] = Template::PythonProcessor;
    all[Role::ALL.len() + 2] = Template::JavascriptProcessor;
    let mut at = 0;
    while at < Role::ALL.len() {
        all[at] = Template::Component(Role::ALL[at]);
        at += 1;
    }
    all
};

impl ValueEnum for Template {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Template::Component(Role::Aggregator) => "An aggregator component".to_owned(),
            Template::Component(role) => format!("A {role} component"),
            Template::Pipeline => {
                "A project with a source, a processor, a sink and a Torvyn.toml that runs them"
                    .to_owned()
            }
            Template::PythonProcessor => {
                "A processor in Python, built with componentize-py, between stdin and stdout"
                    .to_owned()
            }
            Template::JavascriptProcessor => {
                "A processor in JavaScript, built with ComponentizeJS, between stdin and stdout"
                    .to_owned()
            }
        };
        Some(PossibleValue::new(self.folder()).help(help))
    }
}

/// The components a pipeline project gets: (role, crate name).
pub(crate) const PIPELINE_COMPONENTS: [(Role, &str); 3] = [
    (Role::Source, "source"),
    (Role::Processor, "transform"),
    (Role::Sink, "sink"),
];

/// The folder of a pipeline project that holds its component crates.
pub(crate) const COMPONENTS_DIR: &str = "components";

/// Values substituted into a template.
pub(crate) struct Values<'a> {
    /// The name of the crate or project.
    pub(crate) name: &'a str,
    /// The TOML value of the `torvyn-sdk` dependency.
    pub(crate) sdk: &'a str,
    /// Where a component template's Torvyn.toml finds its crate, relative to it: `.` when
    /// they share a folder, as `new` makes them.
    pub(crate) path: &'a str,
}

/// Whether a file of a component template belongs to the project around the crate (its
/// Torvyn.toml and test files) rather than to the crate itself.
pub(crate) fn is_project_file(path: &Path) -> bool {
    path == Path::new(MANIFEST_FILE) || path.starts_with("tests")
}

/// A file a template makes: where it goes, relative to the folder scaffolded, and its text.
pub(crate) struct File {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

impl Template {
    /// The template's folder in `templates/`, which is also its name on the command line.
    pub(crate) fn folder(self) -> &'static str {
        match self {
            Template::Component(role) => role.name(),
            Template::Pipeline => "pipeline",
            Template::PythonProcessor => "python-processor",
            Template::JavascriptProcessor => "javascript-processor",
        }
    }

    /// Whether the template is a component in a language other than Rust: a project of
    /// its own, with no crate.
    pub(crate) fn is_other_language(self) -> bool {
        matches!(
            self,
            Template::PythonProcessor | Template::JavascriptProcessor
        )
    }

    /// The files of this template rendered with `values`: a pipeline's own files and its
    /// components' crates under `components/`, one component's crate, or a project of a
    /// component in another language with the contract's WIT in `wit/`.
    pub(crate) fn files(self, values: &Values<'_>) -> miette::Result<Vec<File>> {
        let mut files = render(self.folder(), values)?;
        if self.is_other_language() {
            for wit in CONTRACT.files() {
                let name = wit.path().file_name().unwrap_or_default();
                let text = (wit.contents_utf8()).ok_or_else(|| {
                    miette!("the contract's `{}` is not UTF-8", wit.path().display())
                })?;
                files.push(File {
                    path: Path::new("wit").join(name),
                    text: text.to_owned(),
                });
            }
        }
        if self == Template::Pipeline {
            for (role, name) in PIPELINE_COMPONENTS {
                let component = Values { name, ..*values };
                let prefix = Path::new(COMPONENTS_DIR).join(name);
                let crate_files = render(role.name(), &component)?.into_iter();
                files.extend(
                    crate_files
                        .filter(|f| !is_project_file(&f.path))
                        .map(|f| File {
                            path: prefix.join(f.path),
                            text: f.text,
                        }),
                );
            }
        }
        Ok(files)
    }

    /// The command that comes next once this template is scaffolded.
    pub(crate) fn next_step(self) -> &'static str {
        match self {
            Template::Pipeline => "cargo torvyn run",
            Template::PythonProcessor | Template::JavascriptProcessor => {
                "printf 'hello\\nworld\\n' | cargo torvyn run"
            }
            Template::Component(Role::Source) => "cargo torvyn run",
            Template::Component(Role::Router | Role::Aggregator) => {
                "printf 'a\\nb\\nc\\n' | cargo torvyn run"
            }
            Template::Component(Role::Filter) => {
                "printf 'kept\\n\\nalso kept\\n' | cargo torvyn run"
            }
            Template::Component(_) => "printf 'hello\\nworld\\n' | cargo torvyn run",
        }
    }
}

/// The `Cargo.toml` a pipeline project starts with: a workspace of its `components/`.
pub(crate) fn workspace_manifest(values: &Values<'_>) -> miette::Result<File> {
    render(Template::Pipeline.folder(), values)?
        .into_iter()
        .find(|file| file.path == Path::new("Cargo.toml"))
        .ok_or_else(|| miette!("the pipeline template has no Cargo.toml in this build"))
}

/// The files of template folder `template` rendered with `values`.
fn render(template: &str, values: &Values<'_>) -> miette::Result<Vec<File>> {
    let dir = TEMPLATES
        .get_dir(template)
        .ok_or_else(|| miette!("no template `{template}` in this build"))?;
    let mut files = Vec::new();
    collect(dir, Path::new(template), values, &mut files)?;
    Ok(files)
}

fn collect(
    dir: &Dir<'_>,
    root: &Path,
    values: &Values<'_>,
    files: &mut Vec<File>,
) -> miette::Result<()> {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(sub) => collect(sub, root, values, files)?,
            DirEntry::File(file) => {
                let relative = file.path().strip_prefix(root).into_diagnostic()?;
                let relative = relative
                    .to_str()
                    .map(|p| p.strip_suffix(".tmpl").unwrap_or(p))
                    .ok_or_else(|| miette!("template file name is not UTF-8"))?;
                let text = file
                    .contents_utf8()
                    .ok_or_else(|| miette!("template file `{relative}` is not UTF-8"))?
                    .replace("{{name}}", values.name)
                    .replace("{{sdk}}", values.sdk)
                    .replace("{{path}}", values.path);
                files.push(File {
                    path: PathBuf::from(relative),
                    text,
                });
            }
        }
    }
    Ok(())
}

/// Writes `files` into `dest`, making the folders they need.
pub(crate) fn write(dest: &Path, files: &[File]) -> miette::Result<()> {
    for file in files {
        let target = dest.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).into_diagnostic()?;
        }
        std::fs::write(&target, &file.text)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write `{}`", target.display()))?;
    }
    Ok(())
}

/// Crate names: ASCII letters, digits, `-` and `_`, not starting with a digit.
pub(crate) fn check_name(name: &str) -> miette::Result<()> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!(
            help = "use ASCII letters, digits, `-` and `_`, starting with a letter",
            "`{name}` is not a valid crate name"
        );
    }
    Ok(())
}

/// The name a scaffold takes: `explicit` (`--name`), else the last part of `dest`, which
/// must then be a crate name too.
pub(crate) fn name_for(dest: &Path, explicit: Option<&str>) -> miette::Result<String> {
    let name = match explicit {
        Some(name) => name.to_owned(),
        None => match dest.file_name().and_then(|n| n.to_str()) {
            Some(last) => last.to_owned(),
            None => bail!(
                help = "give a folder, or the crate name with `--name NAME`",
                "`{}` names no folder",
                dest.display()
            ),
        },
    };
    check_name(&name).map_err(|error| match explicit {
        Some(_) => error,
        None => error.wrap_err(format!(
            "the last part of `{}` names the crate; pass `--name NAME` to name it otherwise",
            dest.display()
        )),
    })?;
    Ok(name)
}

/// The TOML value of the `torvyn-sdk` dependency of the crates of `template`, which has
/// none when it is of another language. The SDK is not published yet, so a path to a
/// checkout is used when one is known; the version requirement stays so the dependency
/// reads as it will once published.
pub(crate) fn sdk_dependency(
    template: Template,
    explicit: Option<&Path>,
) -> miette::Result<String> {
    if template.is_other_language() {
        return Ok(String::new());
    }
    let version = env!("CARGO_PKG_VERSION");
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../torvyn-sdk");
    let path = match explicit {
        Some(path) if !path.join("Cargo.toml").is_file() => {
            bail!(
                "`{}` holds no torvyn-sdk crate (no Cargo.toml)",
                path.display()
            )
        }
        Some(path) => Some(path.to_owned()),
        None => built_from
            .join("Cargo.toml")
            .is_file()
            .then_some(built_from),
    };
    Ok(match path {
        Some(path) => {
            let path = path.canonicalize().into_diagnostic()?;
            let path = path.display().to_string().replace('\\', "/");
            format!("{{ version = \"{version}\", path = \"{path}\" }}")
        }
        None => format!("\"{version}\""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_are_checked() {
        assert!(check_name("demo").is_ok());
        assert!(check_name("my-filter_2").is_ok());
        assert!(check_name("2fast").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn the_sdk_of_this_checkout_is_found() {
        let dependency = sdk_dependency(Template::Pipeline, None).unwrap();
        assert!(dependency.contains("path = "), "{dependency}");
        assert!(dependency.contains("torvyn-sdk"), "{dependency}");
    }

    #[test]
    fn every_template_renders() {
        let values = Values {
            name: "demo",
            sdk: "\"0.1.0\"",
            path: ".",
        };
        for template in Template::value_variants() {
            let files = template.files(&values).unwrap();
            let manifest = match template.is_other_language() {
                true => "Torvyn.toml",
                false => "Cargo.toml",
            };
            assert!(
                files.iter().any(|f| f.path.ends_with(manifest)),
                "{template:?}"
            );
            assert!(files.iter().all(|f| !f.text.contains("{{")), "{template:?}");
        }
    }
}
