//! The six component roles: one trait each, implemented by the component author.
//!
//! Every trait requires `Default + 'static`: the export macro creates the instance with
//! `Default` before the first call and keeps it until `teardown`. `init` and `teardown` are
//! optional; the host calls `init` once with the component's configuration string (JSON by
//! convention) before anything else, and `teardown` once after the last call.

use crate::{Element, Error, Output};

/// Flow-control signal between the host and a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Data may flow.
    #[default]
    Ready,
    /// Hold off until [`Backpressure::Ready`].
    Pause,
}

/// Produces the elements of a flow. Export with [`export_source!`](crate::export_source).
pub trait Source: Default + 'static {
    /// Called once before the first call with the component's configuration.
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Produces the next element, or `None` at the end of the stream.
    fn pull(&mut self) -> Result<Option<Output>, Error>;

    /// Produces up to `max` elements (`max` is at least 1) for a source exported with
    /// `batch` ([`export_source!`](crate::export_source)), as that many calls to
    /// [`pull`](Source::pull) would: the list ends early after the first `None` or error,
    /// and holds at least one result. The default calls `pull` until then; override it
    /// when producing elements together is cheaper.
    fn pull_batch(&mut self, max: usize) -> Vec<Result<Option<Output>, Error>> {
        let mut batch = Vec::with_capacity(max);
        while batch.len() < max.max(1) {
            let result = self.pull();
            let last = !matches!(result, Ok(Some(_)));
            batch.push(result);
            if last {
                break;
            }
        }
        batch
    }

    /// The host asks the source to pause or to resume producing.
    fn on_backpressure(&mut self, signal: Backpressure) {
        let _ = signal;
    }

    /// Called once after the last call.
    fn teardown(&mut self) {}
}

/// Turns each element into zero or one element. Export with
/// [`export_processor!`](crate::export_processor).
pub trait Processor: Default + 'static {
    /// Called once before the first call with the component's configuration.
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Handles one element: `Some` sends an element downstream, `None` drops the input.
    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error>;

    /// Handles several elements at once for a processor exported with `batch`
    /// ([`export_processor!`](crate::export_processor)): one result per input, in order, as
    /// [`process`](Processor::process) would give. The default calls `process` on each.
    fn process_batch(&mut self, inputs: &[Element<'_>]) -> Vec<Result<Option<Output>, Error>> {
        inputs.iter().map(|input| self.process(input)).collect()
    }

    /// Called once after the last call.
    fn teardown(&mut self) {}
}

/// Consumes elements at the end of a flow. Export with [`export_sink!`](crate::export_sink).
pub trait Sink: Default + 'static {
    /// Called once before the first call with the component's configuration.
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Consumes one element; [`Backpressure::Pause`] asks the host to slow the flow down.
    fn push(&mut self, element: &Element<'_>) -> Result<Backpressure, Error>;

    /// Consumes several elements at once for a sink exported with `batch`
    /// ([`export_sink!`](crate::export_sink)): one result per element, in order, as
    /// [`push`](Sink::push) would give. The default calls `push` on each.
    fn push_batch(&mut self, elements: &[Element<'_>]) -> Vec<Result<Backpressure, Error>> {
        elements.iter().map(|element| self.push(element)).collect()
    }

    /// The stream has ended: flush anything buffered.
    fn complete(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Called once after the last call.
    fn teardown(&mut self) {}
}

/// Keeps or drops elements. Export with [`export_filter!`](crate::export_filter).
pub trait Filter: Default + 'static {
    /// Called once before the first call with the component's configuration.
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Returns `true` to keep the element, `false` to drop it.
    fn evaluate(&mut self, element: &Element<'_>) -> Result<bool, Error>;

    /// Called once after the last call.
    fn teardown(&mut self) {}
}

/// Sends elements to named output ports. Export with [`export_router!`](crate::export_router).
pub trait Router: Default + 'static {
    /// Called once before the first call with the component's configuration.
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Returns the names of the output ports that receive the element.
    fn route(&mut self, element: &Element<'_>) -> Result<Vec<String>, Error>;

    /// Called once after the last call.
    fn teardown(&mut self) {}
}

/// Folds many elements into fewer. Export with
/// [`export_aggregator!`](crate::export_aggregator).
pub trait Aggregator: Default + 'static {
    /// Called once before the first call with the component's configuration.
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Takes in one element and may produce an aggregate right away.
    fn ingest(&mut self, element: &Element<'_>) -> Result<Option<Output>, Error>;

    /// The stream has ended: returns the aggregates still held.
    fn flush(&mut self) -> Result<Vec<Output>, Error>;

    /// Called once after the last call.
    fn teardown(&mut self) {}
}
