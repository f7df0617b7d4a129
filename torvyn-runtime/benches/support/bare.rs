//! The bare-wasmtime baseline: the three stages' work as three instances of the smallest
//! component (`tests/components/bare-stage`: bytes in, bytes out), called in a loop by a
//! minimal host on wasmtime's defaults (synchronous calls, no epoch interruption, no fuel),
//! with no queue, buffer table or observability of ours. It is the floor any Component
//! Model pipeline on wasmtime pays: what Torvyn's `wasm` figures are measured against.

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{Work, guest};

wasmtime::component::bindgen!({
    path: "../tests/components/bare-stage/wit",
    world: "torvyn-bench:bare/stage",
});

/// What a bare stage's store holds: a WASI context (the guest's standard library imports
/// it), never used by the calls measured.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One instance of the bare stage in its own store, as each node of a flow has.
struct Instance {
    store: Store<State>,
    stage: Stage,
}

/// Source, processor and sink: three instances of the bare stage.
pub struct BareStages {
    source: Instance,
    processor: Instance,
    sink: Instance,
}

impl BareStages {
    /// Compiles the bare stage on its own engine and instantiates it three times.
    pub fn new() -> BareStages {
        let engine = Engine::new(&Config::new()).expect("an engine starts");
        let component =
            Component::from_file(&engine, guest("bare_stage")).expect("the bare stage compiles");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI links");
        let pre = StagePre::new(linker.instantiate_pre(&component).expect("it links"))
            .expect("it is the bare stage");
        let instance = || {
            let state = State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            };
            let mut store = Store::new(&engine, state);
            let stage = pre.instantiate(&mut store).expect("it instantiates");
            Instance { store, stage }
        };
        BareStages {
            source: instance(),
            processor: instance(),
            sink: instance(),
        }
    }

    /// The three-stage 64 B work (source → upper-casing processor → sink) on each of
    /// `stages`, each on a thread of its own, side by side: `count` elements each.
    pub fn run_side_by_side(stages: &mut [BareStages], size: usize, count: u64) {
        std::thread::scope(|scope| {
            for stages in stages {
                scope.spawn(|| stages.run(Some(Work::Upper), size, count));
            }
        });
    }

    /// `count` elements of `size` bytes made by the source, through the processor doing
    /// `processor`'s work (or none), into the sink; panics unless the sink took them all.
    pub fn run(&mut self, processor: Option<Work>, size: usize, count: u64) {
        let mut taken = 0;
        for _ in 0..count {
            let source = &mut self.source;
            let made = (source.stage)
                .call_make(&mut source.store, size as u32)
                .unwrap();
            let out = match processor {
                Some(work) => {
                    let processor = &mut self.processor;
                    let upper = work == Work::Upper;
                    (processor.stage)
                        .call_transform(&mut processor.store, &made, upper)
                        .unwrap()
                }
                None => made,
            };
            let sink = &mut self.sink;
            taken += u64::from((sink.stage).call_consume(&mut sink.store, &out).unwrap());
        }
        assert_eq!(taken, count * size as u64);
    }
}
