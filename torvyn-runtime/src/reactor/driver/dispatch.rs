//! Where an element goes after a call: on down the node's edges (fanned out, routed),
//! through its error policy, into a queue under the queue's overflow policy.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::recovery::Recovery;
use super::tracing::{Span, call_of};
use super::{Driver, Failure, FlowErrorKind};
use crate::config::Overflow;
use crate::config::bounds::SINK_PAUSE;
use crate::contracts::Role;
use crate::engine::BackpressureSignal;
use crate::observability::{Fate, MAX_COMPONENT_TEXT, Outcome, cut_short, printable};
use crate::reactor::queue::Queued;
use crate::reactor::stage::{CallError, Handled};
use crate::resources::{MAX_CONTENT_TYPE_BYTES, fitted_content_type};
use crate::topology::NodePlan;

impl Driver<'_> {
    /// Goes on with what node `n` answered for `element`: sends on what it made, or
    /// applies its error policy (calling it again with the element for a retry). The
    /// element's span, if it is traced, ends with what became of it. `step` hands it
    /// only errors: a success goes to [`Driver::handled`] without this future.
    pub(super) async fn settle(
        &mut self,
        n: usize,
        mut element: Queued,
        mut result: Result<Handled, CallError>,
        dead_letter: bool,
        span: Span,
    ) -> Result<(), Failure> {
        let mut attempt = 0;
        loop {
            let error = match result {
                Ok(handled) => {
                    return self.handled(n, element, handled, dead_letter, span, attempt);
                }
                Err(error) => error,
            };
            let call = call_of(self.nodes[n].plan.role);
            let deliveries = self.deliveries(element.ack);
            let sequence = Some(element.sequence);
            match (self.recover(n, call, error, attempt, sequence, deliveries)).await {
                Ok(Recovery::Retry) => {
                    attempt += 1;
                    result = self.stages[n].handle(&mut self.table, &mut element).await;
                }
                Ok(Recovery::Redeliver(wait)) => {
                    self.end_span(n, span, &mut element, attempt, Fate::Failed);
                    self.end_branch_redelivered(element.ack, wait);
                    self.table.release(element.buffer);
                    self.nodes[n].counts.failed += 1;
                    self.accounting.failed += 1;
                    return Ok(());
                }
                Ok(Recovery::Skip) => {
                    self.end_span(n, span, &mut element, attempt, Fate::Failed);
                    self.end_branch(element.ack, true);
                    self.table.release(element.buffer);
                    self.nodes[n].counts.failed += 1;
                    self.accounting.failed += 1;
                    return Ok(());
                }
                Ok(Recovery::DeadLetter(why)) => {
                    self.end_span(n, span, &mut element, attempt, Fate::DeadLettered);
                    let node = &mut self.nodes[n];
                    node.counts.dead_lettered += 1;
                    mark_dead_letter(element.content_type.to_mut(), &node.plan.name, &why);
                    let edge = node
                        .plan
                        .dead_letter
                        .expect("planned with its dead-letter edge");
                    return self.offer(edge, element);
                }
                Err(failure) => {
                    self.end_span(n, span, &mut element, attempt, Fate::Failed);
                    self.table.release(element.buffer);
                    self.accounting.failed += 1;
                    return Err(failure);
                }
            }
        }
    }

    /// Node `n` handled `element` (after `attempt` retries): its span ends with what
    /// became of it, and it goes on.
    pub(super) fn handled(
        &mut self,
        n: usize,
        mut element: Queued,
        handled: Handled,
        dead_letter: bool,
        span: Span,
        attempt: u32,
    ) -> Result<(), Failure> {
        if span.is_some() {
            let fate = self.fate(n, &handled);
            self.end_span(n, span, &mut element, attempt, fate);
        }
        self.dispatch(n, element, handled, dead_letter)
    }

    /// What becomes of an element node `n` handled so.
    pub(super) fn fate(&self, n: usize, handled: &Handled) -> Fate {
        let aggregator = self.nodes[n].plan.role == Role::Aggregator;
        match handled {
            Handled::Emit(_) | Handled::Consumed if aggregator => Fate::Absorbed,
            Handled::Emit(_) | Handled::Keep => Fate::Sent,
            Handled::Consumed => Fate::Filtered,
            Handled::Route(ports) if ports.is_empty() => Fate::Filtered,
            Handled::Route(_) => Fate::Sent,
            Handled::Delivered(_) => Fate::Delivered,
            Handled::Closed => Fate::Abandoned,
        }
    }

    /// Sends on what node `n` made of `element`.
    pub(super) fn dispatch(
        &mut self,
        n: usize,
        mut element: Queued,
        handled: Handled,
        dead_letter: bool,
    ) -> Result<(), Failure> {
        let aggregator = self.nodes[n].plan.role == Role::Aggregator;
        match handled {
            Handled::Emit(output) => {
                self.table.release(element.buffer);
                let next = if aggregator {
                    self.nodes[n].counts.absorbed += 1;
                    self.accounting.absorbed += 1;
                    self.accounting.produced += 1;
                    // The new element goes on in the trace of the one it completed, and
                    // settles what it was made of.
                    let mut made = self.admit(output, crate::reactor::now_ns());
                    made.trace = element.trace.take();
                    made.attributes = std::mem::take(&mut element.attributes);
                    self.absorb(n, element.ack);
                    made.ack = self.made_from_absorbed(n, 1);
                    made
                } else {
                    Queued {
                        content_type: output.content_type,
                        buffer: output.buffer,
                        ..element
                    }
                };
                self.nodes[n].counts.emitted += 1;
                self.send(n, next)
            }
            Handled::Keep => {
                self.nodes[n].counts.emitted += 1;
                self.send(n, element)
            }
            Handled::Consumed => {
                self.table.release(element.buffer);
                if aggregator {
                    self.nodes[n].counts.absorbed += 1;
                    self.accounting.absorbed += 1;
                    self.absorb(n, element.ack);
                } else {
                    self.nodes[n].counts.filtered += 1;
                    self.accounting.filtered += 1;
                    self.end_branch(element.ack, false);
                }
                Ok(())
            }
            Handled::Route(ports) => self.route(n, element, &ports),
            Handled::Delivered(signal) => {
                self.table.release(element.buffer);
                self.end_branch(element.ack, false);
                self.nodes[n].counts.delivered += 1;
                if dead_letter {
                    self.accounting.dead_lettered += 1;
                } else {
                    self.accounting.delivered += 1;
                    let delivered = self.accounting.delivered;
                    self.control.delivered.store(delivered, Ordering::Relaxed);
                    if let Some(latency) = &mut self.latency {
                        let took = crate::reactor::now_ns().saturating_sub(element.timestamp_ns);
                        latency.saturating_record(took.max(1));
                    }
                }
                if signal == BackpressureSignal::Pause {
                    self.sink_pauses += 1;
                    self.nodes[n].counts.pauses += 1;
                    let pause = self.spec.sink_pause.min(SINK_PAUSE.max);
                    self.nodes[n].resume_at = Some(Instant::now() + pause);
                }
                Ok(())
            }
            Handled::Closed => {
                // Not written, and never acknowledged: its source offers it again on a
                // rerun. The flow drains what it holds and ends.
                self.table.release(element.buffer);
                self.accounting.abandoned += 1;
                self.stop_sources(Outcome::OutputClosed);
                self.outcome = Outcome::OutputClosed;
                Ok(())
            }
        }
    }

    /// Sends `element` down every data edge of node `n`, sharing its buffer.
    pub(super) fn send(&mut self, n: usize, element: Queued) -> Result<(), Failure> {
        let outputs = self.nodes[n].plan.outputs.len();
        self.fan_out(n, element, outputs, |node, i| node.outputs[i])
    }

    /// Sends `element` down `count` edges of node `n`, the `i`th given by `edge`. When an
    /// edge fails the flow, the branches not sent yet are counted failed with it.
    pub(super) fn fan_out(
        &mut self,
        n: usize,
        element: Queued,
        count: usize,
        edge: impl Fn(&NodePlan, usize) -> usize,
    ) -> Result<(), Failure> {
        let buffer = element.buffer;
        if count == 0 {
            self.table.release(buffer);
            self.end_branch(element.ack, false);
            return Ok(());
        }
        self.accounting.fanned_out += count as u64 - 1;
        self.hold(element.ack, count as u32 - 1);
        self.table.share(buffer, count as u32 - 1);
        let mut element = Some(element);
        for i in 0..count {
            let e = edge(&self.nodes[n].plan, i);
            let branch = match element.take() {
                Some(last) if i + 1 == count => last,
                Some(shared) => {
                    let branch = shared.clone();
                    element = Some(shared);
                    branch
                }
                None => unreachable!("every branch but the last leaves the element"),
            };
            if let Err(failure) = self.offer(e, branch) {
                let unsent = count - i - 1;
                self.accounting.failed += unsent as u64;
                for _ in 0..unsent {
                    self.table.release(buffer);
                }
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Sends `element` to the ports router `n` named; unknown names are counted as failed.
    pub(super) fn route(
        &mut self,
        n: usize,
        element: Queued,
        names: &[String],
    ) -> Result<(), Failure> {
        // Reused from element to element: no allocation once it has grown.
        let mut edges = std::mem::take(&mut self.routed);
        edges.clear();
        let mut unknown = 0u64;
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                continue;
            }
            let node = &mut self.nodes[n];
            match node.plan.ports.iter().find(|p| &p.name == name) {
                Some(port) => edges.extend(&port.edges),
                None => {
                    unknown += 1;
                    node.counts.unknown_ports += 1;
                    // The router's own words, shown in reports: on one line, cut short.
                    node.counts.first_unknown_port.get_or_insert_with(|| {
                        printable(&cut_short(name, MAX_COMPONENT_TEXT), false).into_owned()
                    });
                }
            }
        }
        let node = &mut self.nodes[n];
        if edges.is_empty() && unknown == 0 {
            node.counts.filtered += 1;
            self.accounting.filtered += 1;
            self.table.release(element.buffer);
            self.end_branch(element.ack, false);
            self.routed = edges;
            return Ok(());
        }
        node.counts.emitted += 1;
        // Each unknown port is a branch that ends here, as a failure.
        self.accounting.fanned_out += unknown;
        self.accounting.failed += unknown;
        if unknown > 0 {
            // Step 2 of the acknowledgements: an unknown port is a branch that failed.
            self.hold(element.ack, 1);
            self.end_branch(element.ack, true);
        }
        if edges.is_empty() {
            self.accounting.fanned_out -= 1;
            self.table.release(element.buffer);
            self.end_branch(element.ack, true);
            self.routed = edges;
            return Ok(());
        }
        let sent = self.fan_out(n, element, edges.len(), |_, i| edges[i]);
        self.routed = edges;
        sent
    }

    /// Puts `element` on edge `e`, applying its overflow policy when it is full.
    pub(super) fn offer(&mut self, e: usize, mut element: Queued) -> Result<(), Failure> {
        let edge = &mut self.edges[e];
        if let Some(trace) = &mut element.trace {
            trace.queued_ns = crate::reactor::now_ns();
            trace.edge = e;
            trace.depth = edge.queue.len();
        }
        if !edge.queue.is_full() {
            edge.queue.push(element);
            return Ok(());
        }
        match edge.plan.overflow {
            // The scheduler runs a node only when its block edges have room.
            Overflow::Block => unreachable!("a block edge overflowed"),
            Overflow::DropOldest => {
                let oldest = edge.queue.pop().expect("a full queue has a head");
                edge.queue.push(element);
                edge.dropped += 1;
                self.accounting.dropped += 1;
                self.table.release(oldest.buffer);
                self.end_branch(oldest.ack, false);
                Ok(())
            }
            Overflow::DropNewest => {
                edge.dropped += 1;
                self.accounting.dropped += 1;
                self.table.release(element.buffer);
                self.end_branch(element.ack, false);
                Ok(())
            }
            Overflow::Error => {
                let (from, to, capacity) = (edge.plan.from, edge.plan.to, edge.plan.capacity);
                self.accounting.failed += 1;
                self.table.release(element.buffer);
                Err(Failure {
                    node: from,
                    call: None,
                    sequence: Some(element.sequence),
                    kind: FlowErrorKind::Overflow {
                        to: self.nodes[to].plan.name.clone(),
                        capacity,
                    },
                })
            }
        }
    }
}

/// Appends the failure to a dead letter's content type as a MIME parameter. The content
/// type stays within [`MAX_CONTENT_TYPE_BYTES`], so that a component may hand it on as its
/// own: the failure's text is cut short, ending in `…`, where it would pass that; and a
/// content type too long to leave room for the parameter is fitted
/// ([`fitted_content_type`]) to leave it.
fn mark_dead_letter(content_type: &mut String, node: &str, why: &str) {
    const PARAMETER: &str = "; torvyn-error=\"";
    // The parameter, an ellipsis and the closing quote, with room for a few characters.
    const ROOM: usize = PARAMETER.len() + '…'.len_utf8() + 1 + 64;
    let fitted = fitted_content_type(content_type, MAX_CONTENT_TYPE_BYTES - ROOM);
    if fitted.len() < content_type.len() {
        *content_type = fitted.to_owned();
    }
    if content_type.is_empty() {
        content_type.push_str("application/octet-stream");
    }
    content_type.push_str(PARAMETER);
    // Room is kept for an ellipsis and the closing quote.
    let end = MAX_CONTENT_TYPE_BYTES - '…'.len_utf8() - 1;
    for c in format!("{node}: {why}").chars() {
        let c = if matches!(c, '\n' | '\r') { ' ' } else { c };
        let escaped = matches!(c, '"' | '\\');
        if content_type.len() + usize::from(escaped) + c.len_utf8() > end {
            content_type.push('…');
            break;
        }
        if escaped {
            content_type.push('\\');
        }
        content_type.push(c);
    }
    content_type.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letters_mark_quotes_its_failure_on_one_line() {
        let mut content_type = String::new();
        mark_dead_letter(&mut content_type, "up", "said \"no\"\nthen \\ left");
        assert_eq!(
            content_type,
            r#"application/octet-stream; torvyn-error="up: said \"no\" then \\ left""#
        );
    }

    #[test]
    fn a_dead_letters_mark_stops_at_the_longest_content_type() {
        // Two-byte characters and escapes at every length, so the cut falls on each kind.
        for pad in 0..4 {
            let mut content_type = "text/plain".to_owned() + &" ".repeat(pad);
            let why = "é\"".repeat(MAX_CONTENT_TYPE_BYTES);
            mark_dead_letter(&mut content_type, "up", &why);
            assert!(
                content_type.len() <= MAX_CONTENT_TYPE_BYTES,
                "{}",
                content_type.len()
            );
            assert!(content_type.len() >= MAX_CONTENT_TYPE_BYTES - 5);
            assert!(content_type.ends_with("…\""), "{}", &content_type[8000..]);
        }
    }

    #[test]
    fn a_content_type_with_no_room_for_the_mark_keeps_its_media_type() {
        let longest =
            |head: &str| head.to_owned() + &"x".repeat(MAX_CONTENT_TYPE_BYTES - head.len());
        let mut content_type = longest("text/csv; header=");
        mark_dead_letter(&mut content_type, "up", "failed");
        assert_eq!(content_type, r#"text/csv; torvyn-error="up: failed""#);

        let mut content_type = longest("text/");
        mark_dead_letter(&mut content_type, "up", "failed");
        assert_eq!(
            content_type,
            r#"application/octet-stream; torvyn-error="up: failed""#
        );

        // One that leaves room keeps all it had.
        let mut content_type = "x".repeat(MAX_CONTENT_TYPE_BYTES - 200);
        mark_dead_letter(&mut content_type, "up", "failed");
        assert!(content_type.ends_with(r#"x; torvyn-error="up: failed""#));
    }
}
