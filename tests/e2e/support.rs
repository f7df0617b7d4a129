//! The vocabulary of the end-to-end tests: guest components built once per test run, a
//! throw-away project folder with a `Torvyn.toml`, and the CLI run on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The target folder of every Cargo call the tests make, apart from the one running them,
/// so that the two never wait on each other's lock.
pub fn guest_target_dir() -> PathBuf {
    workspace().join("target").join("e2e")
}

/// A command for the CLI under test, with its caches kept inside the test target folder
/// and none of the developer's settings: no user configuration file (its folder is one
/// that holds none) and no `TORVYN_` variable but the cache folder.
pub fn torvyn() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-torvyn"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("TORVYN_") {
            command.env_remove(var);
        }
    }
    command
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env("TORVYN_CACHE_DIR", guest_target_dir().join("cache"))
        .env("XDG_CONFIG_HOME", guest_target_dir().join("no-user-config"))
        .env_remove("RUSTFLAGS")
        // Tests that export say where; a developer's collector gets nothing from them.
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    command
}

/// The test guests, by crate name.
#[derive(Debug, Clone, Copy)]
pub enum Guest {
    Source,
    Upper,
    Sink,
    Filter,
    Router,
    Aggregator,
    Hostile,
    RawUpper,
    NotAStage,
    Future,
    /// `test-source`, `test-upper` and `test-sink` exported with `batch`.
    BatchSource,
    BatchUpper,
    BatchSink,
    /// A filter built from a copy of the contract's WIT without package versions.
    UnversionedFilter,
    /// A processor that imports `acme:nothing/thing@1.0.0`, which no host provides.
    MissingImport,
    /// A processor whose `process` export takes and returns bytes, not the contract's types.
    MistypedProcessor,
    /// A processor whose `process-batch` takes payloads as strings, not the contract's bytes.
    MistypedBatch,
    /// A processor that shows and writes element attributes, and its batch export.
    Attributes,
    BatchAttributes,
    /// A processor that keeps a counter, a gauge and a histogram (`torvyn:runtime/metrics`).
    Metrics,
    /// A router, written against the canonical ABI by hand, whose answer names 64 ports
    /// that all point at one 1 MiB string in its memory.
    AliasingRouter,
}

impl Guest {
    fn package(self) -> &'static str {
        match self {
            Guest::Source => "test-source",
            Guest::Upper => "test-upper",
            Guest::Sink => "test-sink",
            Guest::Filter => "test-filter",
            Guest::Router => "test-router",
            Guest::Aggregator => "test-aggregator",
            Guest::Hostile => "test-hostile",
            Guest::RawUpper => "raw-upper",
            Guest::NotAStage => "not-a-stage",
            Guest::Future => "future-processor",
            Guest::BatchSource => "batch-source",
            Guest::BatchUpper => "batch-upper",
            Guest::BatchSink => "batch-sink",
            Guest::UnversionedFilter => "unversioned-filter",
            Guest::MissingImport => "missing-import",
            Guest::MistypedProcessor => "mistyped-processor",
            Guest::MistypedBatch => "mistyped-batch",
            Guest::Attributes => "test-attributes",
            Guest::BatchAttributes => "batch-attributes",
            Guest::Metrics => "test-metrics",
            Guest::AliasingRouter => "aliasing-router",
        }
    }

    /// What `cargo torvyn inspect` says of the guest: its exports and imports among the rest.
    pub fn inspected(self) -> String {
        let output = torvyn()
            .args(["torvyn", "inspect"])
            .arg(self.wasm())
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    }

    /// The built `.wasm`, building every guest on first use.
    pub fn wasm(self) -> PathBuf {
        static BUILT: OnceLock<()> = OnceLock::new();
        BUILT.get_or_init(build_guests);
        // Cargo names a library's output after its crate name, a binary's after the package.
        let file = match self {
            Guest::NotAStage => self.package().to_owned(),
            _ => self.package().replace('-', "_"),
        };
        guest_target_dir()
            .join("wasm32-wasip2")
            .join("debug")
            .join(format!("{file}.wasm"))
    }
}

/// Builds the test guests: the SDK ones through `cargo torvyn build` (which installs the
/// `wasm32-wasip2` target when it is missing), the stand-ins for other toolchains with
/// plain Cargo.
fn build_guests() {
    let mut sdk_guests = torvyn();
    sdk_guests
        .args(["torvyn", "build", "--manifest-path"])
        .arg(workspace().join("Cargo.toml"));
    for guest in [
        Guest::Source,
        Guest::Upper,
        Guest::Sink,
        Guest::Filter,
        Guest::Router,
        Guest::Aggregator,
        Guest::Hostile,
        Guest::BatchSource,
        Guest::BatchUpper,
        Guest::BatchSink,
        Guest::Attributes,
        Guest::BatchAttributes,
        Guest::Metrics,
    ] {
        sdk_guests.args(["-p", guest.package()]);
    }
    let status = sdk_guests.status().expect("cargo-torvyn runs");
    assert!(status.success(), "building the SDK test guests failed");

    let mut plain = Command::new(env!("CARGO"));
    plain
        .current_dir(workspace())
        .args(["build", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env_remove("RUSTFLAGS");
    for guest in [
        Guest::RawUpper,
        Guest::NotAStage,
        Guest::Future,
        Guest::UnversionedFilter,
        Guest::MissingImport,
        Guest::MistypedProcessor,
        Guest::MistypedBatch,
        Guest::AliasingRouter,
    ] {
        plain.args(["-p", guest.package()]);
    }
    let status = plain.status().expect("cargo runs");
    assert!(status.success(), "building the plain test guests failed");
}

/// Every file in `dir`, recursively.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_in(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// A project folder with a `Torvyn.toml` made of test guests.
pub struct TestProject {
    dir: tempfile::TempDir,
    components: Vec<(String, String, String)>,
    settings: Vec<(String, String)>,
    flow: Vec<String>,
    capacity: Option<u32>,
    flow_text: Option<String>,
    manifest: Option<String>,
}

impl TestProject {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            components: Vec::new(),
            settings: Vec::new(),
            flow: Vec::new(),
            capacity: None,
            flow_text: None,
            manifest: None,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a component node named `name`, made of `guest`, with `config`.
    pub fn component(self, name: &str, guest: Guest, config: &str) -> Self {
        let path = guest.wasm().display().to_string();
        self.component_at(name, &path, config)
    }

    /// `src → up → out` where the sink asks for a pause after every element, held for
    /// `pause`, behind a queue of `capacity`: the queue into the sink fills and holds
    /// `up` back. The source has elements for a long run.
    pub fn pausing_sink(capacity: u32, pause: &str) -> Self {
        TestProject::new()
            .component("src", Guest::Source, r#"{"count": 1000000}"#)
            .component("up", Guest::Upper, "")
            .component("out", Guest::Sink, r#"{"quiet": true, "pause_every": 1}"#)
            .flow(&format!(
                r#"nodes = ["src", "up", "out"]
edges = [{{ from = "src", to = "up" }}, {{ from = "up", to = "out", capacity = {capacity} }}]
sink-pause = "{pause}""#
            ))
    }

    /// Adds a component node whose `path` is given as is.
    pub fn component_at(mut self, name: &str, path: &str, config: &str) -> Self {
        self.components
            .push((name.to_owned(), path.to_owned(), config.to_owned()));
        self.flow.push(name.to_owned());
        self
    }

    /// Sets `key = value` (TOML) in the table of component `name`, e.g. its `limits`.
    pub fn set(mut self, name: &str, key: &str, value: &str) -> Self {
        self.settings
            .push((name.to_owned(), format!("{key} = {value}")));
        self
    }

    /// Sets the default queue capacity of the flow.
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Uses this body for the flow `main` instead of chaining the components in order.
    pub fn flow(mut self, text: &str) -> Self {
        self.flow_text = Some(text.to_owned());
        self
    }

    /// Uses this manifest text instead of the generated one.
    pub fn manifest(mut self, text: &str) -> Self {
        self.manifest = Some(text.to_owned());
        self
    }

    /// The generated manifest: the components in order, chained by edges in one flow `main`.
    pub fn manifest_text(&self) -> String {
        let mut text = String::from("[project]\nname = \"e2e\"\n");
        for (name, path, config) in &self.components {
            text += &format!("\n[components.{name}]\npath = {path:?}\nconfig = {config:?}\n");
            for (_, setting) in self.settings.iter().filter(|(n, _)| n == name) {
                text += &format!("{setting}\n");
            }
        }
        if let Some(flow) = &self.flow_text {
            return text + &format!("\n[flows.main]\n{flow}\n");
        }
        let nodes: Vec<String> = self.flow.iter().map(|n| format!("{n:?}")).collect();
        let edges: Vec<String> = self
            .flow
            .windows(2)
            .map(|pair| format!("{{ from = {:?}, to = {:?} }}", pair[0], pair[1]))
            .collect();
        text += &format!(
            "\n[flows.main]\nnodes = [{}]\nedges = [{}]\n",
            nodes.join(", "),
            edges.join(", ")
        );
        if let Some(capacity) = self.capacity {
            text += &format!("queue-capacity = {capacity}\n");
        }
        text
    }

    /// Writes the manifest and returns its path.
    pub fn write_manifest(&self) -> PathBuf {
        let manifest = self.dir().join("Torvyn.toml");
        let text = self
            .manifest
            .clone()
            .unwrap_or_else(|| self.manifest_text());
        std::fs::write(&manifest, text).expect("write manifest");
        manifest
    }

    /// `cargo torvyn run --message-format json` on the written manifest, with `args`.
    pub fn run_command(&self, args: &[&str]) -> Command {
        run_json(&self.write_manifest(), args)
    }

    /// Runs `cargo torvyn ARGS --manifest-path` on the written manifest.
    pub fn command(&self, args: &[&str]) -> Run {
        let output = torvyn()
            .arg("torvyn")
            .args(args)
            .arg("--manifest-path")
            .arg(self.write_manifest())
            .output()
            .expect("cargo-torvyn runs");
        Run::from(output)
    }

    /// Runs `cargo torvyn run` with `args` to its end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.run_command(args).output().expect("cargo-torvyn runs"))
    }
}

/// What a CLI run printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with everything printed unless the run succeeded.
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "run failed:\n{}", self.stderr);
        self
    }

    /// Panics unless the run failed with exit code 1: a diagnostic, not a panic (which
    /// exits with 101). A guest's own panic message may appear on stderr.
    pub fn failure(self) -> Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected failure:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The reports of every flow that ended, finished or failed, each checked to account
    /// for every element.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        let reports: Vec<serde_json::Value> = self
            .stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| {
                matches!(
                    message["reason"].as_str(),
                    Some("flow-finished" | "flow-failed")
                )
            })
            .map(|message| message["report"].clone())
            .collect();
        for report in &reports {
            assert_balanced(report);
        }
        reports
    }

    /// The report of the one flow that ran.
    pub fn report(&self) -> serde_json::Value {
        let mut reports = self.reports();
        assert_eq!(
            reports.len(),
            1,
            "one report in:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        reports.remove(0)
    }

    /// The lines `test-sink` printed without a label: `(sequence, payload)`.
    pub fn delivered(&self) -> Vec<(u64, String)> {
        self.delivered_to("")
    }

    /// The lines the `test-sink` labelled `label` printed: `(sequence, payload)`.
    pub fn delivered_to(&self, label: &str) -> Vec<(u64, String)> {
        let prefix = if label.is_empty() {
            "seq=".to_owned()
        } else {
            format!("{label} seq=")
        };
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix(prefix.as_str()))
            .map(|rest| {
                let (sequence, rest) = rest.split_once(' ').expect("seq=N len=L payload");
                let payload = rest.split_once(' ').map_or("", |(_, p)| p);
                (sequence.parse().expect("sequence"), payload.to_owned())
            })
            .collect()
    }
}

/// Panics unless the report's accounting identity holds: every element that entered the
/// flow or one of its branches reached a named end.
pub fn assert_balanced(report: &serde_json::Value) {
    let a = &report["accounting"];
    let count = |key: &str| {
        a[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no `{key}` in {a}"))
    };
    let arrived = count("emitted") + count("fanned_out") + count("produced");
    let ended = [
        "delivered",
        "filtered",
        "dropped",
        "dead_lettered",
        "failed",
        "absorbed",
        "abandoned",
    ]
    .map(count)
    .iter()
    .sum::<u64>();
    assert_eq!(arrived, ended, "unbalanced accounting: {a}");
}

/// The sequence numbers of delivered elements.
pub fn sequences(delivered: &[(u64, String)]) -> Vec<u64> {
    delivered.iter().map(|(s, _)| *s).collect()
}

/// A count of a report's accounting.
pub fn count(report: &serde_json::Value, key: &str) -> u64 {
    report["accounting"][key].as_u64().unwrap()
}

/// A node's entry in a report.
pub fn node<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node `{name}` in {report}"))
}

/// The events a `--events FILE` run wrote, and their kinds.
pub fn events(file: &tempfile::NamedTempFile) -> (Vec<serde_json::Value>, Vec<String>) {
    let events: Vec<serde_json::Value> = (std::fs::read_to_string(file.path()).unwrap().lines())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds = (events.iter())
        .map(|event| event["event"].as_str().unwrap().to_owned())
        .collect();
    (events, kinds)
}

/// `cargo torvyn run --message-format json` on `manifest`, with `args`.
pub fn run_json(manifest: &Path, args: &[&str]) -> Command {
    let mut command = torvyn();
    command
        .args([
            "torvyn",
            "run",
            "--message-format",
            "json",
            "--manifest-path",
        ])
        .arg(manifest)
        .args(args);
    command
}

/// A loopback port free a moment ago, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A program the tests start (a server, a checker) as `spawned`: the child, or `None`
/// when `program` is not installed and the tests do not require it, so that the test is
/// skipped, saying so. Under `require` (an environment variable CI sets after installing
/// Debian's `package`) a missing program fails the test, as does any other error.
pub fn installed(
    spawned: std::io::Result<std::process::Child>,
    program: &str,
    package: &str,
    require: &str,
) -> Option<std::process::Child> {
    match spawned {
        Ok(child) => Some(child),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os(require).is_none(),
                "{program} is not installed (apt-get install {package})"
            );
            eprintln!("skipped: {program} is not installed");
            None
        }
        Err(error) => panic!("{program} does not start: {error}"),
    }
}

/// Waits (up to 20 s) until `program`, started as `child` with its output in `log`,
/// listens on `address`; panics with its log if it exits or does not listen.
pub fn wait_until_listening(
    child: &mut std::process::Child,
    program: &str,
    address: &str,
    log: &Path,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(address).is_err() {
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{program} exited ({status}):\n{}", log());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{program} did not listen:\n{}",
            log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `cargo torvyn ARGS` in the folder `dir`, as a user runs it there.
pub fn in_folder(dir: &Path, args: &[&str]) -> Run {
    let output = torvyn()
        .current_dir(dir)
        .arg("torvyn")
        .args(args)
        .output()
        .expect("cargo-torvyn runs");
    Run::from(output)
}

/// `cargo torvyn run` in the folder `dir` with `input` on its standard input, to its end.
pub fn run_with_input(dir: &Path, input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = torvyn()
        .current_dir(dir)
        .args(["torvyn", "run"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo-torvyn runs");
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // The host may stop reading once its flow fails.
    let writer = std::thread::spawn(move || drop(stdin.write_all(&input)));
    let output = child.wait_with_output().expect("cargo-torvyn ends");
    writer.join().expect("the writer ends");
    Run::from(output)
}
