//! The contract as the host sees it: which interfaces make which role, and what a
//! component binary actually exports.

use std::fmt;

/// Version of the contract packages this runtime implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Export name of the optional lifecycle interface.
pub const LIFECYCLE: &str = "torvyn:streaming/lifecycle@0.1.0";

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

    /// The role whose interface a component exports, from the names of its exports.
    pub fn from_exports(exports: &[String]) -> Result<Role, ContractError> {
        let mut found = Vec::new();
        for export in exports {
            let (interface, version) = export.split_once('@').unwrap_or((export, ""));
            if let Some(role) = Role::ALL.into_iter().find(|r| r.interface() == interface) {
                if version != CONTRACT_VERSION {
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
        f.write_str(match self {
            Role::Source => "source",
            Role::Processor => "processor",
            Role::Sink => "sink",
            Role::Filter => "filter",
            Role::Router => "router",
            Role::Aggregator => "aggregator",
        })
    }
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
    #[diagnostic(code(torvyn::contract::version))]
    Version {
        /// The export in question.
        export: String,
    },
}

/// The names of a component's top-level exports.
pub fn decode_exports(bytes: &[u8]) -> Result<Vec<String>, ContractError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(ContractError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(ContractError::CoreModule);
    }
    let mut exports = Vec::new();
    // Nested modules and components open with a section and close with their own `End`;
    // only the outermost component's exports count.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ContractError::Malformed(e.to_string()))?;
        match payload {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    let export = export.map_err(|e| ContractError::Malformed(e.to_string()))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(exports)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(
            decode_exports(b"hello"),
            Err(ContractError::NotWasm)
        ));
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(
            decode_exports(core),
            Err(ContractError::CoreModule)
        ));
        let truncated = b"\0asm\x0d\0\x01\0\x07";
        assert!(matches!(
            decode_exports(truncated),
            Err(ContractError::Malformed(_))
        ));
    }
}
