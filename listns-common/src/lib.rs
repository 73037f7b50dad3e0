//! The kernel boundary of listns: the `#[repr(C)]` records the eBPF programs
//! write into the ring buffer and the globals userspace hands to them.
//!
//! Rules (shared by both sides, checked by const assertions below): fixed-width
//! fields only, explicit padding, no `bool`/`Option`/Rust enums in a record.
//! Numeric codes (`EventKind`, slot indices) never change meaning.
#![no_std]

/// Namespace slots read for every task, in this order. A slot is one
/// namespace reference a task holds; pid and time appear twice (the task's
/// own and the one its children get).
pub const NS_SLOTS: usize = 10;

pub const SLOT_UTS: usize = 0;
pub const SLOT_IPC: usize = 1;
pub const SLOT_MNT: usize = 2;
pub const SLOT_NET: usize = 3;
pub const SLOT_CGROUP: usize = 4;
pub const SLOT_TIME: usize = 5;
pub const SLOT_TIME_FOR_CHILDREN: usize = 6;
pub const SLOT_PID_FOR_CHILDREN: usize = 7;
pub const SLOT_PID: usize = 8;
pub const SLOT_USER: usize = 9;

/// Namespace type codes (the kernel's CLONE_NEW* flags, as nsfs file handles
/// and `setns(2)` use them).
pub const CLONE_NEWTIME: u32 = 0x0000_0080;
pub const CLONE_NEWNS: u32 = 0x0002_0000;
pub const CLONE_NEWCGROUP: u32 = 0x0200_0000;
pub const CLONE_NEWUTS: u32 = 0x0400_0000;
pub const CLONE_NEWIPC: u32 = 0x0800_0000;
pub const CLONE_NEWUSER: u32 = 0x1000_0000;
pub const CLONE_NEWPID: u32 = 0x2000_0000;
pub const CLONE_NEWNET: u32 = 0x4000_0000;

/// The CLONE_NEW* type of each slot.
pub const SLOT_TYPE: [u32; NS_SLOTS] = [
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWNS,
    CLONE_NEWNET,
    CLONE_NEWCGROUP,
    CLONE_NEWTIME,
    CLONE_NEWTIME,
    CLONE_NEWPID,
    CLONE_NEWPID,
    CLONE_NEWUSER,
];

/// The kind of a record. Values are part of the ABI: never renumber.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A new task (fork, vfork, clone, clone3) whose namespaces differ from its parent's.
    Fork = 1,
    /// unshare(2) returned 0.
    Unshare = 2,
    /// setns(2) returned 0.
    Setns = 3,
    /// A task that lived outside the initial namespaces exited.
    Exit = 4,
}

impl EventKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Fork),
            2 => Some(Self::Unshare),
            3 => Some(Self::Setns),
            4 => Some(Self::Exit),
            _ => None,
        }
    }
}

/// One namespace reference as read in the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct NsRef {
    /// 64-bit namespace id (`ns_common.ns_id`); 0 when this kernel has none.
    pub id: u64,
    /// nsfs inode number (`ns_common.inum`); 0 when the slot could not be read.
    pub inum: u32,
    pub _pad: u32,
}

/// One ring-buffer record. Userspace reads it from the ring buffer's bytes
/// as plain data (`bytemuck::Pod`: the derive checks there is no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct Event {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC in nanoseconds.
    pub ts_ns: u64,
    /// cgroup v2 id of the task that acted (the parent for a fork).
    pub cgroup_id: u64,
    /// The task concerned's cgroup (the child's for a fork) in the
    /// hierarchy userspace attributes containers by (`Offsets::css_set_cgroup`):
    /// its kernfs node id, which is the cgroup directory's inode number and
    /// is never reused; 0 when it could not be read.
    pub cgroup: u64,
    /// unshare: its flags; setns: its nstype argument; fork and exit: 0
    /// (clone flags are not visible from sched_process_fork; userspace
    /// derives the CLONE_NEW* bits from `changed`).
    pub flags: u64,
    /// Return value of the syscall (0 for fork and exit).
    pub ret: i64,
    /// `EventKind` as u32.
    pub kind: u32,
    /// Thread-group id of the task concerned (the child for a fork).
    pub pid: u32,
    /// Thread id of the task concerned.
    pub tid: u32,
    /// Thread-group id of the task's real parent (the forking process for a fork).
    pub ppid: u32,
    /// Real uid of the task concerned.
    pub uid: u32,
    /// setns: the fd argument; otherwise -1.
    pub fd: i32,
    /// Bit per slot: the namespace differs from `prev`.
    pub changed: u16,
    /// Bit per slot: first sighting of this namespace (not in the known map).
    pub created: u16,
    /// Bit per slot: `ns` was read successfully.
    pub valid: u16,
    /// `TASK_*` bits about the task concerned.
    pub task_flags: u16,
    pub comm: [u8; 16],
    /// The task's namespaces after the event.
    pub ns: [NsRef; NS_SLOTS],
    /// Before the event: the parent's (fork), the task's before the syscall
    /// (unshare, setns); zero for exit.
    pub prev: [NsRef; NS_SLOTS],
}

/// `Event::task_flags`: the task is followed (`listns watch -- COMMAND`,
/// `--pid`): its process is in the `FOLLOWED` map.
pub const TASK_FOLLOWED: u16 = 1;
/// `Event::task_flags`, exit only: the last thread of its process exited
/// (`signal_struct.live` reached 0), so the process is gone.
pub const TASK_GROUP_DEAD: u16 = 2;
/// `Event::task_flags`, exit only: whether the process is gone could not
/// be read (offsets missing); userspace then takes the leader's exit for it.
pub const TASK_GROUP_UNKNOWN: u16 = 4;

pub const EVENT_SIZE: usize = core::mem::size_of::<Event>();
const _: () = assert!(core::mem::size_of::<NsRef>() == 16);
const _: () = assert!(EVENT_SIZE == 88 + 2 * NS_SLOTS * 16);

/// An offset that this kernel's BTF does not have: the field is reported as
/// unknown (0), never guessed.
pub const OFF_MISSING: u32 = u32::MAX;

/// Kernel struct offsets, resolved from the running kernel's BTF at start-up
/// and handed to the programs as a read-only global.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub task_nsproxy: u32,
    pub task_real_cred: u32,
    pub task_thread_pid: u32,
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub cred_user_ns: u32,
    pub cred_uid: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_ns: u32,
    /// nsproxy member per slot (`OFF_MISSING` for pid and user, which do not live there).
    pub nsproxy: [u32; NS_SLOTS],
    /// Offset of the embedded `struct ns_common ns` in the namespace struct of
    /// each slot's type (uts_namespace, ipc_namespace, mnt_namespace, net, ...).
    pub ns_common: [u32; NS_SLOTS],
    pub ns_common_inum: u32,
    pub ns_common_ns_id: u32,
    /// Reference counts (`nsproxy.count`, `ns_common.count`): used only on
    /// kernels without namespace ids, to forget namespaces that die.
    pub nsproxy_count: u32,
    pub ns_common_count: u32,
    /// The task's cgroup in the hierarchy containers are attributed by:
    /// `task->cgroups` (a css_set), then the pointer at `css_set_cgroup` in
    /// it (`dfl_cgrp`, a cgroup, for cgroup2; `subsys[i]`, a css, for a v1
    /// controller), then `css_cgroup` (`css->cgroup`; `OFF_MISSING` when
    /// the pointer is a cgroup already), `cgroup->kn`, `kn->id`.
    pub task_cgroups: u32,
    pub css_set_cgroup: u32,
    pub css_cgroup: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
    pub _pad: u32,
}

impl Offsets {
    pub const MISSING: Offsets = Offsets {
        task_nsproxy: OFF_MISSING,
        task_real_cred: OFF_MISSING,
        task_thread_pid: OFF_MISSING,
        task_pid: OFF_MISSING,
        task_tgid: OFF_MISSING,
        task_real_parent: OFF_MISSING,
        cred_user_ns: OFF_MISSING,
        cred_uid: OFF_MISSING,
        pid_level: OFF_MISSING,
        pid_numbers: OFF_MISSING,
        upid_size: OFF_MISSING,
        upid_ns: OFF_MISSING,
        nsproxy: [OFF_MISSING; NS_SLOTS],
        ns_common: [OFF_MISSING; NS_SLOTS],
        ns_common_inum: OFF_MISSING,
        ns_common_ns_id: OFF_MISSING,
        nsproxy_count: OFF_MISSING,
        ns_common_count: OFF_MISSING,
        task_cgroups: OFF_MISSING,
        css_set_cgroup: OFF_MISSING,
        css_cgroup: OFF_MISSING,
        cgroup_kn: OFF_MISSING,
        kernfs_node_id: OFF_MISSING,
        _pad: 0,
    };
}

/// Read-only configuration handed to the programs with the offsets.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Inode numbers of the initial namespaces per slot: an exiting task whose
    /// slots all match is not reported.
    pub init_inum: [u32; NS_SLOTS],
    /// Wake the consumer when this many bytes wait in the ring buffer
    /// (records are otherwise submitted without a wakeup; the consumer polls).
    pub wakeup_bytes: u32,
    pub _pad: u32,
}

impl Config {
    pub const DEFAULT: Config = Config {
        init_inum: [0; NS_SLOTS],
        wakeup_bytes: 1 << 20,
        _pad: 0,
    };
}

/// Following a process tree (`listns watch -- COMMAND`, `--pid PID`):
/// handed to the programs as a read-only global, like `Config`. The
/// offsets also serve the exit hook's `TASK_GROUP_DEAD`, following or not.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Follow {
    /// Non-zero: the fork hook makes children of followed processes
    /// followed, and hooks mark records of followed tasks.
    pub enabled: u32,
    /// `task_struct.signal` (`OFF_MISSING` when unknown).
    pub task_signal: u32,
    /// `signal_struct.live` (an `atomic_t`: live threads of the process).
    pub signal_live: u32,
    pub _pad: u32,
}

impl Follow {
    pub const OFF: Follow = Follow {
        enabled: 0,
        task_signal: OFF_MISSING,
        signal_live: OFF_MISSING,
        _pad: 0,
    };
}

/// Capacity of the map of followed processes (by tgid).
pub const FOLLOW_MAX: u32 = 1 << 16;

/// Key of the kernel's map of namespaces already seen: the 64-bit namespace
/// id where the kernel has one, otherwise the inode (which the kernel
/// reuses). The slot's type goes into the top byte so that the two key
/// spaces and the namespace types never collide.
#[inline(always)]
pub fn known_key(slot: usize, r: &NsRef) -> u64 {
    let ty = (SLOT_TYPE[slot] as u64).trailing_zeros() as u64;
    if r.id != 0 {
        (ty << 56) | (r.id & 0x00ff_ffff_ffff_ffff)
    } else {
        (ty << 56) | (1 << 55) | r.inum as u64
    }
}

/// Size of the ring buffer in bytes (a power of two, a multiple of the page size).
pub const RINGBUF_BYTES: u32 = 8 << 20;
/// Capacity of the known-namespace map (LRU: the oldest entries go first).
pub const KNOWN_MAX: u32 = 1 << 16;

#[cfg(feature = "user")]
mod user {
    unsafe impl aya::Pod for super::Offsets {}
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::Follow {}
    unsafe impl aya::Pod for super::IterOffsets {}
}

// ---- The iterator scan (listns-ebpf/src/iter.rs) ---------------------------

/// Kernel struct offsets the iterator programs need beyond [`Offsets`]
/// (which they read too), resolved from BTF like those.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IterOffsets {
    /// `task_struct.flags` (`PF_KTHREAD`).
    pub task_flags: u32,
    /// `task_struct.comm`.
    pub task_comm: u32,
    /// `cred.euid`: the owner /proc shows for a process.
    pub cred_euid: u32,
    /// `file.f_inode`, `file.private_data`.
    pub file_inode: u32,
    pub file_private: u32,
    /// `inode.i_sb`, `.i_ino`, `.i_rdev`, `.i_private`.
    pub inode_sb: u32,
    pub inode_ino: u32,
    pub inode_rdev: u32,
    pub inode_private: u32,
    /// `super_block.s_magic`.
    pub sb_magic: u32,
    /// `ns_common.ops` and `proc_ns_operations.type`: an nsfs file's type.
    pub ns_common_ops: u32,
    pub ns_ops_type: u32,
    /// `socket.sk`, and `sock.__sk_common.skc_net` (a `possible_net_t`,
    /// whose first member is the `struct net *`).
    pub socket_sk: u32,
    pub sock_net: u32,
}

impl IterOffsets {
    pub const MISSING: IterOffsets = IterOffsets {
        task_flags: OFF_MISSING,
        task_comm: OFF_MISSING,
        cred_euid: OFF_MISSING,
        file_inode: OFF_MISSING,
        file_private: OFF_MISSING,
        inode_sb: OFF_MISSING,
        inode_ino: OFF_MISSING,
        inode_rdev: OFF_MISSING,
        inode_private: OFF_MISSING,
        sb_magic: OFF_MISSING,
        ns_common_ops: OFF_MISSING,
        ns_ops_type: OFF_MISSING,
        socket_sk: OFF_MISSING,
        sock_net: OFF_MISSING,
    };
}

/// One task, as `iter/task` writes it: every thread of every process in
/// the reader's pid namespace, kernel threads included.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct IterTask {
    pub tgid: u32,
    pub tid: u32,
    pub ppid: u32,
    /// `cred.euid` (`u32::MAX` when unreadable).
    pub uid: u32,
    /// `task_struct.flags`.
    pub flags: u32,
    pub _pad: u32,
    pub comm: [u8; 16],
    /// The task's namespaces, by slot (inode 0: unreadable or none, e.g.
    /// the nsproxy of a zombie).
    pub ns: [NsRef; NS_SLOTS],
}

/// `IterFile::kind`: an nsfs file (`ns_type`, `inum` are the namespace's).
pub const FILE_NS: u32 = 1;
/// `IterFile::kind`: a socket (`inum` its inode, `net` its netns inode).
pub const FILE_SOCKET: u32 = 2;
/// `IterFile::kind`: a file userspace reads the link of (anon inodes such
/// as io_uring and pidfds, pidfs, procfs files, /dev/net/tun): what they
/// pin is told by their link and fdinfo, as in the /proc scan.
pub const FILE_LOOK: u32 = 3;

/// One open file of a process, as `iter/task_file` writes it (only the
/// kinds above; the rest are counted in `ITER_FILES`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct IterFile {
    pub tgid: u32,
    pub fd: u32,
    pub kind: u32,
    /// FILE_NS: the CLONE_NEW* type (0 when unreadable).
    pub ns_type: u32,
    pub inum: u64,
    /// FILE_SOCKET: the inode of its network namespace (0 when unreadable).
    pub net: u64,
}

const _: () = assert!(core::mem::size_of::<IterTask>() == 40 + NS_SLOTS * 16);
const _: () = assert!(core::mem::size_of::<IterFile>() == 32);
