//! Test processor that exports `torvyn:streaming/processor@0.1.0` by name, but whose
//! `process` takes and returns bytes instead of the contract's types: its flow must fail
//! to start, naming the node and the mismatch, before any element enters it.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    inline: "
        package torvyn:streaming@0.1.0;

        interface processor {
            process: func(input: list<u8>) -> list<u8>;
        }

        world mistyped {
            export processor;
        }
    ",
    world: "torvyn:streaming/mistyped@0.1.0",
});

use exports::torvyn::streaming::processor::Guest;

struct Mistyped;

impl Guest for Mistyped {
    fn process(input: Vec<u8>) -> Vec<u8> {
        input
    }
}

export!(Mistyped);
