//! The test source of `source.rs`, one element per call.

mod source;

torvyn_sdk::export_source!(source::TestSource);
