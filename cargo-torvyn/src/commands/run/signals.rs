//! How `run` stops on Ctrl-C and SIGTERM: the first signal drains, the second aborts.

use std::sync::Arc;

use miette::{Context, IntoDiagnostic};
use tokio_util::sync::CancellationToken;

use crate::output::status;

/// First Ctrl-C or SIGTERM: stop the sources and drain. Second: exit at once with
/// [`EXIT_INTERRUPTED`](crate::EXIT_INTERRUPTED), from the signal handler itself, so that
/// no thread busy in a component can hold the exit up.
#[cfg(unix)]
pub(super) fn stop_on_signal(cancel: CancellationToken) -> miette::Result<()> {
    use std::sync::atomic::AtomicBool;
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind| {
        (signal(kind))
            .into_diagnostic()
            .wrap_err("cannot watch for signals")
    };
    // Tokio's listeners first, so that no signal arms the exit unseen by them.
    let (mut interrupt, mut terminate) = (
        watch(SignalKind::interrupt())?,
        watch(SignalKind::terminate())?,
    );
    // The first signal arms the exit; the second finds it armed. Both handlers run, in
    // this order, beside tokio's.
    let armed = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let exit = crate::EXIT_INTERRUPTED;
        signal_hook::flag::register_conditional_shutdown(signal, exit, armed.clone())
            .and_then(|_| signal_hook::flag::register(signal, armed.clone()))
            .into_diagnostic()
            .wrap_err("cannot watch for signals")?;
    }
    tokio::spawn(async move {
        let signal = tokio::select! {
            _ = interrupt.recv() => "interrupted",
            _ = terminate.recv() => "terminated",
        };
        draining(signal, &cancel);
    });
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn stop_on_signal(cancel: CancellationToken) -> miette::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            draining("interrupted", &cancel);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(crate::EXIT_INTERRUPTED);
        }
    });
    Ok(())
}

/// The first signal: the sources stop and what is in flight is delivered.
fn draining(signal: &str, cancel: &CancellationToken) {
    status(
        "Stopping",
        format!("{signal}: draining elements in flight (signal again to abort)"),
    );
    cancel.cancel();
}
