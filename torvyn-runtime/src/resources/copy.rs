//! Copying payload bytes at memory speed wherever the buffers sit.
//!
//! glibc's `memcpy` moves large copies with `rep movsb`, which AMD Zen CPUs run about 20
//! times slower when the destination sits just past the source modulo a 4 KiB page. Two
//! buffers of one size from `malloc` (below its `mmap` threshold, 128 KiB by default)
//! that were allocated one after the other sit a chunk header apart: with a size that is
//! a whole number of pages, such as 64 KiB, a copy from the first into the second lands
//! in that case every time. These functions copy in short spans there, and with one
//! `memcpy` everywhere else.

/// The span that copies are cut into when [`slow_distance`] holds: below the size at which
/// glibc's `memcpy` switches to `rep movsb` (2 112 bytes on CPUs with fast short
/// `rep movsb`; otherwise 2 048 bytes with SSE2, 8 192 with AVX and 16 384 with AVX-512:
/// glibc 2.36, `sysdeps/x86/dl-cacheinfo.h`).
const COPY_SPAN: usize = 1024;

/// Whether copying `len` bytes from `src` to `dst` falls into the slow case of `rep movsb`
/// on AMD Zen CPUs: a destination 1 to 63 bytes past the source modulo a 4 KiB page.
///
/// Measured on this project's bench machine (AMD EPYC, Debian 12's glibc 2.36), 64 KiB a
/// copy: 24–43 µs at a distance of 1, 8 or 16 bytes; 1.9–2.0 µs at 63; 1.4–1.7 µs at 0,
/// 32, 64 and more. The check takes the whole first cache line (1 to 63 bytes) as slow:
/// cut into spans, a copy at a fast distance is as fast as one `memcpy` (1.4 µs at
/// 0 and 64 bytes). Copies of [`COPY_SPAN`] or less use vector moves and are fast at
/// every distance.
fn slow_distance(dst: *const u8, src: *const u8, len: usize) -> bool {
    let distance = (dst as usize).wrapping_sub(src as usize) % 4096;
    len > COPY_SPAN && (1..64).contains(&distance)
}

/// `dst.copy_from_slice(src)`, cut into spans of [`COPY_SPAN`] where one `memcpy` would be
/// slow ([`slow_distance`]).
///
/// # Panics
///
/// When the two slices' lengths differ, as `copy_from_slice` does.
pub(crate) fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy between slices of other lengths");
    if slow_distance(dst.as_ptr(), src.as_ptr(), src.len()) {
        for (to, from) in dst.chunks_mut(COPY_SPAN).zip(src.chunks(COPY_SPAN)) {
            to.copy_from_slice(from);
        }
    } else {
        dst.copy_from_slice(src);
    }
}

/// `dst.extend_from_slice(src)`, cut into spans like [`copy_bytes`].
pub(crate) fn append_bytes(dst: &mut Vec<u8>, src: &[u8]) {
    dst.reserve(src.len());
    if slow_distance(
        dst.as_ptr().wrapping_add(dst.len()),
        src.as_ptr(),
        src.len(),
    ) {
        for span in src.chunks(COPY_SPAN) {
            dst.extend_from_slice(span);
        }
    } else {
        dst.extend_from_slice(src);
    }
}

/// `buf.drain(..n)`: drops the first `n` bytes and moves the rest to the front, in spans
/// like [`copy_bytes`] where one `memmove` would be slow.
///
/// # Panics
///
/// When `n` is past the end of `buf`, as `drain` does.
pub(crate) fn drop_front(buf: &mut Vec<u8>, n: usize) {
    let kept = buf.len().checked_sub(n).expect("dropping past the end");
    if slow_distance(buf.as_ptr(), buf.as_ptr().wrapping_add(n), kept) {
        // Front to back: a span's destination ends before any later span's source starts.
        for at in (0..kept).step_by(COPY_SPAN) {
            let span = COPY_SPAN.min(kept - at);
            buf.copy_within(n + at..n + at + span, at);
        }
        buf.truncate(kept);
    } else {
        buf.drain(..n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte lands where it belongs when a copy is cut into spans: at the slow
    /// distances, at lengths that are not a multiple of the span, overwriting, appending
    /// and moving within one buffer.
    #[test]
    fn copies_at_the_slow_distances_are_cut_into_spans_and_stay_exact() {
        let len = 5 * COPY_SPAN + 37;
        let mut arena = vec![0u8; 3 * 4096 + 2 * len];
        let base = arena.as_ptr() as usize;
        let src_at = (4096 - base % 4096) % 4096;
        for (i, byte) in arena[src_at..src_at + len].iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        for distance in [1, 16, 63] {
            // The destination starts a whole number of pages plus `distance` past the source.
            let dst_at = src_at + len.next_multiple_of(4096) + distance;
            assert!(slow_distance(
                arena[dst_at..].as_ptr(),
                arena[src_at..].as_ptr(),
                len
            ));
            let (head, tail) = arena.split_at_mut(dst_at);
            copy_bytes(&mut tail[..len], &head[src_at..src_at + len]);
            assert_eq!(
                tail[..len],
                head[src_at..src_at + len],
                "distance {distance}"
            );
            tail[..len].fill(0);
        }
        assert!(!slow_distance(base as *const u8, base as *const u8, len));
        assert!(!slow_distance(
            (base + 64) as *const u8,
            base as *const u8,
            len
        ));
        assert!(!slow_distance(
            (base + 16) as *const u8,
            base as *const u8,
            COPY_SPAN
        ));

        // Appending: the source placed 16 bytes before the destination's end, modulo a page.
        let mut dst = Vec::with_capacity(4 + len);
        dst.extend_from_slice(b"kept");
        let end = dst.as_ptr() as usize + dst.len();
        let mut arena = vec![0u8; len + 4096];
        let src_at = end.wrapping_sub(16).wrapping_sub(arena.as_ptr() as usize) % 4096;
        for (i, byte) in arena[src_at..src_at + len].iter_mut().enumerate() {
            *byte = (i % 241) as u8;
        }
        let source = &arena[src_at..src_at + len];
        assert!(slow_distance(end as *const u8, source.as_ptr(), len));
        append_bytes(&mut dst, source);
        assert_eq!(dst[..4], *b"kept");
        assert_eq!(dst[4..], *source);

        // Dropping the front: what stays moves 4 096 − 16 bytes back, 16 past a page.
        let dropped = 4096 - 16;
        let mut buf: Vec<u8> = (0..dropped + len).map(|i| (i % 239) as u8).collect();
        let kept: Vec<u8> = buf[dropped..].to_vec();
        assert!(slow_distance(buf.as_ptr(), buf[dropped..].as_ptr(), len));
        drop_front(&mut buf, dropped);
        assert_eq!(buf, kept);
        let mut short = b"abcdef".to_vec();
        drop_front(&mut short, 2);
        assert_eq!(short, b"cdef");
    }
}
