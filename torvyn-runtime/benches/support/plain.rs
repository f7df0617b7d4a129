//! The floor no code of Torvyn's is part of: the stages' work as plain functions in a
//! loop; and the buffers it and `memcpy` copy between, at the same offset in a page.

use std::hint::black_box;

use super::Work;

/// The stages' work as plain functions called in a loop, with no queue, buffer table or
/// driver of ours: the source makes the payload, the processor writes its output into a
/// second buffer (or there is none), the sink reads it. What the driver costs is the
/// native flow's figure over this one. `buffers` are made once, outside the timed loop.
pub fn plain_rust(processor: Option<Work>, buffers: &mut PagePair, count: u64) {
    let (made, processed) = buffers.halves();
    for _ in 0..count {
        made.fill(b'x');
        let out: &[u8] = match processor {
            Some(Work::Upper) => {
                for (to, from) in processed.iter_mut().zip(made.iter()) {
                    *to = from.to_ascii_uppercase();
                }
                processed
            }
            Some(Work::Copy) => {
                processed.copy_from_slice(made);
                processed
            }
            None => made,
        };
        black_box(out);
    }
}

/// Two buffers of `size` bytes that start at the same offset in a page. glibc's `memcpy`
/// (2.36, AMD Zen) is 20 times slower when the destination sits 1 to 63 bytes past the
/// source modulo 4 KiB, as two 64 KiB buffers allocated one after the other by `malloc`
/// do (a chunk header apart; `torvyn-runtime/src/resources/copy.rs` has the figures):
/// the floors are measured in the fast case.
pub struct PagePair {
    arena: Vec<u8>,
    start: usize,
    stride: usize,
    size: usize,
}

impl PagePair {
    pub fn new(size: usize) -> Self {
        let stride = size.next_multiple_of(4096);
        let arena = vec![0u8; 2 * stride + 4096];
        let start = arena.as_ptr().align_offset(4096);
        Self {
            arena,
            start,
            stride,
            size,
        }
    }

    /// The first buffer and the second.
    pub fn halves(&mut self) -> (&mut [u8], &mut [u8]) {
        let (first, second) = self.arena[self.start..].split_at_mut(self.stride);
        (&mut first[..self.size], &mut second[..self.size])
    }
}
