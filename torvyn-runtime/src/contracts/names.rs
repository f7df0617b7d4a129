//! Components whose copy of the contract's WIT dropped the package version: their
//! top-level imports and exports say `torvyn:streaming/types` where the contract says
//! `torvyn:streaming/types@0.1.0`, and are otherwise the 0.1.0 contract. The host reads
//! such names as 0.1.0, rewriting them in the binary before it compiles it (wasmtime
//! matches an unversioned name only with an unversioned one), and says which it rewrote.

use std::borrow::Cow;
use std::ops::Range;

use wasm_encoder::{ComponentSectionId, Encode};
use wasmparser::{BinaryReader, FromReader, Payload, SectionLimited};

use super::{CONTRACT_VERSION, ContractError, malformed, top_level};

/// The contract packages whose unversioned names are read as version 0.1.0.
const PACKAGES: [&str; 8] = [
    "torvyn:streaming",
    "torvyn:filtering",
    "torvyn:aggregation",
    "torvyn:capabilities",
    "torvyn:batching",
    "torvyn:attributes",
    "torvyn:runtime",
    "torvyn:buffers",
];

/// `name` at the contract version, when it names an interface of a contract package
/// without a version (`torvyn:streaming/types` gives `torvyn:streaming/types@0.1.0`).
pub(super) fn versioned(name: &str) -> Option<String> {
    if name.contains('@') {
        return None;
    }
    let (package, _) = name.split_once('/')?;
    PACKAGES
        .contains(&package)
        .then(|| format!("{name}@{CONTRACT_VERSION}"))
}

/// A component's bytes with its unversioned contract names given version 0.1.0.
#[derive(Debug)]
pub struct Normalised<'a> {
    /// The bytes to compile: the original ones when no name was rewritten.
    pub bytes: Cow<'a, [u8]>,
    /// The top-level import and export names rewritten, as the component spells them.
    pub unversioned: Vec<String>,
}

/// `bytes` with every top-level import and export name of a contract package that has
/// no version rewritten to its 0.1.0 name (see [`Normalised`]).
pub fn normalise(bytes: &[u8]) -> Result<Normalised<'_>, ContractError> {
    let mut out = Vec::new();
    let mut copied = 0;
    let mut unversioned = Vec::new();
    for section in top_level(bytes)? {
        let (id, range, items) = match section {
            Payload::ComponentImportSection(reader) => (
                ComponentSectionId::Import,
                reader.range(),
                named(reader, |import| import.name.name)?,
            ),
            Payload::ComponentExportSection(reader) => (
                ComponentSectionId::Export,
                reader.range(),
                named(reader, |export| export.name.name)?,
            ),
            _ => continue,
        };
        if !items.iter().any(|(_, name)| versioned(name).is_some()) {
            continue;
        }
        let start = section_start(bytes, &range)?;
        out.extend_from_slice(&bytes[copied..start]);
        let mut content = Vec::with_capacity(range.len() + 16 * items.len());
        // The item count, then each item: a name kind byte, the name, and the rest.
        let first = items.first().map_or(range.end, |(offset, _)| *offset);
        content.extend_from_slice(&bytes[range.start..first]);
        for (i, &(offset, name)) in items.iter().enumerate() {
            let end = items.get(i + 1).map_or(range.end, |(next, _)| *next);
            let mut reader = BinaryReader::new(&bytes[offset..end], offset);
            reader.read_u8().map_err(malformed)?;
            reader.read_string().map_err(malformed)?;
            let name_end = reader.original_position();
            content.push(bytes[offset]);
            match versioned(name) {
                Some(new) => {
                    unversioned.push(name.to_owned());
                    new.as_str().encode(&mut content);
                }
                None => content.extend_from_slice(&bytes[offset + 1..name_end]),
            }
            content.extend_from_slice(&bytes[name_end..end]);
        }
        out.push(id as u8);
        content.len().encode(&mut out);
        out.extend_from_slice(&content);
        copied = range.end;
    }
    if unversioned.is_empty() {
        return Ok(Normalised {
            bytes: Cow::Borrowed(bytes),
            unversioned,
        });
    }
    out.extend_from_slice(&bytes[copied..]);
    Ok(Normalised {
        bytes: Cow::Owned(out),
        unversioned,
    })
}

/// Each item of an import or export section: where it starts, and its name.
fn named<'a, T: FromReader<'a>>(
    reader: SectionLimited<'a, T>,
    name: impl Fn(&T) -> &'a str,
) -> Result<Vec<(usize, &'a str)>, ContractError> {
    (reader.into_iter_with_offsets())
        .map(|item| item.map(|(offset, item)| (offset, name(&item))))
        .collect::<Result<_, _>>()
        .map_err(malformed)
}

/// Where the section whose content is `range` starts: at its id byte, before the
/// LEB128 size of the content (which an encoder may have padded).
pub(super) fn section_start(bytes: &[u8], range: &Range<usize>) -> Result<usize, ContractError> {
    for width in 1..=5 {
        let Some(start) = range.start.checked_sub(1 + width) else {
            break;
        };
        let mut reader = BinaryReader::new(&bytes[start + 1..range.start], start + 1);
        if reader.read_var_u32().ok() == Some(range.len() as u32) && reader.eof() {
            return Ok(start);
        }
    }
    Err(ContractError::Malformed(
        "a section's size does not precede its content".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component importing `imports` (each an empty instance) and exporting the first
    /// import under each of `exports`.
    fn component(imports: &[&str], exports: &[&str]) -> Vec<u8> {
        use wasm_encoder::{
            Component, ComponentExportKind, ComponentExportSection, ComponentImportSection,
            ComponentTypeRef, ComponentTypeSection, InstanceType,
        };
        let mut component = Component::new();
        let mut types = ComponentTypeSection::new();
        types.instance(&InstanceType::new());
        component.section(&types);
        let mut import_section = ComponentImportSection::new();
        for name in imports {
            import_section.import(*name, ComponentTypeRef::Instance(0));
        }
        component.section(&import_section);
        let mut export_section = ComponentExportSection::new();
        for name in exports {
            export_section.export(*name, ComponentExportKind::Instance, 0, None);
        }
        component.section(&export_section);
        component.finish()
    }

    #[test]
    fn unversioned_contract_names_are_read_as_0_1_0_and_others_left_alone() {
        let bytes = component(
            &[
                "torvyn:streaming/types",
                "wasi:cli/stdout@0.2.6",
                "acme:x/y",
            ],
            &[
                "torvyn:filtering/filter",
                "torvyn:streaming/lifecycle@0.1.0",
            ],
        );
        let normalised = normalise(&bytes).unwrap();
        assert_eq!(
            normalised.unversioned,
            ["torvyn:streaming/types", "torvyn:filtering/filter"]
        );
        wasmparser::Validator::new()
            .validate_all(&normalised.bytes)
            .unwrap();
        let info = crate::contracts::inspect(&normalised.bytes).unwrap();
        assert_eq!(
            info.imports,
            [
                "torvyn:streaming/types@0.1.0",
                "wasi:cli/stdout@0.2.6",
                "acme:x/y"
            ]
        );
        assert_eq!(
            info.exports,
            [
                "torvyn:filtering/filter@0.1.0",
                "torvyn:streaming/lifecycle@0.1.0"
            ]
        );
        assert!(info.unversioned.is_empty());
        // Reading the original gives the same names, and says which were unversioned.
        let original = crate::contracts::inspect(&bytes).unwrap();
        assert_eq!(original.imports, info.imports);
        assert_eq!(original.unversioned, normalised.unversioned);
    }

    #[test]
    fn a_component_with_versioned_names_is_left_as_it_is() {
        let bytes = component(&["torvyn:streaming/types@0.1.0"], &[]);
        let normalised = normalise(&bytes).unwrap();
        assert!(matches!(normalised.bytes, Cow::Borrowed(_)));
        assert!(normalised.unversioned.is_empty());
    }
}
