//! The test processor of `test-attributes`, exported with `batch`: the host calls it
//! through `torvyn:batching/batch-processor`, and each element of a batch names its own
//! attributes by its position.

#[path = "../../test-attributes/src/attributes.rs"]
mod attributes;

torvyn_sdk::export_processor!(attributes::TestAttributes, batch);
