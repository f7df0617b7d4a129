//! Traces: which elements are traced, and the span of each call on one, handed to the
//! run's span sink.

use std::sync::Arc;

use super::Driver;
use crate::contracts::Role;
use crate::observability::{Call, Fate, QueueWait, SpanId, SpanSink, StageSpan, TraceId};
use crate::reactor::queue::{Queued, Traced};
use crate::resources::CopyStats;

/// What a flow that traces elements keeps.
pub(super) struct Tracing {
    pub(super) sink: Arc<dyn SpanSink>,
    /// One element in `every` is traced.
    pub(super) every: u64,
    /// Elements that entered the flow, traced or not.
    pub(super) entered: u64,
    /// Spans finished since they were last handed to the sink.
    pub(super) finished: Vec<StageSpan>,
}

/// The span of a call, if its element is traced: boxed, so that an untraced element's
/// calls carry a null pointer.
pub(super) type Span = Option<Box<OpenSpan>>;

/// A span begun: a stage's call on a traced element, in progress.
pub(super) struct OpenSpan {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) parent: Option<SpanId>,
    pub(super) call: Call,
    pub(super) start_ns: u64,
    /// The flow's copies when the call began.
    pub(super) copies: CopyStats,
    pub(super) wait: Option<QueueWait>,
    pub(super) batch: usize,
}

impl Driver<'_> {
    /// Whether the next element to enter the flow is traced.
    pub(super) fn sampled(&mut self) -> bool {
        let Some(tracing) = &mut self.tracing else {
            return false;
        };
        let sampled = tracing.entered.is_multiple_of(tracing.every);
        tracing.entered += 1;
        sampled
    }

    /// Begins the span of node `n`'s call on an element of trace `trace_id`, sent on by
    /// span `parent`: the stage's `flow-context` names the span until it ends.
    pub(super) fn open_span(
        &mut self,
        n: usize,
        trace_id: TraceId,
        parent: Option<SpanId>,
        wait: Option<QueueWait>,
        batch: usize,
    ) -> Box<OpenSpan> {
        let span_id = SpanId::random();
        self.stages[n].set_trace(Some((trace_id, span_id)));
        Box::new(OpenSpan {
            trace_id,
            span_id,
            parent,
            call: call_of(self.nodes[n].plan.role),
            start_ns: crate::reactor::now_ns(),
            copies: self.table.copies(),
            wait,
            batch,
        })
    }

    /// Begins the span of node `n`'s call on `element`, when it is traced.
    pub(super) fn open_element_span(&mut self, n: usize, element: &Queued, batch: usize) -> Span {
        let traced = element.trace.as_deref()?;
        let edge = &self.edges[traced.edge];
        let wait = QueueWait {
            from: self.nodes[edge.plan.from].plan.name.clone(),
            wait_ns: crate::reactor::now_ns().saturating_sub(traced.queued_ns),
            depth: traced.depth,
            capacity: edge.plan.capacity,
        };
        let (trace_id, parent) = (traced.trace_id, traced.parent);
        Some(self.open_span(n, trace_id, Some(parent), Some(wait), batch))
    }

    /// A new trace for an element a call that `began` (time and copies) made, one of
    /// `batch`, when the element is sampled: a batch source's or a flush's elements.
    pub(super) fn begun_span(
        &mut self,
        call: Call,
        began: Option<(u64, CopyStats)>,
        batch: usize,
    ) -> Span {
        let (start_ns, copies) = began?;
        self.sampled().then(|| {
            Box::new(OpenSpan {
                trace_id: TraceId::random(),
                span_id: SpanId::random(),
                parent: None,
                call,
                start_ns,
                copies,
                wait: None,
                batch,
            })
        })
    }

    /// Ends node `n`'s span on `element`, which goes on (if it does) as its child.
    pub(super) fn end_span(
        &mut self,
        n: usize,
        span: Span,
        element: &mut Queued,
        retries: u32,
        fate: Fate,
    ) {
        let Some(span) = span else {
            return;
        };
        self.stages[n].set_trace(None);
        let (now, copies) = (crate::reactor::now_ns(), self.table.copies());
        let node = self.nodes[n].plan.name.clone();
        let Some(tracing) = &mut self.tracing else {
            return;
        };
        tracing.finished.push(StageSpan {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent: span.parent,
            node,
            call: span.call,
            sequence: element.sequence,
            start_ns: span.start_ns,
            duration_ns: now.saturating_sub(span.start_ns),
            batch: span.batch,
            wait: span.wait,
            copies: CopyStats {
                copies: copies.copies - span.copies.copies,
                bytes: copies.bytes - span.copies.bytes,
            },
            retries,
            fate,
        });
        let trace = element.trace.get_or_insert_with(|| {
            Box::new(Traced {
                trace_id: span.trace_id,
                parent: span.span_id,
                queued_ns: 0,
                edge: 0,
                depth: 0,
            })
        });
        trace.parent = span.span_id;
    }

    /// A span begun for a call that made no element (an error skipped, the end of a
    /// stream) is not kept.
    pub(super) fn drop_span(&mut self, n: usize, span: Span) {
        if span.is_some() {
            self.stages[n].set_trace(None);
        }
    }

    /// Hands the spans finished since the last time to the run's sink.
    pub(super) fn hand_over_spans(&mut self) {
        if let Some(tracing) = &mut self.tracing
            && !tracing.finished.is_empty()
        {
            let spans = std::mem::take(&mut tracing.finished);
            tracing.sink.record(&self.spec.plan.flow, spans);
        }
    }
}

/// The call a node of `role` is traced in.
pub(super) fn call_of(role: Role) -> Call {
    match role {
        Role::Source => Call::Pull,
        Role::Processor => Call::Process,
        Role::Filter => Call::Evaluate,
        Role::Router => Call::Route,
        Role::Aggregator => Call::Ingest,
        Role::Sink => Call::Push,
    }
}
