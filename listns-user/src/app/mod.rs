//! The modes the binary runs: `list` (scan and print) and `watch` (scan,
//! then trace). Each wires the rooms together; no logic of its own.

mod list;
mod watch;

pub use list::list;
pub use watch::watch;
