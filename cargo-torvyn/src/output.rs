//! Status lines in Cargo's style on stderr, and JSON lines on stdout.

use std::io::Write;
use std::time::Duration;

use torvyn_runtime::ConnectorReport;

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

/// Our stderr, for a child's stdout: what a tool we run prints goes beside our own status
/// lines, and never among the JSON lines of our stdout.
pub(crate) fn stderr_stdio() -> std::process::Stdio {
    std::io::stderr().into()
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

/// What to say of a component whose contract names have no package version (see
/// `torvyn_runtime::normalise`), after the words that name it; `None` when all have one.
pub(crate) fn unversioned(names: &[String]) -> Option<String> {
    let listed: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    (!listed.is_empty()).then(|| {
        format!(
            "names {} without a package version: they are read as version {}",
            listed.join(", "),
            torvyn_runtime::CONTRACT_VERSION
        )
    })
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

/// `count` and `noun`, the noun in the plural unless the count is one: `1 edge`,
/// `2 edges`, `0 copies`. Every count printed with a noun goes through here.
pub(crate) fn counted<N>(count: N, noun: &str) -> String
where
    N: Copy + std::fmt::Display + TryInto<u64>,
{
    if count.try_into().ok() == Some(1) {
        return format!("{count} {noun}");
    }
    format!("{count} {}", plural(noun))
}

/// The plural of an English noun by the regular rules (`copy` → `copies`, `batch` →
/// `batches`); the last word of a phrase is the one that changes.
pub(crate) fn plural(noun: &str) -> String {
    let consonant_y = noun
        .strip_suffix('y')
        .filter(|stem| stem.chars().last().is_some_and(|c| !"aeiou".contains(c)));
    if let Some(stem) = consonant_y {
        format!("{stem}ies")
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| noun.ends_with(end))
    {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

/// What a built-in connector did, in words: the figures that are not zero (and a NATS
/// source's lag, whatever it is). `source`: it reads rather than writes.
pub(crate) fn connector_figures(source: bool, c: &ConnectorReport) -> String {
    let moved = if source { "read" } else { "written" };
    let mut what = vec![format!(
        "{} {moved}",
        bytesize::ByteSize(c.bytes).display().iec()
    )];
    let figures = [
        (c.settled, format!("{} settled", c.settled)),
        (c.failed, format!("{} of them failed", c.failed)),
        (
            c.resumed_files,
            format!(
                "{} resumed from a checkpoint",
                counted(c.resumed_files, "file")
            ),
        ),
        (c.replayed, format!("{} replayed", c.replayed)),
        (
            c.oversize_skipped,
            format!("{} over max-element-size skipped", c.oversize_skipped),
        ),
        (
            c.oversize_truncated,
            format!("{} over max-element-size truncated", c.oversize_truncated),
        ),
        (
            c.checkpoints,
            format!("checkpoints stored {}", counted(c.checkpoints, "time")),
        ),
        (
            c.unwritten,
            format!(
                "output closed, {} not written",
                counted(c.unwritten, "element")
            ),
        ),
        (
            c.files_made_again,
            format!(
                "its file deleted and made again {}",
                counted(c.files_made_again, "time")
            ),
        ),
        (
            c.acks,
            format!("{} acknowledged", counted(c.acks, "message")),
        ),
        (c.naks, format!("{} given back", c.naks)),
        (
            c.progress_acks,
            format!("{} in progress", counted(c.progress_acks, "report")),
        ),
        (c.redelivered, format!("{} delivered again", c.redelivered)),
        (
            c.duplicates,
            format!("{} already stored", counted(c.duplicates, "duplicate")),
        ),
        (
            c.transient_errors,
            format!("{} retried", counted(c.transient_errors, "transient error")),
        ),
    ];
    what.extend(
        figures
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(_, text)| text),
    );
    if let Some(lag) = c.lag {
        what.push(format!("lag {}", counted(lag, "message")));
    }
    what.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(counted(1u32, "edge"), "1 edge");
        assert_eq!(counted(0u32, "edge"), "0 edges");
        assert_eq!(counted(2u64, "copy"), "2 copies");
        assert_eq!(counted(3usize, "day"), "3 days");
        assert_eq!(counted(2u8, "batch"), "2 batches");
        assert_eq!(counted(1u8, "WIT package"), "1 WIT package");
        assert_eq!(counted(4u8, "problem"), "4 problems");
    }
}
