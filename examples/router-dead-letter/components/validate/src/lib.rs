//! Checks that each order is a JSON object with an integer `id`, a string `item` and a
//! positive integer `quantity`, and confirms it as `order {id}: {quantity} x {item}`
//! (text/plain). Anything else is an `invalid-input` error. No config.

use serde::Deserialize;
use torvyn_sdk::{Element, Error, Output, Processor};

/// The fields of an order it needs; others are ignored.
#[derive(Deserialize)]
struct Order {
    id: u64,
    item: String,
    quantity: u64,
}

#[derive(Default)]
struct Validate;

impl Processor for Validate {
    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let order: Order = serde_json::from_slice(&input.bytes())
            .map_err(|error| Error::InvalidInput(format!("not an order: {error}")))?;
        if order.quantity == 0 {
            return Err(Error::InvalidInput(format!(
                "order {}: quantity is 0",
                order.id
            )));
        }
        let confirmation = format!("order {}: {} x {}", order.id, order.quantity, order.item);
        Ok(Some(Output::text(&confirmation)?))
    }
}

torvyn_sdk::export_processor!(Validate);
