//! Text from processes (names, command lines, paths) is chosen by whoever
//! runs them. Before it reaches a terminal, control characters and invalid
//! UTF-8 are escaped so that it cannot move the cursor, recolour the screen
//! or fake a row. JSON needs no such step: serde_json escapes control
//! characters, and bytes are decoded lossily before they get there.

use std::borrow::Cow;

/// Escapes C0/C1 control characters and DEL as `\xNN`. (A literal
/// backslash is left alone: text that merely looks escaped controls nothing.)
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
}

/// Decodes bytes from the kernel (a comm, a cmdline, a path): valid UTF-8 is
/// kept, each invalid byte becomes `\xNN` so that nothing is lost or merged.
pub fn from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("bash -c ls"), Cow::Borrowed(_)));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[2Jb\n\t\x7f"), "a\\x1b[2Jb\\x0a\\x09\\x7f");
        assert_eq!(escape("c1\u{9b}x"), "c1\\x9bx");
    }

    #[test]
    fn invalid_utf8_is_kept_visible() {
        assert_eq!(from_bytes(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        assert_eq!(from_bytes("héllo".as_bytes()), "héllo");
    }
}
