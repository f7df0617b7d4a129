//! Test processor that misbehaves on purpose once it reaches element `at` (default 0);
//! before that, and in mode `pass`, it passes elements through unchanged.
//!
//! Config (JSON): `{"mode": "loop", "at": 0, "path": "", "length": 0}`, where the mode is
//! one of:
//!
//! - `loop` spins forever inside `process`;
//! - `init-loop` spins forever inside `init`;
//! - `trap` aborts, which traps without a panic message;
//! - `grow` allocates memory, a MiB at a time, until something stops it;
//! - `leak` allocates a host buffer for every element and never lets go of it;
//! - `read` emits the contents of the file `path`, or fails with the reason it cannot;
//! - `write` writes the element to the file `path` and passes it on, or fails;
//! - `connect` opens a TCP connection to `path` (`host:port`), or fails with the reason;
//! - `env` emits the value of the environment variable `path`, or fails;
//! - `query` emits `{path}=true` or `{path}=false`: whether the host grants capability `path`;
//! - `label` passes the element on with a content type `length` bytes long;
//! - `label-buffer` passes it on in a buffer whose content type is `length` bytes long;
//! - `long-error` fails with an internal error whose text is `length` bytes long.

use serde::Deserialize;
use torvyn_sdk::{Element, Error, Output, Processor};

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    #[default]
    Pass,
    Loop,
    InitLoop,
    Grow,
    Leak,
    Trap,
    Read,
    Write,
    Connect,
    Env,
    Query,
    Label,
    LabelBuffer,
    LongError,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    mode: Mode,
    at: u64,
    path: String,
    length: usize,
}

#[derive(Default)]
struct TestHostile {
    config: Config,
    hoard: Vec<Vec<u8>>,
}

impl Processor for TestHostile {
    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.config = torvyn_sdk::json_config(config)?;
        if let Mode::InitLoop = self.config.mode {
            let mut spins = 0u64;
            loop {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        Ok(())
    }

    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let pass = || Output::bytes(&input.bytes()).map(Some);
        if input.sequence() < self.config.at {
            return pass();
        }
        match self.config.mode {
            Mode::Pass | Mode::InitLoop => pass(),
            Mode::Loop => {
                let mut spins = 0u64;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            Mode::Grow => loop {
                self.hoard.push(vec![1; 1 << 20]);
            },
            Mode::Leak => {
                // Never dropped, so the handle stays held by this component.
                std::mem::forget(torvyn_sdk::allocate(16)?);
                pass()
            }
            Mode::Trap => std::process::abort(),
            Mode::Label => Ok(Some(
                Output::bytes(&input.bytes())?.with_content_type("x".repeat(self.config.length)),
            )),
            Mode::LabelBuffer => {
                let mut buffer = torvyn_sdk::allocate(input.size())?;
                buffer.append(&input.bytes())?;
                buffer.set_content_type(&"x".repeat(self.config.length));
                Ok(Some(buffer.freeze()))
            }
            Mode::LongError => Err(Error::Internal("x".repeat(self.config.length))),
            Mode::Write => match std::fs::write(&self.config.path, input.bytes()) {
                Ok(()) => pass(),
                Err(error) => Err(Error::Unavailable(format!(
                    "cannot write `{}`: {error}",
                    self.config.path
                ))),
            },
            Mode::Env => match std::env::var(&self.config.path) {
                Ok(value) => Output::bytes(value.as_bytes()).map(Some),
                Err(error) => Err(Error::Unavailable(format!(
                    "cannot read `{}`: {error}",
                    self.config.path
                ))),
            },
            Mode::Query => {
                let answer = torvyn_sdk::has_capability(&self.config.path);
                Output::bytes(format!("{}={answer}", self.config.path).as_bytes()).map(Some)
            }
            Mode::Connect => match std::net::TcpStream::connect(&self.config.path) {
                Ok(_) => Output::bytes(b"connected").map(Some),
                Err(error) => Err(Error::Unavailable(format!(
                    "cannot connect to `{}`: {error}",
                    self.config.path
                ))),
            },
            Mode::Read => match std::fs::read(&self.config.path) {
                Ok(bytes) => Output::bytes(&bytes).map(Some),
                Err(error) => Err(Error::Unavailable(format!(
                    "cannot read `{}`: {error}",
                    self.config.path
                ))),
            },
        }
    }
}

torvyn_sdk::export_processor!(TestHostile);
