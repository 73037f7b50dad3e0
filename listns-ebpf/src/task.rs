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

/// Fields `A` at `a` and `B` at `b` of the struct at `base` (zero where
/// missing or unreadable), with one `bpf_probe_read_kernel` of the bytes
/// between them when they are at most `WORDS` u64 apart: the helper call
/// costs far more than the bytes it copies. Fields too far apart, or not
/// aligned to their size within the span (the verifier wants aligned stack
/// reads), are read one by one.
#[inline(always)]
fn read_two<A: Copy + Default, B: Copy + Default, const WORDS: usize>(
    base: *const u8,
    a: u32,
    b: u32,
) -> (A, B) {
    let (size_a, size_b) = (
        core::mem::size_of::<A>() as u32,
        core::mem::size_of::<B>() as u32,
    );
    if a == OFF_MISSING || b == OFF_MISSING {
        return (read_or_zero(base, a), read_or_zero(base, b));
    }
    let lo = if a < b { a } else { b };
    let end = if a + size_a > b + size_b {
        a + size_a
    } else {
        b + size_b
    };
    let (len, rel_a, rel_b) = ((end - lo) as usize, (a - lo) as usize, (b - lo) as usize);
    if len > WORDS * 8 || rel_a % size_a as usize != 0 || rel_b % size_b as usize != 0 {
        return (read_or_zero(base, a), read_or_zero(base, b));
    }
    let mut buf = core::mem::MaybeUninit::<[u64; WORDS]>::uninit();
    // SAFETY: the helper fills (or, failing, zeroes) the first `len` bytes
    // of `buf`, and both fields lie within them.
    unsafe {
        generated::bpf_probe_read_kernel(
            buf.as_mut_ptr().cast(),
            len as u32,
            base.wrapping_add(lo as usize).cast(),
        );
        let bytes = buf.as_ptr().cast::<u8>();
        (
            bytes.add(rel_a).cast::<A>().read(),
            bytes.add(rel_b).cast::<B>().read(),
        )
    }
}

/// `(task->real_cred, task->nsproxy)`, which every fork and exit needs: one
/// probe read where they are at most 128 bytes apart (120 on 6.18).
#[inline(always)]
pub fn cred_and_nsproxy(task: *const u8) -> (*const u8, *const u8) {
    let (cred, proxy) =
        read_two::<usize, usize, 16>(task, off!(task_real_cred), off!(task_nsproxy));
    (cred as *const u8, proxy as *const u8)
}

/// `cred->user_ns`.
#[inline(always)]
pub fn cred_user_ns(cred: *const u8) -> *const u8 {
    read_ptr(cred, off!(cred_user_ns))
}

/// `nsproxy->pid_ns_for_children`.
#[inline(always)]
pub fn pid_ns_for_children(proxy: *const u8) -> *const u8 {
    read_ptr(proxy, off!(nsproxy[listns_common::SLOT_PID_FOR_CHILDREN]))
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

pub fn real_parent(task: *const u8) -> *const u8 {
    read_ptr(task, off!(task_real_parent))
}

pub fn ppid(task: *const u8) -> u32 {
    tgid(real_parent(task))
}

pub fn uid(task: *const u8) -> u32 {
    let cred = read_ptr(task, off!(task_real_cred));
    read::<u32>(cred, off!(cred_uid)).unwrap_or(u32::MAX)
}

/// The kernfs node id of `task`'s cgroup in the hierarchy userspace
/// chose (see `Offsets::css_set_cgroup`); 0 when unknown.
#[inline(always)]
pub fn cgroup(task: *const u8) -> u64 {
    let set = read_ptr(task, off!(task_cgroups));
    let mut cgrp = read_ptr(set, off!(css_set_cgroup));
    if off!(css_cgroup) != OFF_MISSING {
        cgrp = read_ptr(cgrp, off!(css_cgroup));
    }
    let kn = read_ptr(cgrp, off!(cgroup_kn));
    read_or_zero::<u64>(kn, off!(kernfs_node_id))
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
/// `ns`, for a slot of that type. (Reading id and inode, neighbours in
/// `ns_common`, with one `read_two` each needed a buffer per slot, more
/// than the 512-byte BPF stack holds.)
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
pub fn namespace_ptrs(task: *const u8) -> [u64; NS_SLOTS] {
    let proxy = nsproxy(task);
    // Built element by element: a zeroed array first would be a
    // byte-by-byte memset call in BPF (and `array::from_fn` a call).
    let mut out = core::mem::MaybeUninit::<[u64; NS_SLOTS]>::uninit();
    let first = out.as_mut_ptr().cast::<u64>();
    for slot in 0..NS_SLOTS {
        let ns = match slot {
            SLOT_PID => active_pid_ns(task),
            SLOT_USER => user_ns(task),
            _ => read_ptr(proxy, off!(nsproxy[slot])),
        };
        // SAFETY: `slot` is within the array.
        unsafe { first.add(slot).write(ns as u64) };
    }
    // SAFETY: every element was written.
    unsafe { out.assume_init() }
}

/// The identity of the namespace behind each of `ptrs` (from
/// `namespace_ptrs`), written straight into `out` (a record); a slot that
/// cannot be read is zero (inode 0). No mask is returned on purpose: a
/// mask built from per-branch constants makes the verifier explore every
/// combination.
#[inline(always)]
pub fn refs_of(ptrs: &[u64; NS_SLOTS], out: &mut [NsRef; NS_SLOTS]) {
    for (slot, r) in out.iter_mut().enumerate() {
        write_ref(r, ns_ref(ptrs[slot] as *const u8, slot));
    }
}

/// Every slot of `task`, written into `out` (see `refs_of`).
#[inline(always)]
pub fn read_namespaces(task: *const u8, out: &mut [NsRef; NS_SLOTS]) {
    refs_of(&namespace_ptrs(task), out);
}

/// Stores one reference field by field: copying whole arrays of them
/// compiles to byte-by-byte memcpy/memset calls in BPF, which cost time
/// and verifier steps.
#[inline(always)]
pub fn write_ref(dst: &mut NsRef, src: NsRef) {
    // SAFETY: plain stores to a valid, exclusive reference.
    unsafe {
        core::ptr::write_volatile(&raw mut dst.id, src.id);
        core::ptr::write_volatile(&raw mut dst.inum, src.inum);
        core::ptr::write_volatile(&raw mut dst._pad, 0);
    }
}

/// Copies `src` into `dst` (see `write_ref`).
#[inline(always)]
pub fn copy_refs(dst: &mut [NsRef; NS_SLOTS], src: &[NsRef; NS_SLOTS]) {
    for slot in 0..NS_SLOTS {
        write_ref(&mut dst[slot], src[slot]);
    }
}

/// Zeroes `dst` (see `write_ref`).
#[inline(always)]
pub fn clear_refs(dst: &mut [NsRef; NS_SLOTS]) {
    for r in dst.iter_mut() {
        write_ref(r, NsRef::default());
    }
}

/// A pointer at `base + off` (null where missing or unreadable).
#[inline(always)]
pub fn read_addr(base: *const u8, off: u32) -> *const u8 {
    read_ptr(base, off)
}

/// A u32 at `base + off` (0 where missing or unreadable).
#[inline(always)]
pub fn read_u32(base: *const u8, off: u32) -> u32 {
    read_or_zero::<u32>(base, off)
}

/// A u64 at `base + off` (0 where missing or unreadable).
#[inline(always)]
pub fn read_u64(base: *const u8, off: u32) -> u64 {
    read_or_zero::<u64>(base, off)
}

/// `task->comm` (zeroes where missing or unreadable).
#[inline(always)]
pub fn read_comm(task: *const u8, off: u32) -> [u8; 16] {
    read_or_zero::<[u8; 16]>(task, off)
}

/// `task->real_cred->euid` at `euid_off` in the cred (`u32::MAX` when unknown).
#[inline(always)]
pub fn euid(task: *const u8, euid_off: u32) -> u32 {
    let cred = read_ptr(task, off!(task_real_cred));
    read::<u32>(cred, euid_off).unwrap_or(u32::MAX)
}
