//! End-to-end acknowledgements: a source that asks for them (a built-in connector, such
//! as the file source) learns the final fate of each element it emitted, once every branch
//! the element went down has finished with it.
//!
//! # Protocol
//!
//! 1. When a source that asks for acknowledgements emits an element (or a pull of it
//!    fails), the flow opens an [`Ack`] for it with one holder, and the element carries
//!    it. Elements of other sources carry [`NO_ACK`], and nothing below costs them more
//!    than a comparison.
//! 2. Fan-out: an element sent down `k` edges (every edge, or a router's ports) has `k`
//!    holders, one per branch; a router's port that names no edge is a branch that ends
//!    at once, failed.
//! 3. A processor's or filter's output, and a kept element, carry the input's ack on:
//!    the holder moves with it.
//! 4. An aggregator keeps the ack of each element it absorbs, holding it. When it emits,
//!    the flow opens a group ack for the output (held once per output), whose members
//!    are the acks it kept; when a flush emits nothing the kept acks settle, and when a
//!    flush fails under a policy that goes on, or the aggregator traps and is restarted
//!    (its fresh instance knows nothing of them), they fail.
//! 5. A branch ends (its holder is released) when its element is delivered (to a sink or
//!    a dead-letter sink), filtered, dropped by an overflow policy, or failed under a
//!    policy that goes on (`skip`, an unknown port). A failed branch marks the ack failed.
//! 6. When its last holder is released, an ack is resolved: a source's element is
//!    settled, unless a branch failed; a group ack resolves each member with its own
//!    fate, so an aggregator's inputs settle when its output has.
//! 7. An element of a flow that failed, or still in flight when its output closed, is
//!    never resolved: its source has not learned it arrived, and reads it again on a
//!    rerun (a file source's checkpoint stays before it).
//! 8. A source that can deliver an element again (a NATS source: the server redelivers
//!    a message it was given back) says how many times it has delivered it and the most
//!    it will. A branch that fails with a retryable error under a `retry` policy then
//!    asks for another delivery after the policy's backoff instead of retrying in place,
//!    while deliveries remain within the policy's attempts and the source's most; the
//!    ack is then resolved as to be delivered again (the longest wait asked wins over a
//!    settled or failed branch). Once no delivery remains, the policy's `then` applies,
//!    as to any other error. An aggregator's output has no source that can deliver it
//!    again, and is retried in place.

use std::time::Duration;

/// The acknowledgement an element carries: an index into the flow's [`Acks`], or
/// [`NO_ACK`].
pub(crate) type Ack = u32;

/// Carried by elements whose source does not learn their fate.
pub(crate) const NO_ACK: Ack = u32::MAX;

/// A source's element whose fate is known: its node, its ticket, whether it failed, and
/// whether it is to be delivered again, after how long (step 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) source: usize,
    pub(crate) ticket: u64,
    pub(crate) failed: bool,
    pub(crate) redeliver: Option<Duration>,
}

/// How many times a source has delivered an element, and the most it will (step 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deliveries {
    /// From 1.
    pub(crate) delivered: u32,
    pub(crate) most: u32,
}

#[derive(Debug)]
enum Owner {
    /// A source's element: its node and ticket.
    Source { node: usize, ticket: u64 },
    /// An aggregator's output: the acks of the elements it absorbed.
    Group(Vec<Ack>),
}

#[derive(Debug)]
struct Entry {
    holders: u32,
    failed: bool,
    redeliver: Option<Duration>,
    owner: Owner,
}

/// The open acknowledgements of a flow; slots are reused once resolved.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    entries: Vec<Option<Entry>>,
    free: Vec<Ack>,
}

impl Acks {
    fn open(&mut self, owner: Owner, holders: u32) -> Ack {
        let entry = Some(Entry {
            holders,
            failed: false,
            redeliver: None,
            owner,
        });
        match self.free.pop() {
            Some(ack) => {
                self.entries[ack as usize] = entry;
                ack
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as Ack
            }
        }
    }

    /// Step 1: an element of source `node`, known to it as `ticket`.
    pub(crate) fn for_source(&mut self, node: usize, ticket: u64) -> Ack {
        self.open(Owner::Source { node, ticket }, 1)
    }

    /// Step 4: `outputs` elements an aggregator made of the elements whose acks are
    /// `members`; [`NO_ACK`] when none of them had one.
    pub(crate) fn for_group(&mut self, members: Vec<Ack>, outputs: u32) -> Ack {
        if members.is_empty() || outputs == 0 {
            return NO_ACK;
        }
        self.open(Owner::Group(members), outputs)
    }

    /// Step 2: `ack` now has `extra` more holders.
    pub(crate) fn hold(&mut self, ack: Ack, extra: u32) {
        if let Some(Some(entry)) = self.entries.get_mut(ack as usize) {
            entry.holders += extra;
        }
    }

    /// The source's node and ticket of `ack`, when it is a source's element's (not an
    /// aggregator's output's).
    pub(crate) fn source_of(&self, ack: Ack) -> Option<(usize, u64)> {
        match self.entries.get(ack as usize)?.as_ref()?.owner {
            Owner::Source { node, ticket } => Some((node, ticket)),
            Owner::Group(_) => None,
        }
    }

    /// Step 8: a branch of `ack` asks for it to be delivered again after `wait`; the
    /// branch then ends as failed ([`Acks::release`]).
    pub(crate) fn redeliver(&mut self, ack: Ack, wait: Duration) {
        if let Some(Some(entry)) = self.entries.get_mut(ack as usize) {
            entry.redeliver = Some(entry.redeliver.map_or(wait, |w| w.max(wait)));
        }
    }

    /// Step 5: one holder of `ack` is done with it; the sources' elements whose fate
    /// became known are added to `resolved` (step 6).
    pub(crate) fn release(&mut self, ack: Ack, failed: bool, resolved: &mut Vec<Resolved>) {
        let Some(slot) = self.entries.get_mut(ack as usize) else {
            return;
        };
        let Some(entry) = slot else {
            return;
        };
        entry.failed |= failed;
        entry.holders -= 1;
        if entry.holders > 0 {
            return;
        }
        let entry = slot.take().expect("an open entry");
        self.free.push(ack);
        match entry.owner {
            Owner::Source { node, ticket } => resolved.push(Resolved {
                source: node,
                ticket,
                failed: entry.failed,
                redeliver: entry.redeliver,
            }),
            // As deep as aggregators are chained in the flow.
            Owner::Group(members) => {
                for member in members {
                    self.release(member, entry.failed, resolved);
                }
            }
        }
    }

    /// How many acknowledgements are open: elements whose fate their source awaits.
    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_settles_once_every_branch_and_every_aggregate_has() {
        let mut acks = Acks::default();
        let mut resolved = Vec::new();
        let a = acks.for_source(0, 7);
        let b = acks.for_source(0, 8);
        // `a` fans out to two branches; one is absorbed with `b` by an aggregator.
        acks.hold(a, 1);
        let group = acks.for_group(vec![a, b], 1);
        acks.release(a, false, &mut resolved);
        assert!(resolved.is_empty(), "the aggregate has not settled");
        acks.release(group, false, &mut resolved);
        let tickets: Vec<u64> = resolved.iter().map(|r| r.ticket).collect();
        assert_eq!(tickets, [7, 8]);
        assert!(resolved.iter().all(|r| r.source == 0 && !r.failed));
        assert_eq!(acks.open_count(), 0);
    }

    #[test]
    fn one_failed_branch_fails_the_element_and_its_aggregate_fails_its_members() {
        let mut acks = Acks::default();
        let mut resolved = Vec::new();
        let a = acks.for_source(1, 0);
        acks.hold(a, 1);
        acks.release(a, true, &mut resolved);
        acks.release(a, false, &mut resolved);
        assert!(resolved[0].failed);
        let b = acks.for_source(1, 1);
        let group = acks.for_group(vec![b], 2);
        acks.release(group, false, &mut resolved);
        acks.release(group, true, &mut resolved);
        assert!(resolved[1].failed);
        assert_eq!(acks.for_group(Vec::new(), 1), NO_ACK);
    }

    #[test]
    fn the_longest_redelivery_asked_wins() {
        let mut acks = Acks::default();
        let mut resolved = Vec::new();
        let a = acks.for_source(2, 0);
        acks.hold(a, 2);
        assert_eq!(acks.source_of(a), Some((2, 0)));
        acks.redeliver(a, Duration::from_secs(2));
        acks.release(a, true, &mut resolved);
        acks.redeliver(a, Duration::from_secs(1));
        acks.release(a, true, &mut resolved);
        acks.release(a, false, &mut resolved);
        assert_eq!(resolved[0].redeliver, Some(Duration::from_secs(2)));
        assert!(resolved[0].failed);
        let b = acks.for_source(2, 1);
        let group = acks.for_group(vec![b], 1);
        assert_eq!(
            acks.source_of(group),
            None,
            "an aggregate is not redelivered"
        );
        acks.release(group, false, &mut resolved);
        assert_eq!(resolved[1].redeliver, None);
        assert_eq!(acks.open_count(), 0);
    }
}
