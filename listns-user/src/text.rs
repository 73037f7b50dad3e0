//! Text that comes from processes and the kernel (comms, command lines,
//! paths, `ip netns` names): kept as the raw bytes the kernel gave, because
//! they are chosen by whoever runs the process and need not be UTF-8. Only
//! `output/` decides how to show them (escaped for terminals, exact in JSON).

use std::fmt;

/// Raw bytes from outside, in the inventory and in events.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawText(Box<[u8]>);

impl RawText {
    pub fn new(bytes: &[u8]) -> Self {
        RawText(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Whether the bytes end with `suffix`.
    pub fn ends_with(&self, suffix: &[u8]) -> bool {
        self.0.ends_with(suffix)
    }
}

impl From<&str> for RawText {
    fn from(s: &str) -> Self {
        RawText::new(s.as_bytes())
    }
}

impl From<String> for RawText {
    fn from(s: String) -> Self {
        RawText::from(s.into_bytes())
    }
}

impl From<Vec<u8>> for RawText {
    fn from(v: Vec<u8>) -> Self {
        RawText(v.into_boxed_slice())
    }
}

impl PartialEq<str> for RawText {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for RawText {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == other.as_bytes()
    }
}

/// Debug shows the bytes as Rust would escape them; never use it for output.
impl fmt::Debug for RawText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}
