//! raw_tracepoint/sched_process_fork: (parent, child) of every fork, vfork,
//! clone and clone3, without a syscall tracepoint. Ordinary forks return
//! after comparing three pointers.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use listns_common::{EventKind, TASK_FOLLOWED};

use crate::{emit, follow, task};

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let parent: *const u8 = ctx.arg(0);
    let child: *const u8 = ctx.arg(1);
    // Following is inherited here, before the early return: a child that
    // keeps its parent's namespaces is still followed.
    let followed = follow::fork(parent, child);
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
    if followed {
        ev.task_flags = TASK_FOLLOWED;
    }
    ev.pid = task::tgid(child);
    ev.tid = task::tid(child);
    ev.ppid = task::ppid(child);
    ev.uid = task::uid(child);
    task::read_namespaces(parent, &mut ev.prev);
    task::read_namespaces(child, &mut ev.ns);
    emit::classify(ev, true);
    emit::submit(ev);
    0
}
