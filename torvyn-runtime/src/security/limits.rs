//! Limits per component instance: linear memory, tables and instances (enforced by a
//! wasmtime `ResourceLimiter`), time per call (enforced with epoch interruption) and the
//! host buffers it may hold (enforced by the buffer table). Exceeding one traps the call
//! that did it, and the node's error policy decides what follows.

use std::time::Duration;

use bytesize::ByteSize;

use crate::resources::{HUSKS_PER_HANDLE, StageBudget};

/// Longest a call may run when the component sets no `invocation-time`.
pub const DEFAULT_INVOCATION_TIME: Duration = Duration::from_secs(10);

/// How often the host advances the engine's epoch. A call that runs longer than this
/// yields to other flows, and its time limit is checked, once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// What one instance of a component may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest size of each linear memory, in bytes.
    pub memory: u64,
    /// Most elements of each table.
    pub table_elements: u32,
    /// Most core instances, and most tables and memories, of the component.
    pub instances: u32,
    /// Longest one call may run before it traps; `None` for no limit.
    pub invocation_time: Option<Duration>,
    /// Most fuel one call may use, where the host meters fuel; `None` for no limit.
    pub fuel: Option<u64>,
    /// Host buffers the component may hold at once.
    pub budget: StageBudget,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: 256 << 20,
            table_elements: 100_000,
            instances: 1_000,
            invocation_time: Some(DEFAULT_INVOCATION_TIME),
            fuel: None,
            budget: StageBudget::default(),
        }
    }
}

impl Limits {
    /// Sets the bounds wasmtime itself keeps on `store`, whose defaults would otherwise
    /// stop a component short of these limits, or let it past them:
    ///
    /// - the strings and lists the component may hand the host at once, the arguments of
    ///   one host function or the results of one call, which wasmtime copies whole before
    ///   the host sees them (its hostcall fuel, 128 MiB unless set, counted as the host
    ///   holds them: a list's entries at their host size, 24 bytes for a string besides
    ///   its text): as much as the component's `memory` may hold, so that an element as
    ///   large as the limits allow is made in one call, and no more, so that many strings
    ///   pointing at the same bytes cannot make the host allocate far past what the
    ///   component holds;
    /// - the handles the component may hold at once (100 000 unless set, buffers among
    ///   WASI's resources and borrows): room for every buffer and husk its budget allows
    ///   besides that, so that it is the budget, with its own message, that refuses a
    ///   buffer. The room is the store's, not the buffers' alone: a component may spend
    ///   it on other handles, each a few dozen bytes of host memory.
    pub(crate) fn bound_store<T>(&self, store: &mut wasmtime::Store<T>) {
        store.set_hostcall_fuel(usize::try_from(self.memory).unwrap_or(usize::MAX));
        let buffers = u64::from(self.budget.max_handles) * u64::from(1 + HUSKS_PER_HANDLE);
        let handles = (store.max_component_handles())
            .saturating_add(usize::try_from(buffers).unwrap_or(usize::MAX));
        store.set_max_component_handles(handles);
    }
}

/// The `ResourceLimiter` of one stage's store; its errors trap the growing call with a
/// message that says which limit was hit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limiter {
    limits: Limits,
}

impl Limiter {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.limits.memory;
        if desired as u64 > limit {
            wasmtime::bail!(
                "memory limit exceeded: a linear memory would grow to {}, over the limit of {}",
                ByteSize(desired as u64).display().iec(),
                ByteSize(limit).display().iec()
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.limits.table_elements;
        if desired > limit as usize {
            wasmtime::bail!(
                "table limit exceeded: a table would grow to {desired} elements, over the limit of {limit}"
            );
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances as usize
    }

    fn tables(&self) -> usize {
        self.limits.instances as usize
    }

    fn memories(&self) -> usize {
        self.limits.instances as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn growth_past_a_limit_is_an_error_that_names_it() {
        let mut limiter = Limiter::new(Limits {
            memory: 1 << 20,
            table_elements: 10,
            ..Limits::default()
        });
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        let error = limiter.memory_growing(1 << 20, 2 << 20, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "memory limit exceeded: a linear memory would grow to 2.0 MiB, over the limit of 1.0 MiB"
        );
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(limiter.table_growing(10, 11, None).is_err());
    }
}
