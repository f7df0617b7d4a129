//! The wasmtime side of the host: one `Engine` and `Linker` for every flow, a compile
//! cache keyed by content hash, pre-instantiated components, and the host implementation
//! of the contract's imports (one file per interface under `host/`).

mod batch;
mod bindings;
mod cache;
mod host;
mod imports;
mod indices;
mod state;

use crate::host::HostOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wasmtime::component::{Component, InstancePre, Linker};

use crate::contracts::{self, ContractError, Role};
use crate::security::{DeniedRoot, EPOCH_TICK};
pub(crate) use batch::BatchInput;
pub(crate) use bindings::exports;
pub(crate) use bindings::torvyn::streaming::types::{
    BackpressureSignal, ElementMeta, OutputElement, ProcessError, ProcessResult, StreamElement,
};
use indices::ExportIndices;
pub(crate) use indices::{BatchCalls, Calls, Exports};
pub(crate) use state::{FlowIdentity, StageState};

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    /// The file could not be read.
    #[error("cannot read component `{path}`")]
    #[diagnostic(
        code(torvyn::engine::read),
        help("check the `path` of this component in Torvyn.toml, or run `cargo torvyn build`")
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a component that honours the contract.
    #[error("`{path}` is not a usable Torvyn component")]
    #[diagnostic(code(torvyn::engine::contract))]
    Contract {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        #[diagnostic_source]
        source: ContractError,
    },
    /// wasmtime refused the component.
    #[error("cannot compile or link component `{path}`: {message}")]
    #[diagnostic(code(torvyn::engine::compile))]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's explanation, with its causes.
        message: String,
    },
    /// The component imports interfaces the host does not provide: found before it is
    /// compiled.
    #[error("cannot link component `{path}`: it imports {}", missing.join("; "))]
    #[diagnostic(code(torvyn::engine::imports))]
    Imports {
        /// The file.
        path: PathBuf,
        /// Each import the host does not provide, with what the host provides near it.
        missing: Vec<String>,
        /// How to go on without them.
        #[help]
        help: String,
    },
    /// The component imports something the host does not provide in the shape it asks for.
    #[error("cannot link component `{path}`: {message}")]
    #[diagnostic(
        code(torvyn::engine::link),
        help(
            "the host provides torvyn:streaming, torvyn:capabilities, torvyn:attributes, torvyn:runtime and torvyn:buffers at 0.1, and WASI 0.2 (up to the version wasmtime-wasi implements); build the component against those"
        )
    )]
    Link {
        /// The file.
        path: PathBuf,
        /// wasmtime's explanation: the import it could not satisfy.
        message: String,
    },
    /// The engine could not be configured.
    #[error("cannot configure the WebAssembly engine: {0}")]
    #[diagnostic(code(torvyn::engine::config))]
    Config(String),
}

/// A component compiled, linked and ready to instantiate.
#[derive(Clone)]
pub struct LoadedComponent {
    inner: Arc<Loaded>,
}

struct Loaded {
    path: PathBuf,
    role: Role,
    lifecycle: bool,
    /// Whether it exports its role's batch interface too.
    batched: bool,
    needs: Vec<String>,
    unversioned: Vec<String>,
    denied_root: Arc<DeniedRoot>,
    pre: InstancePre<StageState>,
    exports: ExportIndices,
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("path", &self.inner.path)
            .field("role", &self.inner.role)
            .field("lifecycle", &self.inner.lifecycle)
            .field("batched", &self.inner.batched)
            .finish()
    }
}

impl LoadedComponent {
    /// The role the component's exports give it.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The file the component came from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The capabilities it says it needs (its `torvyn:capabilities` section).
    pub fn needs(&self) -> &[String] {
        &self.inner.needs
    }

    /// Its import and export names of a contract package without a version, as it spells
    /// them: the host runs it as their 0.1.0 version.
    pub fn unversioned(&self) -> &[String] {
        &self.inner.unversioned
    }

    /// Whether the component also exports its role's batch interface
    /// ([`Role::batch_interface`]), through which the host then calls it.
    pub fn is_batched(&self) -> bool {
        self.inner.batched
    }

    pub(crate) fn denied_root(&self) -> &Arc<DeniedRoot> {
        &self.inner.denied_root
    }

    pub(crate) fn instance_pre(&self) -> &InstancePre<StageState> {
        &self.inner.pre
    }

    /// The typed exports of `instance`, an instance of this component in `store`.
    pub(crate) fn exports(
        &self,
        store: &mut wasmtime::Store<StageState>,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Exports> {
        self.inner.exports.load(store, instance)
    }
}

/// The WebAssembly engine shared by every flow of a host.
pub struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<StageState>,
    cache: Option<cache::CompileCache>,
    denied_root: Arc<DeniedRoot>,
    _ticker: Option<EpochTicker>,
}

impl Engine {
    /// An engine as `options` say: with a compile cache, fuel metering and epoch
    /// interruption, each if asked for.
    pub fn new(options: &HostOptions) -> Result<Self, EngineError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(options.fuel);
        // Long calls are interrupted once per epoch tick: to yield to other flows, and to
        // trap when they pass their time limit.
        config.epoch_interruption(options.epoch_interruption);
        if let Some(bytes) = options.memory_reservation {
            config.memory_reservation(bytes);
        }
        if let Some(slots) = options.instance_pool {
            config.allocation_strategy(pool(slots, options.memory_reservation));
        }
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let cache = (options.cache_dir.clone()).map(|dir| cache::CompileCache::new(dir, &engine));
        let ticker = (options.epoch_interruption)
            .then(|| EpochTicker::start(&engine))
            .transpose()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let denied_root = DeniedRoot::create().map_err(|e| {
            EngineError::Config(format!(
                "cannot create the empty root folder of components: {e}"
            ))
        })?;
        Ok(Self {
            engine,
            linker,
            cache,
            denied_root: Arc::new(denied_root),
            _ticker: ticker,
        })
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Reads, checks, compiles (or loads from the cache) and links the component at `path`.
    /// Its contract names without a version are read as 0.1.0 ([`contracts::normalise`]),
    /// and its imports are checked before it is compiled. `compiling` is called with the
    /// component's size in bytes just before it is compiled, when it is not in the cache.
    pub fn load(
        &self,
        path: &Path,
        compiling: impl FnOnce(u64),
    ) -> Result<LoadedComponent, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            path: path.to_owned(),
            source,
        })?;
        let contract = |source| EngineError::Contract {
            path: path.to_owned(),
            source,
        };
        let info = contracts::inspect(&bytes).map_err(contract)?;
        let role = Role::from_exports(&info.exports).map_err(contract)?;
        let normalised = contracts::normalise(&bytes).map_err(contract)?;
        let bytes: &[u8] = &normalised.bytes;
        let missing = imports::missing(&self.engine, &self.linker, bytes);
        if !missing.is_empty() {
            return Err(EngineError::Imports {
                path: path.to_owned(),
                help: imports::help(&missing),
                missing,
            });
        }
        let lifecycle = contracts::exports_lifecycle(&info.exports);
        let batched = role.batched(&info.exports);
        let compile = |e: wasmtime::Error| EngineError::Compile {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let size = bytes.len() as u64;
        let component = match &self.cache {
            Some(cache) => cache
                .load_or_compile(&self.engine, bytes, || compiling(size))
                .map_err(compile)?,
            None => {
                compiling(size);
                Component::new(&self.engine, bytes).map_err(compile)?
            }
        };
        let pre = (self.linker.instantiate_pre(&component)).map_err(|e| EngineError::Link {
            path: path.to_owned(),
            message: format!("{e:#}"),
        })?;
        // An export its role needs is missing: wasmtime refuses the component as it is.
        let exports = ExportIndices::new(&pre, role, batched, lifecycle).map_err(compile)?;
        Ok(LoadedComponent {
            inner: Arc::new(Loaded {
                path: path.to_owned(),
                role,
                lifecycle,
                batched,
                needs: needs(info.capabilities, &info.imports),
                unversioned: info.unversioned,
                denied_root: self.denied_root.clone(),
                pre,
                exports,
            }),
        })
    }
}

/// What a component needs: the capabilities its section lists, and `metrics` when it
/// imports [`METRICS_INTERFACE`], which only a component granted it may use.
fn needs(mut listed: Vec<String>, imports: &[String]) -> Vec<String> {
    let metered = imports.iter().any(|i| i.starts_with(METRICS_INTERFACE));
    if metered && !listed.iter().any(|c| c == "metrics") {
        listed.push("metrics".into());
    }
    listed
}

/// The interface through which a component keeps metrics of its own.
const METRICS_INTERFACE: &str = "torvyn:runtime/metrics@";

/// Bytes of a pooled linear memory reset in place rather than given back to the kernel
/// ([`pool`]): a Rust guest's 1 MiB stack and the start of its heap.
const POOL_MEMORY_KEEP_RESIDENT: usize = 2 << 20;

/// Bytes of each pooled table reset in place ([`pool`]): a Rust guest's tables are a
/// few kilobytes.
const POOL_TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// A pool of `slots` component instances. A component built by Rust for `wasm32-wasip2`
/// has a handful of core instances, one linear memory and a few tables; the pool allows
/// for several times that, and for tables as large as the default limit.
///
/// A slot given back keeps the first [`POOL_MEMORY_KEEP_RESIDENT`] bytes of its linear
/// memory and [`POOL_TABLE_KEEP_RESIDENT`] of each table, cleared in place (`memset`),
/// instead of giving them back to the kernel (`madvise`) for the next instance to fault
/// in again: a three-stage flow reached its first element in about a fifth less time
/// (`docs/performance.md`). wasmtime's `pagemap_scan`, which would clear only the pages
/// written, is left off: in wasmtime 48 it skips a written page that is swapped out,
/// which the next instance in the slot could then read.
fn pool(slots: u32, reservation: Option<u64>) -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(8))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(8))
        .total_stacks(slots)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(32)
        .max_tables_per_module(4)
        .table_elements(crate::security::Limits::default().table_elements as usize)
        .linear_memory_keep_resident(POOL_MEMORY_KEEP_RESIDENT)
        .table_keep_resident(POOL_TABLE_KEEP_RESIDENT);
    if let Some(bytes) = reservation {
        pool.max_memory_size(bytes as usize);
    }
    pool
}

/// Epoch ticks of every host of the process: it advances at least once every
/// [`EPOCH_TICK`] while a host with epoch interruption runs. The flow loop reads it, one
/// atomic load, to know that time has passed without reading the clock.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// The epoch ticks so far (see [`TICKS`]).
pub(crate) fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &wasmtime::Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, stopped) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("torvyn-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    TICKS.fetch_add(1, Ordering::Relaxed);
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
