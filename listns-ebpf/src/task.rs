//! Reading a task's namespaces with `bpf_probe_read_kernel`, at offsets that
//! userspace resolved from the running kernel's BTF. An offset the kernel
//! lacks (`OFF_MISSING`) leaves the field unknown (zero).

use aya_ebpf::helpers::bpf_probe_read_kernel;
use listns_common::{
    NS_SLOTS, NsRef, OFF_MISSING, Offsets, SLOT_PID, SLOT_USER,
};

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

#[inline(always)]
fn read_ptr(base: *const u8, off: u32) -> *const u8 {
    read::<*const u8>(base, off).unwrap_or(core::ptr::null())
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
    let Some(level) = read::<u32>(pid, off!(pid_level)) else {
        return core::ptr::null();
    };
    let (numbers, size, ns) = (off!(pid_numbers), off!(upid_size), off!(upid_ns));
    if numbers == OFF_MISSING || size == OFF_MISSING || ns == OFF_MISSING || level > 64 {
        return core::ptr::null();
    }
    read_ptr(pid, numbers + level * size + ns)
}

pub fn tgid(task: *const u8) -> u32 {
    read::<u32>(task, off!(task_tgid)).unwrap_or(0)
}

pub fn tid(task: *const u8) -> u32 {
    read::<u32>(task, off!(task_pid)).unwrap_or(0)
}

pub fn ppid(task: *const u8) -> u32 {
    tgid(read_ptr(task, off!(task_real_parent)))
}

pub fn uid(task: *const u8) -> u32 {
    let cred = read_ptr(task, off!(task_real_cred));
    read::<u32>(cred, off!(cred_uid)).unwrap_or(u32::MAX)
}

/// Identity of the namespace whose struct (uts_namespace, net, ...) is at
/// `ns`, for a slot of that type.
#[inline(always)]
fn ns_ref(ns: *const u8, slot: usize) -> Option<NsRef> {
    let common_off = off!(ns_common[slot]);
    if ns.is_null() || common_off == OFF_MISSING {
        return None;
    }
    let common = ns.wrapping_add(common_off as usize);
    let inum = read::<u32>(common, off!(ns_common_inum))?;
    let id = read::<u64>(common, off!(ns_common_ns_id)).unwrap_or(0);
    Some(NsRef { id, inum, _pad: 0 })
}

/// Reads every slot of `task` into `out`; returns the mask of slots read.
#[inline(always)]
pub fn read_namespaces(task: *const u8, out: &mut [NsRef; NS_SLOTS]) -> u16 {
    let mut valid = 0u16;
    let proxy = nsproxy(task);
    for slot in 0..NS_SLOTS {
        let ns = match slot {
            SLOT_PID => active_pid_ns(task),
            SLOT_USER => user_ns(task),
            _ => read_ptr(proxy, off!(nsproxy[slot])),
        };
        match ns_ref(ns, slot) {
            Some(r) => {
                out[slot] = r;
                valid |= 1 << slot;
            }
            None => out[slot] = NsRef::default(),
        }
    }
    valid
}
