//! The test source of `test-source`, exported with `batch`: the host calls it through
//! `torvyn:batching/batch-source` with up to 32 elements at once.

#[path = "../../test-source/src/source.rs"]
mod source;

torvyn_sdk::export_source!(source::TestSource, batch);
