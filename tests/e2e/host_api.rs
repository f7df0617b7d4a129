//! The runtime's API, used as an embedding program would: flows started, paused, resumed
//! and cancelled through their handles, and fair progress between flows on one thread.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use torvyn_runtime::{
    FlowHandle, FlowPlan, FlowReport, FlowSpec, Host, HostOptions, Native, NativeStage, Outcome,
    ProjectManifest, Role, RunOptions, StageBody, StageSpec, YIELD_EVERY,
};

use crate::support::{Guest, TestProject, guest_target_dir};

fn host() -> Host {
    Host::new(HostOptions {
        cache_dir: Some(guest_target_dir().join("compiled")),
        ..HostOptions::default()
    })
    .unwrap()
}

/// Starts the flow of `project` on `host`.
fn start(host: &Host, project: &TestProject) -> FlowHandle {
    let manifest = ProjectManifest::load(&project.write_manifest()).unwrap();
    let flows = manifest.select_flows(&[]).unwrap();
    let loaded: BTreeMap<_, _> = (flows[0].1.nodes.iter())
        .map(|node| {
            let name = node.get_ref();
            let path = manifest
                .dir()
                .join(manifest.manifest().components[name].path.get_ref());
            (name.clone(), host.load(&path))
        })
        .collect();
    let spec = torvyn_runtime::link(&manifest, &flows, &loaded)
        .unwrap()
        .remove(0);
    host.start(spec, RunOptions::default())
}

fn project(count: u64) -> TestProject {
    TestProject::new()
        .component("src", Guest::Source, &format!(r#"{{"count": {count}}}"#))
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
}

fn single_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_busy_flow_delays_a_light_one_by_at_most_its_yield_quantum() {
    single_thread().block_on(async {
        let host = host();
        let (busy_project, light_project) = (project(100_000_000), project(100));
        let busy = start(&host, &busy_project);
        while busy.progress().emitted < 1_000 {
            tokio::task::yield_now().await;
        }
        let light = start(&host, &light_project);
        let before = busy.progress().emitted;
        // This task, the busy flow and the light flow take turns on the one thread: each
        // time round, the busy flow runs at most one quantum.
        let mut rounds = 0u64;
        while !light.is_finished() {
            tokio::task::yield_now().await;
            rounds += 1;
        }
        let busy_meanwhile = busy.progress().emitted - before;
        busy.cancel();
        let light = light.join().await.unwrap();
        let busy = busy.join().await.unwrap();
        assert_eq!(light.outcome, Outcome::Completed);
        assert_eq!(light.delivered, 100);
        assert_eq!(busy.outcome, Outcome::Cancelled);
        assert!(busy.accounting.balanced() && light.accounting.balanced());
        assert!(
            busy_meanwhile <= u64::from(YIELD_EVERY) * (rounds + 1),
            "the busy flow emitted {busy_meanwhile} elements in {rounds} rounds"
        );
        // And the light flow did not wait for the busy one to end.
        assert!(busy.emitted < 100_000_000);
    });
}

#[test]
fn a_flow_can_be_paused_resumed_and_cancelled_through_its_handle() {
    single_thread().block_on(async {
        let host = host();
        let project = project(3_000);
        let flow = start(&host, &project);
        while flow.progress().emitted < 100 {
            tokio::task::yield_now().await;
        }
        flow.pause();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let paused = flow.progress();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(flow.progress(), paused, "a paused flow makes no progress");
        assert!(paused.emitted < 3_000);
        flow.resume();
        let report = flow.join().await.unwrap();
        assert_eq!(report.outcome, Outcome::Completed);
        assert_eq!(report.delivered, 3_000);

        let project = self::project(100_000_000);
        let flow = start(&host, &project);
        flow.pause();
        flow.cancel();
        let report = flow.join().await.unwrap();
        assert_eq!(report.outcome, Outcome::Cancelled);
        assert_eq!(report.emitted, report.delivered);
    });
}

/// A host whose calls are never suspended by an epoch tick: its flows yield to tokio only
/// between turns, so that what they did before another task runs is exact.
fn host_without_epoch_yields() -> Host {
    Host::new(HostOptions {
        cache_dir: Some(guest_target_dir().join("compiled")),
        epoch_interruption: false,
        ..HostOptions::default()
    })
    .unwrap()
}

/// Cancels a busy flow once it has emitted 1 000 elements and `between` was done to it
/// (the flow's task and this one sharing one thread), and asserts that it pulled nothing
/// after.
fn cancelled_busy_flow_pulls_nothing_more(between: impl Fn(&FlowHandle)) {
    single_thread().block_on(async {
        let host = host_without_epoch_yields();
        let project = project(100_000_000);
        let flow = start(&host, &project);
        while flow.progress().emitted < 1_000 {
            tokio::task::yield_now().await;
        }
        between(&flow);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The flow waits on this one thread, in its yield or its pause: what it emitted,
        // it emitted before the stop.
        let before = flow.progress().emitted;
        flow.cancel();
        let report = flow.join().await.unwrap();
        assert_eq!(report.outcome, Outcome::Cancelled);
        assert_eq!(
            report.emitted, before,
            "the flow pulled after it was stopped"
        );
        assert_eq!(report.delivered, before);
    });
}

/// The flow looks at its stop only every few turns, but always on the first after a
/// yield or a pause.
#[test]
fn a_stop_is_seen_at_the_first_turn_after_the_flow_yields() {
    cancelled_busy_flow_pulls_nothing_more(|_| {});
}

#[test]
fn a_stop_is_seen_at_the_first_turn_after_the_flows_pause() {
    cancelled_busy_flow_pulls_nothing_more(FlowHandle::pause);
}

/// A native stage emitting `item 0`, `item 1`, … up to `end`.
struct Count {
    next: u64,
    end: u64,
}

impl NativeStage for Count {
    fn pull(&mut self, out: &mut Vec<u8>) -> bool {
        if self.next == self.end {
            return false;
        }
        out.extend_from_slice(format!("item {}", self.next).as_bytes());
        self.next += 1;
        true
    }
}

/// Upper-cases, and drops every tenth element.
struct Shout(u64);

impl NativeStage for Shout {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        self.0 += 1;
        out.extend(input.iter().map(u8::to_ascii_uppercase));
        !self.0.is_multiple_of(10)
    }
}

/// Keeps what reaches it.
struct Keep(Arc<Mutex<Vec<String>>>);

impl NativeStage for Keep {
    fn push(&mut self, input: &[u8]) {
        let text = String::from_utf8_lossy(input).into_owned();
        self.0.lock().unwrap().push(text);
    }
}

/// Runs native `stages` as a chain in that order, with queues of 8, to its end.
fn run_chain<const N: usize>(flow: &str, stages: [(&str, Native); N]) -> FlowReport {
    let stages: Vec<StageSpec> = (stages.into_iter())
        .map(|(name, native)| StageSpec {
            name: name.to_owned(),
            body: StageBody::Native(native),
            config: String::new(),
            limits: Default::default(),
            grants: Default::default(),
        })
        .collect();
    let nodes: Vec<(String, Role)> = (stages.iter())
        .map(|s| (s.name.clone(), s.body.role()))
        .collect();
    let spec = FlowSpec::new(FlowPlan::chain(flow, &nodes, 8), stages);
    single_thread()
        .block_on(host().run(spec, RunOptions::default()))
        .unwrap()
}

#[test]
fn native_stages_run_through_the_same_queues_buffers_and_accounting() {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink_kept = kept.clone();
    let stages = [
        (
            "src",
            Native::source(Arc::new(|| Box::new(Count { next: 0, end: 1000 }))),
        ),
        ("up", Native::processor(Arc::new(|| Box::new(Shout(0))))),
        (
            "out",
            Native::sink(Arc::new(move || Box::new(Keep(sink_kept.clone())))),
        ),
    ];
    let report = run_chain("native", stages);
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!((report.emitted, report.delivered), (1000, 900));
    assert_eq!(report.accounting.filtered, 100);
    assert!(report.accounting.balanced(), "{:?}", report.accounting);
    // A component's copies: written by the source, read and written by the processor
    // (for what it keeps), read by the sink.
    assert_eq!(report.copies.copies, 1000 + 1000 + 900 + 900);
    assert_eq!(report.buffers.live, 0);
    let kept = kept.lock().unwrap();
    assert_eq!(kept.len(), 900);
    assert_eq!(
        (kept[0].as_str(), kept[899].as_str()),
        ("ITEM 0", "ITEM 998")
    );
}

/// A stage of a chain that logs each call: `pull 3`, `process 3`, `push 3`.
struct Logged {
    log: Arc<Mutex<Vec<String>>>,
    pulled: u64,
}

impl NativeStage for Logged {
    fn pull(&mut self, out: &mut Vec<u8>) -> bool {
        if self.pulled == 100 {
            return false;
        }
        out.extend_from_slice(self.pulled.to_string().as_bytes());
        self.log
            .lock()
            .unwrap()
            .push(format!("pull {}", self.pulled));
        self.pulled += 1;
        true
    }

    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(input);
        let input = String::from_utf8_lossy(input);
        self.log.lock().unwrap().push(format!("process {input}"));
        true
    }

    fn push(&mut self, input: &[u8]) {
        let input = String::from_utf8_lossy(input);
        self.log.lock().unwrap().push(format!("push {input}"));
    }
}

#[test]
fn an_element_reaches_the_sink_before_the_source_is_pulled_again() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let logged = |log: &Arc<Mutex<Vec<String>>>| -> torvyn_runtime::NativeFactory {
        let log = log.clone();
        Arc::new(move || {
            let log = log.clone();
            Box::new(Logged { log, pulled: 0 })
        })
    };
    let stages = [
        ("src", Native::source(logged(&log))),
        ("copy", Native::processor(logged(&log))),
        ("out", Native::sink(logged(&log))),
    ];
    let report = run_chain("logged", stages);
    assert_eq!((report.emitted, report.delivered), (100, 100));
    // Downstream first: each element goes all the way before the next comes in, though
    // the queues have room for 8, so that no element waits for others to be made.
    let expected: Vec<String> = (0..100)
        .flat_map(|i| {
            [
                format!("pull {i}"),
                format!("process {i}"),
                format!("push {i}"),
            ]
        })
        .collect();
    assert_eq!(*log.lock().unwrap(), expected);
    for edge in &report.edges {
        assert_eq!(edge.max_depth, 1, "{edge:?}");
    }
}

#[test]
fn a_pooled_host_reuses_its_slots_and_refuses_instances_beyond_them() {
    let pooled = |slots| {
        Host::new(HostOptions {
            cache_dir: Some(guest_target_dir().join("compiled")),
            instance_pool: Some(slots),
            ..HostOptions::default()
        })
        .unwrap()
    };
    let runtime = single_thread();
    // Two slots serve a two-stage flow again and again: each run gives its slots back.
    let host = pooled(2);
    for _ in 0..3 {
        let project = project(100);
        let report = runtime.block_on(async { start(&host, &project).join().await });
        let report = report.unwrap();
        assert_eq!(report.delivered, 100);
    }
    // Three stages do not fit in two slots: the third fails to start, with a diagnostic.
    let three = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 10}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, r#"{"quiet": true}"#);
    let error = runtime.block_on(async { start(&host, &three).join().await });
    let error = error.unwrap_err();
    assert_eq!(error.stage, "out", "{error}");
    assert!(
        error.to_string().contains("could not be instantiated"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("limit of 2 for component instances"),
        "{error}"
    );
}

/// Descriptors this process holds open on the empty folders hosts preopen as `/`.
#[cfg(target_os = "linux")]
fn root_descriptors() -> usize {
    let entries = std::fs::read_dir("/proc/self/fd").unwrap();
    (entries.flatten())
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .filter(|target| {
            (target.file_name())
                .is_some_and(|name| name.to_string_lossy().starts_with("torvyn-root-"))
        })
        .count()
}

/// A component that never calls into WASI gets no WASI context, and so holds no
/// descriptor: ten thousand idle flows of three stages would otherwise hold thirty
/// thousand, past a common `ulimit -n`.
#[cfg(target_os = "linux")]
#[test]
fn flows_whose_components_never_call_wasi_hold_no_descriptor() {
    const FLOWS: usize = 50;
    single_thread().block_on(async {
        let host = host();
        // Cancelled, the sink says how many elements it had: not in this test's output.
        let project = project(1_000_000_000).set("out", "capabilities", "{ stderr = false }");
        let before = root_descriptors();
        let flows: Vec<FlowHandle> = (0..FLOWS).map(|_| start(&host, &project)).collect();
        // Each flow's source and sink have been called once they have an element through.
        for flow in &flows {
            while flow.progress().delivered == 0 {
                assert!(!flow.is_finished(), "a flow ended before its first element");
                tokio::task::yield_now().await;
            }
            flow.pause();
        }
        let held = root_descriptors().saturating_sub(before);
        for flow in flows {
            flow.cancel();
            assert_eq!(flow.join().await.unwrap().outcome, Outcome::Cancelled);
        }
        // Other tests' flows may open some meanwhile; these would open two each.
        assert!(
            held < FLOWS,
            "{FLOWS} idle flows hold {held} descriptors of their root"
        );
    });
}
