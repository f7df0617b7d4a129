//! `cargo torvyn new`: scaffolds a component crate or a whole pipeline project.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use miette::{IntoDiagnostic, bail};

use crate::output::status;
use crate::templates::{self, Values};

/// Create a component crate or a pipeline project from a template
#[derive(Debug, Args)]
pub(crate) struct NewCommand {
    /// The folder to create, as `cargo new` takes it: a name, or a path whose last part
    /// names the crate or project
    #[arg(value_name = "PATH")]
    dest: PathBuf,

    /// What to create
    #[arg(long, value_enum, default_value_t = Template::Pipeline)]
    template: Template,

    /// Name the crate or project this instead of the last part of PATH
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Depend on the torvyn-sdk crate at this path [default: the SDK of the Torvyn
    /// checkout this tool was built from, when it is still there; else the published crate]
    #[arg(long, value_name = "DIR", env = "TORVYN_SDK_PATH")]
    sdk_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Template {
    /// A source component
    Source,
    /// A processor component
    Processor,
    /// A sink component
    Sink,
    /// A filter component
    Filter,
    /// A project with a source, a processor, a sink and a Torvyn.toml that runs them
    Pipeline,
}

impl Template {
    fn folder(self) -> &'static str {
        match self {
            Template::Source => "source",
            Template::Processor => "processor",
            Template::Sink => "sink",
            Template::Filter => "filter",
            Template::Pipeline => "pipeline",
        }
    }
}

/// The components a pipeline project gets: (template, crate name).
const PIPELINE_COMPONENTS: [(Template, &str); 3] = [
    (Template::Source, "source"),
    (Template::Processor, "transform"),
    (Template::Sink, "sink"),
];

impl NewCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let dest = &self.dest;
        let name = match &self.name {
            Some(name) => name.clone(),
            None => match dest.file_name().and_then(|n| n.to_str()) {
                Some(last) => last.to_owned(),
                None => bail!(
                    help = "give a folder to create, or its crate name with `--name NAME`",
                    "`{}` names no folder to create",
                    dest.display()
                ),
            },
        };
        check_name(&name).map_err(|error| match &self.name {
            Some(_) => error,
            None => error.wrap_err(format!(
                "the last part of `{}` names the crate; pass `--name NAME` to name it otherwise",
                dest.display()
            )),
        })?;
        if dest.exists() {
            bail!("`{}` already exists", dest.display());
        }
        let sdk = sdk_dependency(self.sdk_path.as_deref())?;
        let values = Values {
            name: &name,
            sdk: &sdk,
        };
        templates::render(self.template.folder(), dest, &values)?;
        if self.template == Template::Pipeline {
            for (template, name) in PIPELINE_COMPONENTS {
                let component = Values { name, sdk: &sdk };
                templates::render(
                    template.folder(),
                    &dest.join("components").join(name),
                    &component,
                )?;
            }
        }
        status(
            "Created",
            format!("{} `{name}` in {}", self.template.folder(), dest.display()),
        );
        let next = if self.template == Template::Pipeline {
            "cargo torvyn run"
        } else {
            "cargo torvyn build"
        };
        status("Next", format!("cd {} && {next}", dest.display()));
        Ok(())
    }
}

/// Crate names: ASCII letters, digits, `-` and `_`, not starting with a digit.
fn check_name(name: &str) -> miette::Result<()> {
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

/// The TOML value of the `torvyn-sdk` dependency of a new crate. The SDK is not published
/// yet, so a path to a checkout is used when one is known; the version requirement stays
/// so the dependency reads as it will once published.
fn sdk_dependency(explicit: Option<&Path>) -> miette::Result<String> {
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
        let dependency = sdk_dependency(None).unwrap();
        assert!(dependency.contains("path = "), "{dependency}");
        assert!(dependency.contains("torvyn-sdk"), "{dependency}");
    }
}
