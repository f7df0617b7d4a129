//! The range every duration, size and count of `Torvyn.toml` and of the command line must
//! fall in. A value outside either cannot work (a time limit shorter than the clock that
//! checks it, a queue of no places) or is far past any real use and would make the host
//! overflow or allocate what nobody needs; it is refused where it is read, naming the range.
//!
//! Nothing is allocated in proportion to one of these numbers before it is used: a queue's
//! storage grows with the elements it holds, a buffer's with its bytes.

use std::time::Duration;

use bytesize::ByteSize;

use crate::security::EPOCH_TICK;

/// The least and the most a setting may be, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds<T> {
    /// The least value that works.
    pub min: T,
    /// The most a setting may ask for.
    pub max: T,
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A queue's places: at least one; at most 2^20, since a queue is a short buffer between
/// two stages, not storage (an element in a queue holds a host buffer).
pub const QUEUE_CAPACITY: Bounds<u32> = Bounds {
    min: 1,
    max: 1 << 20,
};

/// A NATS source's `ack-wait`: at least a second, so that progress acknowledgements
/// (sent after half of it) are not a stream of their own; at most a day.
pub const ACK_WAIT: Bounds<Duration> = Bounds {
    min: Duration::from_secs(1),
    max: DAY,
};

/// A NATS source's `pull-expires`: at least 100 ms, so that an idle source is not a
/// stream of requests; at most a minute, since a stopped flow waits this long.
pub const PULL_EXPIRES: Bounds<Duration> = Bounds {
    min: Duration::from_millis(100),
    max: Duration::from_secs(60),
};

/// A NATS source's `pull-batch`: messages one pull request asks for; each is held by the
/// flow until it settles, up to the consumer's own `max_ack_pending` (1000 by default).
pub const PULL_BATCH: Bounds<u32> = Bounds {
    min: 1,
    max: 10_000,
};

/// A NATS source's `max-deliver`: at least one delivery, at most 10 000 (JetStream counts
/// deliveries in a signed 64-bit number; more than this is a loop, not a retry).
pub const MAX_DELIVER: Bounds<u32> = Bounds {
    min: 1,
    max: 10_000,
};

/// `invocation-time`: at least one epoch tick ([`EPOCH_TICK`], 1 ms), since the limit is
/// checked once a tick and a shorter one would trap or not by chance; at most a day.
pub const INVOCATION_TIME: Bounds<Duration> = Bounds {
    min: EPOCH_TICK,
    max: DAY,
};

/// `invocation-deadline`, the time shown to components: 1 ms to a day.
pub const INVOCATION_DEADLINE: Bounds<Duration> = Bounds {
    min: Duration::from_millis(1),
    max: DAY,
};

/// `sink-pause`: `0s` hands the sink its next element at once; at most an hour.
pub const SINK_PAUSE: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: HOUR,
};

/// A retry policy's `backoff`: `0s` retries at once; at most an hour. The wait doubles
/// before each next retry, up to [`MAX_RETRY_WAIT`].
pub const RETRY_BACKOFF: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: HOUR,
};

/// The longest one wait between two retries, however often the backoff doubled.
pub const MAX_RETRY_WAIT: Duration = HOUR;

/// A retry policy's `retry`, the attempts after the first: at most 1 000.
pub const RETRIES: Bounds<u32> = Bounds { min: 0, max: 1_000 };

/// `max-restarts`, the restarts a node may have within `restart-period`: at most 10 000.
pub const MAX_RESTARTS: Bounds<u32> = Bounds {
    min: 0,
    max: 10_000,
};

/// `restart-period`, over which restarts are counted: 1 ms to a day.
pub const RESTART_PERIOD: Bounds<Duration> = Bounds {
    min: Duration::from_millis(1),
    max: DAY,
};

/// `memory`, the largest size of a linear memory: at least one WebAssembly page (64 KiB);
/// at most 4 GiB, all a 32-bit memory can address.
pub const MEMORY: Bounds<u64> = Bounds {
    min: 64 << 10,
    max: 4 << 30,
};

/// `buffer-memory`, the bytes of host buffers a component may hold: at least the smallest
/// pool tier (256 B); at most 1 TiB. A buffer is allocated as it is asked for, and an
/// allocation the system refuses fails the call that asked, not the host.
pub const BUFFER_MEMORY: Bounds<u64> = Bounds {
    min: 256,
    max: 1 << 40,
};

/// `buffer-handles`: at least one; at most 2^24.
pub const BUFFER_HANDLES: Bounds<u32> = Bounds {
    min: 1,
    max: 1 << 24,
};

/// `table-elements` and `instances`: at least one; a zero would refuse every instance.
pub const AT_LEAST_ONE: Bounds<u32> = Bounds {
    min: 1,
    max: u32::MAX,
};

/// `fuel`: at least one unit; a zero would trap every call.
pub const FUEL: Bounds<u64> = Bounds {
    min: 1,
    max: u64::MAX,
};

/// `max-element-size` of a source connector: at least one byte; at most 64 MiB, the
/// buffer memory a stage may hold (`buffer-memory`'s default), since an element is held
/// whole in one host buffer.
pub const MAX_ELEMENT_SIZE: Bounds<u64> = Bounds {
    min: 1,
    max: 64 << 20,
};

/// `--timeout` of `run`, `trace` and `bench`: 1 ms to a year (365.25 days, as humantime
/// counts one).
pub const RUN_TIMEOUT: Bounds<Duration> = Bounds {
    min: Duration::from_millis(1),
    max: Duration::from_secs(31_557_600),
};

impl Bounds<Duration> {
    /// `duration` if it is within bounds; otherwise what is wrong, to show the user.
    pub fn check(&self, duration: Duration) -> Result<Duration, String> {
        self.check_written(duration, &humantime::format_duration(duration).to_string())
    }

    /// [`check`](Self::check) of a duration written as `written`, which a refusal shows
    /// as it was written (`0ms`, not `0s`).
    pub(crate) fn check_written(
        &self,
        duration: Duration,
        written: &str,
    ) -> Result<Duration, String> {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if duration < self.min {
            Err(format!(
                "`{written}` is too short: the least is {}",
                show(self.min)
            ))
        } else if duration > self.max {
            Err(format!(
                "`{written}` is too long: the most is {}",
                show(self.max)
            ))
        } else {
            Ok(duration)
        }
    }

    /// Parses a duration such as `10ms` and checks it: for clap's `value_parser`.
    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
        self.check_written(duration, text.trim())
    }
}

impl Bounds<u64> {
    /// `value` if it is within bounds; otherwise what is wrong. Sizes are shown in binary
    /// units, and in bytes too from 1 KiB.
    pub fn check_size(&self, value: u64) -> Result<u64, String> {
        let show = |v: u64| match ByteSize(v).display().iec() {
            shown if v < 1024 => shown.to_string(),
            shown => format!("{shown} ({v} B)"),
        };
        if value < self.min {
            Err(format!(
                "{} is too small: the least is {}",
                show(value),
                show(self.min)
            ))
        } else if value > self.max {
            Err(format!(
                "{} is too large: the most is {}",
                show(value),
                show(self.max)
            ))
        } else {
            Ok(value)
        }
    }
}

impl<T: Copy + Into<u64> + std::fmt::Display> Bounds<T> {
    /// `value` if it is within bounds; otherwise what is wrong.
    pub fn check_count(&self, value: T) -> Result<T, String> {
        if value.into() < self.min.into() {
            Err(format!("{value} is too small: the least is {}", self.min))
        } else if value.into() > self.max.into() {
            Err(format!("{value} is too large: the most is {}", self.max))
        } else {
            Ok(value)
        }
    }
}

/// Nanoseconds in `duration`, or `u64::MAX` (about 584 years) past that: never wraps.
pub fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_their_bounds_are_named_with_the_bounds() {
        assert_eq!(
            INVOCATION_TIME.check(Duration::ZERO).unwrap_err(),
            "`0s` is too short: the least is 1ms"
        );
        assert_eq!(
            RUN_TIMEOUT.parse("1000years").unwrap_err(),
            "`1000years` is too long: the most is 1year"
        );
        assert!(SINK_PAUSE.check(Duration::ZERO).is_ok());
        assert_eq!(
            QUEUE_CAPACITY.check_count(u32::MAX).unwrap_err(),
            "4294967295 is too large: the most is 1048576"
        );
        assert_eq!(
            MEMORY.check_size(1000).unwrap_err(),
            "1000 B is too small: the least is 64.0 KiB (65536 B)"
        );
        assert_eq!(saturating_nanos(Duration::MAX), u64::MAX);
    }
}
