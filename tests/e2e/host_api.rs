//! The runtime's API, used as an embedding program would: flows started, paused, resumed
//! and cancelled through their handles, and fair progress between flows on one thread.

use std::collections::BTreeMap;

use torvyn_runtime::{
    FlowHandle, Host, HostOptions, Outcome, ProjectManifest, RunOptions, YIELD_EVERY,
};

use crate::support::{Guest, TestProject, guest_target_dir};

fn host() -> Host {
    Host::new(HostOptions {
        cache_dir: Some(guest_target_dir().join("compiled")),
        fuel: false,
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
