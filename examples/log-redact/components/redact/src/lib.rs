//! Masks what identifies people in a log line (IPv4 and IPv6 addresses, e-mail
//! addresses) and writes the line as a JSON object: `{"line": "…", "number": 12}`, where
//! `number` is the line's number in its file (the `line` attribute a `file` or `stdin`
//! source gives it), left out when the element has none. Bytes that are not UTF-8 become
//! U+FFFD.

use std::sync::LazyLock;

use regex::Regex;
use torvyn_sdk::{Element, Error, Output, Processor};

/// An e-mail address, as far as logs show them.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("a valid pattern")
});

/// A dotted-quad IPv4 address.
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:\d{1,3}\.){3}\d{1,3}\b").expect("a valid pattern"));

/// An IPv6 address: eight groups, or fewer around a `::` (RFC 4291, section 2.2). A time
/// such as `10:32:01` has neither.
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|(?:\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*\b)?)",
    )
    .expect("a valid pattern")
});

#[derive(Default)]
struct Redact;

impl Processor for Redact {
    fn process(&mut self, input: &Element<'_>) -> Result<Option<Output>, Error> {
        let bytes = input.bytes();
        let line = String::from_utf8_lossy(&bytes);
        let line = EMAIL.replace_all(&line, "[email]");
        let line = IPV6.replace_all(&line, "[ipv6]");
        let line = IPV4.replace_all(&line, "[ipv4]");
        let number = input.attribute("line").and_then(|n| n.parse::<u64>().ok());
        let json = match number {
            Some(number) => serde_json::json!({ "line": line, "number": number }),
            None => serde_json::json!({ "line": line }),
        };
        let json = json.to_string();
        Ok(Some(
            Output::bytes(json.as_bytes())?.with_content_type("application/json"),
        ))
    }
}

torvyn_sdk::export_processor!(Redact);
