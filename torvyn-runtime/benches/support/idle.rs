//! Idle flows: many three-stage flows of components, each paused before its first
//! element, and what they hold (`idle_flows` prints it, `targets` judges it).

use std::time::Duration;

use torvyn_runtime::{FlowHandle, HostOptions, RunOptions};

use super::{Guests, Memory, Work, limits, memory, wasm_flow};

/// What `count` idle flows took, from the process's memory before and after they started.
#[derive(Debug)]
pub struct IdleFlows {
    /// Flows asked for.
    pub count: usize,
    /// Flows that started and were paused; a flow that could not start holds nothing.
    pub idle: usize,
    /// Elements the flows emitted before their pause took hold.
    pub emitted: u64,
    /// Resident bytes (RSS) the idle flows took, all of them.
    pub resident: u64,
    /// Proportional bytes (PSS) they took: a page shared by instances counted once.
    pub proportional: u64,
    /// Memory mappings they added.
    pub mappings: u64,
    /// File descriptors they opened.
    pub descriptors: u64,
    /// The process before them, whose mappings and descriptors the limits count too. With
    /// a pool, its mappings are those from before the host started (the pool maps its
    /// slots' stacks then), the rest from before the flows.
    pub before: Memory,
    /// How many flows could not start.
    pub failed: usize,
    /// The first of their errors.
    pub first_failure: Option<String>,
}

impl IdleFlows {
    /// `total` (bytes, mappings or descriptors) per idle flow.
    pub fn each(&self, total: u64) -> f64 {
        total as f64 / self.idle.max(1) as f64
    }

    /// How many idle flows this machine's `vm.max_map_count` and `ulimit -n` leave room
    /// for, by their mappings and by their descriptors (`None` for one they take none
    /// of); `None` where the platform does not tell its limits.
    pub fn room(&self) -> Option<(Option<u64>, Option<u64>)> {
        let (max_maps, max_files) = limits()?;
        let fit = |limit: u64, used: u64, each: f64| {
            (each > 0.0).then(|| (limit.saturating_sub(used) as f64 / each) as u64)
        };
        Some((
            fit(max_maps, self.before.mappings, self.each(self.mappings)),
            fit(
                max_files,
                self.before.descriptors,
                self.each(self.descriptors),
            ),
        ))
    }
}

/// Starts `count` three-stage flows of components and pauses each before its first
/// element, on a host reserving 256 MiB of address space per linear memory (ten thousand
/// flows are thirty thousand memories: more 4 GiB reservations than a 47-bit address
/// space holds), from a pool of instance slots when `pooled`; measures what they hold
/// once they settle, then ends them. `None` where the platform does not report its
/// memory (`/proc/self/smaps_rollup`).
pub fn measure(runtime: &tokio::runtime::Runtime, count: usize, pooled: bool) -> Option<IdleFlows> {
    // A pool maps a fiber stack for each of its slots when its host starts: a pooled
    // flow's mappings count from before that.
    let unhosted = memory()?;
    let host = super::host(HostOptions {
        memory_reservation: Some(256 << 20),
        instance_pool: pooled.then_some(3 * count as u32 + 3),
        ..HostOptions::default()
    });
    let guests = Guests::load(&host);
    // One flow first, so that what every flow shares (code, the engine) is counted apart.
    super::run(
        runtime,
        &host,
        wasm_flow(&guests, Some(Work::Upper), 64, 1),
        1,
    );
    let mut before = memory()?;
    if pooled {
        before.mappings = unhosted.mappings;
    }
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
    let taken = |of: fn(&Memory) -> u64| of(&after).saturating_sub(of(&before));
    let measured = IdleFlows {
        count,
        idle: handles.iter().filter(|h| !h.is_finished()).count(),
        emitted: handles.iter().map(|h| h.progress().emitted).sum(),
        resident: taken(|m| m.resident),
        proportional: taken(|m| m.proportional),
        mappings: taken(|m| m.mappings),
        descriptors: taken(|m| m.descriptors),
        before,
        failed: 0,
        first_failure: None,
    };
    Some(runtime.block_on(async {
        let mut measured = measured;
        for handle in handles {
            handle.cancel();
            handle.resume();
            if let Err(error) = handle.join().await {
                measured.failed += 1;
                measured
                    .first_failure
                    .get_or_insert_with(|| error.to_string());
            }
        }
        measured
    }))
}
