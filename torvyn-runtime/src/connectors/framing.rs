//! Cutting a byte stream into elements: lines (LF or CRLF), NDJSON lines, or the whole
//! stream, each at most a maximum size, with the declared policy for longer ones. Bytes
//! are fed in as they are read, and a frame is taken out once it is complete, so a
//! stream is never held whole unless it is one element.

use crate::config::{Framing, Oversize};
use crate::resources::{append_bytes, drop_front};

/// One element cut from the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// An element: its bytes are `Framer::bytes(range)`.
    Element {
        range: std::ops::Range<usize>,
        /// Cut short to the maximum size (`oversize = "truncate"`).
        truncated: bool,
    },
    /// A line that is not JSON under `ndjson`: why.
    NotJson(String),
    /// An element longer than the maximum under `oversize = "skip"`: it is not emitted.
    Skipped,
    /// An element longer than the maximum under `oversize = "fail"`: its length so far.
    TooLong(u64),
}

/// A frame, where it starts and the stream position just after it (its terminator
/// included), counted from the first byte fed, and its line number.
#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) frame: Frame,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Its number among the lines of the stream, from 1; 0 under `whole` framing.
    pub(crate) line: u64,
}

/// Where a frame starting at byte `start` of line `line` is, as an error names it: `line N`
/// when lines are counted (`numbered`, and not under `whole` framing), else `the element
/// at byte N`.
pub(crate) fn place(line: u64, start: u64, numbered: bool) -> String {
    match line {
        line if numbered && line > 0 => format!("line {line}"),
        _ => format!("the element at byte {start}"),
    }
}

/// Bytes fed in, frames taken out.
#[derive(Debug)]
pub(crate) struct Framer {
    framing: Framing,
    max: usize,
    oversize: Oversize,
    buffer: Vec<u8>,
    /// Where the next frame starts in `buffer`.
    start: usize,
    /// Where the search for the next newline resumes in `buffer`.
    scanned: usize,
    /// The stream position of the bytes from `start` on is `offset` plus their index.
    offset: u64,
    /// The element being read is longer than the maximum: how many of its bytes were
    /// dropped. Only what `oversize` keeps of it is held (its first `max` bytes, to
    /// truncate to).
    over: Option<u64>,
    /// The stream position at which the next frame starts.
    began: u64,
    /// How many lines were taken out (under line framings), counting from the stream's
    /// first line.
    lines: u64,
}

impl Framer {
    pub(crate) fn new(framing: Framing, max: u64, oversize: Oversize) -> Self {
        Framer {
            framing,
            max: usize::try_from(max).unwrap_or(usize::MAX),
            oversize,
            buffer: Vec::new(),
            start: 0,
            scanned: 0,
            offset: 0,
            over: None,
            began: 0,
            lines: 0,
        }
    }

    /// Starts over at stream position `offset` (a file read from there), after `lines`
    /// lines, forgetting what was fed.
    pub(crate) fn reset(&mut self, offset: u64, lines: u64) {
        self.buffer.clear();
        (self.start, self.scanned, self.offset, self.over) = (0, 0, offset, None);
        (self.began, self.lines) = (offset, lines);
    }

    /// How many lines were taken out, counting from the stream's first line.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// The stream position after the last frame taken out.
    pub(crate) fn position(&self) -> u64 {
        self.offset + self.start as u64
    }

    /// Whether bytes were fed that no frame has taken yet.
    pub(crate) fn has_partial(&self) -> bool {
        self.start < self.buffer.len() || self.over.is_some()
    }

    /// The bytes of an element frame, until more bytes are fed.
    pub(crate) fn bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.buffer[range]
    }

    /// Room to read up to `want` more bytes into; then [`Framer::filled`] says how many
    /// were read. Bytes of frames already taken are dropped first, so the buffer holds at
    /// most one element and one read.
    pub(crate) fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.start > 0 {
            drop_front(&mut self.buffer, self.start);
            self.offset += self.start as u64;
            self.scanned -= self.start;
            self.start = 0;
        }
        let len = self.buffer.len();
        self.buffer.resize(len + want, 0);
        &mut self.buffer[len..]
    }

    /// `read` bytes of the last [`Framer::spare`] of `want` hold data.
    pub(crate) fn filled(&mut self, read: usize, want: usize) {
        let len = self.buffer.len() - want + read;
        self.buffer.truncate(len);
    }

    /// Feeds `bytes` (a chunk read elsewhere).
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.spare(0);
        append_bytes(&mut self.buffer, bytes);
    }

    /// The next complete frame; at `eof`, what is left is the last one. `None` when more
    /// bytes are needed (or, at `eof`, nothing is left).
    pub(crate) fn next(&mut self, eof: bool) -> Option<Framed> {
        let len = self.buffer.len();
        let newline = match self.framing {
            Framing::Whole => None,
            _ => memchr::memchr(b'\n', &self.buffer[self.scanned..]).map(|i| self.scanned + i),
        };
        let (end, next) = match newline {
            Some(nl) => (nl, nl + 1),
            None if eof && self.has_partial() => (len, len),
            None => {
                self.scanned = len;
                self.bound();
                return None;
            }
        };
        let start = std::mem::replace(&mut self.start, next);
        self.scanned = next;
        let frame = match self.over.take() {
            Some(dropped) => {
                let length = dropped + (end - start) as u64;
                match self.oversize {
                    Oversize::Fail => Frame::TooLong(length),
                    Oversize::Skip => Frame::Skipped,
                    Oversize::Truncate => Frame::Element {
                        range: start..start + self.max.min(end - start),
                        truncated: true,
                    },
                }
            }
            None => {
                let mut end = end;
                if newline.is_some() && end > start && self.buffer[end - 1] == b'\r' {
                    end -= 1;
                }
                self.sized(start..end)
            }
        };
        let frame = match frame {
            Frame::Element { range, truncated } if self.framing == Framing::Ndjson => {
                match serde_json::from_slice::<serde::de::IgnoredAny>(&self.buffer[range.clone()]) {
                    Ok(_) => Frame::Element { range, truncated },
                    // Its position within the line, not serde's line of a one-line text.
                    Err(error) => {
                        let text = error.to_string();
                        let why = text.split(" at line ").next().unwrap_or(&text);
                        Frame::NotJson(format!("{why} at column {}", error.column()))
                    }
                }
            }
            frame => frame,
        };
        let line = match self.framing {
            Framing::Whole => 0,
            _ => {
                self.lines += 1;
                self.lines
            }
        };
        let end = self.position();
        Some(Framed {
            frame,
            start: std::mem::replace(&mut self.began, end),
            end,
            line,
        })
    }

    /// A partial element already longer than the maximum is not held whole, so that a
    /// stream without newlines cannot fill memory: what `oversize` keeps of it stays (its
    /// first `max` bytes, to truncate to), the rest is dropped and only counted.
    fn bound(&mut self) {
        let held = self.buffer.len() - self.start;
        // A `\r` just past the maximum may be the first half of a CRLF, which is not part
        // of the element: that is known once the next byte comes.
        let crlf = held == self.max + 1 && self.buffer.last() == Some(&b'\r');
        if self.over.is_none() && (held <= self.max || crlf) {
            return;
        }
        let keep = match self.oversize {
            Oversize::Truncate => self.max.min(held),
            Oversize::Skip | Oversize::Fail => 0,
        };
        let dropped = held - keep;
        self.buffer.truncate(self.start + keep);
        // The positions of the bytes still to come move back by what was dropped.
        self.offset += dropped as u64;
        self.scanned = self.start + keep;
        self.over = Some(self.over.unwrap_or(0) + dropped as u64);
    }

    /// The frame of `range` under the size policy.
    fn sized(&self, range: std::ops::Range<usize>) -> Frame {
        if range.len() <= self.max {
            return Frame::Element {
                range,
                truncated: false,
            };
        }
        match self.oversize {
            Oversize::Fail => Frame::TooLong(range.len() as u64),
            Oversize::Skip => Frame::Skipped,
            Oversize::Truncate => Frame::Element {
                range: range.start..range.start + self.max,
                truncated: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_is_placed_by_its_line_where_lines_are_counted() {
        assert_eq!(place(2, 6, true), "line 2");
        assert_eq!(place(2, 6, false), "the element at byte 6");
        // Under `whole` framing, no line is counted.
        assert_eq!(place(0, 0, true), "the element at byte 0");
    }

    /// Every frame of `input` fed in chunks of `chunk` bytes, shown as text.
    fn frames(
        framing: Framing,
        max: u64,
        oversize: Oversize,
        input: &[u8],
        chunk: usize,
    ) -> Vec<String> {
        let mut framer = Framer::new(framing, max, oversize);
        let mut out = Vec::new();
        let mut show = |framer: &Framer, framed: Framed| {
            let text = match framed.frame {
                Frame::Element { range, truncated } => format!(
                    "{:?}{}@{}",
                    String::from_utf8_lossy(framer.bytes(range)),
                    if truncated { "…" } else { "" },
                    framed.end
                ),
                Frame::NotJson(_) => format!("not-json@{}", framed.end),
                Frame::Skipped => format!("skipped@{}", framed.end),
                Frame::TooLong(n) => format!("too-long({n})@{}", framed.end),
            };
            out.push(text);
        };
        for piece in input.chunks(chunk) {
            framer.feed(piece);
            while let Some(framed) = framer.next(false) {
                show(&framer, framed);
            }
        }
        while let Some(framed) = framer.next(true) {
            show(&framer, framed);
        }
        out
    }

    #[test]
    fn each_frame_knows_where_it_starts_and_its_line_number_across_skipped_lines() {
        let mut framer = Framer::new(Framing::Lines, 4, Oversize::Skip);
        // Resumed after 7 lines, at byte 100.
        framer.reset(100, 7);
        let mut got = Vec::new();
        for piece in b"ok\n0123456789\r\nxy".chunks(3) {
            framer.feed(piece);
            while let Some(framed) = framer.next(false) {
                got.push((framed.start, framed.end, framed.line));
            }
        }
        while let Some(framed) = framer.next(true) {
            got.push((framed.start, framed.end, framed.line));
        }
        assert_eq!(got, [(100, 103, 8), (103, 115, 9), (115, 117, 10)]);
        assert_eq!(framer.lines(), 10);
        let mut whole = Framer::new(Framing::Whole, 100, Oversize::Fail);
        whole.feed(b"a\nb");
        let framed = whole.next(true).unwrap();
        assert_eq!((framed.start, framed.end, framed.line), (0, 3, 0));
    }

    #[test]
    fn lines_end_at_lf_or_crlf_and_the_last_needs_no_newline() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(
                frames(
                    Framing::Lines,
                    100,
                    Oversize::Fail,
                    b"a\r\n\nb\rc\nlast",
                    chunk
                ),
                ["\"a\"@3", "\"\"@4", "\"b\\rc\"@8", "\"last\"@12"],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn the_cr_of_a_crlf_is_not_counted_against_the_maximum_whatever_the_reads() {
        for chunk in [1, 5, 64] {
            assert_eq!(
                frames(Framing::Lines, 4, Oversize::Fail, b"abcd\r\nxy\n", chunk),
                ["\"abcd\"@6", "\"xy\"@9"],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn an_over_long_line_is_skipped_truncated_or_refused_even_without_a_newline() {
        let input = b"ok\n0123456789\nok\n0123456789";
        for chunk in [1, 4, 64] {
            assert_eq!(
                frames(Framing::Lines, 4, Oversize::Skip, input, chunk),
                ["\"ok\"@3", "skipped@14", "\"ok\"@17", "skipped@27"],
                "chunks of {chunk}"
            );
            assert_eq!(
                frames(Framing::Lines, 4, Oversize::Truncate, input, chunk)
                    .iter()
                    .map(|f| f.split('@').next().unwrap().to_owned())
                    .collect::<Vec<_>>(),
                ["\"ok\"", "\"0123\"…", "\"ok\"", "\"0123\"…"],
                "chunks of {chunk}"
            );
        }
        assert_eq!(
            frames(Framing::Lines, 4, Oversize::Fail, b"0123456789\n", 64),
            ["too-long(10)@11"]
        );
    }

    #[test]
    fn ndjson_lines_are_checked_and_whole_is_one_element() {
        assert_eq!(
            frames(
                Framing::Ndjson,
                100,
                Oversize::Fail,
                b"{\"a\":1}\nnope\n",
                5
            ),
            ["\"{\\\"a\\\":1}\"@8", "not-json@13"]
        );
        assert_eq!(
            frames(Framing::Whole, 100, Oversize::Fail, b"a\nb\n", 1),
            ["\"a\\nb\\n\"@4"]
        );
        assert_eq!(
            frames(Framing::Whole, 2, Oversize::Skip, b"a\nb\n", 1),
            ["skipped@4"]
        );
    }
}
