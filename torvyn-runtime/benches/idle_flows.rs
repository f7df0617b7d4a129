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

use support::limits;

fn main() {
    let count: usize = std::env::var("TORVYN_IDLE_FLOWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let pooled = std::env::var_os("TORVYN_IDLE_POOLED").is_some();
    let Some(flows) = support::idle::measure(&support::runtime(), count, pooled) else {
        eprintln!("idle_flows: this platform does not report its memory (/proc/self/smaps_rollup)");
        return;
    };
    let kib = |bytes: u64| flows.each(bytes) / 1024.0;
    println!(
        "idle_flows: {} of {count} three-stage flows of components started and paused, \
         taking {} MiB resident, {:.1} KiB per flow; {} MiB proportional (a page shared by \
         instances counted once), {:.1} KiB per flow ({} elements emitted before pausing)",
        flows.idle,
        flows.resident >> 20,
        kib(flows.resident),
        flows.proportional >> 20,
        kib(flows.proportional),
        flows.emitted,
    );
    println!(
        "idle_flows: {:.1} mappings and {:.1} descriptors per flow",
        flows.each(flows.mappings),
        flows.each(flows.descriptors),
    );
    // What bounds the number of idle flows at this machine's limits: their mappings or
    // their descriptors, whichever runs out first.
    if let (Some((maps, files)), Some((max_maps, max_files))) = (flows.room(), limits()) {
        let shown = |fit: Option<u64>| fit.map_or("no limit".to_owned(), |n| n.to_string());
        println!(
            "idle_flows: at vm.max_map_count {max_maps} and ulimit -n {max_files}, the \
             mappings leave room for {} idle flows, the descriptors for {}",
            shown(maps),
            shown(files),
        );
    }
    if let (failed @ 1.., Some(first)) = (flows.failed, &flows.first_failure) {
        println!(
            "idle_flows: {failed} flows could not start, the first because {first}; each \
             instance maps a few regions, so many flows need vm.max_map_count above Linux's \
             65 530"
        );
    }
}
