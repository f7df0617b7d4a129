//! Bakes the absolute path of the SDK's WIT folders into the hidden `__generate!` macro.
//!
//! The export macros expand `wit_bindgen::generate!` inside the component author's crate,
//! and `generate!` resolves relative paths against *that* crate's manifest. A
//! `macro_rules!` cannot compute a path, so this script writes one whose `path:` list holds
//! string literals pointing back into this crate.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// WIT packages in dependency order: later folders use packages from earlier ones.
const PACKAGES: [&str; 7] = [
    "streaming",
    "filtering",
    "aggregation",
    "capabilities",
    "batching",
    "attributes",
    "runtime",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wit_dir = manifest_dir.join("wit");

    let mut paths = String::new();
    for package in PACKAGES {
        let dir = wit_dir.join(package);
        println!("cargo:rerun-if-changed={}", dir.display());
        let dir = dir.to_str().expect("the SDK lives at a UTF-8 path");
        // `{:?}` writes a valid Rust string literal, escaping backslashes on Windows.
        write!(paths, "{dir:?}, ").unwrap();
    }

    let source = format!(
        r#"/// Expands `wit_bindgen::generate!` for one world of the Torvyn contract, with the
/// shared types taken from this SDK. Written by `build.rs`; not part of the public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __generate {{
    ($world:tt, {{ $($with:tt)* }}) => {{
        $crate::__private::wit_bindgen::generate!({{
            path: [{paths}],
            world: $world,
            with: {{ $($with)* }},
            generate_all,
            runtime_path: "::torvyn_sdk::__private::wit_bindgen::rt",
        }});
    }};
}}
"#
    );
    fs::write(out_dir.join("export_macros.rs"), source).expect("failed to write export_macros.rs");
    println!("cargo:rerun-if-changed=build.rs");
}
