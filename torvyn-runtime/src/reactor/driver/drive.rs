//! The loop that runs a flow: turn after turn; a yield to tokio every so often so that
//! flows sharing a thread progress; and, when nothing can run, a wait for the first thing
//! that can change that (a sink's pause ending, input coming to a connector, a sink's call
//! away returning, a stop, the time limit), publishing snapshots and ticking connectors on
//! the way.

use std::time::{Duration, Instant};

use super::{CLOCK_EVERY, Driver, Failure, YIELD_AFTER, YIELD_EVERY};
use crate::observability::{EventKind, Outcome, PUBLISH_EVERY};

/// Runs the flow until every node has finished, or one fails it.
pub(super) async fn drive(
    driver: &mut Driver<'_>,
    deadline: Option<Instant>,
) -> Result<(), Failure> {
    let control = driver.control;
    let mut since_yield = 0u32;
    let mut last_yield = Instant::now();
    let mut tick_at_yield = crate::engine::ticks();
    // Whether to look at the stop and the clock on this turn: on the first, on the first
    // after a yield, a wait or a pause, then every `CLOCK_EVERY` turns, or on each once an
    // epoch tick shows a millisecond went by since the last yield (a slow call).
    // `CancellationToken::is_cancelled` takes a lock (tokio-util 0.7), which on every turn
    // was 8 % of a native flow's time. So at most `CLOCK_EVERY` turns start after a stop
    // before it is seen: a turn is one call (one batch, up to `MAX_CONNECTOR_BATCH` elements for a
    // connector), and the turns after a slow one are looked at each, while epoch ticks
    // run (any host in the process with `epoch_interruption`, the default).
    let mut look = true;
    // Once a stop is seen, a pause (which a stop does not end) holds nothing back: the
    // flow drains and yields as it does unpaused.
    let mut stopping = false;
    loop {
        if control.is_paused() && !stopping {
            driver.publish_due(Instant::now());
            driver.emit(|_| EventKind::Paused);
            // The connectors tick on while the flow is paused: a NATS source reports what
            // it holds in progress, so that a pause does not get it delivered elsewhere.
            while control.is_paused() && !control.cancel.is_cancelled() {
                tokio::select! {
                    () = control.wait_while_paused() => {}
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                driver.tick_connectors(Instant::now())?;
            }
            driver.emit(|_| EventKind::Resumed);
            // A pause, like a wait, ends the quantum, and a stop that ended it is seen now.
            since_yield = 0;
            last_yield = Instant::now();
            tick_at_yield = crate::engine::ticks();
            look = true;
        }
        if look && control.cancel.is_cancelled() {
            stopping = true;
            driver.stop_sources(Outcome::Cancelled);
        }
        if (driver.limit).is_some_and(|limit| driver.total_emitted() >= limit) {
            driver.stop_sources(Outcome::LimitReached);
        }
        if driver.turn().await? {
            since_yield += 1;
            // So that a yield is never late by more than a millisecond.
            look =
                since_yield.is_multiple_of(CLOCK_EVERY) || crate::engine::ticks() != tick_at_yield;
            if since_yield >= YIELD_EVERY || (look && last_yield.elapsed() >= YIELD_AFTER) {
                tokio::task::yield_now().await;
                since_yield = 0;
                last_yield = Instant::now();
                tick_at_yield = crate::engine::ticks();
                driver.resumed(last_yield, deadline)?;
                // Already so at each yield (`YIELD_EVERY` is a multiple of `CLOCK_EVERY`,
                // and the yield in time needs a look): set so that neither has to stay so.
                look = true;
            }
            continue;
        }
        look = true;
        if driver.finished() {
            return Ok(());
        }
        // Nothing can run: a sink asked to pause and the queues before it are full (or
        // the sources are paused waiting for them to drain), or the source connectors
        // wait for input.
        let connectors = driver.has_connectors();
        let now = Instant::now();
        let mut wake = [driver.next_wake(), driver.next_look()]
            .into_iter()
            .flatten()
            .min();
        if connectors {
            // In time to store moved checkpoints, however long input takes to come.
            let tick = now + Duration::from_secs(1);
            wake = Some(wake.map_or(tick, |at| at.min(tick)));
        }
        // With nothing else to wake it, a flow with a call away waits for that call.
        let away = !driver.calls.is_empty();
        let mut wake = match away {
            false => wake.unwrap_or(now),
            true => wake.unwrap_or(now + Duration::from_secs(3600)),
        };
        if driver.observed {
            // Wake in time to publish the next snapshot, however long the wait.
            wake = wake.min(driver.published + PUBLISH_EVERY);
        }
        let sources_running = (driver.sources.iter())
            .any(|&s| !driver.nodes[s].finished && !driver.nodes[s].draining);
        let waker = driver.wake.clone();
        let returned = tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => None,
            () = waker.notified(), if connectors => None,
            joined = driver.calls.join_next_with_id(), if away => joined,
            () = control.cancel.cancelled(), if sources_running => None,
            () = tokio::time::sleep_until(deadline.unwrap_or(wake).into()), if sources_running => None,
        };
        if let Some(joined) = returned {
            driver.land(joined, false).await?;
        }
        since_yield = 0;
        last_yield = Instant::now();
        tick_at_yield = crate::engine::ticks();
        driver.resumed(last_yield, deadline)?;
    }
}

impl Driver<'_> {
    /// Back from a yield or a wait at `now`: publishes a snapshot and ticks the connectors
    /// when due, and stops the sources once `deadline` has passed.
    fn resumed(&mut self, now: Instant, deadline: Option<Instant>) -> Result<(), Failure> {
        self.publish_due(now);
        self.tick_connectors(now)?;
        if deadline.is_some_and(|at| now >= at) {
            self.stop_sources(Outcome::TimedOut);
        }
        Ok(())
    }
}
