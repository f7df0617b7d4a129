//! Test processor: upper-cases payloads; traps or fails at chosen sequence numbers.
//!
//! Config (JSON, every field optional):
//!
//! - `trap_at: 3` panics (a trap) at that sequence; `trap_every: 10` panics at every 10th
//!   element, i.e. when `(sequence + 1) % 10 == 0` (0, the default, never).
//! - `fail_at: 5` returns an error at that sequence; `fail_every: 10` at every 10th element,
//!   like `trap_every`.
//! - `fail_payload: "poison"` returns an error for every element whose payload holds that
//!   text, on every attempt: an element that fails wherever and whenever it is handled.
//! - `fail_kind` picks the error: `"internal"` (default), `"unavailable"`,
//!   `"invalid-input"`, `"deadline-exceeded"` or `"fatal"`.
//! - `fail_attempts: 2` makes a failing element fail only on its first 2 attempts in a row
//!   and succeed on the next one, so that a host retry policy can succeed; 0 (the default)
//!   fails every attempt.
//!
//! - `label_at: 5` gives the output at that sequence a content type of 8 193 bytes, one
//!   past what the host takes: the call breaks the contract.
//!
//! - `copy: true` passes payloads on unchanged (still read and written again, as any
//!   processor's output is), so that benchmarks can time the copies without the upper-casing.
//!
//! - `short_batches: true` breaks the batching contract when exported with `batch`: each
//!   batch call answers for all its elements but the last.
//!
//! Traps are checked before failures. At teardown it says so on stderr, with the number of
//! elements it handled.

use serde::Deserialize;
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    trap_at: Option<u64>,
    trap_every: u64,
    fail_at: Option<u64>,
    fail_every: u64,
    fail_payload: Option<String>,
    fail_kind: FailKind,
    fail_attempts: u32,
    copy: bool,
    short_batches: bool,
    label_at: Option<u64>,
}

/// The `torvyn_sdk::Error` variant a requested failure returns.
#[derive(Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FailKind {
    #[default]
    Internal,
    Unavailable,
    InvalidInput,
    DeadlineExceeded,
    Fatal,
}

impl FailKind {
    fn error(self, sequence: u64) -> Error {
        let message = format!("failure requested at sequence {sequence}");
        match self {
            FailKind::Internal => Error::Internal(message),
            FailKind::Unavailable => Error::Unavailable(message),
            FailKind::InvalidInput => Error::InvalidInput(message),
            FailKind::DeadlineExceeded => Error::DeadlineExceeded,
            FailKind::Fatal => Error::Fatal(message),
        }
    }
}

/// Whether `sequence` is one of every `every`th elements (0 = none).
fn is_every(sequence: u64, every: u64) -> bool {
    every > 0 && (sequence + 1).is_multiple_of(every)
}

#[derive(Default)]
pub(crate) struct TestUpper {
    config: Config,
    handled: u64,
    /// The last sequence that failed and how many times in a row, for `fail_attempts`.
    failed: Option<(u64, u32)>,
}

impl TestUpper {
    /// Whether the element at `sequence` fails on this attempt; counts the attempt if so.
    fn fails(&mut self, sequence: u64) -> bool {
        let config = &self.config;
        if config.fail_at != Some(sequence) && !is_every(sequence, config.fail_every) {
            return false;
        }
        let attempts = match self.failed {
            Some((failed, attempts)) if failed == sequence => attempts,
            _ => 0,
        };
        if config.fail_attempts > 0 && attempts >= config.fail_attempts {
            return false;
        }
        self.failed = Some((sequence, attempts + 1));
        true
    }
}

impl Processor for TestUpper {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let sequence = input.sequence();
        if self.config.trap_at == Some(sequence) || is_every(sequence, self.config.trap_every) {
            panic!("trap requested at sequence {sequence}");
        }
        let mut bytes = input.bytes();
        let poison = (self.config.fail_payload.as_deref()).is_some_and(|text| {
            bytes
                .windows(text.len().max(1))
                .any(|w| w == text.as_bytes())
        });
        if poison || self.fails(sequence) {
            return Err(self.config.fail_kind.error(sequence));
        }
        self.handled += 1;
        if !self.config.copy {
            bytes.make_ascii_uppercase();
        }
        let content_type = match self.config.label_at == Some(sequence) {
            true => "x".repeat(8193),
            false => input.content_type().to_owned(),
        };
        Ok(Some(Output::bytes(&bytes)?.with_content_type(content_type)))
    }

    fn process_batch(&mut self, inputs: &[Element<'_>]) -> Vec<Result<Option<Output>, Error>> {
        let mut results: Vec<_> = inputs.iter().map(|input| self.process(input)).collect();
        if self.config.short_batches {
            results.pop();
        }
        results
    }

    fn teardown(&mut self) {
        eprintln!("test-upper: teardown after {} elements", self.handled);
    }
}
