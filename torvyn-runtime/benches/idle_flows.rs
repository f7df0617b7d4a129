//! Memory per idle flow, `cargo bench -p torvyn-runtime --bench idle_flows`: starts
//! `TORVYN_IDLE_FLOWS` (default 10 000) three-stage flows of components, each paused
//! before its first element, on a host reserving 256 MiB of address space per linear
//! memory (with `TORVYN_IDLE_POOLED` set, from a pool of instance slots), and reports the
//! memory they take, per flow: resident (RSS) and proportional (PSS). Each instance maps
//! its component's memory image from the compiled file, copy-on-write, and RSS counts
//! those pages once per instance though they are in memory once; PSS counts them once.
//! It also reports the mappings and file descriptors each flow holds, and how many idle
//! flows this machine's `vm.max_map_count` and `ulimit -n` (its soft limit) leave room for.

mod support;

use std::time::Duration;

use torvyn_runtime::{FlowHandle, HostOptions, RunOptions};

use support::{Guests, Memory, Work, limits, memory, runtime, wasm_flow};

fn main() {
    let count: usize = std::env::var("TORVYN_IDLE_FLOWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let runtime = runtime();
    // Ten thousand flows are thirty thousand linear memories: more 4 GiB reservations than
    // a 47-bit address space holds. Each reserves its 256 MiB limit instead.
    let pooled = std::env::var_os("TORVYN_IDLE_POOLED").is_some();
    // A pool maps a fiber stack for each of its slots when its host starts: a pooled
    // flow's mappings count from before that.
    let unhosted = memory();
    let host = support::host(HostOptions {
        memory_reservation: Some(256 << 20),
        instance_pool: pooled.then_some(3 * count as u32 + 3),
        ..HostOptions::default()
    });
    let guests = Guests::load(&host);
    // One flow first, so that what every flow shares (code, the engine) is counted apart.
    let warm = wasm_flow(&guests, Some(Work::Upper), 64, 1);
    support::run(&runtime, &host, warm, 1);
    let Some(before) = memory() else {
        eprintln!("idle_flows: this platform does not report its memory (/proc/self/smaps_rollup)");
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
            let now = memory().map_or(0, |m| m.resident);
            if now == last {
                break;
            }
            last = now;
        }
        handles
    });
    let after = memory().unwrap_or(before);
    let emitted: u64 = handles.iter().map(|h| h.progress().emitted).sum();
    // A flow that could not start has ended already; it holds nothing.
    let idle = handles.iter().filter(|h| !h.is_finished()).count();
    let taken = |of: fn(&Memory) -> u64| of(&after).saturating_sub(of(&before));
    let (resident, proportional) = (taken(|m| m.resident), taken(|m| m.proportional));
    let per_flow = |bytes: u64| bytes as f64 / idle.max(1) as f64 / 1024.0;
    println!(
        "idle_flows: {idle} of {count} three-stage flows of components started and paused, \
         taking {} MiB resident, {:.1} KiB per flow; {} MiB proportional (a page shared by \
         instances counted once), {:.1} KiB per flow ({emitted} elements emitted before \
         pausing)",
        resident >> 20,
        per_flow(resident),
        proportional >> 20,
        per_flow(proportional),
    );
    // What bounds the number of idle flows at this machine's limits: their mappings or
    // their descriptors, whichever runs out first.
    let mapped = match (pooled, unhosted) {
        (true, Some(unhosted)) => unhosted.mappings,
        _ => before.mappings,
    };
    let mappings = after.mappings.saturating_sub(mapped);
    let descriptors = taken(|m| m.descriptors);
    let each = |total: u64| total as f64 / idle.max(1) as f64;
    println!(
        "idle_flows: {:.1} mappings and {:.1} descriptors per flow",
        each(mappings),
        each(descriptors),
    );
    if let Some((max_maps, max_files)) = limits() {
        let fit = |limit: u64, used: u64, each: f64| {
            (each > 0.0).then(|| (limit.saturating_sub(used) as f64 / each) as u64)
        };
        let shown = |fit: Option<u64>| fit.map_or("no limit".to_owned(), |n| n.to_string());
        println!(
            "idle_flows: at vm.max_map_count {max_maps} and ulimit -n {max_files}, the \
             mappings leave room for {} idle flows, the descriptors for {}",
            shown(fit(max_maps, mapped, each(mappings))),
            shown(fit(max_files, before.descriptors, each(descriptors))),
        );
    }
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
