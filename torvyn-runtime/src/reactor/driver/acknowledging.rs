//! The driver's side of end-to-end acknowledgements (the protocol is in `reactor::acks`)
//! and of the built-in connectors: whether a source connector is ready, when to look at
//! it again, its checkpoints' ticks, and its connection's losses and returns.

use std::time::{Duration, Instant};

use super::{Driver, Failure, FlowErrorKind};
use crate::connectors::Connection;
use crate::observability::EventKind;
use crate::reactor::StageBody;
use crate::reactor::acks::{Ack, Deliveries, NO_ACK};

/// How often connectors are ticked (a file source stores moved checkpoints once a second).
const TICK_EVERY: Duration = Duration::from_millis(250);

impl Driver<'_> {
    /// Step 1: the ack of an element (or failed pull) of source `s` that the source gave
    /// `ticket`; [`NO_ACK`] when it gave none.
    pub(super) fn source_ack(&mut self, s: usize, ticket: Option<u64>) -> Ack {
        ticket.map_or(NO_ACK, |ticket| self.acks.for_source(s, ticket))
    }

    /// Steps 5 and 6: a branch of the element carrying `ack` ends (`failed`, or not); each
    /// source element whose fate that decides is told to its source. Inlined, so that an
    /// element without an ack pays one comparison.
    #[inline]
    pub(super) fn end_branch(&mut self, ack: Ack, failed: bool) {
        if ack != NO_ACK {
            self.release(ack, failed);
        }
    }

    fn release(&mut self, ack: Ack, failed: bool) {
        let mut resolved = std::mem::take(&mut self.resolved);
        self.acks.release(ack, failed, &mut resolved);
        for done in resolved.drain(..) {
            if let Some(connector) = self.stages[done.source].connector() {
                connector.settled(done.ticket, done.failed, done.redeliver);
            }
        }
        self.resolved = resolved;
    }

    /// Step 8: how many times the source of the element carrying `ack` delivered it, and
    /// the most it will; `None` when its source cannot deliver it again.
    pub(super) fn deliveries(&mut self, ack: Ack) -> Option<Deliveries> {
        if ack == NO_ACK {
            return None;
        }
        let (source, ticket) = self.acks.source_of(ack)?;
        self.stages[source].connector()?.deliveries(ticket)
    }

    /// Step 8: a branch of the element carrying `ack` ends asking for it to be delivered
    /// again after `wait`.
    pub(super) fn end_branch_redelivered(&mut self, ack: Ack, wait: Duration) {
        if ack != NO_ACK {
            self.acks.redeliver(ack, wait);
            self.release(ack, true);
        }
    }

    /// Step 2: `ack` goes down `extra` more branches.
    #[inline]
    pub(super) fn hold(&mut self, ack: Ack, extra: u32) {
        if ack != NO_ACK && extra > 0 {
            self.acks.hold(ack, extra);
        }
    }

    /// Step 4: aggregator `n` absorbed an element carrying `ack`.
    #[inline]
    pub(super) fn absorb(&mut self, n: usize, ack: Ack) {
        if ack != NO_ACK {
            self.nodes[n].absorbed.push(ack);
        }
    }

    /// Step 4: the ack of the `outputs` elements aggregator `n` made of what it absorbed.
    pub(super) fn made_from_absorbed(&mut self, n: usize, outputs: u32) -> Ack {
        let members = std::mem::take(&mut self.nodes[n].absorbed);
        if outputs == 0 {
            for member in members {
                self.end_branch(member, false);
            }
            return NO_ACK;
        }
        self.acks.for_group(members, outputs)
    }

    /// Step 4: what aggregator `n` absorbed will make nothing (its flush failed under a
    /// policy that goes on).
    pub(super) fn lose_absorbed(&mut self, n: usize) {
        for member in std::mem::take(&mut self.nodes[n].absorbed) {
            self.end_branch(member, true);
        }
    }

    /// Whether source `s` may be pulled now: a connector says; a component always may.
    pub(super) fn source_ready(&mut self, s: usize) -> bool {
        self.stages[s].connector().is_none_or(|c| c.ready())
    }

    /// When the first source connector that is not ready should be looked at again.
    pub(super) fn next_look(&mut self) -> Option<Instant> {
        let mut first: Option<Instant> = None;
        for i in 0..self.sources.len() {
            let s = self.sources[i];
            if self.nodes[s].finished {
                continue;
            }
            if let Some(at) = self.stages[s].connector().and_then(|c| c.poll_at()) {
                first = Some(first.map_or(at, |f| f.min(at)));
            }
        }
        first
    }

    /// When no stage of the flow reads attributes, its source connectors make none (an
    /// allocation per element read).
    pub(super) fn omit_unread_attributes(&mut self) {
        let bodies = self.spec.stages.iter().map(|stage| &stage.body);
        if bodies.into_iter().any(StageBody::reads_attributes) {
            return;
        }
        for stage in &mut self.stages {
            if let Some(connector) = stage.connector() {
                connector.omit_attributes();
            }
        }
    }

    /// Whether a built-in connector plays a node of the flow.
    pub(super) fn has_connectors(&self) -> bool {
        let bodies = self.spec.stages.iter().map(|stage| &stage.body);
        bodies
            .into_iter()
            .any(|body| matches!(body, StageBody::Connector(_)))
    }

    /// Ticks every connector, a few times a second: a file source stores its checkpoints
    /// when they moved and a second has passed. A connector that cannot fails the flow.
    pub(super) fn tick_connectors(&mut self, now: Instant) -> Result<(), Failure> {
        if now.duration_since(self.ticked) < TICK_EVERY {
            return Ok(());
        }
        self.ticked = now;
        for n in 0..self.stages.len() {
            self.report_connection(n);
            if let Some(connector) = self.stages[n].connector()
                && let Err(why) = connector.tick()
            {
                return Err(Failure {
                    node: n,
                    call: None,
                    sequence: None,
                    kind: FlowErrorKind::Connector(why),
                });
            }
        }
        Ok(())
    }

    /// Reports node `n`'s connector losing its connection, or getting it back, since it
    /// was last looked at, as events in the order they happened. Several changes in between
    /// are told as the first and the last: up then up again is a loss and a return; down
    /// then down again, a return and a loss.
    pub(super) fn report_connection(&mut self, n: usize) {
        let Some(watched) = &mut self.nodes[n].connection else {
            return;
        };
        let now = watched.connection.changes();
        let was = std::mem::replace(&mut watched.reported, now);
        if now == was {
            return;
        }
        let (was_down, is_down) = (was.0 > was.1, now.0 > now.1);
        let lost_first = !was_down;
        let both = was_down == is_down;
        let endpoint = watched.connection.endpoint.clone();
        let node = self.nodes[n].plan.name.clone();
        let event = |lost: bool| {
            let (node, endpoint) = (node.clone(), endpoint.clone());
            match lost {
                true => EventKind::ConnectionLost { node, endpoint },
                false => EventKind::Reconnected { node, endpoint },
            }
        };
        let first = event(lost_first);
        self.emit(|_| first);
        if both {
            let second = event(!lost_first);
            self.emit(|_| second);
        }
    }

    /// Reports what every connector's connection did since it was last looked at: at the
    /// end of a flow, which a loss may have ended.
    pub(super) fn report_connections(&mut self) {
        for n in 0..self.nodes.len() {
            self.report_connection(n);
        }
    }
}

/// A connector's connection to its server, and how many of its losses and returns the
/// flow has reported.
pub(super) struct Watched {
    connection: Connection,
    reported: (u64, u64),
}

impl Watched {
    /// Watches `connection` from its first connect on: a loss while the flow started is
    /// reported at its first look.
    pub(super) fn new(connection: Connection) -> Self {
        Watched {
            connection,
            reported: (0, 0),
        }
    }
}
