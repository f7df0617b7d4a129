//! The export macros: one per role, each generating the role's WIT world in the author's crate.
//!
//! Each macro expands, in the crate that invokes it:
//!
//! 1. `wit_bindgen::generate!` for exactly the role's world, with the shared `types` and
//!    `buffer-allocator` interfaces mapped onto this SDK's bindings, so the component's
//!    `component-type` section claims only that role's exports;
//! 2. a `thread_local!` slot holding the single instance of the author's type;
//! 3. one `Guest` impl per exported interface, each forwarding to the generic glue.
//!
//! `generate!` needs literal paths to the WIT folders, which only `build.rs` knows: it writes
//! the hidden `__generate!` macro included below.

include!(concat!(env!("OUT_DIR"), "/export_macros.rs"));

/// Shared body of the export macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($component:ty, $role:ident, $world:tt, { $($with:tt)* }, { $($impls:tt)* }) => {
        #[doc(hidden)]
        type __TorvynComponent = $component;

        #[doc(hidden)]
        #[allow(unsafe_code, missing_docs, unused, clippy::all)]
        mod __torvyn_export {
            $crate::__generate!($world, { $($with)* });

            ::std::thread_local! {
                static INSTANCE: ::core::cell::RefCell<::core::option::Option<super::__TorvynComponent>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            struct Component;

            impl exports::torvyn::streaming::lifecycle::Guest for Component {
                fn init(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), $crate::__private::types::ProcessError> {
                    $crate::__private::init(
                        &INSTANCE,
                        config,
                        <super::__TorvynComponent as $crate::$role>::init,
                    )
                }

                fn teardown() {
                    $crate::__private::teardown(
                        &INSTANCE,
                        <super::__TorvynComponent as $crate::$role>::teardown,
                    )
                }
            }

            $($impls)*

            export!(Component);
        }
    };
}

/// Exports a [`Source`](crate::Source) as a component of world
/// `torvyn:streaming/data-source@0.1.0`.
///
/// With `batch`, the component is of world `torvyn:batching/batch-data-source@0.1.0`: it
/// exports `torvyn:batching/batch-source` as well, and the host then pulls up to 32
/// elements per call through [`Source::pull_batch`](crate::Source::pull_batch). It still
/// runs, one element per call, on a host that knows only `torvyn:streaming@0.1.0`.
///
/// ```no_run
/// use torvyn_sdk::{Error, Output, Source};
///
/// #[derive(Default)]
/// struct Empty;
///
/// impl Source for Empty {
///     fn pull(&mut self) -> Result<Option<Output>, Error> {
///         Ok(None)
///     }
/// }
///
/// torvyn_sdk::export_source!(Empty);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_source {
    ($component:ty) => {
        $crate::__export_component!($component, Source, "torvyn:streaming/data-source@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
            "torvyn:streaming/buffer-allocator@0.1.0": ::torvyn_sdk::__private::buffer_allocator,
        }, {
            $crate::__impl_source!();
        });
    };
    ($component:ty, batch) => {
        $crate::__export_component!($component, Source, "torvyn:batching/batch-data-source@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
            "torvyn:streaming/buffer-allocator@0.1.0": ::torvyn_sdk::__private::buffer_allocator,
        }, {
            $crate::__impl_source!();

            impl exports::torvyn::batching::batch_source::Guest for Component {
                fn pull_batch(max: u32) -> ::std::vec::Vec<::core::result::Result<
                    ::core::option::Option<$crate::__private::types::OutputElement>,
                    $crate::__private::types::ProcessError,
                >> {
                    $crate::__private::source::pull_batch(&INSTANCE, max)
                }
            }
        });
    };
}

/// The `source` interface of [`export_source!`], expanded inside its module.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_source {
    () => {
        impl exports::torvyn::streaming::source::Guest for Component {
            fn pull() -> ::core::result::Result<
                ::core::option::Option<$crate::__private::types::OutputElement>,
                $crate::__private::types::ProcessError,
            > {
                $crate::__private::source::pull(&INSTANCE)
            }

            fn notify_backpressure(signal: $crate::__private::types::BackpressureSignal) {
                $crate::__private::source::notify_backpressure(&INSTANCE, signal)
            }
        }
    };
}

/// Exports a [`Processor`](crate::Processor) as a component of world
/// `torvyn:streaming/managed-transform@0.1.0`.
///
/// With `batch`, the component is of world `torvyn:batching/batch-transform@0.1.0`: it
/// exports `torvyn:batching/batch-processor` as well, and the host then hands it up to 32
/// queued elements per call through
/// [`Processor::process_batch`](crate::Processor::process_batch). It still runs, one
/// element per call, on a host that knows only `torvyn:streaming@0.1.0`. When a batch call
/// traps, the host gives each element of the batch to a fresh instance again, one per call.
///
/// ```no_run
/// use torvyn_sdk::{Element, Error, Output, Processor};
///
/// #[derive(Default)]
/// struct Dropper;
///
/// impl Processor for Dropper {
///     fn process(&mut self, _input: &Element<'_>) -> Result<Option<Output>, Error> {
///         Ok(None)
///     }
/// }
///
/// torvyn_sdk::export_processor!(Dropper, batch);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_processor {
    ($component:ty) => {
        $crate::__export_component!($component, Processor, "torvyn:streaming/managed-transform@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
            "torvyn:streaming/buffer-allocator@0.1.0": ::torvyn_sdk::__private::buffer_allocator,
        }, {
            $crate::__impl_processor!();
        });
    };
    ($component:ty, batch) => {
        $crate::__export_component!($component, Processor, "torvyn:batching/batch-transform@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
            "torvyn:streaming/buffer-allocator@0.1.0": ::torvyn_sdk::__private::buffer_allocator,
        }, {
            $crate::__impl_processor!();

            impl exports::torvyn::batching::batch_processor::Guest for Component {
                fn process_batch(
                    context: &$crate::__private::types::FlowContext,
                    inputs: ::std::vec::Vec<exports::torvyn::batching::batch_processor::BatchElement>,
                ) -> ::std::vec::Vec<::core::result::Result<
                    $crate::__private::types::ProcessResult,
                    $crate::__private::types::ProcessError,
                >> {
                    let inputs = inputs.iter().map(|input| (&input.meta, input.payload.as_slice()));
                    $crate::__private::processor::process_batch(&INSTANCE, context, inputs)
                }
            }
        });
    };
}

/// The `processor` interface of [`export_processor!`], expanded inside its module.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_processor {
    () => {
        impl exports::torvyn::streaming::processor::Guest for Component {
            fn process(
                input: $crate::__private::types::StreamElement<'_>,
            ) -> ::core::result::Result<
                $crate::__private::types::ProcessResult,
                $crate::__private::types::ProcessError,
            > {
                $crate::__private::processor::process(&INSTANCE, input)
            }
        }
    };
}

/// Exports a [`Sink`](crate::Sink) as a component of world
/// `torvyn:streaming/data-sink@0.1.0`.
///
/// With `batch`, the component is of world `torvyn:batching/batch-data-sink@0.1.0`: it
/// exports `torvyn:batching/batch-sink` as well, and the host then hands it up to 32
/// queued elements per call through [`Sink::push_batch`](crate::Sink::push_batch). It
/// still runs, one element per call, on a host that knows only `torvyn:streaming@0.1.0`.
/// When a batch call traps, the host gives each element of the batch to a fresh instance
/// again, one per call: a sink with side effects may see an element twice.
///
/// ```no_run
/// use torvyn_sdk::{Backpressure, Element, Error, Sink};
///
/// #[derive(Default)]
/// struct Discard;
///
/// impl Sink for Discard {
///     fn push(&mut self, _element: &Element<'_>) -> Result<Backpressure, Error> {
///         Ok(Backpressure::Ready)
///     }
/// }
///
/// torvyn_sdk::export_sink!(Discard);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_sink {
    ($component:ty) => {
        $crate::__export_component!($component, Sink, "torvyn:streaming/data-sink@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
        }, {
            $crate::__impl_sink!();
        });
    };
    ($component:ty, batch) => {
        $crate::__export_component!($component, Sink, "torvyn:batching/batch-data-sink@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
        }, {
            $crate::__impl_sink!();

            impl exports::torvyn::batching::batch_sink::Guest for Component {
                fn push_batch(
                    context: &$crate::__private::types::FlowContext,
                    elements: ::std::vec::Vec<exports::torvyn::batching::batch_sink::BatchElement>,
                ) -> ::std::vec::Vec<::core::result::Result<
                    $crate::__private::types::BackpressureSignal,
                    $crate::__private::types::ProcessError,
                >> {
                    let elements = elements.iter().map(|e| (&e.meta, e.payload.as_slice()));
                    $crate::__private::sink::push_batch(&INSTANCE, context, elements)
                }
            }
        });
    };
}

/// The `sink` interface of [`export_sink!`], expanded inside its module.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sink {
    () => {
        impl exports::torvyn::streaming::sink::Guest for Component {
            fn push(
                element: $crate::__private::types::StreamElement<'_>,
            ) -> ::core::result::Result<
                $crate::__private::types::BackpressureSignal,
                $crate::__private::types::ProcessError,
            > {
                $crate::__private::sink::push(&INSTANCE, element)
            }

            fn complete() -> ::core::result::Result<(), $crate::__private::types::ProcessError> {
                $crate::__private::sink::complete(&INSTANCE)
            }
        }
    };
}

/// Exports a [`Filter`](crate::Filter) as a component of world
/// `torvyn:filtering/content-filter@0.1.0`.
///
/// ```no_run
/// use torvyn_sdk::{Element, Error, Filter};
///
/// #[derive(Default)]
/// struct NonEmpty;
///
/// impl Filter for NonEmpty {
///     fn evaluate(&mut self, element: &Element<'_>) -> Result<bool, Error> {
///         Ok(element.size() > 0)
///     }
/// }
///
/// torvyn_sdk::export_filter!(NonEmpty);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_filter {
    ($component:ty) => {
        $crate::__export_component!($component, Filter, "torvyn:filtering/content-filter@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
        }, {
            impl exports::torvyn::filtering::filter::Guest for Component {
                fn evaluate(
                    element: $crate::__private::types::StreamElement<'_>,
                ) -> ::core::result::Result<bool, $crate::__private::types::ProcessError> {
                    $crate::__private::filter::evaluate(&INSTANCE, element)
                }
            }
        });
    };
}

/// Exports a [`Router`](crate::Router) as a component of world
/// `torvyn:filtering/content-router@0.1.0`.
///
/// ```no_run
/// use torvyn_sdk::{Element, Error, Router};
///
/// #[derive(Default)]
/// struct Everywhere;
///
/// impl Router for Everywhere {
///     fn route(&mut self, _element: &Element<'_>) -> Result<Vec<String>, Error> {
///         Ok(vec!["out".to_owned()])
///     }
/// }
///
/// torvyn_sdk::export_router!(Everywhere);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_router {
    ($component:ty) => {
        $crate::__export_component!($component, Router, "torvyn:filtering/content-router@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
        }, {
            impl exports::torvyn::filtering::router::Guest for Component {
                fn route(
                    element: $crate::__private::types::StreamElement<'_>,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<::std::string::String>,
                    $crate::__private::types::ProcessError,
                > {
                    $crate::__private::router::route(&INSTANCE, element)
                }
            }
        });
    };
}

/// Exports an [`Aggregator`](crate::Aggregator) as a component of world
/// `torvyn:aggregation/stream-aggregator@0.1.0`.
///
/// ```no_run
/// use torvyn_sdk::{Aggregator, Element, Error, Output};
///
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl Aggregator for Counter {
///     fn ingest(&mut self, _element: &Element<'_>) -> Result<Option<Output>, Error> {
///         self.0 += 1;
///         Ok(None)
///     }
///
///     fn flush(&mut self) -> Result<Vec<Output>, Error> {
///         Ok(vec![Output::text(&self.0.to_string())?])
///     }
/// }
///
/// torvyn_sdk::export_aggregator!(Counter);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_aggregator {
    ($component:ty) => {
        $crate::__export_component!($component, Aggregator, "torvyn:aggregation/stream-aggregator@0.1.0", {
            "torvyn:streaming/types@0.1.0": ::torvyn_sdk::__private::types,
            "torvyn:streaming/buffer-allocator@0.1.0": ::torvyn_sdk::__private::buffer_allocator,
        }, {
            impl exports::torvyn::aggregation::aggregator::Guest for Component {
                fn ingest(
                    element: $crate::__private::types::StreamElement<'_>,
                ) -> ::core::result::Result<
                    ::core::option::Option<$crate::__private::types::OutputElement>,
                    $crate::__private::types::ProcessError,
                > {
                    $crate::__private::aggregator::ingest(&INSTANCE, element)
                }

                fn flush() -> ::core::result::Result<
                    ::std::vec::Vec<$crate::__private::types::OutputElement>,
                    $crate::__private::types::ProcessError,
                > {
                    $crate::__private::aggregator::flush(&INSTANCE)
                }
            }
        });
    };
}
