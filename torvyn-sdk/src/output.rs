//! Elements a component produces, and the host-owned buffers they are written into.

use crate::Error;
use crate::bindings::types::{Buffer, ElementMeta, MutableBuffer, OutputElement};
use crate::bindings::{buffer_allocator, buffer_builder, element_attributes};
use crate::element::attribute_error;

/// Asks the host for an empty writable buffer able to hold at least `capacity` bytes.
pub fn allocate(capacity: u64) -> Result<OutputBuffer, Error> {
    let raw = buffer_allocator::allocate(capacity)?;
    Ok(OutputBuffer {
        raw,
        content_type: String::new(),
    })
}

/// A writable buffer in host memory; [`freeze`](OutputBuffer::freeze) turns it into an
/// [`Output`].
pub struct OutputBuffer {
    raw: MutableBuffer,
    content_type: String,
}

impl OutputBuffer {
    /// Adds `bytes` at the end of the content.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.raw.append(bytes)?)
    }

    /// Overwrites bytes at `offset`; the buffer grows up to its capacity when the write ends
    /// past the current size.
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.raw.write(offset, bytes)?)
    }

    /// Sets the MIME type carried with the content and with the element made from it. The
    /// host takes at most 8 192 bytes: a longer one traps the component.
    pub fn set_content_type(&mut self, content_type: &str) {
        self.raw.set_content_type(content_type);
        self.content_type = content_type.to_owned();
    }

    /// Length of the content written so far in bytes.
    pub fn size(&self) -> u64 {
        self.raw.size()
    }

    /// Largest size this buffer can reach.
    pub fn capacity(&self) -> u64 {
        self.raw.capacity()
    }

    /// Makes the content immutable and wraps it as an element ready to be returned.
    pub fn freeze(self) -> Output {
        // The mutable handle is dropped here, which lets the host reclaim it.
        Output {
            payload: self.raw.freeze(),
            content_type: self.content_type,
            attributes: Vec::new(),
            write_attributes: None,
        }
    }
}

impl std::fmt::Debug for OutputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBuffer")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// An element a component produces. Its payload already lives in host memory.
///
/// The host assigns the sequence number and timestamp of every element, so an `Output`
/// carries only its payload, its content type and the attributes it sets or removes.
pub struct Output {
    payload: Buffer,
    content_type: String,
    /// Attributes to set (`Some`) or remove (`None`), in order.
    attributes: Vec<(String, Option<String>)>,
    /// What writes them, once there are any. Reached only through this field, so that a
    /// component that never sets an attribute does not import `torvyn:attributes` (the
    /// linker drops what nothing calls), and runs on hosts without it.
    write_attributes: Option<WriteAttributes>,
}

/// Writes attributes as output `index` of the current call.
type WriteAttributes = fn(u32, &[(String, Option<String>)]) -> Result<(), Error>;

fn write_attributes(index: u32, attributes: &[(String, Option<String>)]) -> Result<(), Error> {
    for (key, value) in attributes {
        let written = match value {
            Some(value) => element_attributes::set(index, key, value),
            None => element_attributes::remove(index, key),
        };
        written.map_err(|why| attribute_error(key, why))?;
    }
    Ok(())
}

impl Output {
    /// Copies `bytes` into a new host buffer, in one call into the host
    /// (`torvyn:buffers/buffer-builder@0.1.0`, which hosts before it do not provide; see
    /// [`allocate`] for the calls of the 0.1.0 contract alone).
    pub fn bytes(bytes: &[u8]) -> Result<Output, Error> {
        Self::filled(bytes, "")
    }

    /// Copies `text` into a new host buffer with content type `text/plain`, as
    /// [`Output::bytes`] does.
    pub fn text(text: &str) -> Result<Output, Error> {
        Self::filled(text.as_bytes(), "text/plain")
    }

    /// A new host buffer holding `bytes`, the buffer and the element of content type
    /// `content_type`, as [`OutputBuffer::set_content_type`] sets both.
    fn filled(bytes: &[u8], content_type: &str) -> Result<Output, Error> {
        Ok(Output {
            payload: buffer_builder::from_bytes(bytes, content_type)?,
            content_type: content_type.to_owned(),
            attributes: Vec::new(),
            write_attributes: None,
        })
    }

    /// Wraps a filled buffer; the same as [`OutputBuffer::freeze`].
    pub fn from_buffer(buffer: OutputBuffer) -> Output {
        buffer.freeze()
    }

    /// Sets the content type of the element (the frozen payload keeps the one it had). The
    /// host takes at most 8 192 bytes: a longer one traps the component when the output is
    /// handed over.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Output {
        self.content_type = content_type.into();
        self
    }

    /// Sets attribute `key` of the element to `value`. A processor's output starts with
    /// its input's attributes; a source's or an aggregator's with none. An element carries
    /// at most 64 attributes of 8192 bytes in all (each key and value, and 64 bytes per
    /// attribute), and only the first 1024 outputs of an aggregator's `flush` can carry
    /// any: past that, the call that returns this output fails with an
    /// [`Error::Internal`].
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Output {
        self.attributes.push((key.into(), Some(value.into())));
        self.write_attributes = Some(write_attributes);
        self
    }

    /// Removes attribute `key` from the element (one its input had, for a processor).
    pub fn without_attribute(mut self, key: impl Into<String>) -> Output {
        self.attributes.push((key.into(), None));
        self.write_attributes = Some(write_attributes);
        self
    }

    /// MIME type of the element, or an empty string.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Length of the payload in bytes.
    pub fn size(&self) -> u64 {
        self.payload.size()
    }

    /// Writes its attributes as output `index` of the call, and builds the WIT record; the
    /// host overwrites `sequence` and `timestamp_ns` anyway.
    pub(crate) fn into_element(
        self,
        index: u32,
        sequence: u64,
        timestamp_ns: u64,
    ) -> Result<OutputElement, Error> {
        if let Some(write) = self.write_attributes {
            write(index, &self.attributes)?;
        }
        Ok(OutputElement {
            meta: ElementMeta {
                sequence,
                timestamp_ns,
                content_type: self.content_type,
            },
            payload: self.payload,
        })
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}
