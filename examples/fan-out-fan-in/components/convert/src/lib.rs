//! Converts a reading `{"sensor":"greenhouse","celsius":21.5}` to another unit, rounded to
//! two decimals: `{"sensor":"greenhouse","fahrenheit":70.7}`; config `{"unit": "fahrenheit"}`
//! or `{"unit": "kelvin"}` (required).

use serde::{Deserialize, Serialize};
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    unit: Option<Unit>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Unit {
    Fahrenheit,
    Kelvin,
}

impl Unit {
    fn convert(self, celsius: f64) -> Temperature {
        match self {
            Unit::Fahrenheit => Temperature::Fahrenheit(round(celsius * 9.0 / 5.0 + 32.0)),
            Unit::Kelvin => Temperature::Kelvin(round(celsius + 273.15)),
        }
    }
}

/// Rounds to two decimals, so that `70.7` prints as `70.7`, not `70.70000000000002`.
fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// An input element.
#[derive(Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

/// An output element: the temperature is flattened into a field named after its unit.
#[derive(Serialize)]
struct Converted {
    sensor: String,
    #[serde(flatten)]
    temperature: Temperature,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Temperature {
    Fahrenheit(f64),
    Kelvin(f64),
}

#[derive(Default)]
struct Convert {
    unit: Option<Unit>,
}

impl Processor for Convert {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config: Config = torvyn_sdk::json_config(config)?;
        let missing = || Error::InvalidInput("config: `unit` is missing".to_owned());
        self.unit = Some(config.unit.ok_or_else(missing)?);
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let unit = self
            .unit
            .ok_or_else(|| Error::Internal("no unit: `init` was not called".to_owned()))?;
        let reading: Reading = serde_json::from_slice(&input.bytes())
            .map_err(|error| Error::InvalidInput(format!("not a reading: {error}")))?;
        let converted = Converted {
            sensor: reading.sensor,
            temperature: unit.convert(reading.celsius),
        };
        let json = serde_json::to_vec(&converted)
            .map_err(|error| Error::Internal(format!("cannot serialise JSON: {error}")))?;
        Ok(Some(
            Output::bytes(&json)?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_processor!(Convert);
