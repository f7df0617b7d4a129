//! Raw bindings to the host interfaces every component may import.
//!
//! Only an imports-only world is generated here. wit-bindgen embeds a `component-type`
//! custom section for every world it generates, and wit-component merges all of them into
//! the final component: generating the six role worlds here would make every component
//! claim every role's exports. Imports merge harmlessly, and wit-component drops the ones a
//! component never calls. The role worlds are generated in the author's crate by the export
//! macros, with their shared types mapped back onto this module.

#![allow(unsafe_code, missing_docs, clippy::all)]

wit_bindgen::generate!({
    path: [
        "wit/streaming",
        "wit/filtering",
        "wit/aggregation",
        "wit/capabilities",
        "wit/attributes",
        "wit/runtime",
        "wit/buffers",
    ],
    inline: "
        package torvyn:sdk;

        world guest {
            import torvyn:streaming/types@0.1.0;
            import torvyn:streaming/buffer-allocator@0.1.0;
            import torvyn:capabilities/capability-query@0.1.0;
            import torvyn:attributes/element-attributes@0.1.0;
            import torvyn:runtime/metrics@0.1.0;
            import torvyn:buffers/buffer-builder@0.1.0;
        }
    ",
    world: "torvyn:sdk/guest",
    generate_all,
    // `stream-element`, `output-element` and friends appear only in exported functions,
    // which this world has none of; the export macros still need them.
    generate_unused_types: true,
});

pub use torvyn::attributes::element_attributes;
pub use torvyn::buffers::buffer_builder;
pub use torvyn::capabilities::capability_query;
pub use torvyn::streaming::{buffer_allocator, types};
