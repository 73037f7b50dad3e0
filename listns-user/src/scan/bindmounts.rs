//! Step 3 of a scan: nsfs bind mounts, read from the mountinfo of one
//! process in each mount namespace (another if it went away). `ip netns`
//! names come from mounts under /run/netns in the scanner's own mount
//! namespace.

use std::{
    collections::HashMap,
    os::fd::{AsFd, BorrowedFd},
};

use super::{hierarchy, mounts};
use crate::{
    inventory::{Holder, Inventory},
    ns::NsType,
    stats::{Pin, PinKind, ScanStats},
    sys,
    text::RawText,
};

/// Reads the nsfs mounts of each mount namespace through one of its processes.
pub fn read(
    root: BorrowedFd<'_>,
    inv: &mut Inventory,
    stats: &mut ScanStats,
    readers: &HashMap<u64, (Vec<u32>, Vec<u32>)>,
    self_mnt: Option<(u32, u64)>,
    extra: &mut hierarchy::Extra,
) {
    let mut buf = Vec::new();
    let mut order: Vec<_> = readers.iter().collect();
    order.sort_unstable_by_key(|(m, _)| **m);
    for (&mnt, pids) in order {
        // Another process of the same namespace if the first one went away.
        let read = pids.0.iter().chain(&pids.1).take(3).find_map(|&pid| {
            let name = std::ffi::CString::new(format!("{pid}/mountinfo")).ok()?;
            sys::read_at(root, &name, &mut buf).ok().map(|_| pid)
        });
        let Some(pid) = read else {
            stats.mountinfo_failed += 1;
            continue;
        };
        stats.mount_namespaces_read += 1;
        let parsed = mounts::parse(&buf);
        stats.mountinfo_bad_lines += parsed.bad_lines;
        for path in &parsed.procs {
            if proc_mount_is_empty(root, pid, path) {
                stats.pins.push(Pin::new(
                    PinKind::EmptyPidnsProc,
                    pid,
                    None,
                    Some(mnt),
                    path,
                ));
            }
        }
        for m in parsed.mounts {
            let ns = inv.entry(m.ty, m.inum, None).1;
            if self_mnt.map(|(_, s)| s) == Some(mnt)
                && let Some(name) = mounts::netns_name(&m.path)
                && m.ty == NsType::Net
            {
                ns.netns_names.insert(RawText::new(name));
            }
            ns.holders.insert(Holder::BindMount {
                path: RawText::new(&m.path),
                mnt_ns: mnt,
            });
            extra
                .paths
                .entry((m.ty, m.inum))
                .or_default()
                .push(hierarchy::via_root(pid, &m.path));
        }
    }
}

/// Whether the `proc` mount at `path` (in the mount namespace of `pid`)
/// lists no process: its pid namespace has no task left, and the mount
/// holds it. Reached through `/proc/PID/root`; one that does not open is
/// not reported.
pub(super) fn proc_mount_is_empty(root: BorrowedFd<'_>, pid: u32, path: &[u8]) -> bool {
    let Ok(cpath) = std::ffi::CString::new(hierarchy::via_root(pid, path)) else {
        return false;
    };
    let Ok(dir) = sys::open_dir(root, &cpath) else {
        return false;
    };
    // The mount point may have been covered since mountinfo was read.
    let is_proc = nix::sys::statfs::fstatfs(&dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    is_proc && sys::list_numbers(dir.as_fd()).is_ok_and(|pids| pids.is_empty())
}
