//! Test processor of the `transform` world that also imports `acme:nothing/thing@1.0.0`,
//! which no Torvyn host provides: loading it must fail before it is compiled, naming the
//! interface and its version.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    path: "../../../wit/streaming",
    inline: "
        package test:missing-import;

        world needs-nothing {
            include torvyn:streaming/transform@0.1.0;
            import acme:nothing/thing@1.0.0;
        }

        package acme:nothing@1.0.0 {
            interface thing {
                ping: func() -> u32;
            }
        }
    ",
    world: "test:missing-import/needs-nothing",
    generate_all,
});

use exports::torvyn::streaming::processor::Guest;
use torvyn::streaming::types::{ProcessError, ProcessResult, StreamElement};

struct NeedsNothing;

impl Guest for NeedsNothing {
    fn process(_input: StreamElement<'_>) -> Result<ProcessResult, ProcessError> {
        // The import is called, so that it stays in the component.
        acme::nothing::thing::ping();
        Ok(ProcessResult::Drop)
    }
}

export!(NeedsNothing);
