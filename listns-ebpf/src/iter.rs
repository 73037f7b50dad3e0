//! The scan's iterator programs (`listns --scan=iter`): one pass over every
//! task (`iter/task`) and one over every open file (`iter/task_file`),
//! written to the reader as fixed records (`listns_common::IterTask`,
//! `IterFile`). Userspace loads them only for a scan, reads each
//! iterator's file to its end, and unloads them.
//!
//! Kernel memory is read with `bpf_probe_read_kernel` at offsets from BTF,
//! as in the hooks (`task.rs`); only the context's own fields (the seq
//! file, the task, the fd, the file) are typed pointers the verifier knows.

use aya_ebpf::{helpers::generated, macros::map, maps::Array};
use listns_common::{FILE_LOOK, FILE_NS, FILE_SOCKET, IterFile, IterOffsets, IterTask, SLOT_NET};

use crate::task;

/// Offsets beyond `task::OFFSETS`, frozen by userspace before loading.
#[unsafe(no_mangle)]
static ITER_OFFSETS: IterOffsets = IterOffsets::MISSING;

/// Every file the file iterator saw (written or not), for the scan's counts.
#[map]
static ITER_FILES: Array<u64> = Array::with_max_entries(1, 0);

macro_rules! off {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(&raw const ITER_OFFSETS.$field) }
    };
}

const NSFS_MAGIC: u64 = 0x6e73_6673;
const SOCKFS_MAGIC: u64 = 0x534f_434b;
const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;
const PROC_SUPER_MAGIC: u64 = 0x9fa0;
const PID_FS_MAGIC: u64 = 0x5049_4446;
/// `/dev/net/tun`: the kernel's dev_t of character device 10:200.
const TUN_RDEV: u32 = (10 << 20) | 200;

/// `struct bpf_iter_meta`'s first member.
#[inline(always)]
fn seq_of(ctx: *const u64) -> *mut aya_ebpf::bindings::seq_file {
    // SAFETY: ctx[0] is the iterator's `struct bpf_iter_meta *`, never
    // null, whose first member is the seq file.
    unsafe { *(*ctx as *const *mut aya_ebpf::bindings::seq_file) }
}

#[inline(always)]
fn write<T>(ctx: *const u64, rec: &T) {
    // SAFETY: the helper copies `size_of::<T>()` bytes from `rec`.
    unsafe {
        generated::bpf_seq_write(
            seq_of(ctx),
            (rec as *const T).cast(),
            core::mem::size_of::<T>() as u32,
        )
    };
}

/// `bpf_iter__task { meta; task }`: one call per task, then one with a
/// null task at the end.
#[unsafe(link_section = "iter/task")]
#[unsafe(no_mangle)]
pub fn listns_iter_task(ctx: *const u64) -> i32 {
    // SAFETY: the context is two pointers; the task may be null.
    let t = unsafe { *ctx.add(1) } as *const u8;
    if t.is_null() {
        return 0;
    }
    let mut rec = IterTask {
        tgid: task::tgid(t),
        tid: task::tid(t),
        ppid: task::ppid(t),
        uid: task::euid(t, off!(cred_euid)),
        flags: task::read_u32(t, off!(task_flags)),
        _pad: 0,
        comm: task::read_comm(t, off!(task_comm)),
        ns: [listns_common::NsRef::default(); listns_common::NS_SLOTS],
    };
    task::read_namespaces(t, &mut rec.ns);
    write(ctx, &rec);
    0
}

/// `bpf_iter__task_file { meta; task; u32 fd; file }`: one call per open
/// file of each process (threads that share their files table are
/// visited once), then one with a null file at the end.
#[unsafe(link_section = "iter/task_file")]
#[unsafe(no_mangle)]
pub fn listns_iter_task_file(ctx: *const u64) -> i32 {
    // SAFETY: the context is meta, task, fd (a u32 in a u64 slot), file.
    let (t, fd, file) = unsafe {
        (
            *ctx.add(1) as *const u8,
            *ctx.add(2) as u32,
            *ctx.add(3) as *const u8,
        )
    };
    if t.is_null() || file.is_null() {
        return 0;
    }
    if let Some(n) = ITER_FILES.get_ptr_mut(0) {
        // SAFETY: the map's value; one reader runs the iterator.
        unsafe { *n += 1 };
    }
    // Only the process's own table, the one /proc/PID/fd shows: a thread
    // that unshared its files table is left out (docs/scan-coverage.md).
    let tgid = task::tgid(t);
    if task::tid(t) != tgid {
        return 0;
    }
    let inode = task::read_addr(file, off!(file_inode));
    let sb = task::read_addr(inode, off!(inode_sb));
    let magic = task::read_u64(sb, off!(sb_magic));
    let mut rec = IterFile {
        tgid,
        fd,
        kind: 0,
        ns_type: 0,
        inum: task::read_u64(inode, off!(inode_ino)),
        net: 0,
    };
    if magic == NSFS_MAGIC {
        let common = task::read_addr(inode, off!(inode_private));
        let ops = task::read_addr(common, off!(ns_common_ops));
        rec.kind = FILE_NS;
        rec.ns_type = task::read_u32(ops, off!(ns_ops_type));
    } else if magic == SOCKFS_MAGIC {
        let socket = task::read_addr(file, off!(file_private));
        let sk = task::read_addr(socket, off!(socket_sk));
        let net = task::read_addr(sk, off!(sock_net));
        rec.kind = FILE_SOCKET;
        rec.net = task::ns_ref(net, SLOT_NET).inum as u64;
    } else if magic == ANON_INODE_FS_MAGIC
        || magic == PROC_SUPER_MAGIC
        || magic == PID_FS_MAGIC
        || task::read_u32(inode, off!(inode_rdev)) == TUN_RDEV
    {
        rec.kind = FILE_LOOK;
    } else {
        return 0;
    }
    write(ctx, &rec);
    0
}
