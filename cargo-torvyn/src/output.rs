//! Status lines in Cargo's style on stderr, and JSON lines on stdout.

use std::io::Write;
use std::time::Duration;

use crate::cli::MessageFormat;

/// Prints `verb` right-aligned in 12 columns, then `message`, like Cargo does. The
/// message may hold text a component or a manifest supplied: its control characters are
/// escaped and its further lines indented under the first, so that it can neither move the
/// cursor nor pass for a status line of its own.
pub(crate) fn status(verb: &str, message: impl std::fmt::Display) {
    let message = message.to_string();
    let shown = torvyn_runtime::printable(&message, true).replace('\n', "\n             ");
    eprintln!("{verb:>12} {shown}");
}

/// Writes one JSON message to stdout when machine output was asked for. A closed pipe
/// ends the program quietly, as a reader that stopped listening is not an error.
pub(crate) fn json(format: MessageFormat, message: &serde_json::Value) {
    if format != MessageFormat::Json {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, message)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(stdout))
        .and_then(|()| stdout.flush());
    if let Err(error) = written
        && error.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(crate::EXIT_OK);
    }
}

/// A duration in its two largest units, e.g. `12us 345ns` or `1ms 20us`.
pub(crate) fn nanos(ns: u64) -> String {
    humantime::format_duration(Duration::from_nanos(ns))
        .to_string()
        .split(' ')
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}
