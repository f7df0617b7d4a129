//! Tiered pools of payload memory: 256 B, 4 KiB, 64 KiB and 1 MiB; larger buffers are
//! allocated at their exact size and freed when released.

/// The pooled sizes, smallest first.
pub const TIERS: [usize; 4] = [256, 4 << 10, 64 << 10, 1 << 20];

/// How many free buffers each tier keeps before it lets memory go: the bigger the tier,
/// the fewer, so an idle pool holds at most about 25 MiB.
const RETAIN: [usize; 4] = [1024, 1024, 128, 16];

/// What [`PoolStats::by_tier`] names each tier: its size in bytes, then `larger` for the
/// buffers past the largest tier, which are never pooled.
pub const TIER_NAMES: [&str; 5] = ["256", "4096", "65536", "1048576", "larger"];

/// Reuse figures of a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Buffers handed out from a free list.
    pub hits: u64,
    /// Buffers that had to be allocated from the system.
    pub misses: u64,
    /// Buffers given back to a free list.
    pub returns: u64,
    /// Buffers given back to the system (oversized, or the free list was full).
    pub freed: u64,
    /// Hits and misses per tier, as [`TIER_NAMES`] names them.
    pub by_tier: [TierStats; 5],
}

/// Reuse figures of one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TierStats {
    /// Buffers of this tier handed out from its free list.
    pub hits: u64,
    /// Buffers of this tier that had to be allocated.
    pub misses: u64,
}

/// Free lists of payload memory, one per tier.
#[derive(Debug, Default)]
pub struct TieredPool {
    free: [Vec<Vec<u8>>; 4],
    stats: PoolStats,
}

impl TieredPool {
    /// The tier index that serves `capacity` bytes, or `None` past the largest tier.
    fn tier_for(capacity: usize) -> Option<usize> {
        TIERS.iter().position(|&size| capacity <= size)
    }

    /// The capacity a buffer asked for with `hint` bytes gets: its tier's size, or the
    /// hint itself past the largest tier.
    pub fn capacity_for(hint: usize) -> usize {
        Self::tier_for(hint).map_or(hint, |tier| TIERS[tier])
    }

    /// An empty buffer able to hold `capacity` bytes, and its exact capacity (the tier
    /// size, or `capacity` itself past the largest tier).
    pub fn take(&mut self, capacity: usize) -> (Vec<u8>, usize) {
        match Self::tier_for(capacity) {
            Some(tier) => {
                let size = TIERS[tier];
                match self.free[tier].pop() {
                    Some(bytes) => {
                        self.stats.hits += 1;
                        self.stats.by_tier[tier].hits += 1;
                        (bytes, size)
                    }
                    None => {
                        self.stats.misses += 1;
                        self.stats.by_tier[tier].misses += 1;
                        (Vec::with_capacity(size), size)
                    }
                }
            }
            None => {
                self.stats.misses += 1;
                self.stats.by_tier[TIERS.len()].misses += 1;
                // Reserved as asked when the system has it; otherwise the buffer grows with
                // what is written into it, and never aborts the host.
                let mut bytes = Vec::new();
                let _ = bytes.try_reserve_exact(capacity);
                (bytes, capacity)
            }
        }
    }

    /// Gives `bytes`, taken with capacity `capacity`, back to its tier.
    pub fn give(&mut self, mut bytes: Vec<u8>, capacity: usize) {
        debug_assert!(bytes.capacity() >= capacity || capacity > TIERS[TIERS.len() - 1]);
        match TIERS.iter().position(|&size| size == capacity) {
            Some(tier) if self.free[tier].len() < RETAIN[tier] => {
                bytes.clear();
                self.free[tier].push(bytes);
                self.stats.returns += 1;
            }
            _ => self.stats.freed += 1,
        }
    }

    /// Reuse figures so far.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_smallest_tier_that_fits() {
        let mut pool = TieredPool::default();
        assert_eq!(pool.take(0).1, 256);
        assert_eq!(pool.take(256).1, 256);
        assert_eq!(pool.take(257).1, 4096);
        assert_eq!(pool.take(1 << 20).1, 1 << 20);
        assert_eq!(pool.take((1 << 20) + 1).1, (1 << 20) + 1);
    }

    #[test]
    fn reuses_returned_memory() {
        let mut pool = TieredPool::default();
        let (bytes, capacity) = pool.take(100);
        let address = bytes.as_ptr();
        pool.give(bytes, capacity);
        let (again, _) = pool.take(10);
        assert_eq!(again.as_ptr(), address);
        let _ = pool.take(4000);
        let stats = pool.stats();
        assert_eq!((stats.hits, stats.misses), (1, 2));
        let by_tier = stats.by_tier.map(|t| (t.hits, t.misses));
        assert_eq!(by_tier, [(1, 1), (0, 1), (0, 0), (0, 0), (0, 0)]);
    }

    #[test]
    fn oversized_buffers_are_not_kept() {
        let mut pool = TieredPool::default();
        let (bytes, capacity) = pool.take(2 << 20);
        pool.give(bytes, capacity);
        assert_eq!(pool.stats().freed, 1);
        assert_eq!(pool.take(2 << 20).0.capacity(), 2 << 20);
        assert_eq!(pool.stats().misses, 2);
        assert_eq!(pool.stats().by_tier[4].misses, 2);
    }
}
