//! Capabilities: what a component may reach outside its sandbox. Everything is denied
//! unless granted in `[components.NAME.capabilities]`, except the console: stdout and
//! stderr are granted unless a component's grants say otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::DeniedRoot;
use crate::observability::{EventKind, Events};

/// A host directory a component may open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the component finds it, e.g. `/data`.
    pub guest: String,
    /// Whether it may create, change and remove files there.
    pub write: bool,
}

/// The capabilities granted to one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// May write to the host's standard output.
    pub stdout: bool,
    /// May write to the host's standard error.
    pub stderr: bool,
    /// Environment variables it sees, by name, with the host's values.
    pub env: Vec<String>,
    /// Directories it may open.
    pub dirs: Vec<DirGrant>,
    /// Addresses it may open TCP connections to.
    pub network: Vec<SocketAddr>,
    /// May keep metrics of its own (`torvyn:runtime/metrics`), exported with the host's.
    pub metrics: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            stdout: true,
            stderr: true,
            env: Vec::new(),
            dirs: Vec::new(),
            network: Vec::new(),
            metrics: false,
        }
    }
}

/// A use of a capability that the host refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// The node whose component tried.
    pub node: String,
    /// The capability it lacked, as `capability-query` names it.
    pub capability: String,
    /// What it tried to do.
    pub detail: String,
    /// Why it was refused, e.g. that the path leads out of the granted directory.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// The audit events of one flow, shared by its stages' WASI contexts (a cold path: it is
/// written only when something is denied).
///
/// Each refusal is also a [`FlowEvent`](crate::FlowEvent) when the flow's events are
/// recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditLog {
    refused: Arc<Mutex<Refused>>,
    events: Option<Events>,
}

/// The most refusals a flow's audit keeps: the first ones, the others counted, so that a
/// component that keeps asking cannot grow its flow's report without end.
pub const MAX_AUDIT_EVENTS: usize = 1000;

#[derive(Debug, Default)]
struct Refused {
    kept: Vec<AuditEvent>,
    omitted: u64,
}

impl AuditLog {
    pub(crate) fn new(events: Option<Events>) -> Self {
        Self {
            refused: Arc::default(),
            events,
        }
    }

    /// Records a refused use; `detail` says what the component asked for (a path, an
    /// address), in its own words, so its control characters are escaped and it is cut
    /// short past [`MAX_COMPONENT_TEXT`](crate::observability::MAX_COMPONENT_TEXT) bytes.
    pub(crate) fn record(&self, node: &str, capability: String, detail: String, reason: String) {
        use crate::observability::{MAX_COMPONENT_TEXT, cut_short, printable};
        let detail = printable(&cut_short(&detail, MAX_COMPONENT_TEXT), false).into_owned();
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if let Some(events) = &self.events {
            events.emit(EventKind::CapabilityDenied {
                node: node.to_owned(),
                capability: capability.clone(),
                detail: detail.clone(),
                reason: reason.clone(),
            });
        }
        let event = AuditEvent {
            node: node.to_owned(),
            capability,
            detail,
            reason,
            at_unix_ms,
        };
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        match refused.kept.len() < MAX_AUDIT_EVENTS {
            true => refused.kept.push(event),
            false => refused.omitted += 1,
        }
    }

    /// The refusals kept, in order, and how many more there were.
    pub(crate) fn events(&self) -> (Vec<AuditEvent>, u64) {
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        (refused.kept.clone(), refused.omitted)
    }
}

impl Grants {
    /// Whether the capability called `name` is granted, as `capability-query` answers it:
    /// `stdout`, `stderr`, `env:NAME`, `filesystem:read`, `filesystem:write`, `network`,
    /// or `network:ADDRESS:PORT`.
    pub fn allows(&self, name: &str) -> bool {
        match name.split_once(':') {
            None => match name {
                "stdout" => self.stdout,
                "stderr" => self.stderr,
                "network" => !self.network.is_empty(),
                "metrics" => self.metrics,
                _ => false,
            },
            Some(("env", var)) => self.env.iter().any(|granted| granted == var),
            Some(("filesystem", "read")) => !self.dirs.is_empty(),
            Some(("filesystem", "write")) => self.dirs.iter().any(|d| d.write),
            Some(("network", address)) => address
                .parse::<SocketAddr>()
                .is_ok_and(|address| self.network.contains(&address)),
            Some(_) => false,
        }
    }

    /// The WASI context a component gets when it is instantiated: one that gives it exactly
    /// these grants (the granted environment variables, directories and TCP addresses, the
    /// console if granted, no arguments, no UDP; clocks and randomness as WASI provides
    /// them), with `root` preopened as `/` so that other paths reach the host to be
    /// refused. A refused TCP address is recorded in `audit` under `node`.
    ///
    /// `None` when no directory is granted: the component then gets its context at its
    /// first call into WASI ([`Grants::wasi_ctx_on_first_use`]), and one that makes none
    /// never holds a descriptor. A granted directory opens here, so that one that cannot
    /// stops the flow from starting.
    ///
    /// # Errors
    ///
    /// A granted directory, or `root`, that cannot be opened (`ENOENT`, `EACCES`,
    /// `EMFILE`); the error names its path.
    pub(crate) fn wasi_ctx_at_start(
        &self,
        node: &str,
        audit: &AuditLog,
        root: &DeniedRoot,
    ) -> std::io::Result<Option<WasiCtx>> {
        if self.dirs.is_empty() {
            return Ok(None);
        }
        let mut builder = self.wasi_builder(node, audit);
        preopen_root(&mut builder, root)?;
        for dir in &self.dirs {
            let perms = if dir.write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| std::io::Error::other(format!("{}: {e:#}", dir.host.display())))?;
        }
        Ok(Some(builder.build()))
    }

    /// The WASI context of a component granted no directory, made at its first call into
    /// WASI (to print, read a clock, the environment or randomness; Rust's `HashMap` seeds
    /// itself so): a component that makes none holds no context, which costs a descriptor
    /// of `root` and about 0.8 KiB (idle flows of three stages took 2.5 KiB less each
    /// without them, `docs/performance.md`).
    ///
    /// Made then, the granted environment variables are read then, WASI's monotonic clock
    /// starts then (its origin is the host's choice), and that call pays for the making:
    /// about 5 µs and an `openat`.
    ///
    /// It cannot fail: if `root` cannot be opened (the process is out of descriptors,
    /// `EMFILE`, or something removed the host's folder), the component sees no
    /// filesystem at all, its opens refused inside it rather than audited by the host, and
    /// `audit` records that under `node`, as a refusal of every path.
    pub(crate) fn wasi_ctx_on_first_use(
        &self,
        node: &str,
        audit: &AuditLog,
        root: &DeniedRoot,
    ) -> WasiCtx {
        debug_assert!(self.dirs.is_empty(), "granted directories open at start");
        let mut builder = self.wasi_builder(node, audit);
        if let Err(error) = preopen_root(&mut builder, root) {
            audit.record(
                node,
                "filesystem:read".to_owned(),
                "any path".to_owned(),
                format!(
                    "the host could not open the empty folder it preopens as `/` ({error}), so \
                     the component sees no filesystem: what it opens fails inside it, unaudited"
                ),
            );
        }
        builder.build()
    }

    /// Everything of [`Grants::wasi_ctx_at_start`] but the directories.
    fn wasi_builder(&self, node: &str, audit: &AuditLog) -> WasiCtxBuilder {
        let mut builder = WasiCtxBuilder::new();
        if self.stdout {
            builder.inherit_stdout();
        }
        if self.stderr {
            builder.inherit_stderr();
        }
        for name in &self.env {
            if let Ok(value) = std::env::var(name) {
                builder.env(name, value);
            }
        }
        let (allowed, audit, node) = (self.network.clone(), audit.clone(), node.to_owned());
        builder
            .allow_tcp(true)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |address, used| {
                // Binding is part of connecting; only where a connection goes is checked.
                let granted = matches!(used, SocketAddrUse::TcpBind) || allowed.contains(&address);
                if !granted {
                    let what = format!("{used:?} to {address}");
                    let why = if allowed.is_empty() {
                        "no network address is granted to it"
                    } else {
                        "the address is not one of those granted to it"
                    };
                    audit.record(&node, format!("network:{address}"), what, why.into());
                }
                Box::pin(async move { granted })
            });
        builder
    }
}

/// Preopens `root` as `/`, read-only.
fn preopen_root(builder: &mut WasiCtxBuilder, root: &DeniedRoot) -> std::io::Result<()> {
    builder
        .preopened_dir(root.path(), "/", FsPerms::ReadOnly)
        .map_err(|e| std::io::Error::other(format!("{}: {e:#}", root.path().display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_console_is_granted_by_default() {
        let grants = Grants::default();
        assert!(grants.allows("stdout"));
        assert!(grants.allows("stderr"));
        assert!(!grants.allows("filesystem:read"));
        assert!(!grants.allows("network"));
        assert!(!grants.allows("env:HOME"));
    }

    #[test]
    fn grants_answer_by_name() {
        let grants = Grants {
            stdout: false,
            env: vec!["LANG".into()],
            dirs: vec![DirGrant {
                host: "data".into(),
                guest: "/data".into(),
                write: false,
            }],
            network: vec!["127.0.0.1:9000".parse().unwrap()],
            ..Grants::default()
        };
        assert!(!grants.allows("stdout"));
        assert!(grants.allows("env:LANG"));
        assert!(grants.allows("filesystem:read"));
        assert!(!grants.allows("filesystem:write"));
        assert!(grants.allows("network:127.0.0.1:9000"));
        assert!(!grants.allows("network:127.0.0.1:9001"));
    }

    #[test]
    fn a_root_removed_before_a_context_is_made_leaves_no_filesystem_and_is_audited() {
        let (grants, audit) = (Grants::default(), AuditLog::default());
        let root = DeniedRoot::create().unwrap();
        drop(grants.wasi_ctx_on_first_use("up", &audit, &root));
        assert!(audit.events().0.is_empty(), "{:?}", audit.events());
        std::fs::remove_dir(root.path()).unwrap();
        drop(grants.wasi_ctx_on_first_use("up", &audit, &root));
        let (events, _) = audit.events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            (&*events[0].node, &*events[0].capability),
            ("up", "filesystem:read")
        );
        let path = root.path().display().to_string();
        assert!(
            events[0].reason.contains("sees no filesystem"),
            "{events:?}"
        );
        assert!(events[0].reason.contains(&path), "{events:?}");
    }
}
