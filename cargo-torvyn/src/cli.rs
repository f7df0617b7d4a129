//! The clap model of the command line and the flags shared between commands.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use torvyn_runtime::bounds::{self, Bounds};

use crate::commands::{
    BenchCommand, BuildCommand, CheckCommand, ConfigCommand, DoctorCommand, InitCommand,
    InspectCommand, LinkCommand, NewCommand, PackCommand, PublishCommand, RunCommand, TestCommand,
    TopCommand, TraceCommand,
};

/// Build and run streaming pipelines of WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "cargo torvyn", bin_name = "cargo torvyn", version, about)]
pub(crate) struct Cli {
    /// Set a setting for this command, above every other layer, e.g.
    /// `--config queue-capacity=16` (`cargo torvyn config` lists them); repeatable
    #[arg(
        long = "config",
        global = true,
        value_name = "KEY=VALUE",
        value_parser = setting_override
    )]
    pub(crate) config: Vec<torvyn_runtime::Settings>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    New(NewCommand),
    Init(InitCommand),
    Build(BuildCommand),
    Check(CheckCommand),
    Link(LinkCommand),
    Run(RunCommand),
    Test(TestCommand),
    Trace(TraceCommand),
    Bench(BenchCommand),
    Top(TopCommand),
    Inspect(InspectCommand),
    Pack(PackCommand),
    Publish(PublishCommand),
    Config(ConfigCommand),
    Doctor(DoctorCommand),
}

impl Command {
    pub(crate) fn exec(self) -> miette::Result<()> {
        match self {
            Command::New(command) => command.exec(),
            Command::Init(command) => command.exec(),
            Command::Build(command) => command.exec(),
            Command::Check(command) => command.exec(),
            Command::Link(command) => command.exec(),
            Command::Run(command) => command.exec(),
            Command::Test(command) => command.exec(),
            Command::Trace(command) => command.exec(),
            Command::Bench(command) => command.exec(),
            Command::Top(command) => command.exec(),
            Command::Inspect(command) => command.exec(),
            Command::Pack(command) => command.exec(),
            Command::Publish(command) => command.exec(),
            Command::Config(command) => command.exec(),
            Command::Doctor(command) => command.exec(),
        }
    }
}

/// Parses `--config KEY=VALUE`: a setting's dotted key and its value.
pub(crate) fn setting_override(text: &str) -> Result<torvyn_runtime::Settings, String> {
    use torvyn_runtime::Settings;
    let Some((key, value)) = text.split_once('=') else {
        return Err("write KEY=VALUE, such as `queue-capacity=16` or `limits.memory=64MiB`".into());
    };
    let key = key.trim();
    if !Settings::KEYS.contains(&key) {
        return Err(format!(
            "`{key}` is not a setting; the settings are {}",
            Settings::KEYS.join(", ")
        ));
    }
    setting_value(key, value.trim())
}

/// The layer that sets `key` to `value`: the text as it is, for a setting that takes a
/// string (a password keeps its quotes and spaces); else read as one TOML value (a
/// number, `["a", "b"]`); else as a comma-separated list of strings (`a:5000,b:5000`).
/// Or what is wrong with it, as a string would be.
pub(crate) fn setting_value(key: &str, value: &str) -> Result<torvyn_runtime::Settings, String> {
    let quoted = |text: &str| toml::Value::String(text.to_owned()).to_string();
    let read = |value: &str| toml::from_str(&format!("{key} = {value}"));
    let as_string = match read(&quoted(value)) {
        Ok(settings) => return Ok(settings),
        Err(error) => error.message().to_owned(),
    };
    // One line only: a line break would let the value set other keys.
    if value.contains(['\n', '\r']) {
        return Err(as_string);
    }
    let list: Vec<String> = value.split(',').map(|item| quoted(item.trim())).collect();
    read(value)
        .or_else(|_| read(&format!("[{}]", list.join(", "))))
        .map_err(|_: toml::de::Error| as_string)
}

/// Parses `--timeout` and bench's `--duration`: within [`bounds::RUN_TIMEOUT`].
pub(crate) fn run_time(text: &str) -> Result<Duration, String> {
    bounds::RUN_TIMEOUT.parse(text)
}

/// Parses bench's `--warmup`: none (`0s`) to as long as a run may be.
pub(crate) fn warmup(text: &str) -> Result<Duration, String> {
    let range = Bounds {
        min: Duration::ZERO,
        max: bounds::RUN_TIMEOUT.max,
    };
    range.parse(text)
}

/// Parses top's `--interval`: 10 ms (a host's snapshots change every 100 ms) to an hour.
pub(crate) fn refresh_interval(text: &str) -> Result<Duration, String> {
    let range = Bounds {
        min: Duration::from_millis(10),
        max: Duration::from_secs(3600),
    };
    range.parse(text)
}

/// Where `run --listen` serves, and `top` and `inspect` read: a TCP address
/// (`127.0.0.1:9464`) or a Unix domain socket (`unix:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Listen {
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(address) => address.fmt(f),
            Listen::Unix(path) => write!(f, "{UNIX_SCHEME}{}", path.display()),
        }
    }
}

/// The prefix of a Unix domain socket's address.
pub(crate) const UNIX_SCHEME: &str = "unix:";

/// Parses `--listen`: `HOST:PORT` (an IP address), or `unix:PATH`.
pub(crate) fn listen(text: &str) -> Result<Listen, String> {
    if let Some(path) = text.strip_prefix(UNIX_SCHEME) {
        if path.is_empty() {
            return Err("`unix:` names no socket path: write `unix:PATH`".into());
        }
        return Ok(Listen::Unix(path.into()));
    }
    text.parse().map(Listen::Tcp).map_err(|error| {
        format!("{error}: write an IP address and port, such as `127.0.0.1:9464`, or `unix:PATH`")
    })
}

/// Cargo runs `cargo-torvyn torvyn ARGS`; a direct call is `cargo-torvyn ARGS` or
/// `torvyn ARGS`. Both reach clap as `cargo-torvyn ARGS`.
pub(crate) fn normalise_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|arg| arg == "torvyn") {
        args.remove(1);
    }
    args
}

/// Where the project is.
#[derive(Debug, Clone, Args)]
pub(crate) struct ManifestArgs {
    /// Path to the project's Torvyn manifest (whatever its file name) or `Cargo.toml`, or
    /// a folder holding one, or an `oci://` pipeline reference [default: found from the
    /// current folder upwards]
    #[arg(long, value_name = "PATH")]
    pub(crate) manifest_path: Option<PathBuf>,
}

/// What to do about the manifest's warnings.
#[derive(Debug, Clone, Args)]
pub(crate) struct WarningArgs {
    /// Refuse a manifest that has warnings (such as a filesystem grant that reaches
    /// outside the project's folder) instead of going on
    #[arg(long)]
    pub(crate) deny_warnings: bool,
}

/// How to build component crates.
#[derive(Debug, Clone, Args)]
pub(crate) struct BuildArgs {
    /// Build components with the release profile
    #[arg(long)]
    pub(crate) release: bool,
}

/// How to report.
#[derive(Debug, Clone, Args)]
pub(crate) struct OutputArgs {
    /// Human text on stderr, or also JSON lines on stdout
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormat::Human)]
    pub(crate) message_format: MessageFormat,
}

/// What flows record about themselves while they run.
#[derive(Debug, Clone, Args)]
pub(crate) struct ObservabilityArgs {
    /// `production` keeps live counters, queue depths, time blocked and latency
    /// histograms, published every 100 ms, and traces one element in 1024; `diagnostic`
    /// traces every element; `off` keeps only what the summary needs [default: the
    /// `observability` setting, `production` unless set]
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub(crate) observability: Option<Level>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Level {
    Off,
    #[default]
    Production,
    Diagnostic,
}

impl From<Level> for torvyn_runtime::ObservabilityLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Off => torvyn_runtime::ObservabilityLevel::Off,
            Level::Production => torvyn_runtime::ObservabilityLevel::Production,
            Level::Diagnostic => torvyn_runtime::ObservabilityLevel::Diagnostic,
        }
    }
}

impl From<torvyn_runtime::ObservabilityLevel> for Level {
    fn from(level: torvyn_runtime::ObservabilityLevel) -> Self {
        match level {
            torvyn_runtime::ObservabilityLevel::Off => Level::Off,
            torvyn_runtime::ObservabilityLevel::Production => Level::Production,
            torvyn_runtime::ObservabilityLevel::Diagnostic => Level::Diagnostic,
        }
    }
}

impl ObservabilityArgs {
    /// The level of this run: the flag, else the `observability` setting of `settings`.
    pub(crate) fn level(&self, settings: &crate::settings::Resolved) -> Level {
        let set = settings.settings().observability.unwrap_or_default();
        self.observability.unwrap_or(set.into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MessageFormat {
    Human,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_and_direct_calls_parse_alike() {
        let via_cargo = normalise_args(["cargo-torvyn", "torvyn", "build"].map(OsString::from));
        let direct = normalise_args(["cargo-torvyn", "build"].map(OsString::from));
        assert_eq!(via_cargo, direct);
    }

    #[test]
    fn a_setting_is_a_known_key_with_a_value_of_its_type() {
        let set = setting_override("limits.memory=64MiB").unwrap();
        assert_eq!(set.limits.memory, Some(bytesize::ByteSize::mib(64)));
        let set = setting_override("listen=unix:/tmp/t.sock").unwrap();
        assert_eq!(set.listen.as_deref(), Some("unix:/tmp/t.sock"));
        let set = setting_override("registry.insecure=a:5000, b").unwrap();
        assert_eq!(set.registry.insecure, ["a:5000", "b"]);
        let unknown = setting_override("queue-capcity=3").unwrap_err();
        assert!(unknown.contains("is not a setting"), "{unknown}");
        assert!(setting_override("queue-capacity=many").is_err());
        // A string is taken as it is; a line break cannot set another key.
        let set = setting_value("registry.password", " \"p w\" ").unwrap();
        assert_eq!(set.registry.password.as_deref(), Some(" \"p w\" "));
        assert!(setting_value("queue-capacity", "1\nlimits.fuel = 5").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// The help users read, one snapshot per command; re-bless with
    /// `INSTA_UPDATE=always cargo test -p cargo-torvyn`.
    #[test]
    fn help_texts() {
        use clap::CommandFactory;
        for name in [
            "", "new", "init", "build", "check", "link", "run", "test", "trace", "bench", "top",
            "inspect", "pack", "publish", "config", "doctor",
        ] {
            let args = ["cargo-torvyn", name, "--help"]
                .into_iter()
                .filter(|a| !a.is_empty());
            let help = Cli::command()
                .term_width(100)
                .try_get_matches_from(args)
                .unwrap_err()
                .render()
                .to_string();
            let snapshot = if name.is_empty() {
                "help".to_owned()
            } else {
                format!("help_{name}")
            };
            insta::assert_snapshot!(snapshot, help);
        }
    }
}
