//! Where a component's exported functions are, looked up by name once when it is loaded,
//! so that each of its instances only takes its functions by index.

use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre};

use super::batch::BatchCall;
use super::exports::torvyn::aggregation::aggregator;
use super::exports::torvyn::batching::batch_source;
use super::exports::torvyn::filtering::{filter, router};
use super::exports::torvyn::streaming::{lifecycle, processor, sink, source};
use super::{BackpressureSignal, ProcessResult, StageState};
use crate::contracts::Role;

/// The export a stage is called through, by role.
pub(crate) enum Calls {
    Source(source::Guest),
    Processor(processor::Guest),
    Filter(filter::Guest),
    Router(router::Guest),
    Aggregator(aggregator::Guest),
    Sink(sink::Guest),
}

/// The batch export a stage is also called through, when it has one.
pub(crate) enum BatchCalls {
    Source(batch_source::Guest),
    Processor(BatchCall<ProcessResult>),
    Sink(BatchCall<BackpressureSignal>),
}

/// An instance's typed exports: its role's, its batch interface's and `lifecycle`'s.
pub(crate) struct Exports {
    pub(crate) calls: Calls,
    pub(crate) batch: Option<BatchCalls>,
    pub(crate) lifecycle: Option<lifecycle::Guest>,
}

enum RoleIndices {
    Source(source::GuestIndices),
    Processor(processor::GuestIndices),
    Filter(filter::GuestIndices),
    Router(router::GuestIndices),
    Aggregator(aggregator::GuestIndices),
    Sink(sink::GuestIndices),
}

enum BatchIndices {
    Source(batch_source::GuestIndices),
    Processor(ComponentExportIndex),
    Sink(ComponentExportIndex),
}

/// The indices of a component's exports ([`Exports`]), found once per component: by
/// name, through its types, which takes about 2 µs a component
/// (`docs/performance.md`, warm instantiation).
pub(crate) struct ExportIndices {
    role: RoleIndices,
    batch: Option<BatchIndices>,
    lifecycle: Option<lifecycle::GuestIndices>,
}

impl ExportIndices {
    /// The exports of `pre`'s component, which plays `role`, exports its batch
    /// interface when `batched` and `lifecycle` when `lifecycle`. Fails when one of
    /// their functions is missing; their types are checked in each instance
    /// ([`ExportIndices::load`]).
    pub(crate) fn new(
        pre: &InstancePre<StageState>,
        role: Role,
        batched: bool,
        lifecycle: bool,
    ) -> wasmtime::Result<Self> {
        let role_indices = match role {
            Role::Source => RoleIndices::Source(source::GuestIndices::new(pre)?),
            Role::Processor => RoleIndices::Processor(processor::GuestIndices::new(pre)?),
            Role::Filter => RoleIndices::Filter(filter::GuestIndices::new(pre)?),
            Role::Router => RoleIndices::Router(router::GuestIndices::new(pre)?),
            Role::Aggregator => RoleIndices::Aggregator(aggregator::GuestIndices::new(pre)?),
            Role::Sink => RoleIndices::Sink(sink::GuestIndices::new(pre)?),
        };
        let batch = match role {
            _ if !batched => None,
            Role::Source => Some(BatchIndices::Source(batch_source::GuestIndices::new(pre)?)),
            Role::Processor => Some(BatchIndices::Processor(BatchCall::<ProcessResult>::index(
                pre.component(),
            )?)),
            Role::Sink => Some(BatchIndices::Sink(BatchCall::<BackpressureSignal>::index(
                pre.component(),
            )?)),
            Role::Filter | Role::Router | Role::Aggregator => None,
        };
        let lifecycle = match lifecycle {
            true => Some(lifecycle::GuestIndices::new(pre)?),
            false => None,
        };
        Ok(Self {
            role: role_indices,
            batch,
            lifecycle,
        })
    }

    /// The typed exports of `instance`, an instance of this component in `store`. Fails
    /// when an export has other types than the host's bindings of the contract.
    pub(crate) fn load(
        &self,
        store: &mut Store<StageState>,
        instance: &Instance,
    ) -> wasmtime::Result<Exports> {
        let calls = match &self.role {
            RoleIndices::Source(i) => Calls::Source(i.load(&mut *store, instance)?),
            RoleIndices::Processor(i) => Calls::Processor(i.load(&mut *store, instance)?),
            RoleIndices::Filter(i) => Calls::Filter(i.load(&mut *store, instance)?),
            RoleIndices::Router(i) => Calls::Router(i.load(&mut *store, instance)?),
            RoleIndices::Aggregator(i) => Calls::Aggregator(i.load(&mut *store, instance)?),
            RoleIndices::Sink(i) => Calls::Sink(i.load(&mut *store, instance)?),
        };
        let batch = match &self.batch {
            None => None,
            Some(BatchIndices::Source(i)) => {
                Some(BatchCalls::Source(i.load(&mut *store, instance)?))
            }
            Some(BatchIndices::Processor(i)) => {
                Some(BatchCalls::Processor(BatchCall::load(store, instance, i)?))
            }
            Some(BatchIndices::Sink(i)) => {
                Some(BatchCalls::Sink(BatchCall::load(store, instance, i)?))
            }
        };
        let lifecycle = match &self.lifecycle {
            Some(indices) => Some(indices.load(&mut *store, instance)?),
            None => None,
        };
        Ok(Exports {
            calls,
            batch,
            lifecycle,
        })
    }
}
