//! The test processor of `attributes.rs`, one element per call.

mod attributes;

torvyn_sdk::export_processor!(attributes::TestAttributes);
