//! `torvyn:capabilities/capability-query`: answers from the component's grants.

use crate::engine::bindings::torvyn::capabilities::capability_query::Host;
use crate::engine::state::StageState;

impl Host for StageState {
    fn has_capability(&mut self, name: String) -> wasmtime::Result<bool> {
        Ok(self.grants.allows(&name))
    }
}
