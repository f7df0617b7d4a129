//! Memory per idle flow, `cargo bench -p torvyn-runtime --bench idle_flows`: starts
//! `TORVYN_IDLE_FLOWS` (default 10 000) three-stage flows of components, each paused
//! before its first element, on a host reserving 256 MiB of address space per linear
//! memory (with `TORVYN_IDLE_POOLED` set, from a pool of instance slots), and reports the
//! resident memory they take, per flow.

mod support;

use std::time::Duration;

use torvyn_runtime::{FlowHandle, HostOptions, RunOptions};

use support::{Guests, Work, rss, runtime, wasm_flow};

fn main() {
    let count: usize = std::env::var("TORVYN_IDLE_FLOWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let runtime = runtime();
    // Ten thousand flows are thirty thousand linear memories: more 4 GiB reservations than
    // a 47-bit address space holds. Each reserves its 256 MiB limit instead.
    let pooled = std::env::var_os("TORVYN_IDLE_POOLED").is_some();
    let host = support::host(HostOptions {
        memory_reservation: Some(256 << 20),
        instance_pool: pooled.then_some(3 * count as u32 + 3),
        ..HostOptions::default()
    });
    let guests = Guests::load(&host);
    // One flow first, so that what every flow shares (code, the engine) is counted apart.
    let warm = wasm_flow(&guests, Some(Work::Upper), 64, 1);
    support::run(&runtime, &host, warm, 1);
    let Some(before) = rss() else {
        eprintln!("idle_flows: this platform does not report resident memory");
        return;
    };
    let handles: Vec<FlowHandle> = runtime.block_on(async {
        let mut handles = Vec::with_capacity(count);
        for _ in 0..count {
            let handle = host.start(
                wasm_flow(&guests, Some(Work::Upper), 64, u64::MAX),
                RunOptions::default(),
            );
            handle.pause();
            handles.push(handle);
        }
        // Let every flow instantiate its stages and settle, paused, before measuring.
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = rss().unwrap_or(0);
            if now == last {
                break;
            }
            last = now;
        }
        handles
    });
    let after = rss().unwrap_or(before);
    let emitted: u64 = handles.iter().map(|h| h.progress().emitted).sum();
    // A flow that could not start has ended already; it holds nothing.
    let idle = handles.iter().filter(|h| !h.is_finished()).count();
    let per_flow = after.saturating_sub(before) / idle.max(1) as u64;
    println!(
        "idle_flows: {idle} of {count} three-stage flows of components started and paused, \
         taking {} MiB resident, {} KiB per flow ({emitted} elements emitted before pausing)",
        after.saturating_sub(before) >> 20,
        per_flow >> 10,
    );
    let failures = runtime.block_on(async {
        let mut failures = Vec::new();
        for handle in handles {
            handle.cancel();
            handle.resume();
            if let Err(error) = handle.join().await {
                failures.push(error);
            }
        }
        failures
    });
    if let Some(first) = failures.first() {
        println!(
            "idle_flows: {} flows could not start, the first because {first}; each instance \
             maps a few regions, so many flows need vm.max_map_count above Linux's 65 530",
            failures.len()
        );
    }
}
