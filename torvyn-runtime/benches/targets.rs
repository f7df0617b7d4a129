//! Issue 16's targets, `cargo bench -p torvyn-runtime --bench targets`: every row of the
//! table in `docs/performance.md` ("Targets") measured in this one process and judged
//! against its target, printed as that table.
//!
//! A ratio is of two contenders timed in alternating pairs, the order within a pair
//! alternating too, after a run of each to warm up: the machine's drift (7 % and more
//! from one run to the next on the 2-core VM these figures come from) then moves both
//! sides of a pair alike. The ratio printed is the median of the pairs' ratios, beside
//! each contender's median. A row with no baseline (a time, a size) is the median of its
//! runs against its target.
//!
//! A flow's run includes its start and its end (about 0.3 ms for components, far less for
//! native stages), as the criterion suite's do; the per-element rows run enough elements
//! (10 000 of 64 B through components, 50 000 through native stages, 1 000 of 64 KiB) for
//! that to be 1 to 2 % of a run, where the baselines start nothing.
//!
//! - Words among the arguments pick the rows whose name contains one of them, ignoring
//!   case: `cargo bench -p torvyn-runtime --bench targets -- 64 idle`. Options other
//!   than cargo's `--bench` are the criterion suite's, and are left to it with their
//!   values. Run without `--bench` (by `cargo test --benches`), it measures nothing.
//! - `TORVYN_TARGET_ROUNDS` sets the pairs per ratio (default 21; the busy flows take
//!   half as many, each pair running 60 000 elements, and the flow starts five times as
//!   many).
//! - The large component's row needs `componentize-py` (`pip install componentize-py`);
//!   without it, or if it fails, the row says it was skipped.

mod support;

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Instant;

use torvyn_runtime::{Host, HostOptions};

use support::bare::BareStages;
use support::plain::{PagePair, plain_rust};
use support::{Guests, Work, busy_flows, limits, native_flow, run, runtime, wasm_flow};

/// Idle flows started for their row: enough for the per-flow figures to settle (they are
/// the same at 1 000 and 6 000), few enough to start at any machine's limits.
const IDLE_FLOWS: usize = 1_000;

/// Elements per flow run of the 64 B rows, and of the 64 KiB row.
const ELEMENTS: (u64, u64) = (10_000, 1_000);

/// The options of criterion 0.8 and of cargo's test harness that take no value (`cargo
/// bench -- OPTIONS` hands them to every bench of the package); any other option takes
/// the argument after it.
const FLAGS: [&str; 15] = [
    "--bench",
    "--test",
    "--list",
    "--exact",
    "--nocapture",
    "--quiet",
    "--quick",
    "--verbose",
    "--noplot",
    "--discard-baseline",
    "--ignored",
    "--include-ignored",
    "--show-output",
    "-v",
    "-n",
];

fn main() {
    let mut arguments = std::env::args().skip(1);
    let (mut filters, mut benching) = (Vec::new(), false);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--bench" => benching = true,
            // Listing or testing the benches (`cargo test --benches`), or asking what
            // the bench is, measures nothing.
            "--list" | "--test" | "--help" | "-h" | "--version" | "-V" => return,
            flag if FLAGS.contains(&flag) || flag.contains('=') => {}
            option if option.starts_with('-') => {
                arguments.next();
            }
            word => filters.push(word.to_lowercase()),
        }
    }
    if !benching {
        eprintln!("targets: measures only under `cargo bench`");
        return;
    }
    let rounds = (std::env::var("TORVYN_TARGET_ROUNDS").ok())
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(21);
    let mut table = Table {
        filters,
        rows: Vec::new(),
    };
    // First, while the heap holds nothing freed: flows started later would take memory
    // the other rows gave back, and look smaller than they are.
    idle_flows(&mut table);
    per_element(&mut table, rounds);
    large_payloads(&mut table, rounds);
    instantiation(&mut table, rounds);
    scaling(&mut table, rounds.div_ceil(2));
    large_component(&mut table, rounds);
    table.print(rounds);
}

/// The rows measured so far, and which the arguments pick.
struct Table {
    filters: Vec<String>,
    rows: Vec<Row>,
}

/// One row of the table: what, the measured figure and its baseline, their ratio, the
/// target, and whether this run met it (`None`: not measured, the figure says why).
struct Row {
    what: &'static str,
    measured: String,
    baseline: String,
    ratio: String,
    target: &'static str,
    met: Option<bool>,
}

impl Table {
    /// Whether the arguments pick any of `rows`.
    fn wants(&self, rows: &[&str]) -> bool {
        let picked = |row: &str| {
            let row = row.to_lowercase();
            self.filters.is_empty() || self.filters.iter().any(|f| row.contains(f.as_str()))
        };
        rows.iter().any(|row| picked(row))
    }

    /// Adds `row` if the arguments pick it, and says so on stderr as it comes.
    fn add(&mut self, row: Row) {
        if !self.wants(&[row.what]) {
            return;
        }
        eprintln!(
            "targets: {}: {}; {}; {} (target {})",
            row.what, row.measured, row.baseline, row.ratio, row.target
        );
        self.rows.push(row);
    }

    fn print(&self, rounds: usize) {
        println!();
        println!(
            "Issue 16's targets, one process, {rounds} alternating pairs per ratio ({} for \
             the busy flows, {} for the flow starts), medians:",
            rounds.div_ceil(2),
            5 * rounds
        );
        println!();
        println!("| what | measured | baseline | ratio | target | status |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for row in &self.rows {
            let status = match row.met {
                Some(true) => "met",
                Some(false) => "not met",
                None => "not measured",
            };
            println!(
                "| {} | {} | {} | {} | {} | {status} |",
                row.what, row.measured, row.baseline, row.ratio, row.target
            );
        }
    }
}

/// Times of two contenders in alternating pairs, in seconds per run.
struct Pairs {
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Pairs {
    /// Runs `a` and `b` once each to warm up, then `rounds` pairs, `a` first in even pairs
    /// and `b` first in odd ones.
    fn measure(rounds: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> Pairs {
        let timed = |run: &mut dyn FnMut()| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64()
        };
        a();
        b();
        let mut pairs = Pairs {
            a: Vec::with_capacity(rounds),
            b: Vec::with_capacity(rounds),
        };
        for round in 0..rounds {
            if round % 2 == 0 {
                pairs.a.push(timed(&mut a));
                pairs.b.push(timed(&mut b));
            } else {
                pairs.b.push(timed(&mut b));
                pairs.a.push(timed(&mut a));
            }
        }
        pairs
    }

    /// The median of `a`'s runs and of `b`'s, and of `ratio(a, b)` over the pairs.
    fn medians(&self, ratio: impl Fn(f64, f64) -> f64) -> (f64, f64, f64) {
        let ratios: Vec<f64> = (self.a.iter().zip(&self.b))
            .map(|(&a, &b)| ratio(a, b))
            .collect();
        (median(&self.a), median(&self.b), median(&ratios))
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// `seconds` in the unit that suits it.
fn time(seconds: f64) -> String {
    match seconds {
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 1e-3 => format!("{:.2} ms", s * 1e3),
        s if s >= 1e-6 => format!("{:.2} µs", s * 1e6),
        s => format!("{:.1} ns", s * 1e9),
    }
}

/// The 64 B rows: three stages, source → upper-casing processor → sink, per element,
/// against bare wasmtime (single calls, batches) and plain Rust (native stages).
fn per_element(table: &mut Table, rounds: usize) {
    const SINGLE: &str = "3 stages, 64 B, one call per element per stage";
    const BATCH: &str = "3 stages, 64 B, batch world (up to 32 elements per call)";
    const DRIVER: &str = "the driver alone: native stages, 3 stages, 64 B";
    if !table.wants(&[SINGLE, BATCH, DRIVER]) {
        return;
    }
    let runtime = runtime();
    let host = support::host(HostOptions::default());
    let (size, count) = (64, ELEMENTS.0);
    let work = Some(Work::Upper);
    let per = |seconds: f64| time(seconds / count as f64);
    let mut bare = None;
    for (what, batched, target, bound) in [
        (SINGLE, false, "≤ 1.0 × bare wasmtime", 1.0),
        (BATCH, true, "≤ 0.25 × bare wasmtime", 0.25),
    ] {
        if !table.wants(&[what]) {
            continue;
        }
        let guests = match batched {
            true => Guests::load_batched(&host),
            false => Guests::load(&host),
        };
        let bare = bare.get_or_insert_with(BareStages::new);
        let pairs = Pairs::measure(
            rounds,
            || {
                run(
                    &runtime,
                    &host,
                    wasm_flow(&guests, work, size, count),
                    count,
                )
            },
            || bare.run(work, size, count),
        );
        let (flow, floor, ratio) = pairs.medians(|a, b| a / b);
        table.add(Row {
            what,
            measured: format!("{} per element", per(flow)),
            baseline: format!("bare wasmtime {}", per(floor)),
            ratio: format!("{ratio:.2} ×"),
            target,
            met: Some(ratio <= bound),
        });
    }
    if table.wants(&[DRIVER]) {
        // Five times the elements: a native element is ten times quicker than a
        // component's, and the flow's start should stay a small part of a run.
        let count = 5 * count;
        let per = |seconds: f64| time(seconds / count as f64);
        let mut buffers = PagePair::new(size);
        let pairs = Pairs::measure(
            rounds,
            || run(&runtime, &host, native_flow(work, size, count), count),
            || plain_rust(work, &mut buffers, count),
        );
        let (native, plain, ratio) = pairs.medians(|a, b| a / b);
        table.add(Row {
            what: DRIVER,
            measured: format!("{} per element", per(native)),
            baseline: format!("plain Rust {}", per(plain)),
            ratio: format!("{ratio:.0} ×"),
            target: "≤ 20 × plain Rust",
            met: Some(ratio <= 20.0),
        });
    }
}

/// 64 KiB elements through source → copying processor → sink: four copies each, against
/// what four `memcpy`s of 64 KiB take.
fn large_payloads(table: &mut Table, rounds: usize) {
    const WHAT: &str = "64 KiB, copying processor";
    if !table.wants(&[WHAT]) {
        return;
    }
    let runtime = runtime();
    let host = support::host(HostOptions::default());
    let guests = Guests::load(&host);
    let (size, count) = (64 * 1024, ELEMENTS.1);
    let mut pair = PagePair::new(size);
    let pairs = Pairs::measure(
        rounds,
        || {
            let spec = wasm_flow(&guests, Some(Work::Copy), size, count);
            run(&runtime, &host, spec, count);
        },
        || {
            let (source, target) = pair.halves();
            for _ in 0..count {
                target.copy_from_slice(black_box(&*source));
            }
        },
    );
    // The flow's throughput over a quarter of memcpy's: 4 memcpys' time over the flow's.
    let (flow, copies, ratio) = pairs.medians(|flow, copies| 4.0 * copies / flow);
    let per = |seconds: f64| time(seconds / count as f64);
    table.add(Row {
        what: WHAT,
        measured: format!("{} per element", per(flow)),
        baseline: format!(
            "memcpy {} per 64 KiB (the flow copies 4 times)",
            per(copies)
        ),
        ratio: format!("{ratio:.2}"),
        target: "≥ 0.8 × (memcpy bandwidth / 4)",
        met: Some(ratio >= 0.8),
    });
}

/// A three-stage flow of components from its start to its first element delivered (and
/// torn down), its instances made on demand (the CLI's default) and from a pool.
fn instantiation(table: &mut Table, rounds: usize) {
    const WHAT: &str = "warm instantiation, 3-stage flow to its first element";
    if !table.wants(&[WHAT]) {
        return;
    }
    let runtime = runtime();
    let on_demand = support::host(HostOptions::default());
    let pooled = support::host(HostOptions {
        instance_pool: Some(64),
        ..HostOptions::default()
    });
    let (guests, pooled_guests) = (Guests::load(&on_demand), Guests::load(&pooled));
    let first = |host: &Host, guests: &Guests| {
        run(
            &runtime,
            host,
            wasm_flow(guests, Some(Work::Upper), 64, 1),
            1,
        );
    };
    // A start is short: five pairs for each round of the other rows.
    let pairs = Pairs::measure(
        5 * rounds,
        || first(&on_demand, &guests),
        || first(&pooled, &pooled_guests),
    );
    let (demand, pool, _) = pairs.medians(|a, b| a / b);
    let bound = 50e-6;
    table.add(Row {
        what: WHAT,
        measured: format!(
            "{} on demand (the CLI's default), {} pooled",
            time(demand),
            time(pool)
        ),
        baseline: "–".into(),
        ratio: format!("{:.1} × the target", demand / bound),
        target: "≤ 50 µs",
        met: Some(demand <= bound),
    });
}

/// Busy three-stage 64 B flows on a worker thread per core: two at once against one.
fn scaling(table: &mut Table, rounds: usize) {
    const WHAT: &str = "several flows on 2 cores";
    if !table.wants(&[WHAT]) {
        return;
    }
    let runtime = support::runtime_per_core();
    let host = support::host(HostOptions::default());
    let guests = Guests::load(&host);
    let (size, count) = (64, 20_000);
    let pairs = Pairs::measure(
        rounds,
        || busy_flows(&runtime, &host, &guests, 1, size, count),
        || busy_flows(&runtime, &host, &guests, 2, size, count),
    );
    // Two flows do twice the elements: their throughput over one flow's.
    let (one, two, ratio) = pairs.medians(|one, two| 2.0 * one / two);
    // What the machine itself allows: the bare-wasmtime loop on one thread and on two.
    let bare = RefCell::new((0..2).map(|_| BareStages::new()).collect::<Vec<_>>());
    let on = |threads: usize| {
        BareStages::run_side_by_side(&mut bare.borrow_mut()[..threads], size, count)
    };
    let threads = Pairs::measure(rounds, || on(1), || on(2));
    let (_, _, machine) = threads.medians(|one, two| 2.0 * one / two);
    let rate = |seconds: f64, flows: f64| format!("{:.0} k", flows * count as f64 / seconds / 1e3);
    table.add(Row {
        what: WHAT,
        measured: format!("2 busy flows: {} elements/s", rate(two, 2.0)),
        baseline: format!(
            "1 busy flow: {} elements/s; the bare-wasmtime loop on 2 threads: {machine:.2} × \
             on 1",
            rate(one, 1.0)
        ),
        ratio: format!("{ratio:.2} ×"),
        target: "2 busy flows ≥ 1.8 × one flow's throughput",
        met: Some(ratio >= 1.8),
    });
}

/// A Python upper-casing processor of about 18 MB: its cold compile, timed once, and
/// loading it from the compile cache.
fn large_component(table: &mut Table, rounds: usize) {
    const WHAT: &str = "a large component (a Python guest)";
    if !table.wants(&[WHAT]) {
        return;
    }
    // componentize-py failing panics: the row is skipped, the rows before it kept.
    let built = std::panic::catch_unwind(|| support::python_guest("python-upper"));
    let Ok(Some(wasm)) = built else {
        table.add(Row {
            what: WHAT,
            measured: "skipped: componentize-py cannot run, or failed".into(),
            baseline: "–".into(),
            ratio: "–".into(),
            target: "loaded from the cache in ≤ 50 ms",
            met: None,
        });
        return;
    };
    let size = std::fs::metadata(&wasm).map_or(0, |m| m.len()) as f64 / f64::from(1 << 20);
    let cold = Host::new(HostOptions::default()).expect("a host starts");
    let started = Instant::now();
    cold.load(&wasm).expect("it compiles");
    let compile = started.elapsed();
    let host = support::host(HostOptions::default());
    host.load(&wasm).expect("it compiles into the cache");
    let loads: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            host.load(&wasm).expect("it loads");
            started.elapsed().as_secs_f64()
        })
        .collect();
    let load = median(&loads);
    table.add(Row {
        what: WHAT,
        measured: format!("{} from the cache ({size:.1} MiB)", time(load)),
        baseline: format!("cold compile {}", time(compile.as_secs_f64())),
        ratio: format!("{:.2} × the target", load / 50e-3),
        target: "loaded from the cache in ≤ 50 ms",
        met: Some(load <= 50e-3),
    });
}

/// Idle three-stage flows, their instances made on demand: the memory each holds, and
/// how many this machine's limits leave room for.
fn idle_flows(table: &mut Table) {
    const MEMORY: &str = "memory per idle 3-stage flow";
    const ROOM: &str = "idle flows per host at this machine's default limits";
    if !table.wants(&[MEMORY, ROOM]) {
        return;
    }
    let Some(flows) = support::idle::measure(&runtime(), IDLE_FLOWS, false) else {
        eprintln!("targets: skipped the idle flows: this platform does not report its memory");
        return;
    };
    let kib = |bytes: u64| flows.each(bytes) / 1024.0;
    let per_flow = kib(flows.proportional);
    // Flows that could not start hold nothing: the figures of the others judge nothing.
    let started = flows.idle == flows.count;
    let failure = flows.first_failure.as_deref().unwrap_or("");
    table.add(Row {
        what: MEMORY,
        measured: format!("{per_flow:.1} KiB by PSS"),
        baseline: format!(
            "{:.1} KiB by RSS; {} of {} flows idle{}",
            kib(flows.resident),
            flows.idle,
            flows.count,
            if started {
                String::new()
            } else {
                format!(" ({} failed: {failure})", flows.failed)
            }
        ),
        ratio: format!("{:.2} × the target", per_flow / 128.0),
        target: "≤ 128 KiB",
        met: started.then_some(per_flow <= 128.0),
    });
    let (Some((maps, files)), Some((max_maps, max_files))) = (flows.room(), limits()) else {
        return;
    };
    let room = maps.into_iter().chain(files).min();
    let shown = |fit: Option<u64>| fit.map_or("no limit".to_owned(), |n| n.to_string());
    table.add(Row {
        what: ROOM,
        measured: format!("room for {}", shown(room)),
        baseline: format!(
            "{:.1} mappings per flow (vm.max_map_count {max_maps}: {}), {:.1} descriptors \
             (ulimit -n {max_files}: {})",
            flows.each(flows.mappings),
            shown(maps),
            flows.each(flows.descriptors),
            shown(files),
        ),
        ratio: room.map_or("–".into(), |n| {
            format!("{:.2} × the target", n as f64 / 1e4)
        }),
        target: "10 000",
        met: started.then_some(room.is_none_or(|n| n >= 10_000)),
    });
}
