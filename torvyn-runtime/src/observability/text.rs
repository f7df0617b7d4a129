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

/// The most bytes of a component's own words (the text of an error it returns, a path it
/// was refused, a port it named) that the host keeps and shows: a screenful (50 lines of 80
/// characters), more than any message meant to be read. A flow's report keeps its latest
/// errors and a dead letter carries one, so without a bound a component could make the host
/// hold as much text as its own memory limit allows, for each of them.
pub const MAX_COMPONENT_TEXT: usize = 4096;

/// `text` cut at the last character boundary at most `max` bytes in, followed by
/// `… (N bytes in all)`; unchanged, and not copied, when it fits.
pub fn cut_short(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let end = text.floor_char_boundary(max);
    Cow::Owned(format!("{}… ({} bytes in all)", &text[..end], text.len()))
}

#[cfg(test)]
mod tests {
    use super::{Cow, cut_short, printable};

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_says_so() {
        assert_eq!(cut_short("short", 5), "short");
        assert!(matches!(cut_short("short", 5), Cow::Borrowed(_)));
        assert_eq!(cut_short("abcdef", 4), "abcd… (6 bytes in all)");
        // `é` is two bytes: a cut inside it falls before it.
        assert_eq!(cut_short("aéb", 2), "a… (4 bytes in all)");
        assert_eq!(cut_short("éé", 0), "… (4 bytes in all)");
    }

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
