//! Benchmark guest: the work of the test source, processor and sink behind the world of
//! `wit/bare.wit`, built without the SDK. It is what the bare-wasmtime baseline calls.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    path: "wit",
    world: "torvyn-bench:bare/stage@0.1.0",
});

struct Stage;

impl Guest for Stage {
    fn make(size: u32) -> Vec<u8> {
        vec![b'x'; size as usize]
    }

    fn transform(input: Vec<u8>, upper: bool) -> Vec<u8> {
        match upper {
            true => input.iter().map(u8::to_ascii_uppercase).collect(),
            false => input,
        }
    }

    fn consume(input: Vec<u8>) -> u32 {
        input.len() as u32
    }
}

export!(Stage);
