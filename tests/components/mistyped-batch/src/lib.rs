//! Test processor with a sound `torvyn:streaming/processor@0.1.0` and a
//! `torvyn:batching/batch-processor@0.1.0` whose batch elements carry their payload as a
//! `string` instead of the contract's `list<u8>`: its flow must fail to start, naming the
//! node and the function, before any element enters it.

#![allow(unsafe_code, reason = "wit-bindgen's generated glue is unsafe")]

wit_bindgen::generate!({
    path: "../../../wit/streaming",
    inline: "
        package torvyn:batching@0.1.0;

        interface batch-processor {
            use torvyn:streaming/types@0.1.0.{element-meta, flow-context, process-result, process-error};

            record batch-element {
                meta: element-meta,
                payload: string,
            }

            process-batch: func(context: borrow<flow-context>, inputs: list<batch-element>) -> list<result<process-result, process-error>>;
        }

        world mistyped-batch {
            include torvyn:streaming/transform@0.1.0;
            export batch-processor;
        }
    ",
    world: "torvyn:batching/mistyped-batch@0.1.0",
    generate_all,
});

use exports::torvyn::batching::batch_processor::{self, BatchElement};
use exports::torvyn::streaming::processor;
use torvyn::streaming::types::{FlowContext, ProcessError, ProcessResult, StreamElement};

struct MistypedBatch;

impl processor::Guest for MistypedBatch {
    fn process(_input: StreamElement<'_>) -> Result<ProcessResult, ProcessError> {
        Ok(ProcessResult::Drop)
    }
}

impl batch_processor::Guest for MistypedBatch {
    fn process_batch(
        _context: &FlowContext,
        inputs: Vec<BatchElement>,
    ) -> Vec<Result<ProcessResult, ProcessError>> {
        inputs.iter().map(|_| Ok(ProcessResult::Drop)).collect()
    }
}

export!(MistypedBatch);
