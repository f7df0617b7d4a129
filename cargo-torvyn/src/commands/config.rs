//! `cargo torvyn config`: each setting's effective value, and the layer it came from.

use clap::Args;
use miette::bail;
use serde_json::json;
use torvyn_runtime::{ProjectManifest, Settings};

use crate::cli::{ManifestArgs, MessageFormat};
use crate::output;
use crate::settings::{self, Resolved};

/// Show each setting's effective value and where it comes from
///
/// A setting comes from the first of these that sets it: the command line (`--config
/// KEY=VALUE`; a command's own flag, such as `run --listen`, comes above it), the environment
/// (`TORVYN_` and the key in capitals, `.` and `-` as `_`: `TORVYN_LIMITS_MEMORY`), the
/// project's `[settings]` table in Torvyn.toml, the user's configuration file
/// (`torvyn/config.toml` in the platform's config folder, e.g. `~/.config`), or the
/// built-in default. Printed as TOML with the source as a comment; passwords are not shown.
#[derive(Debug, Args)]
pub(crate) struct ConfigCommand {
    /// Only this setting, e.g. `limits.memory` [default: every setting]
    #[arg(value_name = "KEY")]
    key: Option<String>,

    #[command(flatten)]
    manifest: ManifestArgs,

    /// TOML lines, or JSON lines instead; both on stdout
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormat::Human)]
    message_format: MessageFormat,
}

/// Settings whose value is never printed.
const SECRET: &[&str] = &["registry.password"];

impl ConfigCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let keys: Vec<&str> = match &self.key {
            Some(key) if Settings::KEYS.contains(&key.as_str()) => vec![key.as_str()],
            Some(key) => bail!(
                help = format!("the settings are {}", Settings::KEYS.join(", ")),
                "`{key}` is not a setting"
            ),
            None => Settings::KEYS.to_vec(),
        };
        // A project that is there but cannot be read is reported, not passed over.
        let path = self.manifest.manifest_path.as_deref();
        let found = crate::project::torvyn_manifest(path);
        if let (Some(path), None) = (path, &found) {
            bail!(
                "`{}` is not a Torvyn manifest: `config` reads the `[settings]` of a project's Torvyn.toml",
                path.display()
            );
        }
        let project = found.map(|path| ProjectManifest::load(&path)).transpose()?;
        let resolved = settings::resolve(project.as_ref())?;
        for key in keys {
            show(&resolved, key, self.message_format);
        }
        // Shown as they are, then refused as every other command would refuse them.
        resolved.defaults()?;
        resolved.listen()?;
        if self.message_format == MessageFormat::Human
            && let Some(file) = settings::user_file()
        {
            let there = if file.is_file() { "" } else { " (none yet)" };
            eprintln!(
                "note: the user's configuration file is {}{there}",
                file.display()
            );
        }
        Ok(())
    }
}

/// Prints one setting: `key = value # layer: file or variable` (TOML, so that the line can
/// be copied into a file), or a JSON line.
fn show(resolved: &Resolved, key: &str, format: MessageFormat) {
    let value = resolved.value(key);
    let hidden = SECRET.contains(&key);
    let origin = resolved.origin(key);
    if format == MessageFormat::Json {
        let (layer, source) = match &origin {
            Some((layer, source)) => (Some(layer.name()), source.clone()),
            None => (None, None),
        };
        output::json(
            format,
            &json!({
                "reason": "setting",
                "key": key,
                "set": value.is_some(),
                "value": value.filter(|_| !hidden),
                "layer": layer,
                "source": source,
            }),
        );
        return;
    }
    let from = match &origin {
        Some((layer, Some(source))) => format!("{}: {source}", layer.name()),
        Some((layer, None)) => layer.name().to_owned(),
        None => String::new(),
    };
    let line = match value {
        None => format!("# {key} is not set"),
        Some(_) if hidden => format!("# {key} is set, and not shown ({from})"),
        Some(value) => format!("{:<40} # {from}", format!("{key} = {value}")),
    };
    println!("{line}");
}
