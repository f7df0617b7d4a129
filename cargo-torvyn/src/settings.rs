//! Layered settings: each one resolves from the command line, else the environment
//! (`TORVYN_…`), else the project's `[settings]` table, else the user's configuration file
//! (`torvyn/config.toml` in the platform's config folder, e.g. `~/.config`), else its
//! built-in default. figment merges the layers and remembers where each value came from,
//! which `cargo torvyn config` shows.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider, Source};
use torvyn_runtime::{Defaults, ProjectManifest, Settings, env_var};

use crate::cli::Listen;

/// The standard OpenTelemetry variable, read below `TORVYN_OTLP_ENDPOINT`.
const OTEL_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Where a setting's value comes from, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    Default,
    User,
    Project,
    Environment,
    CommandLine,
}

impl Layer {
    const ALL: [Layer; 5] = [
        Layer::Default,
        Layer::User,
        Layer::Project,
        Layer::Environment,
        Layer::CommandLine,
    ];

    /// Its name, as `config` shows it and figment's metadata holds it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layer::Default => "built-in default",
            Layer::User => "user configuration",
            Layer::Project => "project",
            Layer::Environment => "environment",
            Layer::CommandLine => "command line",
        }
    }
}

/// One typed layer, as a figment provider: the layer's name, the file or variable it was
/// read from, and what it sets.
struct Typed {
    layer: Layer,
    source: Option<Source>,
    settings: Settings,
}

impl Provider for Typed {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(self.layer.name());
        match &self.source {
            Some(source) => metadata.source(source.clone()),
            None => metadata,
        }
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Serialized::defaults(&self.settings).data()
    }
}

/// The environment's layers, lowest first: `OTEL_EXPORTER_OTLP_ENDPOINT`, then each
/// setting's own variable, `TORVYN_` and its key in capitals with `.` and `-` as `_`
/// (`TORVYN_LIMITS_MEMORY`). A value is read as `--config` reads one: TOML, a bare string,
/// or a comma-separated list of strings. Other variables, `TORVYN_` ones too, are not
/// settings.
fn environment() -> miette::Result<Vec<Typed>> {
    let vars = std::iter::once((OTEL_ENDPOINT_VAR.to_owned(), "otlp-endpoint"))
        .chain(Settings::KEYS.iter().map(|key| (env_var(key), *key)));
    let mut layers = Vec::new();
    for (var, key) in vars {
        let Some(text) = std::env::var_os(&var) else {
            continue;
        };
        let Some(text) = text.to_str() else {
            miette::bail!("{var} is not valid UTF-8");
        };
        let settings = crate::cli::setting_value(key, text)
            .map_err(|why| miette::miette!("{var} (the setting `{key}`): {why}"))?;
        layers.push(Typed {
            layer: Layer::Environment,
            source: Some(Source::Custom(var)),
            settings,
        });
    }
    Ok(layers)
}

/// The settings of this run, merged, with where each came from.
#[derive(Debug)]
pub(crate) struct Resolved {
    figment: Figment,
    settings: Settings,
}

/// The user's configuration file, whether or not it exists: `torvyn/config.toml` in
/// `$XDG_CONFIG_HOME` where that is set (on every platform, as other command-line tools
/// do), else in the platform's config folder (`~/.config` on Linux).
pub(crate) fn user_file() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty());
    let dir = xdg.map(PathBuf::from).or_else(dirs::config_dir)?;
    Some(dir.join("torvyn").join("config.toml"))
}

/// What `--config KEY=VALUE` set, in the order given: the command line's layer.
static COMMAND_LINE: OnceLock<Vec<Settings>> = OnceLock::new();

/// Keeps what `--config` set, for every resolution of this process.
pub(crate) fn set_command_line(layers: Vec<Settings>) {
    let _ = COMMAND_LINE.set(layers);
}

/// Merges every layer: the built-in defaults, the user's file, `project`'s `[settings]`
/// (when there is a project), the environment and the command line's `--config`. A
/// command's own flags (`run --listen`) come above all of them, where it reads them.
pub(crate) fn resolve(project: Option<&ProjectManifest>) -> miette::Result<Resolved> {
    let builtin = Settings {
        cache_dir: dirs::cache_dir().map(|dir| dir.join("torvyn")),
        ..Settings::builtin()
    };
    let user = user_file();
    let user_settings = match &user {
        Some(path) => Settings::read(path)?,
        None => Settings::default(),
    };
    let file = |path: &Path| Some(Source::File(path.to_owned()));
    let typed = |layer, source, settings| Typed {
        layer,
        source,
        settings,
    };
    let mut figment = Figment::new()
        .merge(typed(Layer::Default, None, builtin))
        .merge(typed(
            Layer::User,
            user.as_deref().and_then(file),
            user_settings,
        ))
        .merge(typed(
            Layer::Project,
            project.and_then(|p| file(p.path())),
            project.map_or_else(Settings::default, |p| p.manifest().settings.clone()),
        ));
    for layer in environment()? {
        figment = figment.merge(layer);
    }
    for layer in COMMAND_LINE.get().into_iter().flatten() {
        figment = figment.merge(typed(Layer::CommandLine, None, layer.clone()));
    }
    // Each layer was read into `Settings` already: what could fail here has failed there.
    let settings = figment.extract().map_err(|error| {
        let key = error.path.join(".");
        miette::miette!("setting `{key}`: {}", error.kind)
    })?;
    Ok(Resolved { figment, settings })
}

/// The settings of the machine alone (no project's): what commands use before, or
/// without, a project.
pub(crate) fn machine() -> miette::Result<Resolved> {
    resolve(None)
}

/// The settings with the layer of the project that `--manifest-path` names or that is
/// found from the current folder, where there is one that can be read (a command that
/// then reads it reports what is wrong with it); the machine's alone otherwise.
pub(crate) fn for_manifest(manifest_path: Option<&Path>) -> miette::Result<Resolved> {
    let found = crate::project::torvyn_manifest(manifest_path);
    let project = found.and_then(|path| ProjectManifest::load(&path).ok());
    resolve(project.as_ref())
}

impl Resolved {
    /// The merged values.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The value of `key` (dotted), as TOML; `None` where no layer sets it.
    pub(crate) fn value(&self, key: &str) -> Option<toml::Value> {
        let value = self.figment.find_value(key).ok()?;
        toml::Value::try_from(value).ok()
    }

    /// Which layer `key` (dotted) comes from, and the file or variable that set it.
    pub(crate) fn origin(&self, key: &str) -> Option<(Layer, Option<String>)> {
        let metadata = self.figment.find_metadata(key)?;
        let layer = *Layer::ALL.iter().find(|l| l.name() == metadata.name)?;
        Some((layer, metadata.source.as_ref().map(Source::to_string)))
    }

    /// A setting's key with the layer it came from, for a diagnostic about it:
    /// ``limits.memory` (from the command line)`.
    pub(crate) fn describe(&self, key: &str) -> String {
        match self.origin(key) {
            Some((layer, Some(detail))) => format!("`{key}` (from the {}: {detail})", layer.name()),
            Some((layer, None)) => format!("`{key}` (from the {})", layer.name()),
            None => format!("`{key}`"),
        }
    }

    /// What the project's declarations fall back on.
    pub(crate) fn defaults(&self) -> miette::Result<Defaults> {
        self.settings
            .defaults()
            .map_err(|error| miette::miette!("setting {}: {}", self.describe(error.key), error.why))
    }

    /// The `listen` setting, parsed.
    pub(crate) fn listen(&self) -> miette::Result<Option<Listen>> {
        (self.settings.listen.as_deref())
            .map(|text| {
                crate::cli::listen(text)
                    .map_err(|why| miette::miette!("setting {}: {why}", self.describe("listen")))
            })
            .transpose()
    }

    /// Torvyn's cache folder, where there is one.
    pub(crate) fn cache_root(&self) -> Option<PathBuf> {
        self.settings.cache_dir.clone()
    }

    /// The registry credentials these settings give: both or neither.
    pub(crate) fn registry_login(&self) -> miette::Result<Option<(String, String)>> {
        let registry = &self.settings.registry;
        match (&registry.username, &registry.password) {
            (Some(username), Some(password)) => Ok(Some((username.clone(), password.clone()))),
            (None, None) => Ok(None),
            (set, _) => {
                let (given, missing) = match set {
                    Some(_) => ("registry.username", "registry.password"),
                    None => ("registry.password", "registry.username"),
                };
                miette::bail!(
                    help = format!(
                        "set both ({} and {}), or neither to use the Docker config",
                        env_var("registry.username"),
                        env_var("registry.password")
                    ),
                    "setting {} has no `{missing}` to go with it",
                    self.describe(given)
                )
            }
        }
    }

    /// Whether `registry` (`HOST[:PORT]`) is one to reach over plain HTTP.
    pub(crate) fn insecure(&self, registry: &str) -> bool {
        self.settings
            .registry
            .insecure
            .iter()
            .any(|r| r == registry)
    }
}
