//! Write Torvyn streaming components in Rust.
//!
//! A component plays one role. Implement that role's trait on a `Default` type and export
//! it with the matching macro:
//!
//! | role | trait | macro | WIT world |
//! | --- | --- | --- | --- |
//! | produce elements | [`Source`] | [`export_source!`] | `torvyn:streaming/data-source` |
//! | transform elements | [`Processor`] | [`export_processor!`] | `torvyn:streaming/managed-transform` |
//! | consume elements | [`Sink`] | [`export_sink!`] | `torvyn:streaming/data-sink` |
//! | keep or drop | [`Filter`] | [`export_filter!`] | `torvyn:filtering/content-filter` |
//! | route to ports | [`Router`] | [`export_router!`] | `torvyn:filtering/content-router` |
//! | aggregate | [`Aggregator`] | [`export_aggregator!`] | `torvyn:aggregation/stream-aggregator` |
//!
//! ```no_run
//! use torvyn_sdk::{Element, Error, Output, Processor};
//!
//! /// Upper-cases text.
//! #[derive(Default)]
//! struct Upper;
//!
//! impl Processor for Upper {
//!     fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
//!         let text = input.bytes().to_ascii_uppercase();
//!         let output = Output::bytes(&text)?.with_content_type(input.content_type());
//!         Ok(Some(output))
//!     }
//! }
//!
//! torvyn_sdk::export_processor!(Upper);
//! # fn main() {}
//! ```
//!
//! A source, processor or sink can also take or make elements in batches: export it with
//! `batch` (`export_processor!(Upper, batch)`), and the host calls it with up to 32
//! elements at once through the `torvyn:batching@0.1.0` interfaces, which saves most of the
//! cost of a call per element. The batch methods of the traits ([`Processor::process_batch`]
//! and the like) call the single-element ones by default. Batching is opt-in because a
//! batch shares one call's time limit and fuel, and a trap in a batch call makes the host
//! hand every element of the batch to a fresh instance again.
//!
//! Elements carry attributes: named text values beside the payload, such as the `path`,
//! `line` and `offset` where a `file` source read them. Read them with
//! [`Element::attribute`], set them on what a call hands on with
//! [`Output::with_attribute`] or [`Element::set_attribute`] (`torvyn:attributes@0.1.0`). A
//! component that never touches them does not import that package.
//!
//! A component can keep metrics of its own, served with the host's: see [`metrics`].
//!
//! Build with `cargo build --target wasm32-wasip2` in a `cdylib` crate; the result is a
//! component. Payloads live in host memory: an [`Element`] reads them on demand and an
//! [`Output`] is copied into a host buffer in one call ([`Output::bytes`]), or written
//! into one from [`allocate`] piece by piece.
//!
//! The export macros expect this crate under its own name, `torvyn_sdk`, in the
//! component's dependencies (do not rename it). Invoke one of them, once, at module level
//! (usually at the end of `lib.rs`).

#![warn(missing_docs)]

mod bindings;
mod element;
mod error;
mod export;
mod glue;
pub mod metrics;
mod output;
mod roles;

pub use element::Element;
pub use error::Error;
pub use output::{Output, OutputBuffer, allocate};
pub use roles::{Aggregator, Backpressure, Filter, Processor, Router, Sink, Source};

/// Parses a component's configuration, JSON by convention, into `T`. An empty
/// configuration gives `T::default()`; malformed JSON, or JSON that does not fit `T`, is an
/// [`Error::InvalidInput`] naming the problem, which the host reports as a failed `init`.
///
/// ```
/// #[derive(Default, serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config {
///     count: u64,
/// }
///
/// let config: Config = torvyn_sdk::json_config(r#"{"count": 3}"#).unwrap();
/// assert_eq!(config.count, 3);
/// assert_eq!(torvyn_sdk::json_config::<Config>("").unwrap().count, 0);
/// assert!(torvyn_sdk::json_config::<Config>(r#"{"cuont": 3}"#).is_err());
/// ```
#[cfg(feature = "json")]
pub fn json_config<T: serde::de::DeserializeOwned + Default>(config: &str) -> Result<T, Error> {
    if config.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(config).map_err(|error| Error::InvalidInput(format!("config: {error}")))
}

/// Returns `true` when the host granted the named capability to this component.
pub fn has_capability(name: &str) -> bool {
    bindings::capability_query::has_capability(name)
}

/// Used by the export macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::{buffer_allocator, types};
    pub use crate::glue::*;
    pub use wit_bindgen;
}
