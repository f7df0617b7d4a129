//! The test sink of `sink.rs`, one element per call.

mod sink;

torvyn_sdk::export_sink!(sink::TestSink);
