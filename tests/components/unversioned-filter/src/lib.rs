//! Test filter built, as a published example of the contract was, from a copy of the
//! contract's WIT whose packages say `package torvyn:streaming;` with no version: it
//! imports `torvyn:streaming/types` and exports `torvyn:filtering/filter` and
//! `torvyn:streaming/lifecycle` unversioned. It keeps elements with an even sequence
//! number and a payload, and fails every call made before `init`.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    path: ["wit/streaming", "wit/filtering"],
    world: "torvyn:filtering/content-filter",
    generate_all,
});

use std::sync::atomic::{AtomicBool, Ordering};

use exports::torvyn::filtering::filter;
use exports::torvyn::streaming::lifecycle;
use torvyn::streaming::types::{ProcessError, StreamElement};

/// Whether `init` was called.
static STARTED: AtomicBool = AtomicBool::new(false);

struct UnversionedFilter;

impl filter::Guest for UnversionedFilter {
    fn evaluate(element: StreamElement<'_>) -> Result<bool, ProcessError> {
        if !STARTED.load(Ordering::Relaxed) {
            return Err(ProcessError::Fatal("evaluate called before init".into()));
        }
        Ok(element.meta.sequence.is_multiple_of(2) && element.payload.size() > 0)
    }
}

impl lifecycle::Guest for UnversionedFilter {
    fn init(_config: String) -> Result<(), ProcessError> {
        STARTED.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn teardown() {}
}

export!(UnversionedFilter);
