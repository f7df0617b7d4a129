//! `torvyn:attributes/element-attributes`: the attributes of the current call's elements
//! (see `crate::attributes` for what a call sees and what its outputs carry).

use crate::attributes::AttributeError;
use crate::engine::bindings::torvyn::attributes::element_attributes::{
    AttributeError as Wit, Host,
};
use crate::engine::state::StageState;

impl Host for StageState {
    fn get(&mut self, index: u32, key: String) -> wasmtime::Result<Option<String>> {
        let input = self.attributes.input(index);
        Ok(input
            .and_then(|a| a.get(&key))
            .map(|value| value.into_owned()))
    }

    fn all(&mut self, index: u32) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self
            .attributes
            .input(index)
            .map(|a| a.to_vec())
            .unwrap_or_default())
    }

    fn set(&mut self, index: u32, key: String, value: String) -> wasmtime::Result<Result<(), Wit>> {
        let output = self.attributes.output(index);
        Ok(output.and_then(|a| a.set(&key, &value)).map_err(to_wit))
    }

    fn remove(&mut self, index: u32, key: String) -> wasmtime::Result<Result<(), Wit>> {
        let output = self.attributes.output(index);
        Ok(output.and_then(|a| a.remove(&key)).map_err(to_wit))
    }
}

fn to_wit(error: AttributeError) -> Wit {
    match error {
        AttributeError::NoSuchElement => Wit::NoSuchElement,
        AttributeError::TooMany => Wit::TooMany,
        AttributeError::TooLarge => Wit::TooLarge,
    }
}
