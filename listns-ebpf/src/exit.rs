//! raw_tracepoint/sched_process_exit: a task leaves all its namespaces.
//! Runs before `exit_task_namespaces()`, so the nsproxy is still there.
//! Tasks living entirely in the initial namespaces are not reported.

use aya_ebpf::{
    macros::{map, raw_tracepoint},
    maps::Array,
    programs::RawTracePointContext,
};
use listns_common::{
    EventKind, NS_SLOTS, NsRef, TASK_FOLLOWED, TASK_GROUP_DEAD, TASK_GROUP_UNKNOWN, known_key,
};

use crate::{emit, follow, initial, task};

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> i32 {
    // The exiting task, `current` (do_exit); from the arguments, which
    // costs no helper call.
    let current: *const u8 = ctx.arg(0);
    // Before the early returns: a followed process is forgotten when its
    // last thread exits, wherever it lives.
    let followed = follow::exit(current);
    // Fast path, nearly every exit on a host: `init_nsproxy` and the
    // initial user namespace (see initial.rs): two probe reads.
    let init = match initial::get() {
        Some(init) => {
            let (cred, proxy) = task::cred_and_nsproxy(current);
            if proxy as u64 == init.nsproxy && task::cred_user_ns(cred) as u64 == init.user_ns {
                return 0;
            }
            Some(init)
        }
        None => {
            initial::learn(current);
            initial::get()
        }
    };
    // Another nsproxy (or user namespace) may still hold only initial
    // namespaces (`nsenter -t 1 -a` makes one): compare the pointers.
    let ptrs = task::namespace_ptrs(current);
    if let Some(init) = init
        && (0..NS_SLOTS).all(|slot| ptrs[slot] == init.ptrs[slot])
    {
        return 0;
    }
    let Some(mut ev) = emit::reserve(EventKind::Exit) else {
        return 0;
    };
    task::refs_of(&ptrs, &mut ev.ns);
    // With the initial pointers learnt this always holds; without them the
    // inodes decide (an unknown initial inode, 0, reports every exit
    // rather than none).
    let outside = (0..NS_SLOTS).any(|slot| {
        let inum = ev.ns[slot].inum;
        inum != 0 && inum != emit::init_inum(slot)
    });
    if !outside {
        ev.discard();
        return 0;
    }
    ev.pid = task::tgid(current);
    ev.tid = task::tid(current);
    ev.ppid = task::ppid(current);
    ev.uid = task::uid(current);
    ev.cgroup = task::cgroup(current);
    task::clear_refs(&mut ev.prev);
    let mut flags = match follow::live_threads(current) {
        Some(0) => TASK_GROUP_DEAD,
        Some(_) => 0,
        None => TASK_GROUP_UNKNOWN,
    };
    if followed {
        flags |= TASK_FOLLOWED;
    }
    ev.task_flags = flags;
    emit::classify(&mut ev, false);
    forget_dying(current, &ev.ns);
    emit::submit(ev);
    0
}

/// Set to 1 by userspace once `forget_freed_inum` (forget.rs) is attached:
/// it forgets every freed namespace exactly, and this guess is not needed.
#[map]
pub static FORGET_ON_FREE: Array<u32> = Array::with_max_entries(1, 0);

/// Kernels without namespace ids key namespaces by inode, and hand a dead
/// namespace's inode to the next new one at once. Where the kprobe of
/// forget.rs cannot run, this is the fallback: a namespace that only this
/// task's nsproxy holds, with only this task holding the nsproxy, dies
/// with the task: forget it, so that the next one with its inode is
/// reported as created, not joined. Its limits (the tracer's start-up note
/// says them): two tasks sharing an nsproxy that exit at the same moment
/// each see the other's reference, and a namespace that outlives its tasks
/// (an fd, a bind mount) dies with no task exiting; both stay known until
/// userspace's liveness sweep finds them gone and forgets them, and a
/// namespace reusing the inode before that is reported as joined. (A setns
/// into it between now and exit_task_namespaces() would keep it alive:
/// then it is reported as created a second time.)
#[inline(always)]
fn forget_dying(task: *const u8, ns: &[NsRef; NS_SLOTS]) {
    if !task::forgets_dying_namespaces() || FORGET_ON_FREE.get(0).is_some_and(|&on| on != 0) {
        return;
    }
    let proxy = task::nsproxy(task);
    if task::nsproxy_refs(proxy) != 1 {
        return;
    }
    for (slot, r) in ns.iter().enumerate() {
        if r.inum != 0 && task::nsproxy_ns_refs(proxy, slot) == 1 {
            let _ = emit::KNOWN.remove(known_key(slot, r));
        }
    }
}
