//! One instantiated component of a running flow, and the typed calls into it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{CallHook, Store, UpdateDeadline};

use crate::attributes::{Attributes, MAX_FLUSH_ATTRIBUTED};
use crate::contracts::Role;
use crate::engine::exports::torvyn::streaming::lifecycle;
use crate::engine::{
    BackpressureSignal, BatchCalls, BatchInput, Calls, ElementMeta, Exports, FlowIdentity,
    LoadedComponent, ProcessError, ProcessResult, StageState, StreamElement,
};
use crate::observability::{CallStats, SpanId, TraceId};
use crate::resources::{BufferTable, bounded_content_type};
use crate::security::{AuditLog, Limiter};

use super::StageSpec;
use super::fixture::read_lent;
use super::queue::{Made, Queued};

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

/// A buffer operation the host makes on a stage's behalf failed: the stage broke the
/// ownership rules (or its budget), which traps it.
impl From<crate::resources::BufferError> for CallError {
    fn from(error: crate::resources::BufferError) -> Self {
        CallError::Trap(wasmtime::Error::msg(error.to_string()))
    }
}

impl CallError {
    /// Whether the call was cut short because its flow was asked to stop.
    pub(crate) fn is_stop(&self) -> bool {
        matches!(self, CallError::Trap(trap) if trap.is::<Stopped>())
    }
}

/// Why a call that carries no element ended early: its flow was asked to stop. Nothing is
/// lost, and the instance is not entered again.
#[derive(Debug, thiserror::Error)]
#[error("stopped: the flow was asked to stop during the call")]
pub(crate) struct Stopped;

type CallResult<T> = Result<T, CallError>;

/// The most port names one `route` answer may hold. The host's work on an answer grows
/// with the square of its length (each name is looked up once), so a router cannot make
/// the host spend long outside its own time limit; a router has a handful of ports.
pub const MAX_ROUTE_PORTS: usize = 256;

/// A router's answer, refused (as a broken contract, which traps the router) when it names
/// more than [`MAX_ROUTE_PORTS`] ports.
fn at_most_max_ports(ports: Vec<String>) -> CallResult<Vec<String>> {
    if ports.len() > MAX_ROUTE_PORTS {
        return Err(CallError::Trap(wasmtime::Error::msg(format!(
            "`route` named {} ports; an answer names at most {MAX_ROUTE_PORTS}",
            ports.len()
        ))));
    }
    Ok(ports)
}

/// The rep of the one flow context each stage sees; the host never creates another.
const FLOW_CONTEXT: u32 = 0;

/// A component instance in its place in a flow.
pub(crate) struct Instance {
    index: usize,
    store: Store<StageState>,
    calls: Calls,
    batch: Option<BatchCalls>,
    lifecycle: Option<lifecycle::Guest>,
    /// The fuel each call starts with, when the engine meters it.
    fuel: Option<u64>,
    /// Whether it is a processor, filter or router, whose outputs start from their inputs'
    /// attributes.
    passes_on: bool,
    /// The attributes of the elements its pulls and flushes made, in order, until the
    /// driver takes them ([`Instance::take_attributes`]).
    made: VecDeque<Attributes>,
}

impl Instance {
    /// Instantiates `component`, the component of `spec`, as node `index` of a flow, within its limits
    /// and grants; denied uses are recorded in `audit`. Each call is shown a deadline of
    /// `deadline` or the time limit, whichever is sooner.
    pub(crate) async fn instantiate(
        engine: &wasmtime::Engine,
        index: usize,
        flow: Arc<FlowIdentity>,
        deadline: Option<Duration>,
        spec: &StageSpec,
        component: &LoadedComponent,
        audit: &AuditLog,
    ) -> wasmtime::Result<Self> {
        let (limits, grants) = (&spec.limits, spec.grants.clone());
        let root = component.denied_root().clone();
        let wasi = grants.wasi_ctx_at_start(&spec.name, audit, &root)?;
        let (count_host_calls, time_calls) = (flow.count_host_calls, flow.time_calls);
        let state = StageState {
            stage: index,
            buffers: BufferTable::default(),
            flow,
            deadline: None,
            call_started: Instant::now(),
            time_limit: limits.invocation_time,
            interruptible: false,
            limiter: Limiter::new(*limits),
            grants,
            node: spec.name.clone(),
            audit: audit.clone(),
            denied_root: root,
            wasi,
            resources: ResourceTable::new(),
            stats: CallStats::default(),
            last_call: Duration::ZERO,
            trace: None,
            watched: false,
            attributes: Default::default(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        limits.bound_store(&mut store);
        if time_calls {
            store.data_mut().stats.latency = Some(Default::default());
        }
        if count_host_calls {
            store.data_mut().stats.host_calls = Some(0);
            store.call_hook(|mut store, hook| {
                if let (CallHook::CallingHost, Some(calls)) =
                    (hook, &mut store.data_mut().stats.host_calls)
                {
                    *calls += 1;
                }
                Ok(())
            });
        }
        store.epoch_deadline_callback(|mut store| {
            store.data_mut().stats.interruptions += 1;
            store.data_mut().watch();
            let state = store.data();
            if state.interruptible && state.flow.stop.is_cancelled() {
                return Err(wasmtime::Error::new(Stopped));
            }
            match state.time_limit {
                Some(limit) if state.call_started.elapsed() > limit => {
                    Err(wasmtime::Error::msg(format!(
                        "invocation time limit exceeded: the call ran longer than {}",
                        humantime::format_duration(limit)
                    )))
                }
                // Let other flows run, then carry on.
                _ => Ok(UpdateDeadline::Yield(1)),
            }
        });
        store.set_epoch_deadline(1);
        // Fuel is metered only when the engine was built for it.
        let fuel = store
            .get_fuel()
            .is_ok()
            .then(|| limits.fuel.unwrap_or(u64::MAX));
        if let Some(fuel) = fuel {
            store.set_fuel(fuel)?;
        }
        store.data_mut().deadline = match (deadline, limits.invocation_time) {
            (Some(shown), Some(limit)) => Some(shown.min(limit)),
            (shown, limit) => shown.or(limit),
        };
        let pre = component.instance_pre();
        let instance = pre.instantiate_async(&mut store).await;
        store.data_mut().unwatch();
        let instance = instance?;
        let Exports {
            calls,
            batch,
            lifecycle,
        } = component.exports(&mut store, &instance)?;
        Ok(Self {
            index,
            store,
            calls,
            batch,
            lifecycle,
            fuel,
            passes_on: matches!(
                component.role(),
                Role::Processor | Role::Filter | Role::Router
            ),
            made: VecDeque::new(),
        })
    }

    /// Calls `init`; when `interruptible`, a stop requested meanwhile cuts it short with
    /// [`Stopped`].
    pub(crate) async fn init(&mut self, config: &str, interruptible: bool) -> CallResult<()> {
        start_clock(&mut self.store, self.fuel);
        let Some(lifecycle) = &self.lifecycle else {
            return Ok(());
        };
        self.store.data_mut().interruptible = interruptible;
        let result = lifecycle.call_init(&mut self.store, config).await;
        self.store.data_mut().interruptible = false;
        self.store.data_mut().unwatch();
        result?.map_err(CallError::Process)
    }

    pub(crate) async fn teardown(&mut self, table: &mut BufferTable) -> CallResult<()> {
        let Some(lifecycle) = &self.lifecycle else {
            return Ok(());
        };
        enter(&mut self.store, self.fuel, table);
        let result = lifecycle.call_teardown(&mut self.store).await;
        leave(&mut self.store, table);
        Ok(result?)
    }

    /// Pulls the next element from a source; `None` at the end of the stream. The
    /// element's buffer belongs to the host on return.
    pub(crate) async fn pull(&mut self, table: &mut BufferTable) -> CallResult<Option<Made>> {
        let Calls::Source(source) = &self.calls else {
            unreachable!("pull on a stage that is not a source")
        };
        enter(&mut self.store, self.fuel, table);
        self.store.data_mut().attributes.begin(1, false);
        self.store.data_mut().interruptible = true;
        let result = source.call_pull(&mut self.store).await;
        self.store.data_mut().interruptible = false;
        leave(&mut self.store, table);
        let output = result?.map_err(CallError::Process)?;
        if let Some(output) = &output {
            let content_type = output.meta.content_type.as_str();
            self.take_outputs(table, [(output.payload.rep(), content_type)])?;
            self.keep_made(1);
        }
        Ok(output.map(Made::from))
    }

    pub(crate) async fn notify(
        &mut self,
        table: &mut BufferTable,
        signal: BackpressureSignal,
    ) -> CallResult<()> {
        let Calls::Source(source) = &self.calls else {
            unreachable!("notify-backpressure on a stage that is not a source")
        };
        enter(&mut self.store, self.fuel, table);
        let result = source
            .call_notify_backpressure(&mut self.store, signal)
            .await;
        leave(&mut self.store, table);
        Ok(result?)
    }

    /// Lends `element` to a processor, filter, router, aggregator or sink for one call.
    /// The element stays the host's whatever happens; what the call produced is returned.
    pub(crate) async fn handle(
        &mut self,
        table: &mut BufferTable,
        element: &mut Queued,
    ) -> CallResult<Handled> {
        let buffer = element.buffer;
        table.lend(buffer, self.index);
        let input = lent(element);
        enter(&mut self.store, self.fuel, table);
        let sink = matches!(self.calls, Calls::Sink(_));
        let attributes = &mut self.store.data_mut().attributes;
        attributes.begin(u32::from(!sink), self.passes_on);
        attributes
            .inputs
            .push(std::mem::take(&mut element.attributes));
        let result = self.call(&input).await;
        leave(&mut self.store, table);
        table.give_back(buffer);
        element.content_type = input.meta.content_type.into();
        let outcome = result.and_then(|handled| match &handled {
            Handled::Emit(output) => (self
                .take_outputs(table, [(output.buffer, &*output.content_type)]))
            .map(|()| handled),
            _ => Ok(handled),
        });
        // Only a call that succeeded changes what its element carries on.
        let attributes = &mut self.store.data_mut().attributes;
        let carried = attributes.inputs.pop().unwrap_or_default();
        element.attributes = match outcome.is_ok() {
            true => attributes.take_output(0, carried),
            false => carried,
        };
        outcome
    }

    /// What `flow-context` tells the calls that follow of their element's trace.
    pub(crate) fn set_trace(&mut self, trace: Option<(TraceId, SpanId)>) {
        self.store.data_mut().trace = trace;
    }

    /// Whether the stage takes or makes elements in batches.
    pub(crate) fn batched(&self) -> bool {
        self.batch.is_some()
    }

    /// How long its latest call took, as its clock measured it.
    pub(crate) fn last_call(&self) -> Duration {
        self.store.data().last_call
    }

    /// Pulls up to `max` elements from a batch source in one call: the results of as many
    /// `pull` calls, the last of which may be the end of the stream or an error. The
    /// elements' buffers belong to the host on return.
    pub(crate) async fn pull_batch(
        &mut self,
        table: &mut BufferTable,
        max: u32,
    ) -> CallResult<Vec<Result<Option<Made>, ProcessError>>> {
        let Some(BatchCalls::Source(source)) = &self.batch else {
            unreachable!("pull-batch on a stage that is not a batch source")
        };
        enter(&mut self.store, self.fuel, table);
        self.store.data_mut().attributes.begin(max, false);
        self.store.data_mut().interruptible = true;
        let result = source.call_pull_batch(&mut self.store, max).await;
        self.store.data_mut().interruptible = false;
        leave(&mut self.store, table);
        let results = result?;
        let last = results.len().saturating_sub(1);
        let early_end = (results.iter().take(last)).position(|r| !matches!(r, Ok(Some(_))));
        if results.is_empty() || results.len() > max as usize || early_end.is_some() {
            return Err(contract_broken(format!(
                "`pull-batch({max})` returned {} results{}; a batch holds 1 to {max}, \
                 and ends at the first end of stream or error",
                results.len(),
                early_end.map_or(String::new(), |i| format!(", going on after result {i}")),
            )));
        }
        let outputs = results.iter().flatten().flatten();
        self.take_outputs(
            table,
            outputs.map(|o| (o.payload.rep(), o.meta.content_type.as_str())),
        )?;
        self.keep_made(results.iter().filter(|r| matches!(r, Ok(Some(_)))).count());
        Ok(results
            .into_iter()
            .map(|result| result.map(|output| output.map(Made::from)))
            .collect())
    }

    /// Hands `elements` to a batch processor or sink in one call, each with a copy of its
    /// payload: what it made of each, in order. The elements stay the host's.
    pub(crate) async fn handle_batch(
        &mut self,
        table: &mut BufferTable,
        elements: &mut [Queued],
    ) -> CallResult<Vec<CallResult<Handled>>> {
        let mut payloads = Vec::with_capacity(elements.len());
        for element in elements.iter() {
            payloads.push(read_lent(table, self.index, element.buffer)?);
        }
        enter(&mut self.store, self.fuel, table);
        let sink = matches!(self.batch, Some(BatchCalls::Sink(_)));
        let attributes = &mut self.store.data_mut().attributes;
        attributes.begin(if sink { 0 } else { elements.len() as u32 }, true);
        (attributes.inputs).extend(
            elements
                .iter_mut()
                .map(|e| std::mem::take(&mut e.attributes)),
        );
        let metas = elements.iter_mut().map(|element| ElementMeta {
            sequence: element.sequence,
            timestamp_ns: element.timestamp_ns,
            // Moved in for the call and back out after it, as for a single element.
            content_type: std::mem::take(&mut element.content_type).into_owned(),
        });
        let inputs: Vec<_> = (metas.zip(payloads))
            .map(|(meta, payload)| BatchInput { meta, payload })
            .collect();
        let context = Resource::new_borrow(FLOW_CONTEXT);
        let store = &mut self.store;
        let results = match &self.batch {
            Some(BatchCalls::Processor(processor)) => (processor.call(store, context, &inputs))
                .await
                .map(|results| results.into_iter().map(processed).collect::<Vec<_>>()),
            Some(BatchCalls::Sink(sink)) => (sink.call(store, context, &inputs))
                .await
                .map(|results| results.into_iter().map(delivered).collect()),
            _ => unreachable!("a batch call on a stage that is neither batch processor nor sink"),
        };
        restore(elements, inputs.into_iter().map(|input| input.meta));
        leave(&mut self.store, table);
        let outcome = (results.map_err(CallError::Trap)).and_then(|results| {
            if results.len() != elements.len() {
                return Err(contract_broken(format!(
                    "a batch call returned {} results for {} elements",
                    results.len(),
                    elements.len()
                )));
            }
            let outputs = results.iter().filter_map(|result| match result {
                Ok(Handled::Emit(output)) => Some((output.buffer, &*output.content_type)),
                _ => None,
            });
            self.take_outputs(table, outputs)?;
            Ok(results)
        });
        // Only the elements of a call that succeeded, each handled, change what they
        // carry on; after a trap, each is handed to the next instance as it came.
        let attributes = &mut self.store.data_mut().attributes;
        let outcomes = outcome.as_ref().map_or(&[][..], Vec::as_slice);
        for (i, element) in elements.iter_mut().enumerate() {
            let carried = std::mem::take(&mut attributes.inputs[i]);
            element.attributes = match outcomes.get(i) {
                Some(Ok(_)) => attributes.take_output(i, carried),
                _ => carried,
            };
        }
        outcome
    }

    /// The call of [`Stage::handle`], made while the store holds the buffer table.
    async fn call(&mut self, input: &StreamElement) -> CallResult<Handled> {
        let store = &mut self.store;
        let handled = match &self.calls {
            Calls::Processor(processor) => processed(processor.call_process(store, input).await?)?,
            Calls::Filter(filter) => match filter.call_evaluate(store, input).await? {
                Ok(true) => Handled::Keep,
                Ok(false) => Handled::Consumed,
                Err(error) => return Err(CallError::Process(error)),
            },
            Calls::Router(router) => {
                let ports = (router.call_route(store, input).await?).map_err(CallError::Process)?;
                Handled::Route(at_most_max_ports(ports)?)
            }
            Calls::Aggregator(aggregator) => match aggregator.call_ingest(store, input).await? {
                Ok(Some(output)) => Handled::Emit(output.into()),
                Ok(None) => Handled::Consumed,
                Err(error) => return Err(CallError::Process(error)),
            },
            Calls::Sink(sink) => delivered(sink.call_push(store, input).await?)?,
            Calls::Source(_) => unreachable!("a source has no input"),
        };
        Ok(handled)
    }

    /// Asks an aggregator for what it still holds, at the end of its input.
    pub(crate) async fn flush(&mut self, table: &mut BufferTable) -> CallResult<Vec<Made>> {
        let Calls::Aggregator(aggregator) = &self.calls else {
            unreachable!("flush on a stage that is not an aggregator")
        };
        enter(&mut self.store, self.fuel, table);
        (self.store.data_mut().attributes).begin(MAX_FLUSH_ATTRIBUTED, false);
        let result = aggregator.call_flush(&mut self.store).await;
        leave(&mut self.store, table);
        let outputs = result?.map_err(CallError::Process)?;
        let made = outputs.iter();
        self.take_outputs(
            table,
            made.map(|o| (o.payload.rep(), o.meta.content_type.as_str())),
        )?;
        self.keep_made(outputs.len());
        Ok(outputs.into_iter().map(Made::from).collect())
    }

    /// Tells a sink the stream has ended.
    pub(crate) async fn complete(&mut self, table: &mut BufferTable) -> CallResult<()> {
        let Calls::Sink(sink) = &self.calls else {
            unreachable!("complete on a stage that is not a sink")
        };
        enter(&mut self.store, self.fuel, table);
        let result = sink.call_complete(&mut self.store).await;
        leave(&mut self.store, table);
        result?.map_err(CallError::Process)
    }

    /// The calls made into this instance so far.
    pub(crate) fn stats(&self) -> CallStats {
        let mut stats = self.store.data().stats;
        // The call hook sees an interruption as a call into the host: it is not one.
        let interruptions = stats.interruptions;
        stats.host_calls = stats.host_calls.map(|n| n.saturating_sub(interruptions));
        stats
    }

    /// Keeps the attributes of the first `count` outputs of the call that just ended, which
    /// it made from no input, until the driver takes them.
    fn keep_made(&mut self, count: usize) {
        let attributes = &mut self.store.data_mut().attributes;
        for i in 0..count {
            self.made
                .push_back(attributes.take_output(i, Attributes::default()));
        }
    }

    /// The attributes of the next element its pulls or flushes made, in order.
    pub(crate) fn take_attributes(&mut self) -> Attributes {
        self.made.pop_front().unwrap_or_default()
    }

    /// Takes the outputs of one call into the host's hands, each a buffer and the content
    /// type its element carries on: all of them, or none when one breaks the contract,
    /// which traps the stage. A content type past
    /// [`MAX_CONTENT_TYPE_BYTES`](crate::resources::MAX_CONTENT_TYPE_BYTES) breaks it, as
    /// one given to a buffer does, and so does a buffer the stage does not own. What was
    /// taken before the one that broke it is released, and what the stage still owns is
    /// freed with its instance, so that nothing of a failed call stays in the table.
    fn take_outputs<'a, I>(&self, table: &mut BufferTable, outputs: I) -> CallResult<()>
    where
        I: IntoIterator<Item = (u32, &'a str)>,
        I::IntoIter: Clone,
    {
        let outputs = outputs.into_iter();
        for (_, content_type) in outputs.clone() {
            bounded_content_type(content_type)?;
        }
        for (taken, (buffer, _)) in outputs.clone().enumerate() {
            if let Err(error) = table.take_output(self.index, buffer) {
                outputs
                    .take(taken)
                    .for_each(|(buffer, _)| table.release(buffer));
                return Err(error.into());
            }
        }
        Ok(())
    }
}

/// What a stage is shown of an element lent to it. The content type is moved in for the
/// call and back out after it: no allocation.
fn lent(element: &mut Queued) -> StreamElement {
    StreamElement {
        meta: ElementMeta {
            sequence: element.sequence,
            timestamp_ns: element.timestamp_ns,
            content_type: std::mem::take(&mut element.content_type).into_owned(),
        },
        payload: Resource::new_borrow(element.buffer),
        context: Resource::new_borrow(FLOW_CONTEXT),
    }
}

/// Gives elements their content types back after a batch call.
fn restore(elements: &mut [Queued], metas: impl Iterator<Item = ElementMeta>) {
    for (element, meta) in elements.iter_mut().zip(metas) {
        element.content_type = meta.content_type.into();
    }
}

/// What a processor's result means to the flow.
fn processed(result: Result<ProcessResult, ProcessError>) -> CallResult<Handled> {
    match result {
        Ok(ProcessResult::Emit(output)) => Ok(Handled::Emit(output.into())),
        Ok(ProcessResult::Drop) => Ok(Handled::Consumed),
        Err(error) => Err(CallError::Process(error)),
    }
}

/// What a sink's result means to the flow.
fn delivered(result: Result<BackpressureSignal, ProcessError>) -> CallResult<Handled> {
    result.map(Handled::Delivered).map_err(CallError::Process)
}

/// A batch call broke the batching contract, which traps the stage.
fn contract_broken(what: String) -> CallError {
    CallError::Trap(wasmtime::Error::msg(format!(
        "the component broke the torvyn:batching contract: {what}"
    )))
}

/// Moves the flow's buffer table into a stage's store for a call and starts the call's
/// clock; [`leave`] moves the table back.
fn enter(store: &mut Store<StageState>, fuel: Option<u64>, table: &mut BufferTable) {
    std::mem::swap(table, &mut store.data_mut().buffers);
    // A call that takes or makes elements says how many, once entered.
    store.data_mut().attributes.begin(0, false);
    store.data_mut().stats.calls += 1;
    start_clock(store, fuel);
}

/// A call begins: its time limit and its deadline count from now, the next epoch tick
/// interrupts it, and its fuel is refilled. One clock read.
fn start_clock(store: &mut Store<StageState>, fuel: Option<u64>) {
    store.set_epoch_deadline(1);
    if let Some(fuel) = fuel {
        // Metering is on (checked at instantiation), so this cannot fail.
        let _ = store.set_fuel(fuel);
    }
    store.data_mut().call_started = Instant::now();
}

fn leave(store: &mut Store<StageState>, table: &mut BufferTable) {
    let state = store.data_mut();
    state.unwatch();
    std::mem::swap(table, &mut state.buffers);
    let took = state.call_started.elapsed();
    state.last_call = took;
    state.stats.busy += took;
    if let Some(latency) = &mut state.stats.latency {
        latency.record(took);
    }
}

/// What a stage did with an element it was lent.
pub(crate) enum Handled {
    /// A new element: a processor's output, or an aggregator's.
    Emit(Made),
    /// A filter kept the element: it goes on as it is.
    Keep,
    /// A processor dropped it, a filter rejected it or an aggregator absorbed it.
    Consumed,
    /// A router named these ports.
    Route(Vec<String>),
    /// The sink took it and answered with this signal.
    Delivered(BackpressureSignal),
    /// A sink connector could not write it: its output is closed (a broken pipe).
    Closed,
}
