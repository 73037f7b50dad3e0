//! Step 3b of a scan: mount namespaces that no process is in. One held only
//! by a bind mount or an fd has mounts of its own, and nsfs bind mounts
//! among them hold further namespaces (possibly more such mount
//! namespaces) that no process's mountinfo shows.
//!
//! No /proc file lists the mounts of a namespace without a task in it, so
//! a short-lived child enters it: a forked child (single-threaded, so
//! `setns(CLONE_NEWNS)` is allowed; a thread of the scanner is not) joins
//! the namespace and waits on a pipe, while the scanner reads
//! `/proc/CHILD/mountinfo` and opens each nsfs mount as
//! `/proc/CHILD/root/PATH`. Closing the pipe ends the child. Repeats until
//! no new such namespace turns up. One fork per namespace, and only for
//! these, which are few.

use std::{
    collections::{HashMap, HashSet},
    ffi::CString,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

use super::{hierarchy, mounts, sys};
use crate::{
    inventory::{Holder, Inventory},
    ns::NsType,
    stats::ScanStats,
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
            let child = match Inside::enter(fd.as_fd()) {
                Ok(c) => c,
                Err(e) => {
                    log::debug!("entering mount namespace {mnt}: {e}");
                    stats.mount_namespaces_unentered += 1;
                    continue;
                }
            };
            let name = CString::new(format!("{}/mountinfo", child.pid)).expect("no NUL");
            if sys::read_at(root, &name, &mut buf).is_err() {
                stats.mount_namespaces_unentered += 1;
                continue;
            }
            stats.mount_namespaces_entered += 1;
            let parsed = mounts::parse(&buf);
            stats.mountinfo_bad_lines += parsed.bad_lines;
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
                let path = hierarchy::via_root(child.pid, &m.path);
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

/// A forked child inside a mount namespace, until dropped.
struct Inside {
    pid: u32,
    /// Closing it ends the child.
    go: Option<OwnedFd>,
}

impl Inside {
    /// Forks a child that joins the mount namespace `ns` and waits.
    fn enter(ns: BorrowedFd<'_>) -> std::io::Result<Inside> {
        let (ready_r, ready_w) = pipe()?;
        let (go_r, go_w) = pipe()?;
        // SAFETY: the child makes raw syscalls on fds opened before the
        // fork and then _exits; it touches no lock and allocates nothing.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            unsafe {
                libc::close(ready_r.as_raw_fd());
                libc::close(go_w.as_raw_fd());
                let errno: i32 = if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) == 0 {
                    0
                } else {
                    *libc::__errno_location()
                };
                libc::write(ready_w.as_raw_fd(), (&raw const errno).cast(), 4);
                if errno == 0 {
                    let mut byte = 0u8;
                    // Returns at EOF: the scanner closed its end (or died).
                    libc::read(go_r.as_raw_fd(), (&raw mut byte).cast(), 1);
                }
                libc::_exit(0);
            }
        }
        drop(ready_w);
        drop(go_r);
        let mut child = Inside {
            pid: pid as u32,
            go: Some(go_w),
        };
        let mut errno = [0u8; 4];
        // SAFETY: reads into a local buffer.
        let n = unsafe { libc::read(ready_r.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n != 4 {
            child.go.take();
            return Err(std::io::Error::other("the child ended before joining"));
        }
        match i32::from_ne_bytes(errno) {
            0 => Ok(child),
            e => Err(std::io::Error::from_raw_os_error(e)),
        }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        self.go.take();
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_joins_a_mount_namespace_and_ends_with_the_guard() {
        // Our own mount namespace: allowed for root; otherwise setns fails
        // and says so (EPERM), which is what callers count.
        let own = std::fs::File::open("/proc/self/ns/mnt").unwrap();
        match Inside::enter(own.as_fd()) {
            Ok(child) => {
                let pid = child.pid;
                let link = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
                assert_eq!(link, std::fs::read_link("/proc/self/ns/mnt").unwrap());
                drop(child);
                assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
            }
            Err(e) => {
                assert!(
                    !nix::unistd::geteuid().is_root(),
                    "root could not join: {e}"
                );
                assert_eq!(e.raw_os_error(), Some(libc::EPERM));
            }
        }
    }
}
