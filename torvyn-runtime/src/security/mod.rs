//! What a component may reach outside its sandbox ([`Grants`]) and what it may use inside
//! it ([`Limits`]).

mod grants;
mod limits;

pub use grants::Grants;
pub(crate) use limits::Limiter;
pub use limits::{DEFAULT_INVOCATION_TIME, EPOCH_TICK, Limits};
