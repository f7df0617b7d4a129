//! How elements enter the flow: a source pulled, what it answered settled (its error
//! policy, the end of its stream), and each new element admitted, stamped with its
//! sequence number and time, with its acknowledgement and attributes.

use std::sync::atomic::Ordering;

use super::recovery::Recovery;
use super::tracing::Span;
use super::{Driver, Failure};
use crate::attributes::Attributes;
use crate::observability::{Call, Fate, TraceId};
use crate::reactor::acks::NO_ACK;
use crate::reactor::queue::{Made, Queued};
use crate::reactor::stage::CallError;

impl Driver<'_> {
    /// Pulls one element from source `s` and sends it on.
    pub(super) async fn pull(&mut self, s: usize) -> Result<(), Failure> {
        let span = match self.sampled() {
            true => Some(self.open_span(s, TraceId::random(), None, None, 1)),
            false => None,
        };
        let result = self.stages[s].pull(&mut self.table).await;
        let at_ns = crate::reactor::now_ns();
        match result {
            // Most pulls make an element: it goes on without the error policy's future.
            Ok(Some(output)) => self.pulled_first_time(s, output, span, at_ns),
            result => self.settle_pull(s, result, span, at_ns).await,
        }
    }

    /// Goes on with what source `s` answered to a pull at `at_ns` (nanoseconds since the
    /// Unix epoch): sends an element on, applies the error policy (calling `pull` again
    /// for a retry), or marks the end of its stream. A traced element's trace begins with
    /// `span`. An element made at the first try goes to [`Driver::pulled_first_time`]
    /// instead, without this future.
    pub(super) async fn settle_pull(
        &mut self,
        s: usize,
        mut result: Result<Option<Made>, CallError>,
        span: Span,
        at_ns: u64,
    ) -> Result<(), Failure> {
        let mut attempt = 0;
        let output = loop {
            // A source that learns its elements' fate has a ticket for each element and
            // each error.
            let ticket = match &result {
                Ok(None) => None,
                _ => self.stages[s].take_ticket(),
            };
            let error = match result {
                Ok(output) => break output.map(|output| (output, ticket)),
                Err(error) => error,
            };
            // A failed pull is not an element of the flow: its ack is opened to end.
            let ack = self.source_ack(s, ticket);
            match self
                .recover(s, Call::Pull, error, attempt, None, None)
                .await?
            {
                Recovery::Retry => {
                    self.end_branch(ack, true);
                    attempt += 1;
                    result = self.stages[s].pull(&mut self.table).await;
                }
                // Topology planning refuses dead letters for sources, and a failed pull
                // has no delivery to repeat.
                Recovery::Skip | Recovery::DeadLetter(_) | Recovery::Redeliver(_) => {
                    self.end_branch(ack, true);
                    self.drop_span(s, span);
                    return Ok(());
                }
            }
        };
        let Some((output, ticket)) = output else {
            self.drop_span(s, span);
            self.nodes[s].finished = true;
            return Ok(());
        };
        // A retried pull made its element later than the call the reading was taken for.
        let at_ns = if attempt > 0 {
            crate::reactor::now_ns()
        } else {
            at_ns
        };
        self.pulled(s, output, ticket, span, at_ns, attempt)
    }

    /// Source `s` made `output` at `at_ns` at its pull's first try, with the ticket the
    /// pull gave it: [`Driver::pulled`], without `settle_pull`'s future.
    pub(super) fn pulled_first_time(
        &mut self,
        s: usize,
        output: Made,
        span: Span,
        at_ns: u64,
    ) -> Result<(), Failure> {
        let ticket = self.stages[s].take_ticket();
        self.pulled(s, output, ticket, span, at_ns, 0)
    }

    /// Source `s` made `output` at `at_ns` (nanoseconds since the Unix epoch), with
    /// `ticket`, after `attempt` retries of its pull: it enters the flow and goes on.
    /// Not async, so that elements go on without a future each.
    pub(super) fn pulled(
        &mut self,
        s: usize,
        output: Made,
        ticket: Option<u64>,
        span: Span,
        at_ns: u64,
        attempt: u32,
    ) -> Result<(), Failure> {
        let mut element = self.admit(output, at_ns);
        element.ack = self.source_ack(s, ticket);
        element.attributes = self.stages[s].take_attributes();
        self.end_span(s, span, &mut element, attempt, Fate::Sent);
        self.accounting.emitted += 1;
        self.control
            .emitted
            .store(self.accounting.emitted, Ordering::Relaxed);
        self.nodes[s].counts.emitted += 1;
        self.send(s, element)
    }

    /// A new element enters the flow, made at `at_ns` (nanoseconds since the Unix epoch;
    /// one reading of the clock serves all the elements of a call): the host stamps its
    /// sequence number and time.
    pub(super) fn admit(&mut self, output: Made, at_ns: u64) -> Queued {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        Queued {
            sequence,
            timestamp_ns: at_ns,
            content_type: output.content_type,
            buffer: output.buffer,
            ack: NO_ACK,
            trace: None,
            attributes: Attributes::default(),
        }
    }
}
