//! The per-flow buffer table: every payload buffer of a flow, its state, and who holds it.

use bytes::Bytes;
use bytesize::ByteSize;

use super::{CopyLedger, CopyStats, PoolStats, TieredPool};

/// Who holds an immutable buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    // The host: the buffer waits in a queue between stages.
    Host,
    // The stage at this index in the flow.
    Stage(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pooled,
    Writable { owner: usize },
    Frozen { owner: usize },
    Owned(Holder),
    Borrowed { by: usize },
}

#[derive(Debug)]
struct Slot {
    bytes: Vec<u8>,
    /// The content, once a stage read it ([`BufferTable::read`]) or the host lent the
    /// buffer to a stage that runs on its own task ([`BufferTable::lend_away`]); `bytes`
    /// is empty meanwhile.
    shared: Option<Bytes>,
    capacity: usize,
    content_type: String,
    state: State,
    // Holders besides the first of a host-owned buffer sent down several edges.
    shares: u32,
}

/// Why a buffer operation failed. The first three are reported to the component as a
/// WIT `buffer-error`; [`BufferError::Misuse`] and [`BufferError::ContentTypeTooLong`] trap
/// the component that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BufferError {
    /// The write would grow the buffer past its capacity (a frozen buffer has none).
    #[error("capacity exceeded")]
    CapacityExceeded,
    /// The offset lies outside the buffer.
    #[error("offset out of bounds")]
    OutOfBounds,
    /// The buffer could not be allocated.
    #[error("allocation failed: {0}")]
    AllocationFailed(String),
    /// The component used a handle in a way the ownership rules forbid.
    #[error("buffer misuse: {0}")]
    Misuse(&'static str),
    /// The component gave a content type longer than [`MAX_CONTENT_TYPE_BYTES`] (its
    /// length in bytes), which traps it as misuse does.
    #[error(
        "a content type of {0} bytes: a buffer's or an element's content type is at most \
         {MAX_CONTENT_TYPE_BYTES} bytes"
    )]
    ContentTypeTooLong(usize),
}

/// The longest content type, in bytes of UTF-8, that a component may give a buffer
/// (`set-content-type`, `from-bytes`) or an element it makes (`element-meta`), so that
/// the host keeps a bounded string for each buffer and element a component makes. RFC 6838
/// (section 4.2) bounds a media type's type and subtype names to 127 characters each but
/// not its parameters; 8 KiB is the bound HTTP servers set on a whole header field (Apache's
/// `LimitRequestFieldSize`, 8 190 bytes), far beyond any real content type.
pub const MAX_CONTENT_TYPE_BYTES: usize = 8192;

/// `content_type` made to fit in `max` bytes, for one the host takes from outside the
/// flow's components (a message's header) or adds to (a dead letter's): whole when it fits;
/// else its media type alone (what comes before its parameters), when that fits; else
/// `application/octet-stream`.
pub fn fitted_content_type(content_type: &str, max: usize) -> &str {
    if content_type.len() <= max {
        return content_type;
    }
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_end();
    match media_type.len() {
        len if len <= max => media_type,
        _ => "application/octet-stream",
    }
}

/// `content_type`, if it is at most [`MAX_CONTENT_TYPE_BYTES`] long.
///
/// # Errors
///
/// [`BufferError::ContentTypeTooLong`] when it is longer.
pub fn bounded_content_type(content_type: &str) -> Result<&str, BufferError> {
    match content_type.len() {
        len if len > MAX_CONTENT_TYPE_BYTES => Err(BufferError::ContentTypeTooLong(len)),
        _ => Ok(content_type),
    }
}

/// The share of buffer memory and handles one stage may hold at once.
///
/// A mutable buffer that was frozen is an empty husk until the component drops its handle,
/// which a component in a garbage-collected language does only when its collector runs. A
/// husk holds no bytes, so it does not count among `max_handles`; a stage may hold up to
/// [`HUSKS_PER_HANDLE`] times `max_handles` of them, enough for any collector to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageBudget {
    /// Bytes of buffer capacity the stage may hold.
    pub max_bytes: u64,
    /// Buffer handles (writable or owned) the stage may hold.
    pub max_handles: u32,
}

/// Husks (frozen mutable buffers not yet dropped) a stage may hold per handle of its
/// budget.
pub const HUSKS_PER_HANDLE: u32 = 16;

impl Default for StageBudget {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_handles: 4096,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    bytes: u64,
    handles: u32,
    husks: u32,
}

/// All payload buffers of one flow.
///
/// Handles given to components are indexes into this table (the `rep` of a wasmtime
/// resource), so one buffer can be lent to every stage of the flow in turn without copying.
#[derive(Debug, Default)]
pub struct BufferTable {
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    pool: TieredPool,
    ledger: CopyLedger,
    budgets: Vec<StageBudget>,
    held: Vec<Held>,
}

impl BufferTable {
    /// A table for a flow with one stage per budget, each limited by its own.
    pub fn new(budgets: Vec<StageBudget>) -> Self {
        Self {
            slots: Vec::new(),
            free_slots: Vec::new(),
            pool: TieredPool::default(),
            ledger: CopyLedger::new(budgets.len()),
            held: vec![Held::default(); budgets.len()],
            budgets,
        }
    }

    fn slot(&self, rep: u32) -> Result<&Slot, BufferError> {
        match self.slots.get(rep as usize) {
            Some(slot) if slot.state != State::Pooled => Ok(slot),
            _ => Err(BufferError::Misuse("unknown buffer handle")),
        }
    }

    fn slot_mut(&mut self, rep: u32) -> Result<&mut Slot, BufferError> {
        match self.slots.get_mut(rep as usize) {
            Some(slot) if slot.state != State::Pooled => Ok(slot),
            _ => Err(BufferError::Misuse("unknown buffer handle")),
        }
    }

    fn insert(&mut self, bytes: Vec<u8>, capacity: usize, state: State) -> u32 {
        match self.free_slots.pop() {
            Some(rep) => {
                let slot = &mut self.slots[rep as usize];
                slot.bytes = bytes;
                slot.capacity = capacity;
                slot.content_type.clear();
                slot.state = state;
                slot.shares = 0;
                slot.shared = None;
                rep
            }
            None => {
                self.slots.push(Slot {
                    bytes,
                    shared: None,
                    capacity,
                    content_type: String::new(),
                    state,
                    shares: 0,
                });
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Returns the slot's memory to the pool and the slot to the free list.
    fn recycle(&mut self, rep: u32) {
        let slot = &mut self.slots[rep as usize];
        let mut bytes = std::mem::take(&mut slot.bytes);
        let mut capacity = std::mem::replace(&mut slot.capacity, 0);
        if let Some(shared) = slot.shared.take() {
            // The memory goes back to the pool once nothing else holds it: no other table,
            // no bytes read from it.
            match shared.try_into_mut() {
                Ok(content) => bytes = content.into(),
                Err(_) => capacity = 0,
            }
        }
        slot.state = State::Pooled;
        if capacity > 0 {
            self.pool.give(bytes, capacity);
        }
        self.free_slots.push(rep);
    }

    fn charge(&mut self, stage: usize, bytes: usize) -> Result<(), BufferError> {
        self.within_budget(stage, bytes)?;
        let held = &mut self.held[stage];
        held.handles += 1;
        held.bytes += bytes as u64;
        Ok(())
    }

    /// Whether `stage` may take one more handle of `bytes` bytes of capacity.
    fn within_budget(&self, stage: usize, bytes: usize) -> Result<(), BufferError> {
        let budget = self.budgets[stage];
        let held = &self.held[stage];
        if held.handles >= budget.max_handles {
            return Err(BufferError::AllocationFailed(format!(
                "stage holds {} buffer handles, its `buffer-handles` limit",
                held.handles
            )));
        }
        if held.bytes + bytes as u64 > budget.max_bytes {
            let size = |bytes: u64| ByteSize(bytes).display().iec().to_string();
            return Err(BufferError::AllocationFailed(format!(
                "stage would hold {} of buffers with this one's {}, over its `buffer-memory` of {}",
                size(held.bytes + bytes as u64),
                size(bytes as u64),
                size(budget.max_bytes)
            )));
        }
        Ok(())
    }

    fn refund(&mut self, stage: usize, bytes: usize) {
        let held = &mut self.held[stage];
        held.handles -= 1;
        held.bytes -= bytes as u64;
    }

    /// `buffer-allocator.allocate`: a writable buffer for `stage`.
    pub fn allocate(&mut self, stage: usize, capacity_hint: u64) -> Result<u32, BufferError> {
        let hint = usize::try_from(capacity_hint)
            .map_err(|_| BufferError::AllocationFailed("capacity hint too large".into()))?;
        self.charge(stage, TieredPool::capacity_for(hint))?;
        let (bytes, capacity) = self.pool.take(hint);
        Ok(self.insert(bytes, capacity, State::Writable { owner: stage }))
    }

    /// What one of the host's own stages (a connector, a test feed, a native stage) makes
    /// as `stage`: a buffer the host owns holding `payload`, with `content_type`. It is
    /// what `allocate`, `append`, `set-content-type`, `freeze`, dropping the mutable
    /// handle and handing the buffer over leave, done in one step: one copy, counted by
    /// the ledger, and the stage's budget checked as `allocate` checks it.
    ///
    /// # Errors
    ///
    /// [`BufferError::AllocationFailed`] when the stage's budget has no room for it;
    /// [`BufferError::ContentTypeTooLong`] past [`MAX_CONTENT_TYPE_BYTES`], as for a
    /// component, so that every buffer's content type is bounded whoever made it (a
    /// connector fits one from outside first, [`fitted_content_type`]).
    pub fn host_output(
        &mut self,
        stage: usize,
        payload: &[u8],
        content_type: &str,
    ) -> Result<u32, BufferError> {
        let content_type = bounded_content_type(content_type)?;
        self.within_budget(stage, TieredPool::capacity_for(payload.len()))?;
        Ok(self.filled_slot(stage, payload, content_type, Holder::Host))
    }

    /// `buffer-builder.from-bytes`: a buffer owned by `stage` holding a copy of `payload`,
    /// with `content_type`. It is what `allocate`, `append`, `set-content-type`, `freeze`
    /// and dropping the mutable handle leave, done in one step: one copy, counted by the
    /// ledger, and the buffer charged to the stage's budget as `allocate` charges it.
    ///
    /// # Errors
    ///
    /// [`BufferError::AllocationFailed`] when the stage's budget has no room for it;
    /// [`BufferError::ContentTypeTooLong`] past [`MAX_CONTENT_TYPE_BYTES`].
    pub fn filled(
        &mut self,
        stage: usize,
        payload: &[u8],
        content_type: &str,
    ) -> Result<u32, BufferError> {
        let content_type = bounded_content_type(content_type)?;
        self.charge(stage, TieredPool::capacity_for(payload.len()))?;
        Ok(self.filled_slot(stage, payload, content_type, Holder::Stage(stage)))
    }

    /// A new slot held by `holder`, holding a copy of `payload` that `stage` made.
    fn filled_slot(
        &mut self,
        stage: usize,
        payload: &[u8],
        content_type: &str,
        holder: Holder,
    ) -> u32 {
        let (mut bytes, capacity) = self.pool.take(payload.len());
        self.ledger.copy(stage, &mut bytes, 0, payload);
        let rep = self.insert(bytes, capacity, State::Owned(holder));
        self.slots[rep as usize].content_type.push_str(content_type);
        rep
    }

    /// `buffer-allocator.clone-into-mutable`: a writable copy of a readable buffer.
    pub fn clone_into_mutable(&mut self, stage: usize, source: u32) -> Result<u32, BufferError> {
        self.readable(stage, source)?;
        let size = self.slots[source as usize].content().len();
        let rep = self.allocate(stage, size as u64)?;
        let (src, dst) = two_slots(&mut self.slots, source, rep);
        self.ledger.copy(stage, &mut dst.bytes, 0, src.content());
        dst.content_type.push_str(&src.content_type);
        Ok(rep)
    }

    fn writable(&mut self, stage: usize, rep: u32) -> Result<&mut Slot, BufferError> {
        let slot = self.slot_mut(rep)?;
        match slot.state {
            State::Writable { owner } | State::Frozen { owner } if owner == stage => Ok(slot),
            _ => Err(BufferError::Misuse(
                "mutable buffer not held by this component",
            )),
        }
    }

    /// `mutable-buffer.write`: overwrites or extends the content at `offset`.
    pub fn write(
        &mut self,
        stage: usize,
        rep: u32,
        offset: u64,
        src: &[u8],
    ) -> Result<(), BufferError> {
        let slot = self.writable(stage, rep)?;
        let offset = usize::try_from(offset).map_err(|_| BufferError::OutOfBounds)?;
        if offset > slot.bytes.len() {
            return Err(BufferError::OutOfBounds);
        }
        if offset + src.len() > slot.capacity {
            return Err(BufferError::CapacityExceeded);
        }
        let (slots, ledger) = (&mut self.slots, &mut self.ledger);
        ledger.copy(stage, &mut slots[rep as usize].bytes, offset, src);
        Ok(())
    }

    /// `mutable-buffer.append`: adds bytes at the end of the content.
    pub fn append(&mut self, stage: usize, rep: u32, src: &[u8]) -> Result<(), BufferError> {
        let end = self.writable(stage, rep)?.bytes.len() as u64;
        self.write(stage, rep, end, src)
    }

    /// `mutable-buffer.set-content-type`; ignored once the buffer is frozen (a content type
    /// too long is refused even then).
    ///
    /// # Errors
    ///
    /// [`BufferError::Misuse`] for a handle the stage does not hold as writable;
    /// [`BufferError::ContentTypeTooLong`] past [`MAX_CONTENT_TYPE_BYTES`].
    pub fn set_content_type(
        &mut self,
        stage: usize,
        rep: u32,
        content_type: &str,
    ) -> Result<(), BufferError> {
        let content_type = bounded_content_type(content_type)?;
        let slot = self.writable(stage, rep)?;
        if matches!(slot.state, State::Writable { .. }) {
            slot.content_type.clear();
            slot.content_type.push_str(content_type);
        }
        Ok(())
    }

    /// Size of the content of any live buffer the stage may see.
    pub fn size(&self, rep: u32) -> Result<u64, BufferError> {
        Ok(self.slot(rep)?.content().len() as u64)
    }

    /// Capacity of a buffer: 0 once frozen.
    pub fn capacity(&self, rep: u32) -> Result<u64, BufferError> {
        Ok(self.slot(rep)?.capacity as u64)
    }

    /// Content type of a buffer.
    pub fn content_type(&self, rep: u32) -> Result<&str, BufferError> {
        Ok(&self.slot(rep)?.content_type)
    }

    /// `mutable-buffer.freeze`: moves the content into a new immutable buffer owned by
    /// the stage; the mutable buffer stays behind, empty and refusing writes.
    pub fn freeze(&mut self, stage: usize, rep: u32) -> Result<u32, BufferError> {
        if !matches!(self.writable(stage, rep)?.state, State::Writable { .. }) {
            return Err(BufferError::Misuse("mutable buffer frozen twice"));
        }
        let most = self.budgets[stage]
            .max_handles
            .saturating_mul(HUSKS_PER_HANDLE);
        let held = &mut self.held[stage];
        if held.husks >= most {
            return Err(BufferError::AllocationFailed(format!(
                "stage holds {} frozen mutable buffers it never dropped, its limit \
                 ({HUSKS_PER_HANDLE} for each of its `buffer-handles`)",
                held.husks
            )));
        }
        let slot = &mut self.slots[rep as usize];
        slot.state = State::Frozen { owner: stage };
        let bytes = std::mem::take(&mut slot.bytes);
        let capacity = std::mem::replace(&mut slot.capacity, 0);
        let content_type = std::mem::take(&mut slot.content_type);
        // The husk hands its handle and bytes to the frozen buffer, and counts as a husk.
        held.handles -= 1;
        held.husks += 1;
        held.bytes -= capacity as u64;
        self.charge(stage, capacity)?;
        let frozen = self.insert(bytes, capacity, State::Owned(Holder::Stage(stage)));
        // Swap the strings so neither side allocates: the husk gets the new slot's empty one.
        let husk_type =
            std::mem::replace(&mut self.slots[frozen as usize].content_type, content_type);
        self.slots[rep as usize].content_type = husk_type;
        Ok(frozen)
    }

    /// The component dropped its `mutable-buffer` handle.
    pub fn drop_mutable(&mut self, stage: usize, rep: u32) -> Result<(), BufferError> {
        let slot = self.writable(stage, rep)?;
        if let State::Frozen { .. } = slot.state {
            self.held[stage].husks -= 1;
        } else {
            let capacity = slot.capacity;
            self.refund(stage, capacity);
        }
        self.recycle(rep);
        Ok(())
    }

    /// The component dropped an owned `buffer` handle it never handed over.
    pub fn drop_buffer(&mut self, stage: usize, rep: u32) -> Result<(), BufferError> {
        let slot = self.slot(rep)?;
        if slot.state != State::Owned(Holder::Stage(stage)) {
            return Err(BufferError::Misuse("buffer not owned by this component"));
        }
        let capacity = slot.capacity;
        self.refund(stage, capacity);
        self.recycle(rep);
        Ok(())
    }

    fn readable(&self, stage: usize, rep: u32) -> Result<&Slot, BufferError> {
        let slot = self.slot(rep)?;
        match slot.state {
            State::Owned(Holder::Stage(owner)) if owner == stage => Ok(slot),
            State::Borrowed { by } if by == stage => Ok(slot),
            _ => Err(BufferError::Misuse("buffer not readable by this component")),
        }
    }

    /// `buffer.read` / `buffer.read-all`: up to `len` bytes from `offset` of the buffer
    /// (none when `offset` is past its end), shared with it rather than copied. The content
    /// moves into a `Bytes` on its first read or lending; its memory goes back to the
    /// pool when the buffer is released, unless bytes read from it, or another table it
    /// was lent to, still hold it (it is freed with the last of them). The caller makes
    /// the one copy, wasmtime lowering the bytes into the component's memory, and it is
    /// counted here against `stage`.
    ///
    /// # Errors
    ///
    /// [`BufferError::Misuse`] when `stage` may not read the buffer `rep`.
    pub fn read(
        &mut self,
        stage: usize,
        rep: u32,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, BufferError> {
        let content = self.readable(stage, rep)?.content();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(content.len());
        let end = start
            + usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(content.len() - start);
        self.ledger.record(stage, end - start);
        Ok(self.shared(rep).slice(start..end))
    }

    /// Like [`BufferTable::read`] of the whole content, appended to `out` (which keeps its
    /// allocation from call to call): the host's own stages read so.
    pub fn read_onto(
        &mut self,
        stage: usize,
        rep: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), BufferError> {
        self.readable(stage, rep)?;
        let at = out.len();
        let (slots, ledger) = (&self.slots, &mut self.ledger);
        ledger.copy(stage, out, at, slots[rep as usize].content());
        Ok(())
    }

    /// The stage returned the buffer in an `output-element`: the host owns it now.
    pub fn take_output(&mut self, stage: usize, rep: u32) -> Result<(), BufferError> {
        let slot = self.slot_mut(rep)?;
        if slot.state != State::Owned(Holder::Stage(stage)) {
            return Err(BufferError::Misuse(
                "returned a buffer this component does not own",
            ));
        }
        slot.state = State::Owned(Holder::Host);
        let capacity = slot.capacity;
        self.refund(stage, capacity);
        Ok(())
    }

    /// Lends a host-owned buffer to `stage` for one call.
    pub fn lend(&mut self, rep: u32, stage: usize) {
        let slot = &mut self.slots[rep as usize];
        debug_assert_eq!(slot.state, State::Owned(Holder::Host));
        slot.state = State::Borrowed { by: stage };
    }

    /// The call that borrowed the buffer returned.
    pub fn give_back(&mut self, rep: u32) {
        let slot = &mut self.slots[rep as usize];
        debug_assert!(matches!(slot.state, State::Borrowed { .. }));
        slot.state = State::Owned(Holder::Host);
    }

    /// The host sends a buffer it owns down `extra` more edges: it stays alive until each
    /// holder has released it. Nothing is copied.
    pub fn share(&mut self, rep: u32, extra: u32) {
        let slot = &mut self.slots[rep as usize];
        debug_assert_eq!(slot.state, State::Owned(Holder::Host));
        slot.shares += extra;
    }

    /// One holder is done with a buffer the host owns; the last one returns it to the pool.
    pub fn release(&mut self, rep: u32) {
        let slot = &mut self.slots[rep as usize];
        debug_assert_eq!(slot.state, State::Owned(Holder::Host));
        if slot.shares > 0 {
            slot.shares -= 1;
        } else {
            self.recycle(rep);
        }
    }

    /// Lends a buffer the host owns to a stage that runs on its own task, with a table of
    /// its own: its content, to be placed there with [`BufferTable::insert_lent`]. Nothing
    /// is copied; the buffer stays readable here, and its memory returns to this table's
    /// pool once it is released here and there.
    pub fn lend_away(&mut self, rep: u32) -> Bytes {
        debug_assert_eq!(self.slots[rep as usize].state, State::Owned(Holder::Host));
        self.shared(rep)
    }

    /// The content of a live buffer, moved into a `Bytes` if it is not already there
    /// (without copying it), for another holder: a clone, which only counts a reference.
    fn shared(&mut self, rep: u32) -> Bytes {
        let slot = &mut self.slots[rep as usize];
        let bytes = &mut slot.bytes;
        (slot
            .shared
            .get_or_insert_with(|| Bytes::from(std::mem::take(bytes))))
        .clone()
    }

    /// A buffer another table lent away ([`BufferTable::lend_away`]), held by the host
    /// here: its handle in this table, to [`BufferTable::lend`] to the stage and then
    /// [`BufferTable::release`].
    pub fn insert_lent(&mut self, content: Bytes, content_type: &str) -> u32 {
        let rep = self.insert(Vec::new(), 0, State::Owned(Holder::Host));
        let slot = &mut self.slots[rep as usize];
        slot.shared = Some(content);
        slot.content_type.push_str(content_type);
        rep
    }

    /// Adds the copies `other` counted to this table's, and starts `other`'s afresh: the
    /// copies made in a stage's own table count for the flow.
    pub fn absorb_copies(&mut self, other: &mut BufferTable) {
        self.ledger.absorb(&mut other.ledger);
    }

    /// A stage's instance is gone (it trapped and is being replaced): everything it held
    /// goes back to the pool, and its budget starts afresh.
    pub fn reclaim(&mut self, stage: usize) {
        for rep in 0..self.slots.len() as u32 {
            let held = match self.slots[rep as usize].state {
                State::Writable { owner } | State::Frozen { owner } => owner == stage,
                State::Owned(Holder::Stage(owner)) => owner == stage,
                _ => false,
            };
            if held {
                self.recycle(rep);
            }
        }
        self.held[stage] = Held::default();
    }

    /// Buffer handles `stage` holds: writable, owned and husks of frozen ones.
    pub fn handles_held(&self, stage: usize) -> u32 {
        let held = self.held[stage];
        held.handles + held.husks
    }

    /// Buffers not back in the pool.
    pub fn live(&self) -> usize {
        self.slots.len() - self.free_slots.len()
    }

    /// Slots the table ever needed at once: its high-water mark.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Copies counted for the whole flow.
    pub fn copies(&self) -> CopyStats {
        self.ledger.total()
    }

    /// Copies counted for each stage.
    pub fn copies_per_stage(&self) -> &[CopyStats] {
        self.ledger.per_stage()
    }

    /// Pool reuse figures.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

impl Slot {
    /// What a reader of the buffer sees.
    fn content(&self) -> &[u8] {
        self.shared.as_deref().unwrap_or(&self.bytes)
    }
}

/// Two distinct slots, the first shared and the second writable.
fn two_slots(slots: &mut [Slot], a: u32, b: u32) -> (&Slot, &mut Slot) {
    let (a, b) = (a as usize, b as usize);
    assert_ne!(a, b);
    if a < b {
        let (left, right) = slots.split_at_mut(b);
        (&left[a], &mut right[0])
    } else {
        let (left, right) = slots.split_at_mut(a);
        (&right[0], &mut left[b])
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
