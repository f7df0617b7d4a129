//! Read access to the element a component is handed.

use crate::bindings::types::StreamElement;

/// An element handed to a component for the duration of one call.
///
/// The payload stays in host memory: [`bytes`](Element::bytes) and
/// [`read`](Element::read) copy it into the component.
pub struct Element<'a> {
    raw: &'a StreamElement<'a>,
}

impl<'a> Element<'a> {
    pub(crate) fn new(raw: &'a StreamElement<'a>) -> Self {
        Element { raw }
    }

    /// Position of the element in its flow, assigned by the host from 0.
    pub fn sequence(&self) -> u64 {
        self.raw.meta.sequence
    }

    /// Time in nanoseconds since the Unix epoch at which the element left its source.
    pub fn timestamp_ns(&self) -> u64 {
        self.raw.meta.timestamp_ns
    }

    /// MIME type of the payload, or an empty string.
    pub fn content_type(&self) -> &str {
        &self.raw.meta.content_type
    }

    /// Length of the payload in bytes.
    pub fn size(&self) -> u64 {
        self.raw.payload.size()
    }

    /// Copies the whole payload into the component.
    pub fn bytes(&self) -> Vec<u8> {
        self.raw.payload.read_all()
    }

    /// Copies `len` bytes starting at `offset`; reading past the end returns only the bytes
    /// that exist.
    pub fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        self.raw.payload.read(offset, len)
    }

    /// Name of the flow the element travels in.
    pub fn flow_id(&self) -> String {
        self.raw.context.flow_id()
    }

    /// W3C trace id of the element's trace as 32 hex digits, or an empty string.
    pub fn trace_id(&self) -> String {
        self.raw.context.trace_id()
    }

    /// W3C span id of the current call as 16 hex digits, or an empty string.
    pub fn span_id(&self) -> String {
        self.raw.context.span_id()
    }

    /// Deadline of the current call in nanoseconds since the Unix epoch, or 0 for none.
    pub fn deadline_ns(&self) -> u64 {
        self.raw.context.deadline_ns()
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
