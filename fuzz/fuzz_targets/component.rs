//! Any bytes after a component's preamble: inspection reads them or refuses them, never
//! with a panic, a capabilities section written into what it reads is read back as
//! written, and names rewritten to their contract version read back as inspection read
//! them. (Seeding the corpus with a real component helps: copy any `.wasm` from
//! `target/e2e/wasm32-wasip2/debug/` into `corpus/component/`, minus its first 8 bytes.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use torvyn_runtime::{Role, inspect, normalise, with_capabilities};

/// The preamble of a component binary: magic, version and layer.
const PREAMBLE: &[u8] = b"\0asm\x0d\0\x01\0";

fuzz_target!(|sections: &[u8]| {
    let bytes = &[PREAMBLE, sections].concat();
    let Ok(info) = inspect(bytes) else {
        return;
    };
    let _ = Role::from_exports(&info.exports);
    let needs = vec!["filesystem:read".to_owned(), "env:HOME".to_owned()];
    if let Ok(marked) = with_capabilities(bytes, &needs) {
        let read = inspect(&marked).expect("a rewritten component still reads");
        assert_eq!(read.capabilities, needs);
        assert_eq!(read.exports, info.exports);
    }
    if let Ok(normalised) = normalise(bytes) {
        let read = inspect(&normalised.bytes).expect("a renamed component still reads");
        assert_eq!(read.exports, info.exports);
        assert_eq!(read.imports, info.imports);
        assert!(read.unversioned.is_empty());
        assert_eq!(normalised.unversioned, info.unversioned);
    }
});
