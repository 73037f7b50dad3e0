//! The initial namespaces as kernel pointers, for the hooks' fast paths.
//!
//! `init_task` (PID 0, the boot task) holds `&init_nsproxy` and
//! `&init_cred`, which are never freed. A task whose nsproxy pointer is
//! `&init_nsproxy` is in the initial uts, ipc, mnt, net, cgroup and time
//! namespaces and gives its children the initial pid and time namespaces:
//! nsproxies are never changed once shared (unshare and setns install a
//! fresh copy), so that pointer is held only by tasks that inherited it,
//! fork after fork, from `init_task`. Such a task is also in the initial
//! pid namespace: its pid was allocated in its parent's
//! `pid_ns_for_children`, which is `init_nsproxy`'s, the initial one. Its
//! user namespace lives in its credentials and is checked apart.
//!
//! `init_nsproxy` is not in /proc/kallsyms on kernels without
//! CONFIG_KALLSYMS_ALL (this one), so it is learnt in the kernel: every
//! task's chain of `real_parent` ends at `init_task` (PID 1's and
//! kthreadd's parent; `init_task.real_parent` is itself).

use aya_ebpf::{macros::map, maps::Array};
use listns_common::NS_SLOTS;

use crate::{emit, task};

#[repr(C)]
pub struct Initial {
    /// `&init_nsproxy`, 0 until learnt.
    pub nsproxy: u64,
    /// `&init_user_ns`.
    pub user_ns: u64,
    /// The initial namespace struct of each slot (`task::namespace_ptrs`).
    /// Initial namespaces are single objects that are never freed: a
    /// pointer equal to one of these is that namespace.
    pub ptrs: [u64; NS_SLOTS],
    /// Times `learn` has tried (it stops trying after `MAX_FAILURES`).
    pub failures: u64,
}

#[map]
static INITIAL: Array<Initial> = Array::with_max_entries(1, 0);

/// Longest chain of parents walked to reach `init_task`.
const MAX_DEPTH: usize = 48;

/// `learn` gives up after this many failures (a boot task outside the
/// initial namespaces userspace found fails every time; a task nested
/// deeper than `MAX_DEPTH` only until a shallower one exits).
const MAX_FAILURES: u64 = 64;

/// The learnt pointers, if they are known.
#[inline(always)]
pub fn get() -> Option<&'static Initial> {
    // SAFETY: an array map's value lives as long as the program runs.
    let init = unsafe { &*INITIAL.get_ptr(0)? };
    // Volatile: `learn` on another CPU writes this last.
    (unsafe { core::ptr::read_volatile(&init.nsproxy) } != 0).then_some(init)
}

/// Walks up from `task` to `init_task` and records its namespaces, after
/// checking them against the initial namespace inodes that userspace
/// found (a kernel whose boot task is not in them keeps every task on the
/// slow path, which is always right). Runs once; not inlined, so that its
/// stack is not added to the hook's.
#[inline(never)]
pub fn learn(task: *const u8) {
    let Some(slot) = INITIAL.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: the map value; a lost update between CPUs only delays giving up.
    let failures = unsafe { &mut (*slot).failures };
    if *failures >= MAX_FAILURES {
        return;
    }
    *failures += 1;
    let mut t = task;
    for _ in 0..MAX_DEPTH {
        if t.is_null() || task::tid(t) == 0 {
            break;
        }
        t = task::real_parent(t);
    }
    if t.is_null() || task::tid(t) != 0 {
        return;
    }
    let ptrs = task::namespace_ptrs(t);
    let (nsproxy, user_ns) = (task::nsproxy(t) as u64, ptrs[listns_common::SLOT_USER]);
    if nsproxy == 0 || user_ns == 0 {
        return;
    }
    for (slot, &ptr) in ptrs.iter().enumerate() {
        let (init, r) = (emit::init_inum(slot), task::ns_ref(ptr as *const u8, slot));
        if init != 0 && r.inum != init {
            return;
        }
    }
    // SAFETY: the map value; `nsproxy`, which says the rest is there, last.
    unsafe {
        for (i, &p) in ptrs.iter().enumerate() {
            core::ptr::write_volatile(&raw mut (*slot).ptrs[i], p);
        }
        core::ptr::write_volatile(&raw mut (*slot).user_ns, user_ns);
        core::ptr::write_volatile(&raw mut (*slot).nsproxy, nsproxy);
    }
}
