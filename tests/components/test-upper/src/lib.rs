//! The test processor of `upper.rs`, one element per call.

mod upper;

torvyn_sdk::export_processor!(upper::TestUpper);
