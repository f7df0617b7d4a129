//! The test sink of `test-sink`, exported with `batch`: the host calls it through
//! `torvyn:batching/batch-sink` with up to 32 elements at once.

#[path = "../../test-sink/src/sink.rs"]
mod sink;

torvyn_sdk::export_sink!(sink::TestSink, batch);
