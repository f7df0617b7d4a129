//! Batch calls: how many elements a batch stage takes or makes in one call, and how each
//! result of a batch goes on as a single call's would.

use super::tracing::{Span, call_of};
use super::{
    Driver, Failure, MAX_BATCH, MAX_BATCH_BYTES, MAX_CONNECTOR_BATCH, MAX_CONNECTOR_BATCH_BYTES,
};
use crate::config::Overflow;
use crate::observability::Call;
use crate::reactor::StageBody;
use crate::reactor::queue::Queued;
use crate::reactor::stage::{CallError, Handled};

impl Driver<'_> {
    /// The most elements and payload bytes node `n` takes or makes in one batch call: a
    /// component's, [`MAX_BATCH`] and [`MAX_BATCH_BYTES`]; a built-in connector's,
    /// [`MAX_CONNECTOR_BATCH`] and [`MAX_CONNECTOR_BATCH_BYTES`].
    fn batch_limits(&self, n: usize) -> (usize, u64) {
        match self.spec.stages[n].body {
            StageBody::Connector(_) => (MAX_CONNECTOR_BATCH, MAX_CONNECTOR_BATCH_BYTES),
            _ => (MAX_BATCH, MAX_BATCH_BYTES),
        }
    }

    /// How many elements node `n` may take or make in one batch call: at most its
    /// `batch_limits`, and no more than every edge out of it that must not overflow
    /// (`block` and `error`, and its dead-letter edge) has room for, since each element
    /// sends at most one down each. Then nothing it sends in a batch can overflow an edge.
    pub(super) fn batch_room(&self, n: usize) -> usize {
        let node = &self.nodes[n].plan;
        node.outputs
            .iter()
            .chain(&node.dead_letter)
            .map(|&e| &self.edges[e])
            .filter(|edge| matches!(edge.plan.overflow, Overflow::Block | Overflow::Error))
            .map(|edge| edge.queue.room())
            .fold(self.batch_limits(n).0, usize::min)
    }

    /// How many elements batch source `s` is asked for: as many as `batch_room` allows,
    /// the element limit leaves, `below_high_watermarks` keeps below the watermarks, and
    /// its `batch_limits` bytes hold at the size of its latest batch, so that a source of
    /// large elements does not fill memory in one call. The first batch is of one
    /// element, to learn their size.
    pub(super) fn source_batch(&self, s: usize) -> u32 {
        let Some(bytes) = self.nodes[s].batch_element_bytes else {
            return 1;
        };
        let left = (self.limit).map_or(u64::MAX, |l| l.saturating_sub(self.total_emitted()));
        let fits = (self.batch_limits(s).1 / bytes.max(1)).max(1);
        let room = self.batch_room(s).min(self.below_high_watermarks(s));
        // At least one: a full `error` edge fails the flow on the element, and an edge
        // one short of its high watermark pauses the source, as after a single pull.
        (room as u64).min(left).min(fits).max(1) as u32
    }

    /// How many elements source `s` may add to every `block` edge out of it without one
    /// reaching its high watermark. A batch that reaches it by its own size would pause a
    /// source whose downstream keeps up; the watermark is there to tell one that does not.
    fn below_high_watermarks(&self, s: usize) -> usize {
        let edges = self.nodes[s].plan.outputs.iter().map(|&e| &self.edges[e]);
        edges
            .filter(|edge| edge.plan.overflow == Overflow::Block)
            .map(|edge| {
                (edge.plan.high_watermark.saturating_sub(1)).saturating_sub(edge.queue.len())
            })
            .fold(usize::MAX, usize::min)
    }

    /// How many of the elements waiting on input edge `e` batch stage `n` takes in one
    /// call: as many as `batch_room` allows and its `batch_limits` bytes hold.
    pub(super) fn batch_len(&self, n: usize, e: usize) -> usize {
        let (mut bytes, most) = (0, self.batch_limits(n).1);
        let fitting = self.edges[e].queue.iter().take_while(|element| {
            bytes += self.table.size(element.buffer).unwrap_or(0);
            bytes <= most
        });
        fitting.count().max(1).min(self.batch_room(n))
    }

    /// Pulls up to `max` elements from batch source `s` in one call, and goes on with each
    /// result as with that of a single `pull`.
    pub(super) async fn pull_batch(&mut self, s: usize, max: u32) -> Result<(), Failure> {
        let began =
            (self.tracing.is_some()).then(|| (crate::reactor::now_ns(), self.table.copies()));
        let results = match self.stages[s].pull_batch(&mut self.table, max).await {
            Ok(results) => results,
            // The call trapped (the errors of single pulls are among the results): the
            // policy decides, and a retry or a skip are the next turn's pull.
            Err(error) => {
                return self
                    .recover(s, Call::Pull, error, u32::MAX, None, None)
                    .await
                    .map(drop);
            }
        };
        // The elements entered the flow as the call returned, all at once.
        let at = crate::reactor::now_ns();
        let (mut elements, mut bytes) = (0, 0);
        for output in results.iter().flatten().flatten() {
            elements += 1;
            bytes += self.table.size(output.buffer).unwrap_or(0);
        }
        if let Some(per_element) = bytes.checked_div(elements) {
            self.nodes[s].batch_element_bytes = Some(per_element);
        }
        // Only the last result may end the stream or be an error (checked by the stage),
        // and `batch_room` left room for every element: nothing fails before the last.
        let batch = results.len();
        for result in results {
            let span = self.begun_span(Call::Pull, began, batch);
            match result {
                Ok(Some(output)) => self.pulled_first_time(s, output, span, at)?,
                result => {
                    self.settle_pull(s, result.map_err(CallError::Process), span, at)
                        .await?
                }
            }
        }
        Ok(())
    }

    /// Hands batch stage `n` the first `count` elements of input edge `e` in one call
    /// (`batch_room` leaves room for them downstream), and goes on with each result as
    /// with that of a single call.
    pub(super) async fn step_batch(
        &mut self,
        n: usize,
        e: usize,
        count: usize,
    ) -> Result<(), Failure> {
        let mut batch = std::mem::take(&mut self.batch);
        let spans = self.take_inputs(n, e, count, &mut batch);
        let dead_letter = self.edges[e].plan.dead_letter;
        let handled = self.stages[n]
            .handle_batch(&mut self.table, &mut batch)
            .await;
        self.timed(n);
        let settled = match handled {
            Ok(results) => (self.settle_batch(n, &mut batch, results, dead_letter, spans)).await,
            Err(error) => (self.replay_batch(n, &mut batch, error, dead_letter, spans)).await,
        };
        batch.clear();
        self.batch = batch;
        settled
    }

    /// Moves the first `count` elements of node `n`'s input edge `e` into `batch` for one
    /// call, as received, and opens their spans.
    pub(super) fn take_inputs(
        &mut self,
        n: usize,
        e: usize,
        count: usize,
        batch: &mut Vec<Queued>,
    ) -> Vec<Span> {
        let queue = &mut self.edges[e].queue;
        batch.extend(std::iter::from_fn(|| queue.pop()).take(count));
        self.drained(e);
        self.nodes[n].counts.received += batch.len() as u64;
        match self.tracing {
            Some(_) => (batch.iter())
                .map(|element| self.open_element_span(n, element, batch.len()))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Goes on with the result of each element of a batch. Once one fails the flow, the
    /// rest only go where their results send them: no call is made for them.
    pub(super) async fn settle_batch(
        &mut self,
        n: usize,
        batch: &mut Vec<Queued>,
        results: Vec<Result<Handled, CallError>>,
        dead_letter: bool,
        spans: Vec<Span>,
    ) -> Result<(), Failure> {
        let mut failure = None;
        let mut spans = spans.into_iter();
        for (element, result) in batch.drain(..).zip(results) {
            let span = spans.next().flatten();
            let settled = match (&failure, result) {
                // Not through `settle`, so that a batch's elements go on without a future
                // each.
                (None, Ok(handled)) => self.handled(n, element, handled, dead_letter, span, 0),
                (None, result) => self.settle(n, element, result, dead_letter, span).await,
                (Some(_), Ok(handled)) => self.dispatch(n, element, handled, dead_letter),
                (Some(_), Err(_)) => {
                    self.table.release(element.buffer);
                    self.nodes[n].counts.failed += 1;
                    self.accounting.failed += 1;
                    Ok(())
                }
            };
            if let Err(later) = settled {
                failure.get_or_insert(later);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// A batch call trapped, and which element it trapped on is unknown. Unless the policy
    /// fails the flow, a fresh instance takes each element of the batch again in a single
    /// call, so that the policy applies to the element that traps.
    pub(super) async fn replay_batch(
        &mut self,
        n: usize,
        batch: &mut Vec<Queued>,
        error: CallError,
        dead_letter: bool,
        spans: Vec<Span>,
    ) -> Result<(), Failure> {
        let call = call_of(self.nodes[n].plan.role);
        if let Err(failure) = self.recover(n, call, error, u32::MAX, None, None).await {
            for element in batch.drain(..) {
                self.table.release(element.buffer);
                self.nodes[n].counts.failed += 1;
                self.accounting.failed += 1;
            }
            return Err(failure);
        }
        let mut elements = batch.drain(..);
        let mut spans = spans.into_iter();
        while let Some(mut element) = elements.next() {
            // The fresh instance's context names the element's span again.
            let span = spans.next().flatten();
            if let Some(span) = &span {
                self.stages[n].set_trace(Some((span.trace_id, span.span_id)));
            }
            let result = self.stages[n].handle(&mut self.table, &mut element).await;
            if let Err(failure) = self.settle(n, element, result, dead_letter, span).await {
                // What the batch still holds would have waited in the queue.
                for element in elements {
                    self.table.release(element.buffer);
                    self.accounting.abandoned += 1;
                }
                return Err(failure);
            }
        }
        Ok(())
    }
}
