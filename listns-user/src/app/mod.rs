//! The modes the binary runs: `list` (scan and print) and `watch` (scan,
//! then trace; `follow` runs or attaches to the process tree it follows,
//! `print` holds its filters); `from` takes a running watcher's inventory
//! instead of a scan. Each wires the rooms together; no logic of its own.

mod follow;
mod from;
mod list;
mod print;
mod watch;

pub use follow::failure_status;
pub use list::list;
pub use watch::watch;
