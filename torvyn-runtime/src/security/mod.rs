//! What a component may reach outside its sandbox ([`Grants`]) and what it may use inside
//! it ([`Limits`]).

mod grants;
mod limits;
mod root;

pub(crate) use grants::AuditLog;
pub use grants::{AuditEvent, DirGrant, Grants, MAX_AUDIT_EVENTS};
pub(crate) use limits::Limiter;
pub use limits::{DEFAULT_INVOCATION_TIME, EPOCH_TICK, Limits};
pub(crate) use root::DeniedRoot;
