//! kprobe/proc_free_inum, on kernels without namespace ids: forget a
//! namespace the moment the kernel frees its inode number.
//!
//! Such kernels key the known map by inode and hand a freed inode to the
//! next namespace at once, which must then be reported as created, not
//! joined. The exit hook cannot tell reliably when a namespace dies (two
//! tasks sharing an nsproxy exiting together each see the other's
//! reference; an fd or a bind mount keeps one alive past its tasks).
//! `proc_free_inum` runs exactly once per freed inode, before anything can
//! reuse it. The number comes from one allocator shared by every namespace
//! type (and /proc entries), so a live namespace of another type never
//! holds it: removing the number under every type is safe.

use aya_ebpf::{macros::kprobe, programs::ProbeContext};
use listns_common::{
    NsRef, SLOT_CGROUP, SLOT_IPC, SLOT_MNT, SLOT_NET, SLOT_PID, SLOT_TIME, SLOT_USER, SLOT_UTS,
    known_key,
};

use crate::emit;

/// One slot of each namespace type.
const TYPES: [usize; 8] = [
    SLOT_UTS,
    SLOT_IPC,
    SLOT_MNT,
    SLOT_NET,
    SLOT_CGROUP,
    SLOT_TIME,
    SLOT_PID,
    SLOT_USER,
];

#[kprobe]
pub fn forget_freed_inum(ctx: ProbeContext) -> u32 {
    let Some(inum) = ctx.arg::<u32>(0) else {
        return 0;
    };
    let r = NsRef {
        id: 0,
        inum,
        _pad: 0,
    };
    for slot in TYPES {
        let _ = emit::KNOWN.remove(known_key(slot, &r));
    }
    0
}
