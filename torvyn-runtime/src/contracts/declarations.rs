//! The part of a component that declares its imports, on its own: the top-level type,
//! alias and import sections before its first module, instance or function. Cut after
//! any of its imports, it is a component without code that imports just as much, which
//! the host links to learn, before compiling the whole component, whether it provides
//! them (`engine/imports.rs`).

use std::ops::Range;

use wasmparser::Payload;

use super::names::section_start;
use super::{ContractError, malformed, top_level};

/// A component's import declarations, cut where asked.
#[derive(Debug)]
pub struct Declarations<'a> {
    bytes: &'a [u8],
    /// The header: the magic number and version.
    header: Range<usize>,
    sections: Vec<Section>,
    names: Vec<String>,
}

/// A section of the declarations: the whole of it, with the items of an import section.
#[derive(Debug)]
struct Section {
    /// From its id byte to its end.
    whole: Range<usize>,
    /// For an import section: where its count ends and each item starts.
    imports: Option<(usize, Vec<usize>)>,
}

impl<'a> Declarations<'a> {
    /// The declarations of the component `bytes`.
    pub fn read(bytes: &'a [u8]) -> Result<Self, ContractError> {
        let mut declarations = Declarations {
            bytes,
            header: 0..bytes.len().min(8),
            sections: Vec::new(),
            names: Vec::new(),
        };
        for section in top_level(bytes)? {
            let (range, imports) = match section {
                Payload::Version { .. } | Payload::CustomSection(_) => continue,
                Payload::ComponentTypeSection(reader) => (reader.range(), None),
                Payload::ComponentAliasSection(reader) => (reader.range(), None),
                Payload::CoreTypeSection(reader) => (reader.range(), None),
                Payload::ComponentImportSection(reader) => {
                    let range = reader.range();
                    let mut starts = Vec::new();
                    let mut count_end = range.end;
                    for (i, item) in reader.into_iter_with_offsets().enumerate() {
                        let (offset, import) = item.map_err(malformed)?;
                        if i == 0 {
                            count_end = offset;
                        }
                        starts.push(offset);
                        declarations.names.push(import.name.name.to_owned());
                    }
                    (range, Some((count_end, starts)))
                }
                _ => break,
            };
            let whole = section_start(bytes, &range)?..range.end;
            declarations.sections.push(Section { whole, imports });
        }
        Ok(declarations)
    }

    /// The names of the imports declared, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// A component of the declarations up to and including the import at `index` in
    /// [`Declarations::names`].
    pub fn through(&self, index: usize) -> Vec<u8> {
        let mut out = self.bytes[self.header.clone()].to_vec();
        let mut seen = 0;
        for section in &self.sections {
            let Some((count_end, starts)) = &section.imports else {
                out.extend_from_slice(&self.bytes[section.whole.clone()]);
                continue;
            };
            if index >= seen + starts.len() {
                out.extend_from_slice(&self.bytes[section.whole.clone()]);
                seen += starts.len();
                continue;
            }
            // The first items of this section, under a count of their own.
            let kept = index - seen + 1;
            let end = starts.get(kept).copied().unwrap_or(section.whole.end);
            let mut content = Vec::new();
            wasm_encoder::Encode::encode(&kept, &mut content);
            content.extend_from_slice(&self.bytes[*count_end..end]);
            out.push(wasm_encoder::ComponentSectionId::Import as u8);
            wasm_encoder::Encode::encode(&content.len(), &mut out);
            out.extend_from_slice(&content);
            break;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
    };

    #[test]
    fn the_declarations_cut_after_any_import_are_a_valid_component() {
        let mut component = Component::new();
        let mut types = ComponentTypeSection::new();
        types.instance(&InstanceType::new());
        component.section(&types);
        let mut imports = ComponentImportSection::new();
        imports.import("a:b/c@1.0.0", ComponentTypeRef::Instance(0));
        imports.import("a:b/d", ComponentTypeRef::Instance(0));
        component.section(&imports);
        let mut imports = ComponentImportSection::new();
        imports.import("e:f/g", ComponentTypeRef::Instance(0));
        component.section(&imports);
        let bytes = component.finish();
        let declarations = Declarations::read(&bytes).unwrap();
        assert_eq!(declarations.names(), ["a:b/c@1.0.0", "a:b/d", "e:f/g"]);
        for (index, wanted) in [(0, 1), (1, 2), (2, 3)] {
            let cut = declarations.through(index);
            wasmparser::Validator::new().validate_all(&cut).unwrap();
            assert_eq!(
                crate::contracts::inspect(&cut).unwrap().imports.len(),
                wanted
            );
        }
        assert_eq!(declarations.through(2), bytes);
    }
}
