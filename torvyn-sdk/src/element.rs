//! Read access to the element a component is handed.

use crate::bindings::types::{Buffer, ElementMeta, FlowContext, StreamElement};

/// An element handed to a component for the duration of one call.
///
/// The payload of an element handed over alone stays in host memory:
/// [`bytes`](Element::bytes) and [`read`](Element::read) copy it into the component. An
/// element handed over in a batch came with its payload.
pub struct Element<'a> {
    meta: &'a ElementMeta,
    payload: Payload<'a>,
    context: &'a FlowContext,
}

/// Where an element's payload is.
enum Payload<'a> {
    /// In the host's buffer.
    Host(&'a Buffer),
    /// Here, copied in with a batch call.
    Inline(&'a [u8]),
}

impl<'a> Element<'a> {
    pub(crate) fn new(raw: &'a StreamElement<'a>) -> Self {
        Element {
            meta: &raw.meta,
            payload: Payload::Host(raw.payload),
            context: raw.context,
        }
    }

    /// An element of a batch, whose payload came with the call.
    pub(crate) fn inline(
        meta: &'a ElementMeta,
        payload: &'a [u8],
        context: &'a FlowContext,
    ) -> Self {
        Element {
            meta,
            payload: Payload::Inline(payload),
            context,
        }
    }

    /// Position of the element in its flow, assigned by the host from 0.
    pub fn sequence(&self) -> u64 {
        self.meta.sequence
    }

    /// Time in nanoseconds since the Unix epoch at which the element left its source.
    pub fn timestamp_ns(&self) -> u64 {
        self.meta.timestamp_ns
    }

    /// MIME type of the payload, or an empty string.
    pub fn content_type(&self) -> &str {
        &self.meta.content_type
    }

    /// Length of the payload in bytes.
    pub fn size(&self) -> u64 {
        match self.payload {
            Payload::Host(buffer) => buffer.size(),
            Payload::Inline(bytes) => bytes.len() as u64,
        }
    }

    /// Copies the whole payload into the component.
    pub fn bytes(&self) -> Vec<u8> {
        match self.payload {
            Payload::Host(buffer) => buffer.read_all(),
            Payload::Inline(bytes) => bytes.to_vec(),
        }
    }

    /// Copies `len` bytes starting at `offset`; reading past the end returns only the bytes
    /// that exist.
    pub fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        match self.payload {
            Payload::Host(buffer) => buffer.read(offset, len),
            Payload::Inline(bytes) => {
                let start = usize::try_from(offset).map_or(bytes.len(), |o| o.min(bytes.len()));
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                bytes[start..].iter().take(len).copied().collect()
            }
        }
    }

    /// Name of the flow the element travels in.
    pub fn flow_id(&self) -> String {
        self.context.flow_id()
    }

    /// W3C trace id of the element's trace as 32 hex digits, or an empty string.
    pub fn trace_id(&self) -> String {
        self.context.trace_id()
    }

    /// W3C span id of the current call as 16 hex digits, or an empty string.
    pub fn span_id(&self) -> String {
        self.context.span_id()
    }

    /// Deadline of the current call in nanoseconds since the Unix epoch, or 0 for none.
    pub fn deadline_ns(&self) -> u64 {
        self.context.deadline_ns()
    }
}

impl std::fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Element")
            .field("sequence", &self.sequence())
            .field("timestamp_ns", &self.timestamp_ns())
            .field("content_type", &self.content_type())
            .finish_non_exhaustive()
    }
}
