//! Test processor that exports `torvyn:streaming/processor@0.2.0`, a contract version
//! this host does not implement: linking must refuse it with a clear reason.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    inline: "
        package torvyn:streaming@0.2.0;

        interface processor {
            process: func(input: list<u8>) -> list<u8>;
        }

        world next-transform {
            export processor;
        }
    ",
});

struct Future;

impl exports::torvyn::streaming::processor::Guest for Future {
    fn process(input: Vec<u8>) -> Vec<u8> {
        input
    }
}

export!(Future);
