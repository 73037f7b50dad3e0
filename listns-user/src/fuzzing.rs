//! The parsers of outside text and bytes, gathered for the cargo-fuzz
//! targets in `fuzz/` (README "Fuzzing"). Not an API: a fuzz target names
//! only what is here, so when a parser moves, only this file follows it.
//!
//! listns reads no `/proc/PID/status` (the uid comes from fstat, the thread
//! count from `task`'s link count or `stat`), so that file has no target.

pub use crate::inventory::live::{TaskEvent, TaskEventKind};
pub use crate::lifecycle::listns_syscall::{ListnsError, NsIdReq, collect as listns_collect};
pub use crate::ns::{NsType, parse_link};
pub use crate::scan::container::{from_cgroup_file, from_cgroup_path};
pub use crate::scan::mounts::{
    NsfsMount, Parsed as Mountinfo, netns_name, parse as parse_mountinfo,
    unescape as unescape_mount_field,
};
pub use crate::scan::procs::{Stat, parse_stat};
pub use crate::trace::offsets::{Resolved, resolve_bytes as resolve_btf};
pub use crate::trace::record::{Clock, DecodeError, decode as decode_record};
