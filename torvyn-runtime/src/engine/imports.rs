//! A component's imports checked against what the host's linker provides, before the
//! component is compiled: compiling a large component takes seconds (half a minute for a
//! JavaScript one), all of it wasted when an import is missing.
//!
//! The part of the component that declares its imports ([`Declarations`]) is a component
//! without code: it compiles at once, and linking it asks wasmtime itself, with its own
//! matching rules (a name at version 0.2.3 is served by the same interface at 0.2.12, a
//! function must have the shape asked for). Only when that fails is each import looked at
//! on its own:
//!
//! 1. the declarations cut after the first import are linked; if that fails, the import
//!    is missing, and a copy of the linker gets a stand-in for it;
//! 2. the same for the declarations cut after the second import, on that copy, and so on,
//!    so each cut fails only for its own last import.

use wasmtime::component::{Component, Linker};

use super::state::StageState;
use crate::contracts::Declarations;

/// The packages the host's linker provides, each with one of its interfaces (which a test
/// looks up, so that this list stays true).
pub(super) const PROVIDED: [(&str, &str); 11] = [
    ("torvyn:streaming@0.1.0", "types"),
    ("torvyn:capabilities@0.1.0", "capability-query"),
    ("torvyn:attributes@0.1.0", "element-attributes"),
    ("torvyn:runtime@0.1.0", "metrics"),
    ("torvyn:buffers@0.1.0", "buffer-builder"),
    ("wasi:io@0.2.12", "streams"),
    ("wasi:clocks@0.2.12", "monotonic-clock"),
    ("wasi:random@0.2.12", "random"),
    ("wasi:cli@0.2.12", "terminal-input"),
    ("wasi:filesystem@0.2.12", "types"),
    ("wasi:sockets@0.2.12", "tcp"),
];

/// The imports of the component `bytes` that `linker` does not provide, each with what
/// the host provides near it. A component whose declarations cannot be read or compiled
/// on their own is left to the compiler to report.
pub(super) fn missing(
    engine: &wasmtime::Engine,
    linker: &Linker<StageState>,
    bytes: &[u8],
) -> Vec<String> {
    let Ok(declarations) = Declarations::read(bytes) else {
        return Vec::new();
    };
    let names = declarations.names();
    let Some(last) = names.len().checked_sub(1) else {
        return Vec::new();
    };
    let links = |linker: &Linker<StageState>, index| {
        let component = Component::new(engine, declarations.through(index))?;
        linker.instantiate_pre(&component).map(|_| component)
    };
    if links(linker, last).is_ok() {
        return Vec::new();
    }
    let mut linker = linker.clone();
    let mut missing = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let Err(error) = links(&linker, index) else {
            continue;
        };
        missing.push(format!("`{name}` ({})", nearby(name, &error)));
        let stood_in = Component::new(engine, declarations.through(index)).and_then(|cut| {
            linker.define_unknown_imports_as_traps(&cut)?;
            linker.instantiate_pre(&cut)
        });
        if stood_in.is_err() {
            // Present in another shape, which no stand-in fixes: the cuts after it would
            // all fail for it.
            break;
        }
    }
    missing
}

/// How to go on without `missing` (as [`missing`] words them).
pub(super) fn help(missing: &[String]) -> String {
    let provided: Vec<&str> = PROVIDED.iter().map(|(package, _)| *package).collect();
    let http = missing.iter().any(|m| m.starts_with("`wasi:http/"));
    let fix = if http {
        "a ComponentizeJS component imports wasi:http unless built without it: build it with \
         `-d http fetch-event` (disable those features); otherwise remove the import, or run \
         it on a host that provides it"
    } else {
        "build the component without these imports, or run it on a host that provides them"
    };
    format!("{fix}; this host provides {}", provided.join(", "))
}

/// What the host provides near the interface `import`, which linking refused with
/// `error`: the same package (then in another shape or version), or else the packages of
/// the same namespace.
fn nearby(import: &str, error: &wasmtime::Error) -> String {
    let (package, version) = import.split_once('@').unwrap_or((import, ""));
    let package = package
        .split_once('/')
        .map_or(package, |(package, _)| package);
    let namespace = package
        .split_once(':')
        .map_or(package, |(namespace, _)| namespace);
    fn name<'a>((provided, _): &(&'a str, &str)) -> &'a str {
        provided.split_once('@').map_or(provided, |(name, _)| name)
    }
    let wanted = if version.is_empty() {
        "with no version".to_owned()
    } else {
        format!("at {version}")
    };
    if let Some((same, _)) = PROVIDED.iter().find(|p| name(p) == package) {
        return format!(
            "asked for {wanted}; the host provides {same}, which does not serve it: {}",
            error.root_cause()
        );
    }
    let kin: Vec<&str> = (PROVIDED.iter())
        .filter(|p| {
            name(p)
                .split_once(':')
                .is_some_and(|(ns, _)| ns == namespace)
        })
        .map(|(provided, _)| *provided)
        .collect();
    if kin.is_empty() {
        format!("asked for {wanted}; the host provides no package of `{namespace}:`")
    } else {
        format!(
            "asked for {wanted}; the host provides no {package}, and of `{namespace}:` only {}",
            kin.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostOptions;
    use wasm_encoder::{
        ComponentImportSection, ComponentTypeRef, ComponentTypeSection, ComponentValType,
        InstanceType, PrimitiveValType, TypeBounds,
    };

    /// An item an instance type asks for.
    enum Item {
        /// A resource of this name.
        Resource(&'static str),
        /// A function of this name taking a string or nothing and returning a primitive.
        Func(&'static str, Option<PrimitiveValType>, PrimitiveValType),
        /// An enum type of this name with these cases.
        Enum(&'static str, &'static [&'static str]),
        /// Nothing of the instance: only that the linker has one of its name.
        Nothing,
    }

    /// A component importing each of `imports`: an instance with one item.
    fn component(imports: &[(&str, Item)]) -> Vec<u8> {
        let mut component = wasm_encoder::Component::new();
        let mut types = ComponentTypeSection::new();
        for (_, item) in imports {
            let mut instance = InstanceType::new();
            match item {
                Item::Resource(name) => {
                    instance.export(*name, ComponentTypeRef::Type(TypeBounds::SubResource));
                }
                Item::Func(name, param, result) => {
                    let params = param.map(|p| ("name", ComponentValType::Primitive(p)));
                    (instance.ty().function())
                        .params(params)
                        .result(Some(ComponentValType::Primitive(*result)));
                    instance.export(*name, ComponentTypeRef::Func(0));
                }
                Item::Enum(name, cases) => {
                    instance
                        .ty()
                        .defined_type()
                        .enum_type(cases.iter().copied());
                    instance.export(*name, ComponentTypeRef::Type(TypeBounds::Eq(0)));
                }
                Item::Nothing => {}
            }
            types.instance(&instance);
        }
        component.section(&types);
        let mut section = ComponentImportSection::new();
        for (index, (name, _)) in imports.iter().enumerate() {
            section.import(*name, ComponentTypeRef::Instance(index as u32));
        }
        component.section(&section);
        component.finish()
    }

    /// One item of each package the host is said to provide.
    fn provided(package: &str) -> Item {
        use PrimitiveValType::{Bool, String, U64};
        match package.split_once('@').unwrap().0 {
            "torvyn:streaming" => Item::Resource("buffer"),
            "torvyn:capabilities" => Item::Func("has-capability", Some(String), Bool),
            "torvyn:attributes" => Item::Enum(
                "attribute-error",
                &["no-such-element", "too-many", "too-large"],
            ),
            "torvyn:runtime" => Item::Enum(
                "metric-error",
                &[
                    "invalid-name",
                    "conflicting",
                    "no-such-metric",
                    "invalid-labels",
                    "invalid-value",
                    "too-many",
                ],
            ),
            // Its one function takes a list, which `Item::Func` cannot say.
            "torvyn:buffers" => Item::Nothing,
            "wasi:io" => Item::Resource("output-stream"),
            "wasi:clocks" => Item::Func("now", None, U64),
            "wasi:random" => Item::Func("get-random-u64", None, U64),
            "wasi:cli" => Item::Resource("terminal-input"),
            "wasi:filesystem" => Item::Resource("descriptor"),
            "wasi:sockets" => Item::Resource("tcp-socket"),
            other => panic!("no probe for {other}"),
        }
    }

    #[test]
    fn every_package_listed_is_provided_and_others_are_named_with_what_is_near() {
        let engine = super::super::Engine::new(&HostOptions {
            epoch_interruption: false,
            ..HostOptions::default()
        })
        .unwrap();
        let (engine, linker) = (&engine.engine, &engine.linker);
        let listed: Vec<(String, Item)> = (PROVIDED.iter())
            .map(|(package, interface)| {
                let (name, version) = package.split_once('@').unwrap();
                (format!("{name}/{interface}@{version}"), provided(package))
            })
            .collect();
        let listed: Vec<(&str, Item)> = listed.into_iter().map(|(n, i)| (&*n.leak(), i)).collect();
        assert_eq!(
            missing(engine, linker, &component(&listed)),
            Vec::<String>::new()
        );
        // An older patch version is served by the newer one the host has.
        let older = component(&[("wasi:io/streams@0.2.0", Item::Resource("output-stream"))]);
        assert!(missing(engine, linker, &older).is_empty());
        let wanted = component(&[
            ("wasi:io/streams@0.2.0", Item::Resource("output-stream")),
            (
                "wasi:http/outgoing-handler@0.2.3",
                Item::Func("handle", None, PrimitiveValType::U32),
            ),
            ("torvyn:streaming/types@0.2.0", Item::Resource("buffer")),
            ("torvyn:streaming/types", Item::Resource("buffer")),
            (
                "acme:nothing/thing@1.0.0",
                Item::Func("ping", None, PrimitiveValType::U32),
            ),
        ]);
        let missing = missing(engine, linker, &wanted);
        assert_eq!(missing.len(), 4, "{missing:#?}");
        assert!(
            missing[0].starts_with(
                "`wasi:http/outgoing-handler@0.2.3` (asked for at 0.2.3; the host provides no \
                 wasi:http, and of `wasi:` only wasi:io@0.2.12"
            ),
            "{missing:#?}"
        );
        assert!(
            missing[1].starts_with(
                "`torvyn:streaming/types@0.2.0` (asked for at 0.2.0; the host provides \
                 torvyn:streaming@0.1.0, which does not serve it: "
            ),
            "{missing:#?}"
        );
        assert!(
            missing[2].starts_with(
                "`torvyn:streaming/types` (asked for with no version; the host provides \
                 torvyn:streaming@0.1.0"
            ),
            "{missing:#?}"
        );
        assert_eq!(
            missing[3],
            "`acme:nothing/thing@1.0.0` (asked for at 1.0.0; the host provides no package \
             of `acme:`)"
        );
        assert!(help(&missing[..1]).contains("`-d http fetch-event`"));
        assert!(!help(&missing[1..]).contains("fetch-event"));
    }
}
