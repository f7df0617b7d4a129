//! Capabilities: what a component may reach outside its sandbox. Everything is denied
//! unless granted; the defaults grant only stdout and stderr.

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// The capabilities granted to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants {
    /// May write to the host's standard output.
    pub stdout: bool,
    /// May write to the host's standard error.
    pub stderr: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            stdout: true,
            stderr: true,
        }
    }
}

impl Grants {
    /// Whether the capability called `name` is granted, as `capability-query` answers it.
    pub fn allows(&self, name: &str) -> bool {
        match name {
            "stdout" => self.stdout,
            "stderr" => self.stderr,
            _ => false,
        }
    }

    /// A WASI context that gives the component exactly these grants: no filesystem, no
    /// environment, no network, no arguments; clocks and randomness as WASI provides them.
    pub(crate) fn wasi_ctx(&self) -> WasiCtx {
        let mut builder = WasiCtxBuilder::new();
        if self.stdout {
            builder.inherit_stdout();
        }
        if self.stderr {
            builder.inherit_stderr();
        }
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stdio_is_granted_by_default() {
        let grants = Grants::default();
        assert!(grants.allows("stdout"));
        assert!(grants.allows("stderr"));
        assert!(!grants.allows("filesystem:read"));
        assert!(!grants.allows("network"));
    }
}
