//! What the benchmarks share: the test guests, built in release mode from
//! `tests/components` when a benchmark starts, and flows of them or of native stages.

// Each benchmark binary compiles this module and uses a part of it.
#![allow(dead_code)]

pub mod bare;
pub mod idle;
pub mod plain;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use torvyn_runtime::{
    FlowPlan, FlowSpec, Grants, Host, HostOptions, LoadedComponent, Native, NativeStage,
    ObservabilityLevel, Role, RunOptions, SpanSink, StageBody, StageSpan, StageSpec,
};

/// Payload sizes measured, with the elements per flow run at each.
pub const SIZES: [(usize, u64); 4] = [
    (64, 2_000),
    (1024, 2_000),
    (64 * 1024, 200),
    (1024 * 1024, 20),
];

/// `64 B`, `1 KiB`, …
pub fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Where the benchmarks build and cache the guests (not `target/` itself, whose lock the
/// running `cargo bench` may hold).
fn guest_dir() -> PathBuf {
    workspace().join("target").join("bench-guests")
}

/// The folder of the release-built test guests, building them on first use.
fn guests_built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .args(["-p", "test-source", "-p", "test-upper", "-p", "test-sink"])
            .args([
                "-p",
                "batch-source",
                "-p",
                "batch-upper",
                "-p",
                "batch-sink",
            ])
            .args(["-p", "bare-stage"])
            .env("CARGO_TARGET_DIR", guest_dir())
            .env_remove("RUSTFLAGS")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the benchmark guests failed");
        guest_dir().join("wasm32-wasip2").join("release")
    })
}

/// A host with the guests' compile cache.
pub fn host(options: HostOptions) -> Host {
    Host::new(HostOptions {
        cache_dir: Some(guest_dir().join("compiled")),
        ..options
    })
    .expect("a host starts")
}

/// The Python guest `name` of `benches/guests`, built by componentize-py against the
/// contract's `transform` world when its `app.py` is newer than the build; `None`, saying
/// why on stderr, where componentize-py is not installed (`pip install componentize-py`).
pub fn python_guest(name: &str) -> Option<PathBuf> {
    let source = workspace().join("torvyn-runtime/benches/guests").join(name);
    let wasm = guest_dir().join(format!("{name}.wasm"));
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if modified(&wasm).is_some_and(|built| Some(built) >= modified(&source.join("app.py"))) {
        return Some(wasm);
    }
    std::fs::create_dir_all(guest_dir()).expect("the guests' folder can be made");
    // componentize-py leaves a `__pycache__` beside the source, which git ignores.
    let status = Command::new("componentize-py")
        .arg("-d")
        .arg(workspace().join("wit/streaming"))
        .args(["-w", "transform", "componentize", "app", "-p"])
        .arg(&source)
        .arg("-o")
        .arg(&wasm)
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => Some(wasm),
        Ok(status) => panic!("componentize-py failed to build `{name}`: {status}"),
        Err(error) => {
            eprintln!(
                "skipped `{name}`: componentize-py cannot run ({error}); `pip install componentize-py` for these rows"
            );
            None
        }
    }
}

/// The path of a guest's `.wasm`.
pub fn guest(name: &str) -> PathBuf {
    guests_built().join(format!("{name}.wasm"))
}

/// The three guests, loaded on one host.
pub struct Guests {
    source: LoadedComponent,
    upper: LoadedComponent,
    sink: LoadedComponent,
}

impl Guests {
    /// The guests called one element per call.
    pub fn load(host: &Host) -> Guests {
        Guests::load_named(host, "test")
    }

    /// The same guests exported with `batch`: called with up to 32 elements per call.
    pub fn load_batched(host: &Host) -> Guests {
        Guests::load_named(host, "batch")
    }

    fn load_named(host: &Host, prefix: &str) -> Guests {
        let load =
            |name: &str| (host.load(&guest(&format!("{prefix}_{name}")))).expect("the guest loads");
        Guests {
            source: load("source"),
            upper: load("upper"),
            sink: load("sink"),
        }
    }
}

pub fn stage(name: &str, body: StageBody, config: String) -> StageSpec {
    StageSpec {
        name: name.to_owned(),
        body,
        config,
        limits: Default::default(),
        // The guests' console output would be measured too: it is discarded.
        grants: Arc::new(Grants {
            stdout: false,
            stderr: false,
            ..Grants::default()
        }),
    }
}

pub fn flow(stages: Vec<StageSpec>) -> FlowSpec {
    let nodes: Vec<(String, Role)> = (stages.iter())
        .map(|s| (s.name.clone(), s.body.role()))
        .collect();
    FlowSpec::new(
        FlowPlan::chain(
            "bench",
            &nodes,
            torvyn_runtime::DEFAULT_QUEUE_CAPACITY as usize,
        ),
        stages,
    )
}

/// What the processor of a three-stage flow does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Upper-cases every byte.
    Upper,
    /// Passes the bytes on: a read and a write, nothing else.
    Copy,
}

/// Source → (processor →) sink, of components: `count` elements of `size` bytes.
pub fn wasm_flow(guests: &Guests, processor: Option<Work>, size: usize, count: u64) -> FlowSpec {
    let source = format!(r#"{{"count": {count}, "size": {size}}}"#);
    let mut stages = vec![stage(
        "src",
        StageBody::Component(guests.source.clone()),
        source,
    )];
    if let Some(work) = processor {
        let body = StageBody::Component(guests.upper.clone());
        let config = if work == Work::Copy {
            r#"{"copy": true}"#
        } else {
            ""
        };
        stages.push(stage("up", body, config.into()));
    }
    let sink = StageBody::Component(guests.sink.clone());
    stages.push(stage("out", sink, r#"{"quiet": true}"#.into()));
    flow(stages)
}

/// The same flow of native stages doing the same work: the baseline.
pub fn native_flow(processor: Option<Work>, size: usize, count: u64) -> FlowSpec {
    let source = Native::source(Arc::new(move || Box::new(Emit { left: count, size })));
    let mut stages = vec![stage("src", StageBody::Native(source), String::new())];
    if let Some(work) = processor {
        stages.push(native_processor(work));
    }
    let sink = Native::sink(Arc::new(|| Box::new(Discard)));
    stages.push(stage("out", StageBody::Native(sink), String::new()));
    flow(stages)
}

/// A native processor stage `up` doing `work`.
pub fn native_processor(work: Work) -> StageSpec {
    let native = match work {
        Work::Upper => Native::processor(Arc::new(|| Box::new(Upper))),
        Work::Copy => Native::processor(Arc::new(|| Box::new(Pass))),
    };
    stage("up", StageBody::Native(native), String::new())
}

/// `left` payloads of `size` bytes `x`, as the test source makes them.
struct Emit {
    left: u64,
    size: usize,
}

impl NativeStage for Emit {
    fn pull(&mut self, out: &mut Vec<u8>) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        out.resize(self.size, b'x');
        true
    }
}

/// Upper-cases, as the test processor does.
struct Upper;

impl NativeStage for Upper {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        out.extend(input.iter().map(u8::to_ascii_uppercase));
        true
    }
}

/// Passes the bytes on (`NativeStage::process` does by default).
struct Pass;

impl NativeStage for Pass {}

/// Reads and forgets, as the quiet test sink does.
struct Discard;

impl NativeStage for Discard {}

/// A runtime of one thread: every figure is for one core.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts")
}

/// A runtime with a worker thread per core, as `cargo torvyn run` has.
pub fn runtime_per_core() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, usize::from))
        .enable_all()
        .build()
        .expect("a runtime starts")
}

/// Runs `spec` to its end at the default observability level; panics unless every
/// element was delivered.
pub fn run(runtime: &tokio::runtime::Runtime, host: &Host, spec: FlowSpec, count: u64) {
    run_observed(
        runtime,
        host,
        spec,
        count,
        ObservabilityLevel::default(),
        None,
    );
}

/// `flows` three-stage flows of `count` elements of `size` bytes (source → upper-casing
/// processor → sink) run side by side on `runtime`, each a task of its own; panics unless
/// each delivered every element.
pub fn busy_flows(
    runtime: &tokio::runtime::Runtime,
    host: &Host,
    guests: &Guests,
    flows: u64,
    size: usize,
    count: u64,
) {
    runtime.block_on(async {
        let running: Vec<_> = (0..flows)
            .map(|_| {
                let spec = wasm_flow(guests, Some(Work::Upper), size, count);
                host.start(spec, RunOptions::default())
            })
            .collect();
        for flow in running {
            let report = flow.join().await.expect("the flow runs");
            assert_eq!(report.delivered, count);
        }
    });
}

/// [`run`] at observability `level`.
pub fn run_observed(
    runtime: &tokio::runtime::Runtime,
    host: &Host,
    spec: FlowSpec,
    count: u64,
    level: ObservabilityLevel,
    spans: Option<Arc<dyn SpanSink>>,
) {
    let options = RunOptions {
        observability: level,
        spans,
        ..RunOptions::default()
    };
    let report = runtime
        .block_on(host.run(spec, options))
        .expect("the flow runs");
    assert_eq!(report.delivered, count);
}

/// The process's memory at one moment, in bytes, and the mappings and descriptors it
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident (`Rss`): a page counts once for each mapping of it, so a page of a file
    /// mapped by a thousand instances counts a thousand times.
    pub resident: u64,
    /// Proportional (`Pss`): a page mapped n times counts 1/n in each, so the memory the
    /// process really holds counts once (`proc(5)`, `/proc/pid/smaps`).
    pub proportional: u64,
    /// Memory mappings (lines of `/proc/self/maps`), which `vm.max_map_count` bounds.
    pub mappings: u64,
    /// Open file descriptors (entries of `/proc/self/fd`), which `ulimit -n` bounds.
    pub descriptors: u64,
}

/// The process's memory now, on Linux 4.14 and later (`/proc/self/smaps_rollup`,
/// `/proc/self/maps`, `/proc/self/fd`).
pub fn memory() -> Option<Memory> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = rollup.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some(Memory {
        resident: field("Rss:")?,
        proportional: field("Pss:")?,
        mappings: lines("/proc/self/maps")?,
        descriptors: std::fs::read_dir("/proc/self/fd").ok()?.count() as u64,
    })
}

/// The lines of the file at `path`, counted through a buffer on the stack: reading a
/// process's map of tens of thousands of mappings into one `String` would leave
/// megabytes of its heap resident, counted as the flows'.
fn lines(path: &str) -> Option<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let (mut buffer, mut lines) = ([0u8; 8192], 0);
    loop {
        match file.read(&mut buffer).ok()? {
            0 => return Some(lines),
            read => lines += buffer[..read].iter().filter(|&&b| b == b'\n').count() as u64,
        }
    }
}

/// What bounds the mappings and descriptors of this process on Linux: `vm.max_map_count`
/// (`/proc/sys/vm/max_map_count`) and the soft limit of open files (`ulimit -n`, the
/// "Max open files" line of `/proc/self/limits`).
pub fn limits() -> Option<(u64, u64)> {
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let files = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = files.split_whitespace().nth(3)?;
    Some((maps.trim().parse().ok()?, soft.parse().ok()?))
}

/// Takes the spans of traced elements and counts them, as an exporter's queue would take
/// them.
#[derive(Debug, Default)]
pub struct CountedSpans(pub std::sync::atomic::AtomicU64);

impl SpanSink for CountedSpans {
    fn record(&self, _flow: &str, spans: Vec<StageSpan>) {
        (self.0).fetch_add(spans.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}
