//! Read access to the element a component is handed.

use crate::Error;
use crate::bindings::element_attributes;
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
    /// Its position in the call: what names it to `torvyn:attributes`.
    index: u32,
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
            index: 0,
        }
    }

    /// Element `index` of a batch, whose payload came with the call.
    pub(crate) fn inline(
        meta: &'a ElementMeta,
        payload: &'a [u8],
        context: &'a FlowContext,
        index: u32,
    ) -> Self {
        Element {
            meta,
            payload: Payload::Inline(payload),
            context,
            index,
        }
    }

    /// The value of the element's attribute `key`, if it has one: what the host knows of
    /// it beside its payload, such as the `path`, `line` and `offset` where a `file`
    /// source read it, or what an earlier stage set.
    pub fn attribute(&self, key: &str) -> Option<String> {
        element_attributes::get(self.index, key)
    }

    /// Every attribute of the element as key and value, in the order they were set.
    pub fn attributes(&self) -> Vec<(String, String)> {
        element_attributes::all(self.index)
    }

    /// Sets attribute `key` to `value` on what this call hands on for the element: a
    /// processor's output, the element a filter keeps or a router routes, which start with
    /// the element's own attributes; an aggregator's output of this call, which starts
    /// with none. This element's attributes do not change. An element carries at most 64
    /// attributes of 8192 bytes in all (each key and value, and 64 bytes per attribute),
    /// and a sink hands nothing on: past those, it is an [`Error::Internal`].
    pub fn set_attribute(&self, key: &str, value: &str) -> Result<(), Error> {
        element_attributes::set(self.index, key, value).map_err(|why| attribute_error(key, why))
    }

    /// Removes attribute `key` from what this call hands on for the element (see
    /// [`set_attribute`](Element::set_attribute)).
    pub fn remove_attribute(&self, key: &str) -> Result<(), Error> {
        element_attributes::remove(self.index, key).map_err(|why| attribute_error(key, why))
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

/// Why the host refused to write attribute `key`, as an error of the call.
pub(crate) fn attribute_error(key: &str, why: element_attributes::AttributeError) -> Error {
    use element_attributes::AttributeError;
    if key.is_empty() {
        return Error::Internal("cannot write an attribute with an empty key".to_owned());
    }
    let why = match why {
        AttributeError::NoSuchElement => "this call hands no element on",
        AttributeError::TooMany => "an element carries at most 64 attributes",
        AttributeError::TooLarge => {
            "an element's attributes take at most 8192 bytes (64 per attribute beside its key and value)"
        }
    };
    Error::Internal(format!("cannot write attribute `{key}`: {why}"))
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
