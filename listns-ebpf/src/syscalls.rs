//! unshare(2) and setns(2): nothing but their syscall tracepoints sees them.
//! The enter hook keeps the arguments and the namespaces before the call per
//! thread; the exit hook reports a successful call with both.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task},
    macros::{map, tracepoint},
    maps::LruHashMap,
    programs::TracePointContext,
};
use aya_log_ebpf::warn;
use listns_common::{EventKind, NS_SLOTS, NsRef, TASK_FOLLOWED};

use crate::{emit, follow, task};

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    flags: u64,
    fd: i64,
    prev: [NsRef; NS_SLOTS],
}

/// Calls in flight, by pid_tgid. LRU: an entry whose exit is never seen
/// (a hook attached between a call's enter and its exit, a thread killed
/// in the call) is evicted by newer ones instead of filling the map.
#[map]
static PENDING: LruHashMap<u64, Pending> = LruHashMap::with_max_entries(4096, 0);

/// Offsets of the syscall tracepoint fields (tracefs `format` files; stable ABI).
const ARG0: usize = 16;
const ARG1: usize = 24;
const RET: usize = 16;

fn enter(ctx: &TracePointContext, flags: u64, fd: i64) {
    let current = unsafe { bpf_get_current_task() } as *const u8;
    // Built in place: a zeroed `prev` first would be a memset call, and
    // `task::namespaces` a call and a copy.
    let mut p = core::mem::MaybeUninit::<Pending>::uninit();
    let pp = p.as_mut_ptr();
    // SAFETY: every field of `p` is written before it is read.
    let p = unsafe {
        (&raw mut (*pp).flags).write(flags);
        (&raw mut (*pp).fd).write(fd);
        task::read_namespaces(current, &mut (*pp).prev);
        p.assume_init_ref()
    };
    if PENDING.insert(bpf_get_current_pid_tgid(), p, 0).is_err() {
        warn!(
            ctx,
            "listns: no room to keep an unshare/setns call in flight; it will be missed"
        );
    }
}

fn exit(ctx: &TracePointContext, kind: EventKind) {
    let key = bpf_get_current_pid_tgid();
    let Some(p) = PENDING.get_ptr(key) else {
        return;
    };
    let p = unsafe { &*p };
    let ret: i64 = unsafe { ctx.read_at(RET) }.unwrap_or(-1);
    if ret != 0 {
        let _ = PENDING.remove(key);
        return;
    }
    let Some(mut ev) = emit::reserve(kind) else {
        let _ = PENDING.remove(key);
        return;
    };
    let current = unsafe { bpf_get_current_task() } as *const u8;
    ev.flags = p.flags;
    ev.fd = if kind == EventKind::Setns {
        p.fd as i32
    } else {
        -1
    };
    ev.ret = ret;
    ev.pid = (key >> 32) as u32;
    if follow::is_followed(ev.pid) {
        ev.task_flags = TASK_FOLLOWED;
    }
    ev.tid = key as u32;
    ev.ppid = task::ppid(current);
    ev.uid = task::uid(current);
    ev.cgroup = task::cgroup(current);
    task::copy_refs(&mut ev.prev, &p.prev);
    let _ = PENDING.remove(key);
    task::read_namespaces(current, &mut ev.ns);
    emit::classify(&mut ev, true);
    emit::submit(ev);
}

#[tracepoint(category = "syscalls", name = "sys_enter_unshare")]
pub fn sys_enter_unshare(ctx: TracePointContext) -> u32 {
    let flags: u64 = unsafe { ctx.read_at(ARG0) }.unwrap_or(0);
    enter(&ctx, flags, -1);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_unshare")]
pub fn sys_exit_unshare(ctx: TracePointContext) -> u32 {
    exit(&ctx, EventKind::Unshare);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_setns")]
pub fn sys_enter_setns(ctx: TracePointContext) -> u32 {
    let fd: i64 = unsafe { ctx.read_at(ARG0) }.unwrap_or(-1);
    let nstype: u64 = unsafe { ctx.read_at(ARG1) }.unwrap_or(0);
    enter(&ctx, nstype, fd);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_setns")]
pub fn sys_exit_setns(ctx: TracePointContext) -> u32 {
    exit(&ctx, EventKind::Setns);
    0
}
