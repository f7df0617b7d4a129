//! What `run` says of a flow's lifecycle events as they happen, on stderr, and writes to
//! the `--events` file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use miette::{Context, IntoDiagnostic};
use torvyn_runtime::{EventKind, EventSink, FlowEvent};

use crate::output::status;

/// Shows the events people watching a run want to hear of as they happen, on stderr, and
/// writes every event to the `--events` file, a JSON line each, as it happens. A restart
/// after the same error as the one before is counted, not shown again: a stage failing on
/// every call shows one line, then how many more times it failed so.
#[derive(Debug)]
pub(super) struct EventLog {
    file: Option<(PathBuf, Mutex<File>)>,
    repeated: Mutex<Option<Repeated>>,
}

/// The latest restart or denial shown, and how many just like it followed it unshown.
#[derive(Debug, PartialEq)]
struct Repeated {
    verb: &'static str,
    line: String,
    /// Whom it was about, and how its repeats are summed up.
    subject: String,
    again: &'static str,
    more: u64,
}

impl EventLog {
    /// Shows how many lines repeated the one shown last, if any; the next line is shown
    /// whatever it says.
    fn show_repeated(&self) {
        let repeated = self
            .repeated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(Repeated {
            verb,
            subject,
            again,
            more: more @ 1..,
            ..
        }) = repeated
        {
            let times = if more == 1 { "time" } else { "times" };
            status(verb, format!("{subject} {more} more {times} {again}"));
        }
    }

    /// Shows `line` under `verb`, unless it repeats the line shown last: then it is only
    /// counted, and summed up as `{subject} N more times {again}` once another line comes.
    fn show_once(&self, verb: &'static str, line: String, subject: String, again: &'static str) {
        let mut repeated = self.repeated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = repeated.as_mut()
            && (last.verb, last.line.as_str()) == (verb, line.as_str())
        {
            last.more += 1;
            return;
        }
        drop(repeated);
        self.show_repeated();
        status(verb, &line);
        *self.repeated.lock().unwrap_or_else(|e| e.into_inner()) = Some(Repeated {
            verb,
            line,
            subject,
            again,
            more: 0,
        });
    }
}

impl EventLog {
    pub(super) fn create(path: Option<&Path>) -> miette::Result<Self> {
        let file = match path {
            Some(path) => {
                let file = (File::create(path)).into_diagnostic().wrap_err_with(|| {
                    format!("cannot create the events file {}", path.display())
                })?;
                Some((path.to_owned(), Mutex::new(file)))
            }
            None => None,
        };
        Ok(Self {
            file,
            repeated: Mutex::new(None),
        })
    }
}

impl EventSink for EventLog {
    fn record(&self, event: FlowEvent) {
        let flow = &event.flow;
        match &event.kind {
            // `Running` and the summary say as much.
            EventKind::Started { .. } | EventKind::Ended { .. } => self.show_repeated(),
            EventKind::Paused => {
                self.show_repeated();
                status("Paused", format!("flow `{flow}`"));
            }
            EventKind::Resumed => {
                self.show_repeated();
                status("Resumed", format!("flow `{flow}`"));
            }
            // A stage failing on every call restarts, and a guest's runtime retries what
            // was denied, again and again: each is shown once, then counted.
            EventKind::Restarted { node, error, .. } => self.show_once(
                "Restarted",
                format!("`{node}` of flow `{flow}` after a trap: {error}"),
                format!("`{node}` of flow `{flow}`"),
                "after the same error",
            ),
            EventKind::CapabilityDenied {
                node,
                capability,
                detail,
                reason,
            } => self.show_once(
                "Denied",
                format!("`{node}` {detail}: {reason} (`{capability}`, flow `{flow}`)"),
                format!("`{node}` of flow `{flow}`"),
                "for the same use",
            ),
            EventKind::ConnectionLost { node, endpoint } => {
                self.show_repeated();
                status(
                    "Warning",
                    format!(
                        "`{node}` of flow `{flow}` lost its connection to {endpoint}; it reconnects by itself, and what waits for the server resumes then"
                    ),
                );
            }
            EventKind::Reconnected { node, endpoint } => {
                self.show_repeated();
                status(
                    "Reconnected",
                    format!("`{node}` of flow `{flow}` to {endpoint}"),
                );
            }
        }
        let Some((path, file)) = &self.file else {
            return;
        };
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        let written = serde_json::to_writer(&mut *file, &event)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(file))
            .and_then(|()| file.flush());
        if let Err(error) = written {
            status(
                "Warning",
                format!("cannot write an event to {}: {error}", path.display()),
            );
        }
    }
}
