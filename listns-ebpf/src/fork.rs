//! raw_tracepoint/sched_process_fork: (parent, child) of every fork, vfork,
//! clone and clone3, without a syscall tracepoint. Ordinary forks return
//! after four probe reads.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use listns_common::{EventKind, TASK_FOLLOWED};

use crate::{emit, follow, initial, task};

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let parent: *const u8 = ctx.arg(0);
    let child: *const u8 = ctx.arg(1);
    // Following is inherited here, before the early return: a child that
    // keeps its parent's namespaces is still followed.
    let followed = follow::fork(parent, child);
    if shares_everything(parent, child) {
        return 0;
    }
    let Some(mut ev) = emit::reserve(EventKind::Fork) else {
        return 0;
    };
    if followed {
        ev.task_flags = TASK_FOLLOWED;
    }
    ev.pid = task::tgid(child);
    ev.tid = task::tid(child);
    ev.ppid = task::ppid(child);
    ev.uid = task::uid(child);
    ev.cgroup = task::cgroup(child);
    task::read_namespaces(parent, &mut ev.prev);
    task::read_namespaces(child, &mut ev.ns);
    emit::classify(&mut ev, true);
    emit::submit(ev);
    0
}

/// The child shares every namespace with its parent: the same nsproxy, the
/// same user namespace and the same active pid namespace.
#[inline(always)]
fn shares_everything(parent: *const u8, child: *const u8) -> bool {
    let init = initial::get();
    if let Some(init) = init {
        // A child's nsproxy and user namespace are its parent's or new
        // ones, and new ones are never the initial ones: a child in
        // `init_nsproxy` and the initial user namespace has a parent in
        // them too, and (initial.rs) both are in the initial pid namespace.
        let (cred, proxy) = task::cred_and_nsproxy(child);
        if proxy as u64 == init.nsproxy && task::cred_user_ns(cred) as u64 == init.user_ns {
            return true;
        }
    }
    let (parent_cred, proxy) = task::cred_and_nsproxy(parent);
    let (child_cred, child_proxy) = task::cred_and_nsproxy(child);
    if proxy.is_null() || proxy != child_proxy {
        return false;
    }
    // Threads may share their credentials; processes get a copy.
    if parent_cred != child_cred
        && task::cred_user_ns(parent_cred) != task::cred_user_ns(child_cred)
    {
        return false;
    }
    // The child's pid was allocated in its nsproxy's pid_ns_for_children:
    // that is its active pid namespace. Under `init_nsproxy` it is the
    // parent's too (see initial.rs); elsewhere the parent may have
    // unshared or entered a pid namespace for its children.
    match init {
        Some(init) if proxy as u64 == init.nsproxy => true,
        _ => task::active_pid_ns(parent) == task::pid_ns_for_children(proxy),
    }
}
