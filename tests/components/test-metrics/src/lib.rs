//! Test processor of `torvyn:runtime/metrics`: hands every element on unchanged and keeps
//! `elements` (a counter by the parity of the payload's length, `kind` = `even` or `odd`),
//! `last_size` (a gauge of the last payload's length, in bytes) and `size` (a histogram
//! of the payloads' lengths, bounds 6 and 16 bytes). A second declaration of `elements`
//! with other labels must be refused, or the call fails. Config `"still"` declares them
//! and updates none: the same work without the updates, to measure what they cost.
//! Config `"trap:TEXT"` traps on the element whose payload is TEXT, before counting it.

use torvyn_sdk::metrics::{Counter, Gauge, Histogram, MetricError};
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default)]
struct Metered {
    metrics: Option<(Counter, Gauge, Histogram)>,
    still: bool,
    trap_on: Option<Vec<u8>>,
}

impl Processor for Metered {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config = config.trim().trim_matches('"');
        self.still = config == "still";
        self.trap_on = config
            .strip_prefix("trap:")
            .map(|text| text.as_bytes().to_vec());
        let elements = Counter::new(
            "elements",
            "Elements seen, by the parity of their length",
            "",
            &["kind"],
        )?;
        let conflicting = Counter::new("elements", "Elements seen", "", &[]);
        if !matches!(conflicting, Err(MetricError::Conflicting)) {
            return Err(Error::Fatal(format!(
                "a conflicting declaration gave {conflicting:?}"
            )));
        }
        let last = Gauge::new("last_size", "Length of the last payload", "bytes", &[])?;
        let sizes = Histogram::new("size", "Payload lengths", "bytes", &[], &[6.0, 16.0])?;
        self.metrics = Some((elements, last, sizes));
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let bytes = input.bytes();
        if self.trap_on.as_deref() == Some(&bytes[..]) {
            panic!("asked to trap on this element");
        }
        if let Some((elements, last, sizes)) = self.metrics.as_ref().filter(|_| !self.still) {
            let kind = if bytes.len().is_multiple_of(2) {
                "even"
            } else {
                "odd"
            };
            elements.add(&[kind], 1)?;
            last.set(&[], bytes.len() as f64)?;
            sizes.observe(&[], bytes.len() as f64)?;
        }
        let output = Output::bytes(&bytes)?.with_content_type(input.content_type());
        Ok(Some(output))
    }
}

torvyn_sdk::export_processor!(Metered);
