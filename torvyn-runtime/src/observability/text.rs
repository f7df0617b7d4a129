//! Text that a component or a manifest supplied (an error message, a port name, a path it
//! tried to open), made safe to show on a terminal or in a log line.

use std::borrow::Cow;

/// `text` with each control character escaped as Rust writes it (`\u{1b}` for ESC, `\r`,
/// and `\n` unless `newlines` keeps line breaks), so that it cannot move the cursor,
/// recolour the terminal or overwrite a line; unchanged, and not copied, when it has none.
pub fn printable(text: &str, newlines: bool) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() && !(newlines && c == '\n');
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_line_breaks_kept_when_asked() {
        assert_eq!(printable("plain text", false), "plain text");
        assert_eq!(
            printable("red \u{1b}[31m\rover\nnext", false),
            "red \\u{1b}[31m\\rover\\nnext"
        );
        assert_eq!(printable("one\ntwo\u{7}", true), "one\ntwo\\u{7}");
    }
}
