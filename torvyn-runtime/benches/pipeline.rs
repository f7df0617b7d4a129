//! The benchmark suite, `cargo bench -p torvyn-runtime --bench pipeline`: flows of real
//! components at four payload sizes, called one element per call and in batches of up to
//! 32 (`wasm-batch`); the same flows of native stages over the same
//! queues and buffers (the baseline); the same work as plain functions in a loop
//! (`plain-rust`, what no code of ours is part of) and as three instances of the smallest
//! component called in a loop on bare wasmtime (`bare-wasmtime`, the floor of any Component
//! Model pipeline); `memcpy` of the same sizes (the physical limit);
//! compiling, loading and instantiating components; what preemption costs; and how busy
//! flows side by side scale (`scaling`, the one group run on a thread per core). Every
//! other figure is for one thread. `docs/performance.md` reads them.

mod support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use torvyn_runtime::{HostOptions, ObservabilityLevel, SpanSink};

use support::bare::BareStages;
use support::plain::{PagePair, plain_rust};
use support::{
    CountedSpans, Guests, SIZES, Work, busy_flows, label, native_flow, run, run_observed, runtime,
    wasm_flow,
};

const SHAPES: [(&str, Option<Work>); 3] = [
    ("source-sink", None),
    ("source-processor-sink", Some(Work::Upper)),
    ("source-copy-sink", Some(Work::Copy)),
];

/// Elements per second through each shape, of components and of native stages.
fn pipelines(c: &mut Criterion) {
    let runtime = runtime();
    let host = support::host(HostOptions::default());
    let guests = Guests::load(&host);
    let batched = Guests::load_batched(&host);
    // Instantiated once: the floor leaves out what starting a flow costs.
    let mut bare = BareStages::new();
    for (size, count) in SIZES {
        let mut group = c.benchmark_group(format!("pipeline/{}", label(size)));
        group.throughput(Throughput::Elements(count));
        if size >= 64 * 1024 {
            group.sample_size(20);
        }
        for (shape, processor) in SHAPES {
            group.bench_function(BenchmarkId::new("wasm", shape), |b| {
                b.iter(|| {
                    run(
                        &runtime,
                        &host,
                        wasm_flow(&guests, processor, size, count),
                        count,
                    )
                });
            });
            group.bench_function(BenchmarkId::new("wasm-batch", shape), |b| {
                b.iter(|| {
                    run(
                        &runtime,
                        &host,
                        wasm_flow(&batched, processor, size, count),
                        count,
                    )
                });
            });
            group.bench_function(BenchmarkId::new("native", shape), |b| {
                b.iter(|| run(&runtime, &host, native_flow(processor, size, count), count));
            });
            let mut pair = PagePair::new(size);
            group.bench_function(BenchmarkId::new("plain-rust", shape), |b| {
                b.iter(|| plain_rust(processor, &mut pair, count));
            });
            group.bench_function(BenchmarkId::new("bare-wasmtime", shape), |b| {
                b.iter(|| bare.run(processor, size, count));
            });
        }
        group.finish();
    }
}

/// Copying the payload once: what no pipeline that copies can beat.
fn memcpy(c: &mut Criterion) {
    let mut group = c.benchmark_group("memcpy");
    for (size, _) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut pair = PagePair::new(size);
        let (source, target) = pair.halves();
        source.fill(b'x');
        group.bench_function(label(size), |b| {
            b.iter(|| target.copy_from_slice(black_box(&*source)));
        });
    }
    group.finish();
}

/// Compiling a component, loading it compiled from the cache, and a three-stage flow from
/// instantiation to its first element delivered (and torn down).
fn instantiation(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("instantiate");
    group.sample_size(10);
    let uncached = torvyn_runtime::Host::new(HostOptions::default()).expect("a host starts");
    let upper = support::guest("test_upper");
    group.bench_function("compile (cold)", |b| {
        b.iter(|| uncached.load(&upper).expect("it compiles"));
    });
    let host = support::host(HostOptions::default());
    group.bench_function("load (cached)", |b| {
        b.iter(|| host.load(&upper).expect("it loads"));
    });
    group.sample_size(100);
    let guests = Guests::load(&host);
    group.bench_function("three stages to the first element", |b| {
        b.iter(|| {
            run(
                &runtime,
                &host,
                wasm_flow(&guests, Some(Work::Upper), 64, 1),
                1,
            )
        });
    });
    group.bench_function("three native stages to the first element", |b| {
        b.iter(|| run(&runtime, &host, native_flow(Some(Work::Upper), 64, 1), 1));
    });
    let pooled = support::host(HostOptions {
        instance_pool: Some(64),
        ..HostOptions::default()
    });
    let pooled_guests = Guests::load(&pooled);
    group.bench_function("three stages to the first element, pooled", |b| {
        b.iter(|| {
            run(
                &runtime,
                &pooled,
                wasm_flow(&pooled_guests, Some(Work::Upper), 64, 1),
                1,
            )
        });
    });
    group.finish();
}

/// The three-stage 64 B flow with epoch interruption (the default), without any
/// preemption, with fuel metering as well, and with linear memories reserving 256 MiB
/// (explicit bounds checks) instead of 4 GiB.
fn preemption(c: &mut Criterion) {
    let runtime = runtime();
    let (size, count) = SIZES[0];
    let mut group = c.benchmark_group("preemption");
    group.throughput(Throughput::Elements(count));
    let settings = [
        ("epoch", HostOptions::default()),
        (
            "none",
            HostOptions {
                epoch_interruption: false,
                ..HostOptions::default()
            },
        ),
        (
            "epoch and fuel",
            HostOptions {
                fuel: true,
                ..HostOptions::default()
            },
        ),
        (
            "epoch, 256 MiB reservations",
            HostOptions {
                memory_reservation: Some(256 << 20),
                ..HostOptions::default()
            },
        ),
        (
            "epoch, pooled instances",
            HostOptions {
                instance_pool: Some(64),
                ..HostOptions::default()
            },
        ),
    ];
    for (name, options) in settings {
        let host = support::host(options);
        let guests = Guests::load(&host);
        group.bench_function(name, |b| {
            b.iter(|| {
                run(
                    &runtime,
                    &host,
                    wasm_flow(&guests, Some(Work::Upper), size, count),
                    count,
                )
            });
        });
    }
    group.finish();
}

/// What observing a flow costs: the same flow at each observability level, long enough
/// (20 000 elements, about 0.1 s) to publish snapshots while it runs.
fn observability(c: &mut Criterion) {
    let runtime = runtime();
    let count = 20_000;
    let mut group = c.benchmark_group("observability");
    group.throughput(Throughput::Elements(count));
    group.sample_size(30);
    let host = support::host(HostOptions::default());
    let guests = Guests::load(&host);
    // Traced: spans collected, as for an OTLP exporter (one element in 1024 at
    // production, every one at diagnostic).
    let spans = Arc::new(CountedSpans::default());
    for (name, level, traced) in [
        ("off", ObservabilityLevel::Off, false),
        ("production", ObservabilityLevel::Production, false),
        ("production-traced", ObservabilityLevel::Production, true),
        ("diagnostic", ObservabilityLevel::Diagnostic, true),
    ] {
        let sink = traced.then(|| spans.clone() as Arc<dyn SpanSink>);
        group.bench_function(name, |b| {
            b.iter(|| {
                let spec = wasm_flow(&guests, Some(Work::Upper), 64, count);
                run_observed(&runtime, &host, spec, count, level, sink.clone())
            });
        });
    }
    group.finish();
}

/// Busy flows side by side on a runtime with a worker thread per core (as `cargo torvyn
/// run` has): the three-stage 64 B flow alone, then two of them at once, each flow a task
/// of its own. Both report elements per second over every flow, so the second's
/// throughput against the first's is how a host's work scales with its flows (issue 16's
/// target: ≥ 1.8 × on 2 cores). The same pair for the bare-wasmtime loop, one thread and
/// then two, each with stages of its own, is what the machine itself allows.
fn scaling(c: &mut Criterion) {
    let runtime = support::runtime_per_core();
    let host = support::host(HostOptions::default());
    let guests = Guests::load(&host);
    let (size, count) = (64, 20_000);
    let mut group = c.benchmark_group("scaling");
    group.sample_size(20);
    for flows in [1u64, 2] {
        group.throughput(Throughput::Elements(flows * count));
        let name = format!("{flows} busy flow{}", if flows == 1 { "" } else { "s" });
        group.bench_function(name, |b| {
            b.iter(|| busy_flows(&runtime, &host, &guests, flows, size, count));
        });
    }
    let mut bare: Vec<BareStages> = (0..2).map(|_| BareStages::new()).collect();
    for threads in [1, 2] {
        group.throughput(Throughput::Elements(threads as u64 * count));
        let name = format!(
            "bare-wasmtime on {threads} thread{}",
            if threads == 1 { "" } else { "s" }
        );
        group.bench_function(name, |b| {
            b.iter(|| BareStages::run_side_by_side(&mut bare[..threads], size, count));
        });
    }
    group.finish();
}

/// One `memcpy` of 64 KiB with the destination 0, 16 and 64 bytes past the source modulo
/// a page: the case `torvyn-runtime/src/resources/copy.rs` copies in spans (16) against
/// two it does not.
fn memcpy_distance(c: &mut Criterion) {
    let size = 64 * 1024;
    let mut group = c.benchmark_group("memcpy-distance/64 KiB");
    group.throughput(Throughput::Bytes(size as u64));
    let mut pair = PagePair::new(size + 4096);
    for distance in [0, 16, 64] {
        let (source, target) = pair.halves();
        source.fill(b'x');
        let (source, target) = (&source[..size], &mut target[distance..distance + size]);
        group.bench_function(format!("{distance} B past"), |b| {
            b.iter(|| target.copy_from_slice(black_box(source)));
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    pipelines,
    memcpy,
    memcpy_distance,
    instantiation,
    preemption,
    observability,
    scaling
);
criterion_main!(benches);
