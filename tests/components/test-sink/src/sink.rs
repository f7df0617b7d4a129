//! Test sink: prints `seq={sequence} len={size} {payload}` for each element to stdout.
//!
//! Config (JSON, every field optional):
//!
//! - `pause_every: 3` returns `pause` on every 3rd push (0, the default, never);
//! - `quiet: true` reads each payload but prints nothing;
//! - `label: "a"` starts each line with `a `: `a seq=3 len=6 item 3`;
//! - `show_content_type: true` ends each line with ` ct={content_type}`;
//! - `show_deadline: true` ends each line with ` deadline={deadline_ns}`, the time by
//!   which the host wants the call done (0 for none);
//! - `show_trace: true` ends each line with ` trace={trace_id} span={span_id}`, the
//!   element's W3C trace context (empty when it is not traced);
//! - `hold: true` prints nothing while elements arrive and every line in `complete`, as a
//!   sink that buffers does;
//! - `complete_fail: true` makes `complete` return an internal error (after printing);
//! - `fail_every: 10` fails every 10th push with an internal error (0, the default, never);
//! - `spin_ms: 20` keeps each push busy for 20 ms of wall time, as a slow sink that does
//!   not ask to pause.
//!
//! `complete` says on stderr `test-sink {label}: complete after {n} elements` (without a
//! label: `test-sink: …`).
//!
//! Exported with `batch`, it says at teardown on stderr how many batches it was handed
//! and how large the largest was.

use serde::Deserialize;
use torvyn_sdk::{Backpressure, Element, Error, Sink};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    pause_every: u64,
    quiet: bool,
    label: String,
    show_content_type: bool,
    show_deadline: bool,
    show_trace: bool,
    hold: bool,
    complete_fail: bool,
    fail_every: u64,
    spin_ms: u64,
}

#[derive(Default)]
pub(crate) struct TestSink {
    config: Config,
    pushed: u64,
    /// Batch calls and the elements in the largest, when exported with `batch`.
    batches: u64,
    largest_batch: usize,
    /// The lines of a sink that holds them until `complete`.
    held: Vec<String>,
}

impl Sink for TestSink {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        Ok(())
    }

    fn push(&mut self, element: &Element<'_>) -> Result<Backpressure, Error> {
        if self.config.spin_ms > 0 {
            let spin = std::time::Duration::from_millis(self.config.spin_ms);
            let began = std::time::Instant::now();
            while began.elapsed() < spin {
                std::hint::spin_loop();
            }
        }
        let every = self.config.fail_every;
        if every > 0 && (element.sequence() + 1).is_multiple_of(every) {
            return Err(Error::Internal(format!(
                "push {} failed on purpose",
                element.sequence()
            )));
        }
        let payload = element.bytes();
        if !self.config.quiet {
            let mut line = String::new();
            if !self.config.label.is_empty() {
                line = format!("{} ", self.config.label);
            }
            line += &format!(
                "seq={} len={} {}",
                element.sequence(),
                element.size(),
                String::from_utf8_lossy(&payload)
            );
            if self.config.show_content_type {
                line += &format!(" ct={}", element.content_type());
            }
            if self.config.show_deadline {
                line += &format!(" deadline={}", element.deadline_ns());
            }
            if self.config.show_trace {
                line += &format!(" trace={} span={}", element.trace_id(), element.span_id());
            }
            if self.config.hold {
                self.held.push(line);
            } else {
                println!("{line}");
            }
        }
        self.pushed += 1;
        let every = self.config.pause_every;
        if every > 0 && self.pushed.is_multiple_of(every) {
            Ok(Backpressure::Pause)
        } else {
            Ok(Backpressure::Ready)
        }
    }

    fn push_batch(&mut self, elements: &[Element<'_>]) -> Vec<Result<Backpressure, Error>> {
        self.batches += 1;
        self.largest_batch = self.largest_batch.max(elements.len());
        elements.iter().map(|element| self.push(element)).collect()
    }

    fn complete(&mut self) -> Result<(), Error> {
        for line in self.held.drain(..) {
            println!("{line}");
        }
        let name = match self.config.label.as_str() {
            "" => "test-sink".to_owned(),
            label => format!("test-sink {label}"),
        };
        eprintln!("{name}: complete after {} elements", self.pushed);
        if self.config.complete_fail {
            return Err(Error::Internal("complete failed on purpose".into()));
        }
        Ok(())
    }

    fn teardown(&mut self) {
        if self.batches > 0 {
            eprintln!(
                "test-sink: {} elements in {} batches, the largest of {}",
                self.pushed, self.batches, self.largest_batch
            );
        }
    }
}
