//! Settings a user may change per machine or per run, and the [`Defaults`] they give a
//! project: what its flows and components fall back on where they set nothing.
//!
//! One [`Settings`] is one layer and holds only what that layer sets: the user's
//! configuration file, a project's `[settings]` table, the environment, the command line.
//! Whoever runs the host merges the layers (the CLI: command line > environment > project >
//! user file > built-in defaults, [`Settings::builtin`]) and turns the result into
//! [`Defaults`] with [`Settings::defaults`]. The same keys in every file:
//!
//! ```toml
//! observability = "production"           # off, production or diagnostic
//! listen = "127.0.0.1:9464"              # or unix:PATH
//! otlp-endpoint = "http://127.0.0.1:4317"
//! cache-dir = "/var/cache/torvyn"
//! state-dir = ".torvyn/state"            # relative to the project's folder
//! queue-capacity = 64
//!
//! [limits]                               # of each component that does not set its own
//! memory = "256 MiB"
//! invocation-time = "10s"
//!
//! [registry]
//! username = "ci"
//! password = "…"
//! insecure = ["registry.lan:5000"]       # reached over plain HTTP
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::{DEFAULT_QUEUE_CAPACITY, DEFAULT_STATE_DIR};
use super::{ManifestError, bounds};
use crate::observability::ObservabilityLevel;
use crate::resources::StageBudget;
use crate::security::Limits;

/// One layer of settings: each field is what this layer sets, `None` (or empty) where it
/// leaves the setting to the layers below. Unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// What flows record about themselves (`off`, `production`, `diagnostic`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilityLevel>,
    /// Where `run` serves `/metrics` and the inspection API, and where `top` looks:
    /// `HOST:PORT` or `unix:PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The OpenTelemetry collector `run` exports to, by OTLP over gRPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Where compiled components and pulled artifacts are cached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// Where file sources that name no `state` keep their checkpoints, relative to the
    /// project's folder unless absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Capacity of each queue whose edge and flow set none, within
    /// [`bounds::QUEUE_CAPACITY`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_capacity: Option<u32>,
    /// The limits of each component that does not set its own.
    #[serde(default, skip_serializing_if = "LimitSettings::is_empty")]
    pub limits: LimitSettings,
    /// How OCI registries are reached.
    #[serde(default, skip_serializing_if = "RegistrySettings::is_empty")]
    pub registry: RegistrySettings,
}

/// The `[limits]` of a settings layer: the same keys, units and bounds as a component's
/// `[components.NAME.limits]` ([`LimitsDecl`](super::LimitsDecl)).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitSettings {
    /// Largest size of each linear memory, within [`bounds::MEMORY`].
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "in_bytes")]
    pub memory: Option<ByteSize>,
    /// Most elements of each table, at least one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_elements: Option<u32>,
    /// Most core instances, tables and memories of a component, at least one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// Longest one call may run (e.g. `"100ms"`), within [`bounds::INVOCATION_TIME`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_time: Option<String>,
    /// Most fuel one call may use, within [`bounds::FUEL`]; none when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Bytes of host buffers a component may hold at once, within
    /// [`bounds::BUFFER_MEMORY`].
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "in_bytes")]
    pub buffer_memory: Option<ByteSize>,
    /// Host buffer handles a component may hold at once, within
    /// [`bounds::BUFFER_HANDLES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_handles: Option<u32>,
}

/// A size as its number of bytes: bytesize writes sizes rounded to one decimal of their
/// unit (`95.4 MiB`), which would change a size passed on through another layer.
fn in_bytes<S: serde::Serializer>(size: &Option<ByteSize>, to: S) -> Result<S::Ok, S::Error> {
    size.map(|size| size.as_u64()).serialize(to)
}

/// The `[registry]` of a settings layer. Its `Debug` does not show the password.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistrySettings {
    /// The user name given to every registry; with `password`, or not at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Its password or token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Registries (`HOST[:PORT]`) reached over plain HTTP; this machine's are anyway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insecure: Vec<String>,
}

impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl LimitSettings {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl RegistrySettings {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a project's declarations fall back on: resolved from [`Settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Capacity of a queue whose edge and flow set none.
    pub queue_capacity: u32,
    /// The limits of a component, for each one its `[limits]` leaves unset.
    pub limits: Limits,
    /// The checkpoint folder of a file source that names none, relative to the project's
    /// folder unless absolute.
    pub state_dir: PathBuf,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            limits: Limits::default(),
            state_dir: DEFAULT_STATE_DIR.into(),
        }
    }
}

/// A setting whose value cannot be used: its key (`limits.memory`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The setting's dotted key, as in [`Settings::KEYS`].
    pub key: &'static str,
    /// What is wrong with its value.
    pub why: String,
}

impl Settings {
    /// Every setting's dotted key, in the order `cargo torvyn config` shows them.
    pub const KEYS: &'static [&'static str] = &[
        "observability",
        "listen",
        "otlp-endpoint",
        "cache-dir",
        "state-dir",
        "queue-capacity",
        "limits.memory",
        "limits.table-elements",
        "limits.instances",
        "limits.invocation-time",
        "limits.fuel",
        "limits.buffer-memory",
        "limits.buffer-handles",
        "registry.username",
        "registry.password",
        "registry.insecure",
    ];

    /// The built-in value of each setting that has one that does not depend on the
    /// machine: the lowest layer. `cache-dir`'s depends on the user, and is the caller's.
    pub fn builtin() -> Settings {
        let defaults = Defaults::default();
        let limits = defaults.limits;
        Settings {
            observability: Some(ObservabilityLevel::default()),
            state_dir: Some(defaults.state_dir),
            queue_capacity: Some(defaults.queue_capacity),
            limits: LimitSettings {
                memory: Some(ByteSize(limits.memory)),
                table_elements: Some(limits.table_elements),
                instances: Some(limits.instances),
                invocation_time: (limits.invocation_time)
                    .map(|t| humantime::format_duration(t).to_string()),
                fuel: limits.fuel,
                buffer_memory: Some(ByteSize(limits.budget.max_bytes)),
                buffer_handles: Some(limits.budget.max_handles),
            },
            ..Settings::default()
        }
    }

    /// The settings file at `path` (the user's configuration): empty when there is no
    /// such file. An unknown key or a value of the wrong type is an error at its line.
    pub fn read(path: &Path) -> Result<Settings, ManifestError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Settings::default());
            }
            Err(source) => {
                return Err(ManifestError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            ManifestError::at(path, &text, span, error.message().to_owned(), None)
        })
    }

    /// The project defaults these settings give, each unset one at its built-in value;
    /// or the first setting whose value is out of its bounds.
    pub fn defaults(&self) -> Result<Defaults, SettingError> {
        let builtin = Defaults::default();
        let queue_capacity = match self.queue_capacity {
            Some(capacity) => check(
                "queue-capacity",
                bounds::QUEUE_CAPACITY.check_count(capacity),
            )?,
            None => builtin.queue_capacity,
        };
        Ok(Defaults {
            queue_capacity,
            limits: self.limits.resolve(builtin.limits)?,
            state_dir: self.state_dir.clone().unwrap_or(builtin.state_dir),
        })
    }
}

impl LimitSettings {
    /// `builtin` with each limit these settings set, checked against its bounds.
    fn resolve(&self, builtin: Limits) -> Result<Limits, SettingError> {
        let size = |key, set: Option<ByteSize>, range: bounds::Bounds<u64>, default| match set {
            Some(size) => check(key, range.check_size(size.as_u64())),
            None => Ok(default),
        };
        let count = |key, set: Option<u32>, range: bounds::Bounds<u32>, default| match set {
            Some(count) => check(key, range.check_count(count)),
            None => Ok(default),
        };
        let invocation_time: Option<Duration> = match &self.invocation_time {
            Some(text) => Some(check(
                "limits.invocation-time",
                bounds::INVOCATION_TIME.parse(text),
            )?),
            None => builtin.invocation_time,
        };
        let fuel = match self.fuel {
            Some(fuel) => Some(check("limits.fuel", bounds::FUEL.check_count(fuel))?),
            None => builtin.fuel,
        };
        Ok(Limits {
            memory: size("limits.memory", self.memory, bounds::MEMORY, builtin.memory)?,
            table_elements: count(
                "limits.table-elements",
                self.table_elements,
                bounds::AT_LEAST_ONE,
                builtin.table_elements,
            )?,
            instances: count(
                "limits.instances",
                self.instances,
                bounds::AT_LEAST_ONE,
                builtin.instances,
            )?,
            invocation_time,
            fuel,
            budget: StageBudget {
                max_bytes: size(
                    "limits.buffer-memory",
                    self.buffer_memory,
                    bounds::BUFFER_MEMORY,
                    builtin.budget.max_bytes,
                )?,
                max_handles: count(
                    "limits.buffer-handles",
                    self.buffer_handles,
                    bounds::BUFFER_HANDLES,
                    builtin.budget.max_handles,
                )?,
            },
        })
    }
}

/// The environment variable that sets `key` (`limits.memory`): `TORVYN_LIMITS_MEMORY`.
pub fn env_var(key: &str) -> String {
    format!("TORVYN_{}", key.replace(['.', '-'], "_").to_uppercase())
}

fn check<T>(key: &'static str, checked: Result<T, String>) -> Result<T, SettingError> {
    checked.map_err(|why| SettingError { key, why })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProjectManifest;

    #[test]
    fn the_builtin_settings_give_the_builtin_defaults() {
        assert_eq!(Settings::builtin().defaults().unwrap(), Defaults::default());
        assert_eq!(Settings::default().defaults().unwrap(), Defaults::default());
    }

    #[test]
    fn a_value_out_of_bounds_is_named_by_its_key() {
        let settings: Settings = toml::from_str("[limits]\nmemory = \"1 KiB\"").unwrap();
        let error = settings.defaults().unwrap_err();
        assert_eq!(error.key, "limits.memory");
        assert!(error.why.contains("too small"), "{}", error.why);
        let settings: Settings = toml::from_str("queue-capacity = 0").unwrap();
        assert_eq!(settings.defaults().unwrap_err().key, "queue-capacity");
    }

    #[test]
    fn what_a_layer_sets_replaces_the_builtin_value() {
        let settings: Settings = toml::from_str(
            "queue-capacity = 8\nstate-dir = \"/var/lib/torvyn\"\n[limits]\ninvocation-time = \"2s\"\nfuel = 1000000",
        )
        .unwrap();
        let defaults = settings.defaults().unwrap();
        assert_eq!(defaults.queue_capacity, 8);
        assert_eq!(defaults.state_dir, PathBuf::from("/var/lib/torvyn"));
        assert_eq!(
            defaults.limits.invocation_time,
            Some(Duration::from_secs(2))
        );
        assert_eq!(defaults.limits.fuel, Some(1_000_000));
        assert_eq!(defaults.limits.memory, Limits::default().memory);
    }

    #[test]
    fn a_project_sets_no_setting_of_the_machine_and_each_within_its_bounds() {
        let text = "[project]\nname = \"p\"\n\n[settings]\ncache-dir = \"/tmp\"\nqueue-capacity = 0\n\n[settings.registry]\npassword = \"x\"\n";
        let error = ProjectManifest::parse("/p/Torvyn.toml".as_ref(), text.into()).unwrap_err();
        let rendered = crate::config::tests::render(&error);
        for problem in [
            "`cache-dir` is a setting of the machine",
            "TORVYN_CACHE_DIR",
            "`registry.password` is a setting of the machine",
            "`queue-capacity` of 0 is too small",
        ] {
            assert!(rendered.contains(problem), "{problem}: {rendered}");
        }
    }

    #[test]
    fn a_smaller_default_capacity_is_checked_against_the_watermarks() {
        let text = r#"
[project]
name = "p"

[components.a]
path = "a.wasm"

[components.b]
path = "b.wasm"

[flows.main]
nodes = ["a", "b"]
edges = [{ from = "a", to = "b", high-watermark = 32 }]
"#;
        let project = ProjectManifest::parse("/p/Torvyn.toml".as_ref(), text.into()).unwrap();
        let small = Defaults {
            queue_capacity: 16,
            ..Defaults::default()
        };
        let error = project.with_defaults(small).unwrap_err();
        let rendered = crate::config::tests::render(&error);
        assert!(
            rendered.contains("the high watermark 32 is above the edge's capacity 16"),
            "{rendered}"
        );
    }

    #[test]
    fn every_key_is_one_the_file_takes() {
        let builtin = toml::Value::try_from(Settings {
            listen: Some("x".into()),
            otlp_endpoint: Some("x".into()),
            cache_dir: Some("x".into()),
            limits: LimitSettings {
                fuel: Some(1),
                ..Settings::builtin().limits
            },
            registry: RegistrySettings {
                username: Some("x".into()),
                password: Some("x".into()),
                insecure: vec!["x".into()],
            },
            ..Settings::builtin()
        })
        .unwrap();
        let mut found = Vec::new();
        for (key, value) in builtin.as_table().unwrap() {
            match value.as_table() {
                Some(table) => found.extend(table.keys().map(|k| format!("{key}.{k}"))),
                None => found.push(key.clone()),
            }
        }
        found.sort();
        let mut keys: Vec<String> = Settings::KEYS.iter().map(|k| k.to_string()).collect();
        keys.sort();
        assert_eq!(found, keys);
    }
}
