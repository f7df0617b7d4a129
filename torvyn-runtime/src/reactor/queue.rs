//! A bounded queue of elements between two stages.

use std::borrow::Cow;
use std::collections::VecDeque;

use crate::attributes::Attributes;
use crate::engine::OutputElement;
use crate::observability::{SpanId, TraceId};

/// An element's content type: a built-in connector's is a constant, kept without an
/// allocation per element; a component's is the string it gave.
pub(crate) type ContentType = Cow<'static, str>;

/// What a stage made, before the host admits it into the flow: the handle of its buffer
/// (the host's by now) and its content type.
#[derive(Debug)]
pub(crate) struct Made {
    pub(crate) buffer: u32,
    pub(crate) content_type: ContentType,
}

impl From<OutputElement> for Made {
    fn from(output: OutputElement) -> Self {
        Made {
            buffer: output.payload.rep(),
            content_type: Cow::Owned(output.meta.content_type),
        }
    }
}

/// An element waiting between two stages: its metadata and the handle of its payload.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) sequence: u64,
    pub(crate) timestamp_ns: u64,
    pub(crate) content_type: ContentType,
    pub(crate) buffer: u32,
    /// Its end-to-end acknowledgement (see `acks`), or `NO_ACK`.
    pub(crate) ack: super::acks::Ack,
    /// Where a traced element is in its trace; `None` for an element not traced.
    pub(crate) trace: Option<Box<Traced>>,
    /// What the host knows of it beside its payload (see `crate::attributes`).
    pub(crate) attributes: Attributes,
}

/// A traced element's place in its trace.
#[derive(Debug, Clone)]
pub(crate) struct Traced {
    pub(crate) trace_id: TraceId,
    /// The span of the stage that sent it on.
    pub(crate) parent: SpanId,
    /// When it joined its queue (nanoseconds since the Unix epoch), which queue, and how
    /// many elements were ahead of it.
    pub(crate) queued_ns: u64,
    pub(crate) edge: usize,
    pub(crate) depth: usize,
}

/// A queue that never holds more than its capacity.
#[derive(Debug)]
pub(crate) struct Queue {
    items: VecDeque<Queued>,
    capacity: usize,
    max_depth: usize,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            // No storage until the first element (an idle flow's queues hold none): it
            // grows with the elements the queue holds, doubling, up to the power of two at
            // or above its capacity, so that storage follows use, never a configured
            // number. Once grown, it is kept: a flow in its steady state allocates nothing
            // here.
            items: VecDeque::new(),
            capacity,
            max_depth: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= self.capacity
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// How many more elements it takes before it is full.
    pub(crate) fn room(&self) -> usize {
        self.capacity.saturating_sub(self.items.len())
    }

    pub(crate) fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Adds an element; the scheduler only pushes into a queue that has room.
    pub(crate) fn push(&mut self, element: Queued) {
        debug_assert!(!self.is_full());
        self.items.push_back(element);
        self.max_depth = self.max_depth.max(self.items.len());
    }

    /// The elements, from the head.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Queued> {
        self.items.iter()
    }

    pub(crate) fn pop(&mut self) -> Option<Queued> {
        self.items.pop_front()
    }
}
