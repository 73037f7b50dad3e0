//! tracepoint/sched/sched_process_exit: a task leaves all its namespaces.
//! Runs before `exit_task_namespaces()`, so the nsproxy is still there.
//! Tasks living entirely in the initial namespaces are not reported.

use aya_ebpf::{helpers::bpf_get_current_task, macros::tracepoint, programs::TracePointContext};
use listns_common::{EventKind, NS_SLOTS, NsRef};

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
    emit::submit(ev);
    0
}
