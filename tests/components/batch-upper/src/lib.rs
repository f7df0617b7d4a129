//! The test processor of `test-upper`, exported with `batch`: the host calls it through
//! `torvyn:batching/batch-processor` with up to 32 elements at once.

#[path = "../../test-upper/src/upper.rs"]
mod upper;

torvyn_sdk::export_processor!(upper::TestUpper, batch);
