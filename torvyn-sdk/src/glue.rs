//! Generic glue between the WIT exports generated in the author's crate and the role traits.
//!
//! The export macros generate one `Guest` impl per exported interface; each method is a
//! one-line call into this module. Not part of the public API.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::thread::LocalKey;

use crate::bindings::types::{
    BackpressureSignal, ElementMeta, FlowContext, OutputElement, ProcessError, ProcessResult,
    StreamElement,
};
use crate::{
    Aggregator, Backpressure, Element, Error, Filter, Output, Processor, Router, Sink, Source,
};

/// The slot holding a component's single instance, a `thread_local!` in the author's crate
/// (a generic function cannot own a static of its own).
pub type Instance<T> = LocalKey<RefCell<Option<T>>>;

/// Runs `f` on the instance, creating it with `Default` on first use. Calls never nest
/// (the component model forbids re-entering an instance), so the borrow cannot fail.
fn with<T: Default, R>(instance: &'static Instance<T>, f: impl FnOnce(&mut T) -> R) -> R {
    instance.with(|slot| f(slot.borrow_mut().get_or_insert_with(T::default)))
}

/// `lifecycle.init`: creates the instance and hands it the configuration.
pub fn init<T: Default>(
    instance: &'static Instance<T>,
    config: String,
    init: fn(&mut T, &str) -> Result<(), Error>,
) -> Result<(), ProcessError> {
    with(instance, |component| init(component, &config)).map_err(ProcessError::from)
}

/// `lifecycle.teardown`: runs the hook, then drops the instance.
pub fn teardown<T: Default>(instance: &'static Instance<T>, teardown: fn(&mut T)) {
    if let Some(mut component) = instance.with(|slot| slot.borrow_mut().take()) {
        teardown(&mut component);
    }
}

/// Glue for the `source` interface.
pub mod source {
    use super::*;

    /// `source.pull`.
    pub fn pull<T: Source>(
        instance: &'static Instance<T>,
    ) -> Result<Option<OutputElement>, ProcessError> {
        pulled(0, with(instance, T::pull))
    }

    /// `batch-source.pull-batch`.
    pub fn pull_batch<T: Source>(
        instance: &'static Instance<T>,
        max: u32,
    ) -> Vec<Result<Option<OutputElement>, ProcessError>> {
        let mut made = HELD.with(|held| std::mem::take(&mut *held.borrow_mut()));
        if made.is_empty() {
            made = with(instance, |component| component.pull_batch(max as usize)).into();
        }
        // A batch ends at its first error or end of stream, which an output whose
        // attributes could not be written becomes: what the source made after it is
        // held for the next batch, not lost.
        let mut batch = Vec::with_capacity(made.len());
        while batch.len() < max as usize {
            let Some(result) = made.pop_front() else {
                break;
            };
            let result = pulled(batch.len() as u32, result);
            let last = !matches!(result, Ok(Some(_)));
            batch.push(result);
            if last {
                break;
            }
        }
        HELD.with(|held| *held.borrow_mut() = made);
        batch
    }

    thread_local! {
        /// What a batch source made that its last batch did not hand over.
        static HELD: RefCell<VecDeque<Result<Option<Output>, Error>>> =
            const { RefCell::new(VecDeque::new()) };
    }

    fn pulled(
        index: u32,
        result: Result<Option<Output>, Error>,
    ) -> Result<Option<OutputElement>, ProcessError> {
        Ok(result?
            .map(|output| output.into_element(index, 0, 0))
            .transpose()?)
    }

    /// `source.notify-backpressure`.
    pub fn notify_backpressure<T: Source>(
        instance: &'static Instance<T>,
        signal: BackpressureSignal,
    ) {
        let signal = match signal {
            BackpressureSignal::Ready => Backpressure::Ready,
            BackpressureSignal::Pause => Backpressure::Pause,
        };
        with(instance, |component| component.on_backpressure(signal));
    }
}

/// Glue for the `processor` interface.
pub mod processor {
    use super::*;

    /// `processor.process`.
    pub fn process<T: Processor>(
        instance: &'static Instance<T>,
        input: StreamElement<'_>,
    ) -> Result<ProcessResult, ProcessError> {
        let input = Element::new(&input);
        let output = with(instance, |component| component.process(&input));
        processed(output, 0, Some(&input))
    }

    /// `batch-processor.process-batch`, given each input's metadata and payload.
    pub fn process_batch<'a, T: Processor>(
        instance: &'static Instance<T>,
        context: &'a FlowContext,
        inputs: impl Iterator<Item = (&'a ElementMeta, &'a [u8])>,
    ) -> Vec<Result<ProcessResult, ProcessError>> {
        let elements: Vec<Element<'_>> = (inputs.zip(0..))
            .map(|((meta, payload), index)| Element::inline(meta, payload, context, index))
            .collect();
        let outputs = with(instance, |component| component.process_batch(&elements));
        // A count of results other than the inputs' is the host's to refuse: none is
        // dropped or made up here.
        (outputs.into_iter().zip(0..))
            .map(|(output, i)| processed(output, i, elements.get(i as usize)))
            .collect()
    }

    /// What a processor made of input `index`.
    fn processed(
        output: Result<Option<Output>, Error>,
        index: u32,
        input: Option<&Element<'_>>,
    ) -> Result<ProcessResult, ProcessError> {
        let (sequence, timestamp_ns) =
            input.map_or((0, 0), |input| (input.sequence(), input.timestamp_ns()));
        Ok(match output? {
            Some(output) => {
                ProcessResult::Emit(output.into_element(index, sequence, timestamp_ns)?)
            }
            None => ProcessResult::Drop,
        })
    }
}

/// Glue for the `sink` interface.
pub mod sink {
    use super::*;

    /// `sink.push`.
    pub fn push<T: Sink>(
        instance: &'static Instance<T>,
        element: StreamElement<'_>,
    ) -> Result<BackpressureSignal, ProcessError> {
        signal(with(instance, |component| {
            component.push(&Element::new(&element))
        }))
    }

    /// `batch-sink.push-batch`, given each element's metadata and payload.
    pub fn push_batch<'a, T: Sink>(
        instance: &'static Instance<T>,
        context: &'a FlowContext,
        elements: impl Iterator<Item = (&'a ElementMeta, &'a [u8])>,
    ) -> Vec<Result<BackpressureSignal, ProcessError>> {
        let elements: Vec<Element<'_>> = (elements.zip(0..))
            .map(|((meta, payload), index)| Element::inline(meta, payload, context, index))
            .collect();
        let signals = with(instance, |component| component.push_batch(&elements));
        signals.into_iter().map(signal).collect()
    }

    fn signal(result: Result<Backpressure, Error>) -> Result<BackpressureSignal, ProcessError> {
        Ok(match result? {
            Backpressure::Ready => BackpressureSignal::Ready,
            Backpressure::Pause => BackpressureSignal::Pause,
        })
    }

    /// `sink.complete`.
    pub fn complete<T: Sink>(instance: &'static Instance<T>) -> Result<(), ProcessError> {
        Ok(with(instance, T::complete)?)
    }
}

/// Glue for the `filter` interface.
pub mod filter {
    use super::*;

    /// `filter.evaluate`.
    pub fn evaluate<T: Filter>(
        instance: &'static Instance<T>,
        element: StreamElement<'_>,
    ) -> Result<bool, ProcessError> {
        Ok(with(instance, |component| {
            component.evaluate(&Element::new(&element))
        })?)
    }
}

/// Glue for the `router` interface.
pub mod router {
    use super::*;

    /// `router.route`.
    pub fn route<T: Router>(
        instance: &'static Instance<T>,
        element: StreamElement<'_>,
    ) -> Result<Vec<String>, ProcessError> {
        Ok(with(instance, |component| {
            component.route(&Element::new(&element))
        })?)
    }
}

/// Glue for the `aggregator` interface.
pub mod aggregator {
    use super::*;

    /// `aggregator.ingest`.
    pub fn ingest<T: Aggregator>(
        instance: &'static Instance<T>,
        element: StreamElement<'_>,
    ) -> Result<Option<OutputElement>, ProcessError> {
        let output = with(instance, |component| {
            component.ingest(&Element::new(&element))
        })?;
        let (sequence, timestamp_ns) = (element.meta.sequence, element.meta.timestamp_ns);
        Ok(output
            .map(|output| output.into_element(0, sequence, timestamp_ns))
            .transpose()?)
    }

    /// `aggregator.flush`.
    pub fn flush<T: Aggregator>(
        instance: &'static Instance<T>,
    ) -> Result<Vec<OutputElement>, ProcessError> {
        let outputs = with(instance, T::flush)?;
        let elements = (outputs.into_iter().zip(0..))
            .map(|(output, index)| (output.into_element(index, 0, 0)).map_err(ProcessError::from));
        elements.collect()
    }
}
