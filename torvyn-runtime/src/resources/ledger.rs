//! The copy ledger: where payload bytes are counted, and where the host copies them.

use super::copy::{append_bytes, copy_bytes};

/// Copies counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyStats {
    /// Number of payload copies.
    pub copies: u64,
    /// Bytes moved by those copies.
    pub bytes: u64,
}

/// Counts every payload copy of a flow, in total and per stage.
#[derive(Debug, Default)]
pub struct CopyLedger {
    total: CopyStats,
    per_stage: Vec<CopyStats>,
}

impl CopyLedger {
    /// A ledger for a flow of `stages` stages.
    pub fn new(stages: usize) -> Self {
        Self {
            total: CopyStats::default(),
            per_stage: vec![CopyStats::default(); stages],
        }
    }

    /// Copies `src` into `dst` at `offset` (growing `dst` if the copy ends past its
    /// length) and records the copy against `stage`.
    ///
    /// The caller has checked that `offset + src.len()` fits the buffer's capacity.
    pub fn copy(&mut self, stage: usize, dst: &mut Vec<u8>, offset: usize, src: &[u8]) {
        if offset > dst.len() {
            dst.resize(offset, 0);
        }
        // What overwrites is copied over; the rest is appended, never zeroed first.
        let over = (dst.len() - offset).min(src.len());
        copy_bytes(&mut dst[offset..offset + over], &src[..over]);
        append_bytes(dst, &src[over..]);
        self.record(stage, src.len());
    }

    /// Records against `stage` a copy of `bytes` bytes made elsewhere: by wasmtime, which
    /// lowers the bytes of a buffer a component reads straight into its memory.
    pub fn record(&mut self, stage: usize, bytes: usize) {
        let bytes = bytes as u64;
        self.total.copies += 1;
        self.total.bytes += bytes;
        if let Some(stats) = self.per_stage.get_mut(stage) {
            stats.copies += 1;
            stats.bytes += bytes;
        }
    }

    /// Adds `other`'s counts to these, stage by stage, and zeroes `other`'s.
    pub fn absorb(&mut self, other: &mut CopyLedger) {
        let total = std::mem::take(&mut other.total);
        self.total.copies += total.copies;
        self.total.bytes += total.bytes;
        for (mine, theirs) in self.per_stage.iter_mut().zip(&mut other.per_stage) {
            let theirs = std::mem::take(theirs);
            mine.copies += theirs.copies;
            mine.bytes += theirs.bytes;
        }
    }

    /// Copies counted for the whole flow.
    pub fn total(&self) -> CopyStats {
        self.total
    }

    /// Copies counted for each stage, in flow order.
    pub fn per_stage(&self) -> &[CopyStats] {
        &self.per_stage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_writes_bytes_and_counts_them() {
        let mut ledger = CopyLedger::new(2);
        let mut dst = Vec::new();
        ledger.copy(1, &mut dst, 0, b"abc");
        ledger.copy(1, &mut dst, 1, b"XYZ");
        assert_eq!(dst, b"aXYZ");
        assert_eq!(
            ledger.total(),
            CopyStats {
                copies: 2,
                bytes: 6
            }
        );
        assert_eq!(ledger.per_stage()[0], CopyStats::default());
        assert_eq!(
            ledger.per_stage()[1],
            CopyStats {
                copies: 2,
                bytes: 6
            }
        );
    }
}
