//! Element attributes: named text values the host keeps beside an element's payload, from
//! the connector that read it (a file's `path`, `line`, `offset` and `file-version`) and
//! from components, through `torvyn:attributes/element-attributes@0.1.0`
//! (`engine/host/attributes.rs`).
//!
//! Most elements carry none, and an element read from a file carries only where it was
//! read: that is kept as a [`ReadAt`] and written out as text only when a component asks.
//! Values a component sets are kept in a list shared by the copies of an element that a
//! fan-out makes, and copied only when one of them is changed.

use std::borrow::Cow;
use std::sync::Arc;

/// The most attributes one element carries: a set that would make more is refused
/// (`attribute-error.too-many`).
pub const MAX_ATTRIBUTES: usize = 64;

/// The most bytes an element's attributes take together: each its key and value in UTF-8
/// and [`ATTRIBUTE_OVERHEAD`]. A set that would make more is refused
/// (`attribute-error.too-large`). With the queues' bounds it caps the host memory a
/// component can fill with attributes: the bytes counted are within a few hundred of what
/// the host allocates for them.
pub const MAX_ATTRIBUTES_SIZE: usize = 8192;

/// What each attribute counts against [`MAX_ATTRIBUTES_SIZE`] beside its key and value:
/// about what its two strings and its place in the list take on the heap (three words
/// each, and the allocator's rounding).
pub const ATTRIBUTE_OVERHEAD: usize = 64;

/// The most outputs of one aggregator `flush` that can be given attributes.
pub(crate) const MAX_FLUSH_ATTRIBUTED: u32 = 1024;

/// Why a write to an element's attributes was refused: the cases of the WIT
/// `attribute-error`, in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// The call has no output at this index.
    #[error("the call hands no element on at this index")]
    NoSuchElement,
    /// More than [`MAX_ATTRIBUTES`] attributes.
    #[error("an element carries at most {MAX_ATTRIBUTES} attributes")]
    TooMany,
    /// More than [`MAX_ATTRIBUTES_SIZE`] bytes, or an empty key.
    #[error(
        "an element's attributes take at most {MAX_ATTRIBUTES_SIZE} bytes ({ATTRIBUTE_OVERHEAD} per attribute beside its key and value), and no key is empty"
    )]
    TooLarge,
}

/// Whether `pairs` fit the bounds of one element's attributes, as components' writes must
/// ([`MAX_ATTRIBUTES`], [`MAX_ATTRIBUTES_SIZE`], no empty key): what `cargo torvyn test`
/// checks of the attributes its fixture files give.
pub fn check_attributes(pairs: &[(String, String)]) -> Result<(), AttributeError> {
    Attributes::from_pairs(pairs).map(drop)
}

/// Where a connector read an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadAt {
    /// The file's path (`path`); `None` for standard input.
    pub(crate) path: Option<Arc<str>>,
    /// Which reading of the file (`file-version`: 16 hex digits, kept in its checkpoint, new
    /// when the file at `path` is replaced or truncated); `None` for standard input.
    pub(crate) version: Option<Arc<str>>,
    /// The line's number, from 1 (`line`); 0 where lines are not counted (`whole`
    /// framing, or a checkpoint that did not record them).
    pub(crate) line: u64,
    /// The byte at which the element starts in its file or stream (`offset`).
    pub(crate) offset: u64,
}

impl ReadAt {
    /// The keys of the attributes it may stand for, in order.
    const KEYS: [&str; 4] = ["path", "line", "offset", "file-version"];

    /// The value of attribute `key`, if it stands for one (only that one is written out).
    fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        match key {
            "path" => self.path.as_deref().map(Cow::Borrowed),
            "line" => (self.line > 0).then(|| Cow::Owned(self.line.to_string())),
            "offset" => Some(Cow::Owned(self.offset.to_string())),
            "file-version" => self.version.as_deref().map(Cow::Borrowed),
            _ => None,
        }
    }

    /// The attributes it stands for, in order.
    fn pairs(&self) -> impl Iterator<Item = (&'static str, Cow<'_, str>)> {
        (Self::KEYS.into_iter()).filter_map(|key| Some((key, self.get(key)?)))
    }
}

/// An element's attributes: one pointer, null for the many elements that have none, so
/// that elements stay small to move through queues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attributes(Option<Arc<Kept>>);

/// How attributes are kept, shared by the copies a fan-out makes until one is written to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kept {
    /// Where a connector read the element, until a write turns it into `Set`.
    ReadAt(ReadAt),
    /// Keys and values, in the order they were first set.
    Set(Vec<(String, String)>),
}

impl Attributes {
    /// The attributes of an element a connector read at `read_at`.
    pub(crate) fn read_at(read_at: ReadAt) -> Self {
        Attributes(Some(Arc::new(Kept::ReadAt(read_at))))
    }

    /// These keys and values, within the bounds a component's writes keep to (a test's
    /// fixture): the first one that would pass them is refused.
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Result<Self, AttributeError> {
        let mut attributes = Attributes::default();
        for (key, value) in pairs {
            attributes.set(key, value)?;
        }
        Ok(attributes)
    }

    /// The value of `key`, if it has one.
    pub(crate) fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        match self.0.as_deref()? {
            Kept::Set(set) => set
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Cow::Borrowed(v.as_str())),
            Kept::ReadAt(read_at) => read_at.get(key),
        }
    }

    /// Every key and value, in order.
    pub(crate) fn to_vec(&self) -> Vec<(String, String)> {
        match self.0.as_deref() {
            None => Vec::new(),
            Some(Kept::Set(set)) => set.clone(),
            Some(Kept::ReadAt(read_at)) => (read_at.pairs())
                .map(|(k, v)| (k.to_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// Sets `key` to `value`, refusing what would pass [`MAX_ATTRIBUTES`] or
    /// [`MAX_ATTRIBUTES_SIZE`] (or an empty key), which leaves it as it was.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<(), AttributeError> {
        if key.is_empty() {
            return Err(AttributeError::TooLarge);
        }
        let current = self.to_vec();
        let existing = current.iter().position(|(k, _)| k == key);
        let size: usize = (current.iter())
            .enumerate()
            .filter(|(i, _)| Some(*i) != existing)
            .map(|(_, (k, v))| footprint(k, v))
            .sum();
        if size + footprint(key, value) > MAX_ATTRIBUTES_SIZE {
            return Err(AttributeError::TooLarge);
        }
        if existing.is_none() && current.len() >= MAX_ATTRIBUTES {
            return Err(AttributeError::TooMany);
        }
        let set = self.written(current);
        match existing {
            Some(i) => set[i].1 = value.to_owned(),
            None => set.push((key.to_owned(), value.to_owned())),
        }
        Ok(())
    }

    /// Removes `key`, if it has it; an empty key is refused, as for [`Attributes::set`].
    pub(crate) fn remove(&mut self, key: &str) -> Result<(), AttributeError> {
        if key.is_empty() {
            return Err(AttributeError::TooLarge);
        }
        if self.get(key).is_some() {
            let current = self.to_vec();
            self.written(current).retain(|(k, _)| k != key);
        }
        Ok(())
    }

    /// The list to write to, unshared: `current` when it was kept otherwise.
    fn written(&mut self, current: Vec<(String, String)>) -> &mut Vec<(String, String)> {
        let kept = self
            .0
            .get_or_insert_with(|| Arc::new(Kept::Set(Vec::new())));
        let kept = Arc::make_mut(kept);
        if let Kept::ReadAt(_) = kept {
            *kept = Kept::Set(current);
        }
        match kept {
            Kept::Set(set) => set,
            Kept::ReadAt(_) => unreachable!("turned into a list above"),
        }
    }
}

/// The read-at attributes of the elements a source connector handed out that the driver
/// has not taken yet, in order. None are made when no stage of the flow reads attributes
/// ([`ReadAtQueue::omit`]): an element's attributes cost an allocation.
#[derive(Debug, Default)]
pub(crate) struct ReadAtQueue {
    kept: std::collections::VecDeque<Attributes>,
    omitted: bool,
}

impl ReadAtQueue {
    /// The next element handed out was read at `read_at` (worked out only when kept).
    pub(crate) fn push(&mut self, read_at: impl FnOnce() -> ReadAt) {
        if !self.omitted {
            self.kept.push_back(Attributes::read_at(read_at()));
        }
    }

    /// The attributes of the first element not taken yet: none once omitted.
    pub(crate) fn take(&mut self) -> Attributes {
        self.kept.pop_front().unwrap_or_default()
    }

    /// No stage of the flow reads attributes: none are made from now on.
    pub(crate) fn omit(&mut self) {
        self.omitted = true;
        self.kept.clear();
    }
}

/// What one attribute counts against [`MAX_ATTRIBUTES_SIZE`]: its key and value, and
/// [`ATTRIBUTE_OVERHEAD`] for what keeping them costs beside their bytes.
fn footprint(key: &str, value: &str) -> usize {
    key.len() + value.len() + ATTRIBUTE_OVERHEAD
}

/// The attributes one call of a component sees: its inputs' as they arrived, and what it
/// wrote for its outputs. Every call begins with none ([`CallAttributes::begin`]); a
/// call that takes elements has their attributes moved in, and back out after it: no copy
/// for an element whose attributes no component touches.
#[derive(Debug, Default)]
pub(crate) struct CallAttributes {
    /// By input position.
    pub(crate) inputs: Vec<Attributes>,
    /// By output position: `None` where the call wrote nothing.
    pub(crate) outputs: Vec<Option<Attributes>>,
    /// How many outputs the call may write to.
    slots: u32,
    /// An output starts from its input's attributes (a processor, filter or router).
    inherit: bool,
}

impl CallAttributes {
    /// A call begins with no inputs' attributes yet (pushed onto `inputs`), whose writes
    /// may address `slots` outputs, each starting from its input's when `inherit`.
    pub(crate) fn begin(&mut self, slots: u32, inherit: bool) {
        self.inputs.clear();
        self.outputs.clear();
        (self.slots, self.inherit) = (slots, inherit);
    }

    /// Input `index`'s attributes; empty where the call has no input there.
    pub(crate) fn input(&self, index: u32) -> Option<&Attributes> {
        self.inputs.get(index as usize)
    }

    /// Output `index`'s attributes, to write to: made on the first write from its input's
    /// (or from none).
    pub(crate) fn output(&mut self, index: u32) -> Result<&mut Attributes, AttributeError> {
        if index >= self.slots {
            return Err(AttributeError::NoSuchElement);
        }
        let i = index as usize;
        if self.outputs.len() <= i {
            self.outputs.resize(i + 1, None);
        }
        let base = match self.inherit {
            true => self.inputs.get(i).cloned().unwrap_or_default(),
            false => Attributes::default(),
        };
        Ok(self.outputs[i].get_or_insert(base))
    }

    /// What output `index` carries, given the attributes `carried` its element had before
    /// the call: what the call wrote, else `carried` where outputs inherit, else none.
    pub(crate) fn take_output(&mut self, index: usize, carried: Attributes) -> Attributes {
        match self.outputs.get_mut(index).and_then(Option::take) {
            Some(written) => written,
            None if self.inherit => carried,
            None => Attributes::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_file() -> Attributes {
        Attributes::read_at(ReadAt {
            path: Some("/var/log/app.log".into()),
            version: Some("00c0ffee00c0ffee".into()),
            line: 12,
            offset: 340,
        })
    }

    #[test]
    fn where_an_element_was_read_is_written_out_when_asked() {
        let attributes = from_file();
        assert_eq!(attributes.get("path").as_deref(), Some("/var/log/app.log"));
        assert_eq!(attributes.get("line").as_deref(), Some("12"));
        assert_eq!(attributes.get("offset").as_deref(), Some("340"));
        let version = attributes.get("file-version");
        assert_eq!(version.as_deref(), Some("00c0ffee00c0ffee"));
        assert_eq!(attributes.get("subject"), None);
        let stdin = Attributes::read_at(ReadAt {
            path: None,
            version: None,
            line: 0,
            offset: 7,
        });
        assert_eq!(stdin.to_vec(), [("offset".to_owned(), "7".to_owned())]);
        assert!(Attributes::default().to_vec().is_empty());
    }

    #[test]
    fn writes_keep_order_replace_in_place_and_leave_shared_copies_alone() {
        let mut one = from_file();
        one.set("level", "warn").unwrap();
        let shared = one.clone();
        one.set("line", "13").unwrap();
        one.remove("offset").unwrap();
        one.remove("absent").unwrap();
        assert_eq!(one.remove(""), Err(AttributeError::TooLarge));
        let keys: Vec<_> = one
            .to_vec()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let version = "file-version=00c0ffee00c0ffee";
        assert_eq!(
            keys,
            ["path=/var/log/app.log", "line=13", version, "level=warn"]
        );
        assert_eq!(shared.get("line").as_deref(), Some("12"));
        assert_eq!(shared.get("offset").as_deref(), Some("340"));
    }

    #[test]
    fn writes_past_the_bounds_are_refused_and_change_nothing() {
        let mut attributes = Attributes::default();
        for i in 0..MAX_ATTRIBUTES {
            attributes.set(&format!("k{i}"), "v").unwrap();
        }
        let full = attributes.clone();
        assert_eq!(
            attributes.set("one-more", "v"),
            Err(AttributeError::TooMany)
        );
        // Replacing a value is not one more.
        attributes.set("k0", "w").unwrap();
        let big = "x".repeat(MAX_ATTRIBUTES_SIZE);
        assert_eq!(attributes.set("k1", &big), Err(AttributeError::TooLarge));
        assert_eq!(attributes.set("", "v"), Err(AttributeError::TooLarge));
        assert_eq!(attributes.to_vec().len(), full.to_vec().len());
        assert_eq!(attributes.get("k1").as_deref(), Some("v"));
    }
}
