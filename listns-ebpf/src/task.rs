//! Reading a task's namespaces with `bpf_probe_read_kernel`, at offsets that
//! userspace resolved from the running kernel's BTF. An offset the kernel
//! lacks (`OFF_MISSING`) leaves the field unknown (zero).
//!
//! The namespace reads do not branch on whether a read succeeded:
//! `bpf_probe_read_kernel` zeroes its destination when it fails, which is
//! exactly "unknown". Branching on every result (and on null pointers) made
//! Linux 6.1's verifier walk every combination of outcomes over the ten
//! slots and give up at its 1M-instruction limit.

use aya_ebpf::helpers::{bpf_probe_read_kernel, generated};
use listns_common::{NS_SLOTS, NsRef, OFF_MISSING, Offsets, SLOT_PID, SLOT_USER};

/// Kernel struct offsets; userspace overrides this before loading and aya
/// freezes it, so the verifier sees constants.
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets::MISSING;

macro_rules! off {
    ($($field:tt)+) => {
        unsafe { core::ptr::read_volatile(&raw const OFFSETS.$($field)+) }
    };
}

/// `bpf_probe_read_kernel` at `base + off`: a bad address is an error, not a fault.
#[inline(always)]
fn read<T>(base: *const u8, off: u32) -> Option<T> {
    if off == OFF_MISSING || base.is_null() {
        return None;
    }
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize) as *const T).ok() }
}

/// Like `read`, without branches: zero when the offset is missing or the
/// read fails (a null `base` fails too: the kernel refuses low addresses).
#[inline(always)]
fn read_or_zero<T: Default>(base: *const u8, off: u32) -> T {
    let mut v = T::default();
    if off != OFF_MISSING {
        // SAFETY: the helper writes at most size_of::<T>() bytes into `v`
        // and zeroes them when the kernel address cannot be read.
        unsafe {
            generated::bpf_probe_read_kernel(
                (&raw mut v).cast(),
                core::mem::size_of::<T>() as u32,
                base.wrapping_add(off as usize).cast(),
            )
        };
    }
    v
}

#[inline(always)]
fn read_ptr(base: *const u8, off: u32) -> *const u8 {
    read_or_zero::<usize>(base, off) as *const u8
}

pub fn nsproxy(task: *const u8) -> *const u8 {
    read_ptr(task, off!(task_nsproxy))
}

pub fn user_ns(task: *const u8) -> *const u8 {
    let cred = read_ptr(task, off!(task_real_cred));
    read_ptr(cred, off!(cred_user_ns))
}

/// `task_active_pid_ns()`: `task->thread_pid->numbers[level].ns`.
pub fn active_pid_ns(task: *const u8) -> *const u8 {
    let pid = read_ptr(task, off!(task_thread_pid));
    let level = read_or_zero::<u32>(pid, off!(pid_level));
    let (numbers, size, ns) = (off!(pid_numbers), off!(upid_size), off!(upid_ns));
    if numbers == OFF_MISSING || size == OFF_MISSING || ns == OFF_MISSING || level > 64 {
        return core::ptr::null();
    }
    read_ptr(pid, numbers + level * size + ns)
}

pub fn tgid(task: *const u8) -> u32 {
    read_or_zero::<u32>(task, off!(task_tgid))
}

pub fn tid(task: *const u8) -> u32 {
    read_or_zero::<u32>(task, off!(task_pid))
}

pub fn ppid(task: *const u8) -> u32 {
    tgid(read_ptr(task, off!(task_real_parent)))
}

pub fn uid(task: *const u8) -> u32 {
    let cred = read_ptr(task, off!(task_real_cred));
    read::<u32>(cred, off!(cred_uid)).unwrap_or(u32::MAX)
}

/// Kernels without namespace ids whose BTF has the reference counts.
#[inline(always)]
pub fn forgets_dying_namespaces() -> bool {
    off!(ns_common_ns_id) == OFF_MISSING
        && off!(nsproxy_count) != OFF_MISSING
        && off!(ns_common_count) != OFF_MISSING
}

/// `nsproxy.count`.
#[inline(always)]
pub fn nsproxy_refs(proxy: *const u8) -> u32 {
    read_or_zero::<u32>(proxy, off!(nsproxy_count))
}

/// `ns_common.count` of the namespace in `proxy`'s member for `slot` (0 for
/// the slots that are not in the nsproxy, or when it cannot be read).
#[inline(always)]
pub fn nsproxy_ns_refs(proxy: *const u8, slot: usize) -> u32 {
    let (member, common) = (off!(nsproxy[slot]), off!(ns_common[slot]));
    if member == OFF_MISSING || common == OFF_MISSING {
        return 0;
    }
    let ns = read_ptr(proxy, member);
    read_or_zero::<u32>(ns.wrapping_add(common as usize), off!(ns_common_count))
}

/// Identity of the namespace whose struct (uts_namespace, net, ...) is at
/// `ns`, for a slot of that type.
#[inline(always)]
pub fn ns_ref(ns: *const u8, slot: usize) -> NsRef {
    let common_off = off!(ns_common[slot]);
    if common_off == OFF_MISSING {
        return NsRef::default();
    }
    let common = ns.wrapping_add(common_off as usize);
    NsRef {
        id: read_or_zero::<u64>(common, off!(ns_common_ns_id)),
        inum: read_or_zero::<u32>(common, off!(ns_common_inum)),
        _pad: 0,
    }
}

/// The namespace struct of each slot of `task` (null where unreadable).
#[inline(always)]
pub fn namespace_ptrs(task: *const u8, out: &mut [u64; NS_SLOTS]) {
    let proxy = nsproxy(task);
    for (slot, ptr) in out.iter_mut().enumerate() {
        let ns = match slot {
            SLOT_PID => active_pid_ns(task),
            SLOT_USER => user_ns(task),
            _ => read_ptr(proxy, off!(nsproxy[slot])),
        };
        *ptr = ns as u64;
    }
}

/// Reads every slot of `task` into `out`; a slot that cannot be read is
/// left zero (inode 0). No mask is returned on purpose: a mask built from
/// per-branch constants makes the verifier explore every combination.
#[inline(always)]
pub fn read_namespaces(task: *const u8, out: &mut [NsRef; NS_SLOTS]) {
    let mut ptrs = [0u64; NS_SLOTS];
    namespace_ptrs(task, &mut ptrs);
    for slot in 0..NS_SLOTS {
        out[slot] = ns_ref(ptrs[slot] as *const u8, slot);
    }
}
