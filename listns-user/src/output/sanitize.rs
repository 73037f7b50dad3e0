//! Text from processes (names, command lines, paths) is chosen by whoever
//! runs them, and the inventory keeps it as raw bytes. This is the one place
//! that turns it into something a terminal may show: every character that
//! could move the cursor, recolour the screen, fake a row, reorder what is
//! shown or hide text is escaped, and so is every byte that is not UTF-8.
//!
//! Escaped: C0 and C1 control characters and DEL (`\xNN`), bidirectional
//! overrides and isolates and every other invisible format character
//! (Unicode category Cf: zero-width spaces and joiners, the BOM, soft
//! hyphen, ...), line and paragraph separators (`\u{XXXX}`), and bytes that
//! are not valid UTF-8 (`\xNN`). A literal backslash is left alone: text
//! that merely looks escaped controls nothing.
//!
//! JSON carries the real text instead (see `contract::exact`).

use std::borrow::Cow;

use unicode_general_category::{GeneralCategory, get_general_category};

/// Escapes `text` for a terminal (see the module comment).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_escaped(&mut out, text);
    Cow::Owned(out)
}

/// Escapes raw bytes for a terminal: what `escape` does, and each byte that
/// is not part of valid UTF-8 becomes `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return escape(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        push_escaped(&mut out, chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
}

fn needs_escape(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    c.is_control()
        || matches!(
            get_general_category(c),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("bash -c ls"), Cow::Borrowed(_)));
        assert!(matches!(
            escape_bytes("héllo wörld".as_bytes()),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[2Jb\n\t\x7f"), "a\\x1b[2Jb\\x0a\\x09\\x7f");
        assert_eq!(escape("c1\u{9b}x"), "c1\\x9bx");
    }

    #[test]
    fn bidi_and_invisible_format_characters_are_escaped() {
        // Right-to-left override and isolates reorder what is shown.
        for c in ['\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}'] {
            assert_eq!(
                escape(&format!("a{c}b")),
                format!("a\\u{{{:04x}}}b", c as u32)
            );
        }
        for c in ['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'] {
            assert!(escape(&format!("a{c}b")).starts_with("a\\u{206"));
        }
        // Zero-width space, joiner, BOM, soft hyphen, line separator.
        assert_eq!(escape("x\u{200b}y"), "x\\u{200b}y");
        assert_eq!(escape("x\u{200d}y"), "x\\u{200d}y");
        assert_eq!(escape("\u{feff}x"), "\\u{feff}x");
        assert_eq!(escape("x\u{ad}y"), "x\\xady");
        assert_eq!(escape("x\u{2028}y"), "x\\u{2028}y");
        // Tag characters (Cf) hide text too.
        assert_eq!(escape("x\u{e0041}"), "x\\u{e0041}");
        // Ordinary non-ASCII text stays.
        assert_eq!(escape("名前 ünïcödé 🙂"), "名前 ünïcödé 🙂");
    }

    #[test]
    fn invalid_utf8_is_kept_visible() {
        assert_eq!(escape_bytes(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        assert_eq!(escape_bytes(b"\x1b\xff"), "\\x1b\\xff");
        assert_eq!(escape_bytes("héllo".as_bytes()), "héllo");
    }
}
