//! The host's HTTP endpoints, for the flows it runs:
//!
//! - `GET /metrics`: every flow's latest snapshot in the Prometheus text format;
//! - `GET /flows`: the flows, with their state and counts so far;
//! - `GET /flows/{name}`: one flow's latest snapshot, a [`FlowReport`] as JSON: its
//!   topology (nodes and edges), live counts, queue depths, time blocked, latency
//!   histograms and recent errors;
//! - `POST /flows/{name}/pause`, `/resume`, `/cancel`.
//!
//! Handlers read snapshots the flows published; nothing here waits on a flow.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::observability::{FlowReport, prometheus};
use crate::reactor::Control;

/// The flows a host has started, in order. The latest [`KEEP_ENDED`] of those that ended
/// stay, so that their final figures remain readable; older ones go as flows start.
#[derive(Debug, Default)]
pub(crate) struct Flows {
    flows: Mutex<Vec<(String, Arc<Control>)>>,
}

/// How many ended flows a host keeps listing.
const KEEP_ENDED: usize = 64;

impl Flows {
    pub(crate) fn add(&self, name: String, control: Arc<Control>) {
        let mut flows = self.lock();
        let ended = flows.iter().filter(|(_, c)| c.has_ended()).count();
        let mut dropped = ended.saturating_sub(KEEP_ENDED);
        flows.retain(|(_, control)| {
            let drop = dropped > 0 && control.has_ended();
            dropped -= usize::from(drop);
            !drop
        });
        flows.push((name, control));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Arc<Control>)>> {
        self.flows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every flow's latest snapshot, for those that published one.
    pub(crate) fn snapshots(&self) -> Vec<Arc<FlowReport>> {
        self.lock()
            .iter()
            .filter_map(|(_, c)| c.snapshot())
            .collect()
    }

    /// The latest flow of that name.
    fn find(&self, name: &str) -> Option<Arc<Control>> {
        let flows = self.lock();
        flows
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
    }
}

/// Serves the endpoints on `listener` until `stop` is cancelled.
pub(crate) async fn serve<L>(
    listener: L,
    flows: Arc<Flows>,
    stop: tokio_util::sync::CancellationToken,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/flows", get(list))
        .route("/flows/{name}", get(show))
        .route("/flows/{name}/{action}", post(act))
        .with_state(flows);
    // A failing connection ends only itself; `serve` returns when `stop` fires.
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await;
}

/// Binds `addr` (port 0 picks a free one) before anything is spawned, so that a busy
/// port is the caller's error; returns the listener and the address it got.
pub(crate) async fn bind(
    addr: SocketAddr,
) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

#[cfg(unix)]
/// Binds a Unix domain socket at `path`, readable and writable by its owner only (mode
/// 0600). A socket left there by a host that is gone is replaced; one a host still
/// answers on is an error, as is any other file.
pub(crate) async fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let in_use =
            || std::io::Error::new(std::io::ErrorKind::AddrInUse, "a host is serving there");
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is there",
            ));
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(in_use());
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn metrics(State(flows): State<Arc<Flows>>) -> Response {
    let text = prometheus::render(flows.snapshots());
    ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response()
}

async fn list(State(flows): State<Arc<Flows>>) -> Json<serde_json::Value> {
    let listed: Vec<_> = (flows.lock().iter())
        .map(|(name, control)| {
            let snapshot = control.snapshot();
            json!({
                "name": name,
                "paused": control.is_paused(),
                "outcome": snapshot.as_ref().map(|s| s.outcome),
                "emitted": snapshot.as_ref().map(|s| s.emitted),
                "delivered": snapshot.as_ref().map(|s| s.delivered),
            })
        })
        .collect();
    Json(json!({ "flows": listed }))
}

async fn show(State(flows): State<Arc<Flows>>, Path(name): Path<String>) -> Response {
    let Some(control) = flows.find(&name) else {
        return not_found(&name);
    };
    match control.snapshot() {
        Some(report) => {
            // A flow inside a long inline call has published nothing since it began; a
            // sink's long call apart shows here while the flow goes on.
            let in_call = control.call.current().map(|(node, since_unix_ms)| {
                let now = crate::reactor::now_ns() / 1_000_000;
                json!({
                    "node": report.nodes.get(node).map(|n| &n.name),
                    "since_unix_ms": since_unix_ms,
                    "for_ms": now.saturating_sub(since_unix_ms),
                })
            });
            Json(json!({
                "name": name,
                "paused": control.is_paused(),
                "in_call": in_call,
                "report": &*report,
            }))
            .into_response()
        }
        None => {
            let error = format!(
                "flow `{name}` has published no figures yet: it is starting, \
                 or runs with observability off"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": error })),
            )
                .into_response()
        }
    }
}

async fn act(
    State(flows): State<Arc<Flows>>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let Some(control) = flows.find(&name) else {
        return not_found(&name);
    };
    match action.as_str() {
        "pause" => control.pause(),
        "resume" => control.resume(),
        "cancel" => control.cancel.cancel(),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("no action `{action}`: pause, resume or cancel") })),
            )
                .into_response();
        }
    }
    (
        StatusCode::OK,
        Json(json!({ "name": name, "done": action })),
    )
        .into_response()
}

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("no flow `{name}` on this host") })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_keeps_the_latest_ended_flows_and_every_running_one() {
        let flows = Flows::default();
        let running = Arc::new(Control::default());
        flows.add("running".into(), running);
        for i in 0..KEEP_ENDED + 10 {
            let control = Arc::new(Control::default());
            control
                .ended
                .store(true, std::sync::atomic::Ordering::Release);
            flows.add(format!("ended {i}"), control);
        }
        flows.add("last".into(), Arc::new(Control::default()));
        let names: Vec<String> = flows.lock().iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names.len(), 1 + KEEP_ENDED + 1);
        assert_eq!(names[0], "running");
        assert_eq!(names[1], "ended 10");
        assert_eq!(names.last().unwrap(), "last");
    }
}
