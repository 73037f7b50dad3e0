//! tracepoint/sched/sched_process_exit: a task leaves all its namespaces.
//! Runs before `exit_task_namespaces()`, so the nsproxy is still there.
//! Tasks living entirely in the initial namespaces are not reported.

use aya_ebpf::{helpers::bpf_get_current_task, macros::tracepoint, programs::TracePointContext};
use listns_common::{EventKind, NS_SLOTS, NsRef, known_key};

use crate::{emit, task};

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    let current = unsafe { bpf_get_current_task() } as *const u8;
    let Some(ev) = emit::scratch() else { return 0 };
    task::read_namespaces(current, &mut ev.ns);
    let mut outside = false;
    for slot in 0..NS_SLOTS {
        let (init, inum) = (emit::init_inum(slot), ev.ns[slot].inum);
        // An unknown initial inode (0) reports every exit rather than none.
        if inum != 0 && inum != init {
            outside = true;
        }
    }
    if !outside {
        return 0;
    }
    ev.kind = EventKind::Exit as u32;
    ev.pid = task::tgid(current);
    ev.tid = task::tid(current);
    ev.ppid = task::ppid(current);
    ev.uid = task::uid(current);
    ev.prev = [NsRef::default(); NS_SLOTS];
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
