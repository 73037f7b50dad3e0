//! raw_tracepoint/sched_process_fork: (parent, child) of every fork, vfork,
//! clone and clone3, without a syscall tracepoint. Ordinary forks return
//! after comparing three pointers.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use listns_common::{EventKind, NS_SLOTS, SLOT_TYPE};

use crate::{emit, task};

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let parent: *const u8 = ctx.arg(0);
    let child: *const u8 = ctx.arg(1);
    // Same nsproxy, same user namespace and same active pid namespace: the
    // child shares every namespace with its parent. Nothing to report.
    if task::nsproxy(parent) == task::nsproxy(child)
        && task::user_ns(parent) == task::user_ns(child)
        && task::active_pid_ns(parent) == task::active_pid_ns(child)
    {
        return 0;
    }
    let Some(ev) = emit::scratch() else { return 0 };
    ev.kind = EventKind::Fork as u32;
    ev.pid = task::tgid(child);
    ev.tid = task::tid(child);
    ev.ppid = task::ppid(child);
    ev.uid = task::uid(child);
    let parent_valid = task::read_namespaces(parent, &mut ev.prev);
    let child_valid = task::read_namespaces(child, &mut ev.ns);
    ev.valid = child_valid & parent_valid;
    emit::classify(ev);
    ev.valid = child_valid;
    let mut flags = 0u64;
    for slot in 0..NS_SLOTS {
        if ev.changed & (1 << slot) != 0 {
            flags |= SLOT_TYPE[slot] as u64;
        }
    }
    ev.flags = flags;
    emit::submit(ev);
    0
}
