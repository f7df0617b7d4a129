//! One instantiated component of a running flow, and the typed calls into it.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Resource, ResourceTable};

use crate::contracts::Role;
use crate::engine::exports::torvyn::filtering::filter;
use crate::engine::exports::torvyn::streaming::{lifecycle, processor, sink, source};
use crate::engine::{
    BackpressureSignal, ElementMeta, FlowIdentity, LoadedComponent, OutputElement, ProcessError,
    ProcessResult, StageState, StreamElement,
};
use crate::resources::BufferTable;
use crate::security::Grants;

use super::queue::Queued;

/// The export a stage is called through, by role.
pub(crate) enum Calls {
    Source(source::Guest),
    Processor(processor::Guest),
    Filter(filter::Guest),
    Sink(sink::Guest),
}

/// What went wrong in a call: the component's own error, or a trap.
pub(crate) enum CallError {
    Process(ProcessError),
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for CallError {
    fn from(error: wasmtime::Error) -> Self {
        CallError::Trap(error)
    }
}

type CallResult<T> = Result<T, CallError>;

/// The rep of the one flow context each stage sees; the host never creates another.
const FLOW_CONTEXT: u32 = 0;

pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) role: Role,
    store: Store<StageState>,
    calls: Calls,
    lifecycle: Option<lifecycle::Guest>,
    pub(crate) received: u64,
    pub(crate) emitted: u64,
    pub(crate) dropped: u64,
}

impl Stage {
    /// Instantiates `component` as stage `index` of a flow.
    pub(crate) async fn instantiate(
        engine: &wasmtime::Engine,
        index: usize,
        name: String,
        component: &LoadedComponent,
        flow: Arc<FlowIdentity>,
    ) -> wasmtime::Result<Self> {
        let grants = Grants::default();
        let state = StageState {
            stage: index,
            buffers: BufferTable::default(),
            flow,
            grants,
            wasi: grants.wasi_ctx(),
            resources: ResourceTable::new(),
        };
        let mut store = Store::new(engine, state);
        let pre = component.instance_pre();
        let instance = pre.instantiate_async(&mut store).await?;
        let role = component.role();
        let calls = match role {
            Role::Source => {
                Calls::Source(source::GuestIndices::new(pre)?.load(&mut store, &instance)?)
            }
            Role::Processor => {
                Calls::Processor(processor::GuestIndices::new(pre)?.load(&mut store, &instance)?)
            }
            Role::Filter => {
                Calls::Filter(filter::GuestIndices::new(pre)?.load(&mut store, &instance)?)
            }
            Role::Sink => Calls::Sink(sink::GuestIndices::new(pre)?.load(&mut store, &instance)?),
            Role::Router | Role::Aggregator => {
                // Topology planning admits neither into a chain.
                wasmtime::bail!("{role} components cannot run in a linear flow")
            }
        };
        let lifecycle = if component.has_lifecycle() {
            Some(lifecycle::GuestIndices::new(pre)?.load(&mut store, &instance)?)
        } else {
            None
        };
        Ok(Self {
            name,
            role,
            store,
            calls,
            lifecycle,
            received: 0,
            emitted: 0,
            dropped: 0,
        })
    }

    pub(crate) async fn init(&mut self, config: &str) -> CallResult<()> {
        match &self.lifecycle {
            Some(lifecycle) => lifecycle
                .call_init(&mut self.store, config)
                .await?
                .map_err(CallError::Process),
            None => Ok(()),
        }
    }

    pub(crate) async fn teardown(&mut self, table: &mut BufferTable) -> CallResult<()> {
        let Some(lifecycle) = &self.lifecycle else {
            return Ok(());
        };
        let store = &mut self.store;
        swap_table(store, table);
        let result = lifecycle.call_teardown(&mut *store).await;
        swap_table(store, table);
        Ok(result?)
    }

    /// Pulls the next element from a source; `None` at the end of the stream.
    pub(crate) async fn pull(
        &mut self,
        table: &mut BufferTable,
    ) -> CallResult<Option<OutputElement>> {
        let Calls::Source(source) = &self.calls else {
            unreachable!("pull on a stage that is not a source")
        };
        let store = &mut self.store;
        swap_table(store, table);
        let result = source.call_pull(&mut *store).await;
        swap_table(store, table);
        let output = result?.map_err(CallError::Process)?;
        if let Some(output) = &output {
            let index = self.store.data().stage;
            table
                .take_output(index, output.payload.rep())
                .map_err(misuse)?;
            self.emitted += 1;
        }
        Ok(output)
    }

    pub(crate) async fn notify(
        &mut self,
        table: &mut BufferTable,
        signal: BackpressureSignal,
    ) -> CallResult<()> {
        let Calls::Source(source) = &self.calls else {
            unreachable!("notify-backpressure on a stage that is not a source")
        };
        let store = &mut self.store;
        swap_table(store, table);
        let result = source.call_notify_backpressure(&mut *store, signal).await;
        swap_table(store, table);
        Ok(result?)
    }

    /// Hands `element` to a processor, filter or sink. Returns what goes downstream, if
    /// anything, or the sink's signal. The input buffer is released here unless it goes on.
    pub(crate) async fn handle(
        &mut self,
        table: &mut BufferTable,
        element: Queued,
    ) -> CallResult<Handled> {
        let index = self.store.data().stage;
        self.received += 1;
        let buffer = element.buffer;
        table.lend(buffer, index);
        let input = StreamElement {
            meta: ElementMeta {
                sequence: element.sequence,
                timestamp_ns: element.timestamp_ns,
                content_type: element.content_type,
            },
            payload: Resource::new_borrow(buffer),
            context: Resource::new_borrow(FLOW_CONTEXT),
        };
        swap_table(&mut self.store, table);
        let outcome = self.call(input, buffer).await;
        swap_table(&mut self.store, table);
        table.give_back(buffer);
        let outcome = outcome?;
        match &outcome {
            Handled::Forward(output) if output.buffer == buffer => self.emitted += 1,
            Handled::Forward(output) => {
                table.take_output(index, output.buffer).map_err(misuse)?;
                table.release(buffer);
                self.emitted += 1;
            }
            Handled::Consumed => {
                table.release(buffer);
                self.dropped += 1;
            }
            Handled::Delivered(_) => table.release(buffer),
        }
        Ok(outcome)
    }

    /// The call of [`Stage::handle`], made while the store holds the buffer table.
    async fn call(&mut self, input: StreamElement, buffer: u32) -> CallResult<Handled> {
        let store = &mut self.store;
        Ok(match &self.calls {
            Calls::Processor(processor) => match processor.call_process(store, &input).await? {
                Ok(ProcessResult::Emit(output)) => Handled::Forward(Queued {
                    sequence: input.meta.sequence,
                    timestamp_ns: input.meta.timestamp_ns,
                    content_type: output.meta.content_type,
                    buffer: output.payload.rep(),
                }),
                Ok(ProcessResult::Drop) => Handled::Consumed,
                Err(error) => return Err(CallError::Process(error)),
            },
            Calls::Filter(filter) => {
                if filter
                    .call_evaluate(store, &input)
                    .await?
                    .map_err(CallError::Process)?
                {
                    let meta = input.meta;
                    Handled::Forward(Queued {
                        sequence: meta.sequence,
                        timestamp_ns: meta.timestamp_ns,
                        content_type: meta.content_type,
                        buffer,
                    })
                } else {
                    Handled::Consumed
                }
            }
            Calls::Sink(sink) => match sink.call_push(store, &input).await? {
                Ok(signal) => Handled::Delivered(signal),
                Err(error) => return Err(CallError::Process(error)),
            },
            Calls::Source(_) => unreachable!("a source has no input"),
        })
    }

    /// Tells a sink the stream has ended.
    pub(crate) async fn complete(&mut self, table: &mut BufferTable) -> CallResult<()> {
        let Calls::Sink(sink) = &self.calls else {
            unreachable!("complete on a stage that is not a sink")
        };
        let store = &mut self.store;
        swap_table(store, table);
        let result = sink.call_complete(&mut *store).await;
        swap_table(store, table);
        result?.map_err(CallError::Process)
    }
}

/// Moves the flow's buffer table into a stage's store for a call, or back out of it.
fn swap_table(store: &mut Store<StageState>, table: &mut BufferTable) {
    std::mem::swap(table, &mut store.data_mut().buffers);
}

/// What became of an element a stage handled.
pub(crate) enum Handled {
    /// The element goes on downstream: a processor's output (its input was released) or
    /// the input itself, kept by a filter.
    Forward(Queued),
    /// A processor dropped it or a filter rejected it.
    Consumed,
    /// The sink took it and answered with this signal.
    Delivered(BackpressureSignal),
}

fn misuse(error: crate::resources::BufferError) -> CallError {
    CallError::Trap(wasmtime::Error::msg(error.to_string()))
}
