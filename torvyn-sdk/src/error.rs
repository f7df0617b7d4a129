//! The error a component returns from any call.

use std::fmt;

use crate::bindings::types::{BufferError, ProcessError};

/// Why a component could not handle a call; mirrors the WIT `process-error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input was malformed; the text says how.
    InvalidInput(String),
    /// A resource the component needs is temporarily unavailable; a retry may work.
    Unavailable(String),
    /// The component failed in a way it did not expect.
    Internal(String),
    /// The call's deadline passed before the work was done.
    DeadlineExceeded,
    /// The component cannot go on; the flow should stop.
    Fatal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(message) => write!(f, "invalid input: {message}"),
            Error::Unavailable(message) => write!(f, "unavailable: {message}"),
            Error::Internal(message) => write!(f, "internal error: {message}"),
            Error::DeadlineExceeded => f.write_str("deadline exceeded"),
            Error::Fatal(message) => write!(f, "fatal error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// A failed buffer operation is a bug or a resource limit of the component, not bad input.
impl From<BufferError> for Error {
    fn from(error: BufferError) -> Self {
        let message = match error {
            BufferError::CapacityExceeded => "buffer capacity exceeded".to_owned(),
            BufferError::OutOfBounds => "buffer offset out of bounds".to_owned(),
            BufferError::AllocationFailed(reason) => format!("buffer allocation failed: {reason}"),
        };
        Error::Internal(message)
    }
}

impl From<Error> for ProcessError {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidInput(message) => ProcessError::InvalidInput(message),
            Error::Unavailable(message) => ProcessError::Unavailable(message),
            Error::Internal(message) => ProcessError::Internal(message),
            Error::DeadlineExceeded => ProcessError::DeadlineExceeded,
            Error::Fatal(message) => ProcessError::Fatal(message),
        }
    }
}
