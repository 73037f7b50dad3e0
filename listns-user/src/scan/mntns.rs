//! Step 3b of a scan: mount namespaces that no process is in. One held only
//! by a bind mount or an fd has mounts of its own, and nsfs bind mounts
//! among them hold further namespaces (possibly more such mount
//! namespaces) that no process's mountinfo shows.
//!
//! No /proc file lists the mounts of a namespace without a task in it, so
//! a short-lived child enters it: a forked child (single-threaded, so
//! `setns(CLONE_NEWNS)` is allowed; a thread of the scanner is not) joins
//! the namespace and waits on a pipe (`sys::child::InMountNs`), while the scanner reads
//! `/proc/CHILD/mountinfo` and opens each nsfs mount as
//! `/proc/CHILD/root/PATH`. Closing the pipe ends the child. Repeats until
//! no new such namespace turns up. One fork per namespace, and only for
//! these, which are few.

use std::{
    collections::{HashMap, HashSet},
    ffi::CString,
    os::fd::{AsFd, BorrowedFd},
};

use super::{bindmounts, hierarchy, mounts};
use crate::{
    inventory::{Holder, Inventory},
    ns::NsType,
    stats::{Pin, PinKind, ScanStats},
    sys::{self, child::InMountNs},
    text::RawText,
};

/// Reads the nsfs mounts of every mount namespace in `inv` that is not
/// among `entered` (those read through a process of theirs).
pub fn read_unentered(
    root: BorrowedFd<'_>,
    inv: &mut Inventory,
    stats: &mut ScanStats,
    entered: &HashMap<u64, (Vec<u32>, Vec<u32>)>,
    extra: &mut hierarchy::Extra,
) {
    let mut done: HashSet<u64> = entered.keys().copied().collect();
    let mut buf = Vec::new();
    loop {
        let todo: Vec<u64> = inv
            .iter()
            .filter(|(k, _)| k.ty == NsType::Mnt && !done.contains(&k.inum))
            .map(|(k, _)| k.inum)
            .collect();
        if todo.is_empty() {
            return;
        }
        for mnt in todo {
            done.insert(mnt);
            let fd = match extra.fds.get(&(NsType::Mnt, mnt)) {
                Some(fd) => fd.try_clone().ok(),
                None => hierarchy::open_via_holders(root, inv, NsType::Mnt, mnt, extra),
            };
            let Some(fd) = fd else {
                stats.mount_namespaces_unentered += 1;
                continue;
            };
            let child = match InMountNs::enter(fd.as_fd()) {
                Ok(c) => c,
                Err(e) => {
                    log::debug!("entering mount namespace {mnt}: {e}");
                    stats.mount_namespaces_unentered += 1;
                    continue;
                }
            };
            let name = CString::new(format!("{}/mountinfo", child.pid())).expect("no NUL");
            if sys::read_at(root, &name, &mut buf).is_err() {
                stats.mount_namespaces_unentered += 1;
                continue;
            }
            stats.mount_namespaces_entered += 1;
            let parsed = mounts::parse(&buf);
            stats.mountinfo_bad_lines += parsed.bad_lines;
            for path in &parsed.procs {
                if bindmounts::proc_mount_is_empty(root, child.pid(), path) {
                    let pin = Pin::new(PinKind::EmptyPidnsProc, 0, None, Some(mnt), path);
                    stats.pins.push(pin);
                }
            }
            for m in parsed.mounts {
                let ns = inv.entry(m.ty, m.inum, None).1;
                ns.holders.insert(Holder::BindMount {
                    path: RawText::new(&m.path),
                    mnt_ns: mnt,
                });
                // The child is gone by the time ids and owners are read:
                // open the namespace now, through the child's root.
                if extra.fds.contains_key(&(m.ty, m.inum)) {
                    continue;
                }
                let path = hierarchy::via_root(child.pid(), &m.path);
                let opened = CString::new(path)
                    .ok()
                    .and_then(|p| sys::open_read(root, &p).ok())
                    .filter(|fd| hierarchy::is_namespace(fd.as_fd(), m.ty, m.inum));
                if let Some(fd) = opened {
                    extra.fds.insert((m.ty, m.inum), fd);
                }
            }
        }
    }
}
