//! Following one process tree (`listns watch -- COMMAND`, `--pid PID`).
//!
//! `FOLLOWED` holds the tgids of followed processes; userspace puts the
//! first one in (the command's pid before it execs). The fork hook copies
//! the mark from the forking process to a new child process, so the whole
//! tree is followed however it re-parents or daemonizes; the exit hook
//! removes a process when its last thread exits. Records of followed tasks
//! carry `TASK_FOLLOWED`. Nothing is filtered here: every record is still
//! written, so the inventory stays complete.
//!
//! With `Follow::enabled` zero (plain `listns watch`), every function
//! returns at once; the global is frozen, so the verifier drops the rest.

use aya_ebpf::{helpers::generated, macros::map, maps::HashMap};
use listns_common::{FOLLOW_MAX, Follow, OFF_MISSING};

use crate::task;

#[unsafe(no_mangle)]
static FOLLOW: Follow = Follow::OFF;

/// Followed processes, by tgid.
#[map]
static FOLLOWED: HashMap<u32, u8> = HashMap::with_max_entries(FOLLOW_MAX, 0);

macro_rules! cfg {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(&raw const FOLLOW.$field) }
    };
}

#[inline(always)]
fn enabled() -> bool {
    cfg!(enabled) != 0
}

/// `parent` (the forking task) made `child` (a thread or a process).
/// Returns whether the child is followed.
#[inline(always)]
pub fn fork(parent: *const u8, child: *const u8) -> bool {
    if !enabled() {
        return false;
    }
    let parent_tgid = task::tgid(parent);
    if FOLLOWED.get_ptr(parent_tgid).is_none() {
        return false;
    }
    let child_tgid = task::tgid(child);
    if child_tgid != parent_tgid {
        // Full map: the child is not followed (userspace counts the
        // followed processes it sees and says when that looks short).
        let _ = FOLLOWED.insert(child_tgid, 1u8, 0);
    }
    true
}

/// Whether process `tgid` is followed.
#[inline(always)]
pub fn is_followed(tgid: u32) -> bool {
    enabled() && FOLLOWED.get_ptr(tgid).is_some()
}

/// `task` exits. Returns whether it was followed; forgets its process
/// when it is the last thread.
#[inline(always)]
pub fn exit(task: *const u8) -> bool {
    if !enabled() {
        return false;
    }
    let tgid = task::tgid(task);
    if FOLLOWED.get_ptr(tgid).is_none() {
        return false;
    }
    if live_threads(task) == Some(0) {
        let _ = FOLLOWED.remove(tgid);
    }
    true
}

/// `task->signal->live`: threads of the task's process that have not yet
/// passed exit (the exit tracepoint fires after the decrement, so 0 means
/// the last thread is exiting). `None` when the offsets are unknown.
#[inline(always)]
pub fn live_threads(task: *const u8) -> Option<u32> {
    let (signal_off, live_off) = (cfg!(task_signal), cfg!(signal_live));
    if signal_off == OFF_MISSING || live_off == OFF_MISSING {
        return None;
    }
    let signal: usize = read(task, signal_off);
    if signal == 0 {
        return None;
    }
    Some(read::<u32>(signal as *const u8, live_off))
}

/// `bpf_probe_read_kernel` at `base + off`, zero when it fails.
#[inline(always)]
fn read<T: Default>(base: *const u8, off: u32) -> T {
    let mut v = T::default();
    // SAFETY: the helper writes at most size_of::<T>() bytes into `v` and
    // zeroes them when the kernel address cannot be read.
    unsafe {
        generated::bpf_probe_read_kernel(
            (&raw mut v).cast(),
            core::mem::size_of::<T>() as u32,
            base.wrapping_add(off as usize).cast(),
        )
    };
    v
}
