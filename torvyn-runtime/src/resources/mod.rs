//! Host-owned payload buffers: the per-flow buffer table, tiered pools, the copy ledger
//! and per-component budgets.
//!
//! # Ownership protocol
//!
//! Every buffer lives in the flow's [`BufferTable`] and moves through these states:
//!
//! 1. **pooled**: its memory sits in a [`TieredPool`] free list, ready for reuse;
//! 2. **writable**: a component called `buffer-allocator.allocate` and holds the
//!    `mutable-buffer` handle; only that component may write to it;
//! 3. **frozen**: the component called `freeze`; the content moved into a new immutable
//!    buffer and the `mutable-buffer` handle is an empty husk that refuses writes until
//!    the component drops it;
//! 4. **owned**: an immutable `buffer`, held either by the component that froze it or,
//!    once it was returned in an `output-element`, by the host (queued between stages);
//! 5. **borrowed**: lent to a component as `borrow<buffer>` for the duration of one call;
//!    it goes back to owned-by-host when the call returns;
//! 6. back to **pooled** when the host has no further use for it (the last stage consumed
//!    it) or the component dropped its handle.
//!
//! Every copy between a component and a host buffer is counted by the [`CopyLedger`], so
//! copy counts are measured, not claimed: the host's own copies go through
//! [`CopyLedger::copy`], and the copy wasmtime makes of the bytes a component reads is
//! recorded by [`BufferTable::read`] (see `docs/decisions/002`).

mod copy;
mod ledger;
mod pool;
mod table;

pub(crate) use copy::{append_bytes, drop_front};
pub use ledger::{CopyLedger, CopyStats};
pub use pool::{PoolStats, TIER_NAMES, TIERS, TierStats, TieredPool};
pub use table::{
    BufferError, BufferTable, HUSKS_PER_HANDLE, MAX_CONTENT_TYPE_BYTES, StageBudget,
    bounded_content_type, fitted_content_type,
};
