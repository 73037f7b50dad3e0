//! tracepoint/sched/sched_process_exit: a task leaves all its namespaces.
//! Runs before `exit_task_namespaces()`, so the nsproxy is still there.
//! Tasks living entirely in the initial namespaces are not reported.

use aya_ebpf::{
    helpers::bpf_get_current_task,
    macros::{map, tracepoint},
    maps::Array,
    programs::TracePointContext,
};
use listns_common::{
    EventKind, NS_SLOTS, NsRef, TASK_FOLLOWED, TASK_GROUP_DEAD, TASK_GROUP_UNKNOWN, known_key,
};

use crate::{emit, follow, task};

/// The namespace struct of each slot of a task seen to live entirely in
/// the initial namespaces. Initial namespaces are never freed, so a pointer
/// equal to one of these is that namespace: nearly every exiting task is
/// dismissed by comparing pointers, without reading the ten identities.
#[map]
static INITIAL_PTRS: Array<[u64; NS_SLOTS]> = Array::with_max_entries(1, 0);

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    let current = unsafe { bpf_get_current_task() } as *const u8;
    // Before the early return: a followed process is forgotten when its
    // last thread exits, wherever it lives.
    let followed = follow::exit(current);
    let mut ptrs = [0u64; NS_SLOTS];
    task::namespace_ptrs(current, &mut ptrs);
    if let Some(known) = INITIAL_PTRS.get_ptr(0)
        && unsafe { *known } == ptrs
        && ptrs[0] != 0
    {
        return 0;
    }
    let Some(ev) = emit::scratch() else { return 0 };
    for slot in 0..NS_SLOTS {
        ev.ns[slot] = task::ns_ref(ptrs[slot] as *const u8, slot);
    }
    let mut outside = false;
    let mut all_known = true;
    for slot in 0..NS_SLOTS {
        let (init, inum) = (emit::init_inum(slot), ev.ns[slot].inum);
        // An unknown initial inode (0) reports every exit rather than none.
        if inum != 0 && inum != init {
            outside = true;
        }
        if inum == 0 || init == 0 {
            all_known = false;
        }
    }
    if !outside {
        if all_known && let Some(known) = INITIAL_PTRS.get_ptr_mut(0) {
            unsafe { *known = ptrs };
        }
        return 0;
    }
    ev.kind = EventKind::Exit as u32;
    ev.pid = task::tgid(current);
    ev.tid = task::tid(current);
    ev.ppid = task::ppid(current);
    ev.uid = task::uid(current);
    ev.prev = [NsRef::default(); NS_SLOTS];
    let mut flags = match follow::live_threads(current) {
        Some(0) => TASK_GROUP_DEAD,
        Some(_) => 0,
        None => TASK_GROUP_UNKNOWN,
    };
    if followed {
        flags |= TASK_FOLLOWED;
    }
    ev.task_flags = flags;
    emit::classify(ev, false);
    forget_dying(current, &ev.ns);
    emit::submit(ev);
    0
}

/// Kernels without namespace ids key namespaces by inode, and hand a dead
/// namespace's inode to the next new one at once. A namespace that only
/// this task's nsproxy holds, with only this task holding the nsproxy, dies
/// with the task: forget it, so that the next one with its inode is
/// reported as created, not joined. (A setns into it between now and
/// exit_task_namespaces() would keep it alive: then it is reported as
/// created a second time, the lesser error.)
#[inline(always)]
fn forget_dying(task: *const u8, ns: &[NsRef; NS_SLOTS]) {
    if !task::forgets_dying_namespaces() {
        return;
    }
    let proxy = task::nsproxy(task);
    if task::nsproxy_refs(proxy) != 1 {
        return;
    }
    for (slot, r) in ns.iter().enumerate() {
        if r.inum != 0 && task::nsproxy_ns_refs(proxy, slot) == 1 {
            let _ = emit::KNOWN.remove(&known_key(slot, r));
        }
    }
}
