//! The contract as the host sees it: which interfaces make which role, and what a
//! component binary actually exports.

use std::fmt;

mod declarations;
mod names;

pub use declarations::Declarations;
pub use names::{Normalised, normalise};

/// Version of the contract packages this runtime implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Version of the `torvyn:batching` package this runtime calls.
pub const BATCHING_VERSION: &str = "0.1.0";

/// What a component does in a flow, given by the interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Exports `torvyn:streaming/source`: produces elements.
    Source,
    /// Exports `torvyn:streaming/processor`: turns each element into zero or one.
    Processor,
    /// Exports `torvyn:streaming/sink`: consumes elements.
    Sink,
    /// Exports `torvyn:filtering/filter`: keeps or drops elements.
    Filter,
    /// Exports `torvyn:filtering/router`: sends elements to named ports.
    Router,
    /// Exports `torvyn:aggregation/aggregator`: folds elements into aggregates.
    Aggregator,
}

impl Role {
    /// Every role, in the order the CLI lists them.
    pub const ALL: [Role; 6] = [
        Role::Source,
        Role::Processor,
        Role::Sink,
        Role::Filter,
        Role::Router,
        Role::Aggregator,
    ];

    /// The role's name, as manifests and the command line write it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Processor => "processor",
            Role::Sink => "sink",
            Role::Filter => "filter",
            Role::Router => "router",
            Role::Aggregator => "aggregator",
        }
    }

    /// The interface (without version) a component of this role exports.
    pub fn interface(self) -> &'static str {
        match self {
            Role::Source => "torvyn:streaming/source",
            Role::Processor => "torvyn:streaming/processor",
            Role::Sink => "torvyn:streaming/sink",
            Role::Filter => "torvyn:filtering/filter",
            Role::Router => "torvyn:filtering/router",
            Role::Aggregator => "torvyn:aggregation/aggregator",
        }
    }

    /// The contract world a component of this role with these exports targets: the
    /// smallest that holds them all, e.g. `torvyn:streaming/managed-transform@0.1.0` for a
    /// processor that also exports `lifecycle`, `torvyn:batching/batch-transform@0.1.0`
    /// for one that also exports `batch-processor`.
    pub fn world(self, exports: &[String]) -> String {
        let exports_interface = |name: &str| {
            (exports.iter()).any(|e| e.split_once('@').map_or(e.as_str(), |(i, _)| i) == name)
        };
        let batched = self.batch_interface().is_some_and(exports_interface);
        let lifecycle = exports_interface("torvyn:streaming/lifecycle");
        let world = match self {
            Role::Source if batched => "torvyn:batching/batch-data-source",
            Role::Processor if batched => "torvyn:batching/batch-transform",
            Role::Sink if batched => "torvyn:batching/batch-data-sink",
            Role::Source => "torvyn:streaming/data-source",
            Role::Processor if lifecycle => "torvyn:streaming/managed-transform",
            Role::Processor => "torvyn:streaming/transform",
            Role::Sink => "torvyn:streaming/data-sink",
            Role::Filter => "torvyn:filtering/content-filter",
            Role::Router => "torvyn:filtering/content-router",
            Role::Aggregator => "torvyn:aggregation/stream-aggregator",
        };
        format!("{world}@{CONTRACT_VERSION}")
    }

    /// The interface (without version) through which a component of this role may also
    /// take or hand over elements in batches (package `torvyn:batching`), if the role has one.
    pub fn batch_interface(self) -> Option<&'static str> {
        match self {
            Role::Source => Some("torvyn:batching/batch-source"),
            Role::Processor => Some("torvyn:batching/batch-processor"),
            Role::Sink => Some("torvyn:batching/batch-sink"),
            Role::Filter | Role::Router | Role::Aggregator => None,
        }
    }

    /// Whether `exports` holds this role's batch interface at a version this runtime calls.
    pub fn batched(self, exports: &[String]) -> bool {
        (self.batch_interface()).is_some_and(|wanted| exports_at(exports, wanted, BATCHING_VERSION))
    }

    /// The role whose interface a component exports, from the names of its exports.
    pub fn from_exports(exports: &[String]) -> Result<Role, ContractError> {
        let mut found = Vec::new();
        for export in exports {
            let (interface, version) = export.split_once('@').unwrap_or((export, ""));
            if let Some(role) = Role::ALL.into_iter().find(|r| r.interface() == interface) {
                // The component provides the role; the host calls it as 0.1.0 does.
                if !compatible(version, CONTRACT_VERSION) {
                    return Err(ContractError::Version {
                        export: export.clone(),
                    });
                }
                found.push(role);
            }
        }
        match found.as_slice() {
            [role] => Ok(*role),
            [] => Err(ContractError::NoRole {
                exports: if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                },
            }),
            several => Err(ContractError::SeveralRoles {
                roles: several
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `exports` holds the lifecycle interface at a version this runtime calls (a
/// component exporting `lifecycle@0.1.1` gets its `init` and `teardown` as one exporting
/// 0.1.0 does).
pub fn exports_lifecycle(exports: &[String]) -> bool {
    exports_at(exports, "torvyn:streaming/lifecycle", CONTRACT_VERSION)
}

/// Whether `exports` holds `interface` (named without a version) at a version that serves
/// a caller of `version`.
fn exports_at(exports: &[String], interface: &str, version: &str) -> bool {
    exports.iter().any(|export| {
        let (name, at) = export.split_once('@').unwrap_or((export, ""));
        name == interface && compatible(at, version)
    })
}

/// Why a binary is not a usable component.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ContractError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    #[diagnostic(
        code(torvyn::contract::not_wasm),
        help("point the component's `path` at a `.wasm` built for wasm32-wasip2")
    )]
    NotWasm,
    /// A core module rather than a component.
    #[error("this is a core WebAssembly module, not a component")]
    #[diagnostic(
        code(torvyn::contract::core_module),
        help(
            "build it for the `wasm32-wasip2` target (`cargo torvyn build`), which produces a component"
        )
    )]
    CoreModule,
    /// The binary is malformed.
    #[error("malformed component: {0}")]
    #[diagnostic(code(torvyn::contract::malformed))]
    Malformed(String),
    /// No role interface is exported.
    #[error("exports no Torvyn role interface (it exports {exports})")]
    #[diagnostic(
        code(torvyn::contract::no_role),
        help(
            "a component must export one of torvyn:streaming/source, processor or sink, torvyn:filtering/filter or router, or torvyn:aggregation/aggregator at version 0.1.0"
        )
    )]
    NoRole {
        /// What it exports instead.
        exports: String,
    },
    /// Several role interfaces are exported.
    #[error("exports several roles at once ({roles})")]
    #[diagnostic(
        code(torvyn::contract::several_roles),
        help("split it into one component per role")
    )]
    SeveralRoles {
        /// The roles found.
        roles: String,
    },
    /// A role interface of another contract version.
    #[error("exports `{export}`, but this runtime implements contract version 0.1.0")]
    #[diagnostic(
        code(torvyn::contract::version),
        help(
            "build it against torvyn:streaming@0.1 (torvyn-sdk 0.1), or run it on a host of its version"
        )
    )]
    Version {
        /// The export in question.
        export: String,
    },
}

/// Name of the custom section in which a component lists the capabilities it needs, one
/// per line (`cargo torvyn build` writes it from `[package.metadata.torvyn] capabilities`).
pub const CAPABILITIES_SECTION: &str = "torvyn:capabilities";

/// What a component binary says about itself at its top level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Names of its exports, e.g. `torvyn:streaming/processor@0.1.0`, each contract
    /// name without a version read as 0.1.0 (see [`normalise`]).
    pub exports: Vec<String>,
    /// Names of its imports, e.g. `wasi:cli/stdout@0.2.6`, read as `exports` are.
    pub imports: Vec<String>,
    /// Its import and export names of a contract package without a version, as it
    /// spells them (e.g. `torvyn:streaming/types`): the host reads them as 0.1.0.
    pub unversioned: Vec<String>,
    /// Capabilities it says it needs (see [`CAPABILITIES_SECTION`]).
    pub capabilities: Vec<String>,
}

/// Whether an interface at version `provided` serves a user that asks for `wanted`: the
/// same major version (the same minor for `0.x`), and no older. Unversioned names match
/// only each other.
pub fn compatible(provided: &str, wanted: &str) -> bool {
    match (
        semver::Version::parse(provided),
        semver::Version::parse(wanted),
    ) {
        (Ok(provided), Ok(wanted)) => {
            let line = |v: &semver::Version| {
                if v.major == 0 {
                    (0, v.minor)
                } else {
                    (v.major, 0)
                }
            };
            line(&provided) == line(&wanted) && provided >= wanted
        }
        _ => provided == wanted,
    }
}

fn malformed(error: wasmparser::BinaryReaderError) -> ContractError {
    ContractError::Malformed(error.to_string())
}

/// The sections of the outermost component, in order: nested modules and components
/// (which open with a section and close with their own `End`) are skipped.
fn top_level(bytes: &[u8]) -> Result<Vec<wasmparser::Payload<'_>>, ContractError> {
    let mut sections = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(malformed)?;
        match payload {
            wasmparser::Payload::ModuleSection {
                unchecked_range: range,
                ..
            }
            | wasmparser::Payload::ComponentSection {
                unchecked_range: range,
                ..
            } => {
                // The parser takes a nested module's size on trust; a size past the end
                // would make what follows it look nested.
                if range.end > bytes.len() {
                    return Err(ContractError::Malformed(
                        "a nested module or component runs past the end of the file".into(),
                    ));
                }
                depth += 1;
            }
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            _ if depth == 0 => sections.push(payload),
            _ => {}
        }
    }
    Ok(sections)
}

/// Reads a component's top-level imports, exports and declared capabilities.
pub fn inspect(bytes: &[u8]) -> Result<ComponentInfo, ContractError> {
    fn read(name: &str, unversioned: &mut Vec<String>) -> String {
        match names::versioned(name) {
            Some(versioned) => {
                unversioned.push(name.to_owned());
                versioned
            }
            None => name.to_owned(),
        }
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(ContractError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(ContractError::CoreModule);
    }
    let mut info = ComponentInfo::default();
    for section in top_level(bytes)? {
        match section {
            wasmparser::Payload::ComponentExportSection(exports) => {
                for export in exports {
                    let name = export.map_err(malformed)?.name.name;
                    info.exports.push(read(name, &mut info.unversioned));
                }
            }
            wasmparser::Payload::ComponentImportSection(imports) => {
                for import in imports {
                    let name = import.map_err(malformed)?.name.name;
                    info.imports.push(read(name, &mut info.unversioned));
                }
            }
            wasmparser::Payload::CustomSection(custom) if custom.name() == CAPABILITIES_SECTION => {
                let text = std::str::from_utf8(custom.data()).map_err(|_| {
                    ContractError::Malformed(format!("`{CAPABILITIES_SECTION}` is not UTF-8"))
                })?;
                info.capabilities = text.lines().map(str::to_owned).collect();
            }
            _ => {}
        }
    }
    Ok(info)
}

/// `bytes` with its capabilities section saying `capabilities` (removed when empty): the
/// old section, if any, is dropped and the new one appended.
pub fn with_capabilities(bytes: &[u8], capabilities: &[String]) -> Result<Vec<u8>, ContractError> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut copied = 0;
    for section in top_level(bytes)? {
        if let wasmparser::Payload::CustomSection(custom) = section
            && custom.name() == CAPABILITIES_SECTION
        {
            // The section's id byte and size come before the range the reader covers.
            let range = custom.range();
            let start = names::section_start(bytes, &range)?;
            out.extend_from_slice(&bytes[copied..start]);
            copied = range.end;
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    if !capabilities.is_empty() {
        let section = wasm_encoder::CustomSection {
            name: CAPABILITIES_SECTION.into(),
            data: capabilities.join("\n").into_bytes().into(),
        };
        // A custom section is encoded alike in components and core modules.
        wasm_encoder::Section::append_to(&section, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_and_its_exports_name_the_smallest_world_that_holds_them() {
        let exports = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("{n}@0.1.0"))
                .collect::<Vec<_>>()
        };
        let processor = exports(&["torvyn:streaming/processor"]);
        assert_eq!(
            Role::Processor.world(&processor),
            "torvyn:streaming/transform@0.1.0"
        );
        let managed = exports(&["torvyn:streaming/processor", "torvyn:streaming/lifecycle"]);
        assert_eq!(
            Role::Processor.world(&managed),
            "torvyn:streaming/managed-transform@0.1.0"
        );
        let batch = exports(&[
            "torvyn:streaming/sink",
            "torvyn:streaming/lifecycle",
            "torvyn:batching/batch-sink",
        ]);
        assert_eq!(
            Role::Sink.world(&batch),
            "torvyn:batching/batch-data-sink@0.1.0"
        );
        assert_eq!(
            Role::Router.world(&exports(&["torvyn:filtering/router"])),
            "torvyn:filtering/content-router@0.1.0"
        );
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_role_comes_from_the_exported_interface() {
        let exports = names(&[
            "torvyn:streaming/processor@0.1.0",
            "torvyn:streaming/lifecycle@0.1.0",
        ]);
        assert_eq!(Role::from_exports(&exports).unwrap(), Role::Processor);
        let exports = names(&["torvyn:filtering/filter@0.1.0"]);
        assert_eq!(Role::from_exports(&exports).unwrap(), Role::Filter);
    }

    #[test]
    fn a_batch_interface_counts_only_for_its_own_role_and_version() {
        let exports = names(&[
            "torvyn:streaming/processor@0.1.0",
            "torvyn:batching/batch-processor@0.1.2",
            "torvyn:batching/batch-sink@0.1.0",
        ]);
        assert_eq!(Role::from_exports(&exports).unwrap(), Role::Processor);
        assert!(Role::Processor.batched(&exports));
        assert!(!Role::Source.batched(&exports));
        assert!(!Role::Filter.batched(&exports));
        let newer = names(&["torvyn:batching/batch-processor@0.2.0"]);
        assert!(!Role::Processor.batched(&newer));
    }

    #[test]
    fn lifecycle_counts_at_any_compatible_version() {
        // It was matched by its exact 0.1.0 name: a 0.1.1 lifecycle was never called.
        assert!(exports_lifecycle(&names(&[
            "torvyn:streaming/lifecycle@0.1.0"
        ])));
        assert!(exports_lifecycle(&names(&[
            "torvyn:streaming/lifecycle@0.1.1"
        ])));
        assert!(!exports_lifecycle(&names(&[
            "torvyn:streaming/lifecycle@0.2.0"
        ])));
        assert!(!exports_lifecycle(&names(&["torvyn:streaming/lifecycle"])));
    }

    #[test]
    fn missing_several_or_other_version_roles_are_errors() {
        assert!(matches!(
            Role::from_exports(&names(&["wasi:cli/run@0.2.6"])),
            Err(ContractError::NoRole { .. })
        ));
        assert!(matches!(
            Role::from_exports(&names(&[
                "torvyn:streaming/source@0.1.0",
                "torvyn:streaming/sink@0.1.0"
            ])),
            Err(ContractError::SeveralRoles { .. })
        ));
        assert!(matches!(
            Role::from_exports(&names(&["torvyn:streaming/sink@0.2.0"])),
            Err(ContractError::Version { .. })
        ));
    }

    #[test]
    fn non_components_are_recognised() {
        assert!(matches!(inspect(b"hello"), Err(ContractError::NotWasm)));
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(inspect(core), Err(ContractError::CoreModule)));
        let truncated = b"\0asm\x0d\0\x01\0\x07";
        assert!(matches!(
            inspect(truncated),
            Err(ContractError::Malformed(_))
        ));
    }

    #[test]
    fn a_nested_module_that_runs_past_the_end_is_malformed() {
        // Found by the `component` fuzz target: the parser trusts a nested module's size,
        // so what followed it looked nested, and a capabilities section written there was
        // not read back.
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        bytes.extend_from_slice(&[0x01, 0xff, 0x01]);
        bytes.extend_from_slice(b"\0asm\x01\0\0\0");
        assert!(matches!(inspect(&bytes), Err(ContractError::Malformed(_))));
    }

    #[test]
    fn versions_are_compatible_within_a_line_and_never_older() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.2.0"));
        assert!(!compatible("2.0.0", "1.2.0"));
        assert!(compatible("", ""));
        assert!(!compatible("", "0.1.0"));
    }

    #[test]
    fn the_capabilities_section_is_written_replaced_and_read() {
        // The smallest component: the header alone.
        let empty = b"\0asm\x0d\0\x01\0".to_vec();
        let one = with_capabilities(&empty, &["env:HOME".into()]).unwrap();
        assert_eq!(inspect(&one).unwrap().capabilities, ["env:HOME"]);
        let two = with_capabilities(&one, &["network".into(), "filesystem:read".into()]).unwrap();
        assert_eq!(
            inspect(&two).unwrap().capabilities,
            ["network", "filesystem:read"]
        );
        assert_eq!(with_capabilities(&two, &[]).unwrap(), empty);
    }
}
