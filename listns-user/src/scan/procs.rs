//! Processes and threads: `/proc/PID/stat`, `/proc/PID/ns/*`,
//! `/proc/PID/task/TID/ns/*` and `/proc/PID/fd/*`, all read with `*at`
//! calls relative to open directory fds (readlinkat on the links is half the
//! cost of stat on them).
//!
//! Reading one process yields a [`ProcRead`]; nothing here touches the
//! inventory, so the work splits across threads and merges afterwards.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;

use super::fdinfo;
use crate::ns::{self, NsType};
use crate::stats::PinKind;
use crate::sys::{self, NumName};

/// The links under `ns/`, in the order slots are stored.
pub const LINKS: [(&str, &std::ffi::CStr, NsType); 10] = [
    ("mnt", c"mnt", NsType::Mnt),
    ("net", c"net", NsType::Net),
    ("pid", c"pid", NsType::Pid),
    ("user", c"user", NsType::User),
    ("uts", c"uts", NsType::Uts),
    ("ipc", c"ipc", NsType::Ipc),
    ("cgroup", c"cgroup", NsType::Cgroup),
    ("time", c"time", NsType::Time),
    ("pid_for_children", c"pid_for_children", NsType::Pid),
    ("time_for_children", c"time_for_children", NsType::Time),
];
/// Index of the link each `*_for_children` slot shadows.
pub const FOR_CHILDREN_OF: [(usize, usize); 2] = [(8, 2), (9, 7)];

/// Inodes of a task's ns links; 0 where a link was missing or unreadable.
pub type Links = [u64; 10];

/// `PF_KTHREAD` in the flags field of `/proc/PID/stat`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Why something could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// It exited (or the fd closed) while we looked.
    Gone,
    /// EACCES/EPERM: not ours to read.
    Denied,
    /// Anything else (a malformed file, an odd errno).
    Other,
}

impl Failure {
    pub fn of(e: Errno) -> Failure {
        match e {
            Errno::ENOENT | Errno::ESRCH => Failure::Gone,
            Errno::EACCES | Errno::EPERM => Failure::Denied,
            _ => Failure::Other,
        }
    }
}

/// Fields of `/proc/PID/stat` the scan uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub comm: Vec<u8>,
    pub ppid: u32,
    pub flags: u64,
    pub threads: u32,
}

impl Stat {
    pub fn kthread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parses `/proc/PID/stat`; the comm is inside the first `(` and the last
/// `)` and may contain anything, spaces and parentheses included.
pub fn parse_stat(content: &[u8]) -> Option<Stat> {
    let open = content.iter().position(|&b| b == b'(')?;
    let close = content.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = content[open + 1..close].to_vec();
    let rest = std::str::from_utf8(content.get(close + 2..)?).ok()?;
    // After the comm: state(3) ppid(4) pgrp session tty_nr tpgid flags(9)
    // ... num_threads(20).
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(18).collect();
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        flags: fields.get(6)?.parse().ok()?,
        threads: fields.get(17)?.parse().ok()?,
    })
}

/// An nsfs fd, a socket fd, a tun/tap fd, an io_uring holding nsfs files
/// or an fd that pins what cannot be opened, seen in `/proc/PID/fd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdSeen {
    Ns {
        fd: i32,
        ty: NsType,
        inum: u64,
    },
    Socket {
        fd: i32,
        inode: u64,
        /// Its network namespace's inode where the scan read it (the
        /// iterator scan does; the /proc scan asks later: 0).
        net: u64,
    },
    Tun {
        fd: i32,
    },
    /// The namespaces among an io_uring's registered files.
    Ring {
        fd: i32,
        files: Vec<(NsType, u64)>,
    },
    /// An fd that pins a namespace no one can open; its link text.
    Pin {
        fd: i32,
        kind: PinKind,
        link: Vec<u8>,
    },
}

/// Everything read about one process.
#[derive(Clone, Debug, Default)]
pub struct ProcRead {
    pub pid: u32,
    pub uid: u32,
    /// Read eagerly only where asked (low pids, where kernel threads live,
    /// or every process); otherwise later, for the processes shown.
    pub stat: Option<Stat>,
    pub nthreads: u32,
    pub links: Links,
    /// Threads whose links differ from the leader's: (tid, their links).
    pub threads: Vec<(u32, Links)>,
    pub fds: Vec<FdSeen>,
    /// Links that could not be read (a missing link on an old kernel is not counted).
    pub links_failed: usize,
    pub threads_seen: usize,
    pub threads_failed: usize,
    pub fds_seen: usize,
    pub fds_failed: usize,
    /// The fd directory as a whole could not be listed.
    pub fd_dir_failed: Option<Failure>,
}

/// Reads one process; `Err` when it vanished or refused before anything
/// useful was read.
pub fn read_process(
    root: BorrowedFd<'_>,
    pid: u32,
    want_fds: bool,
    eager_stat: bool,
    buf: &mut Vec<u8>,
) -> Result<ProcRead, Failure> {
    let name = NumName::with_suffix(pid as u64, "/ns");
    // The one directory opened per process is `PID/ns`; the rest of
    // /proc/PID is reached through its `..`, without an open and a close
    // of /proc/PID itself. That stays on the same process: `..` of an open
    // directory is its dentry's d_parent (fs/namei.c follow_dotdot), the
    // /proc/PID whose inode holds this struct pid; a reused pid number gets
    // a new /proc/PID, and lookups under the old one answer ENOENT
    // (fs/proc/base.c proc_pident_lookup: get_proc_task() is NULL once the
    // task is gone).
    let nsdir = sys::open_path_dir(root, name.as_cstr()).map_err(Failure::of)?;
    let dir = nsdir.as_fd();
    // /proc/PID/task has 2 + (number of threads) links, and the owner of
    // the process: cheaper than having the kernel format /proc/PID/stat.
    let (uid, threads, stat) = match sys::fstatat(dir, c"../task") {
        Ok((uid, nlink)) if !eager_stat => (uid, nlink.saturating_sub(2) as u32, None),
        _ => {
            let (uid, _) = sys::fstatat(dir, c"..").map_err(Failure::of)?;
            sys::read_at(dir, c"../stat", buf).map_err(Failure::of)?;
            let stat = parse_stat(buf).ok_or(Failure::Other)?;
            (uid, stat.threads, Some(stat))
        }
    };
    let mut out = ProcRead {
        pid,
        uid,
        stat,
        nthreads: threads,
        ..Default::default()
    };

    let (links, failed, denied) = read_links(dir);
    if links.iter().all(|&l| l == 0) {
        // Nothing readable at all: a zombie, or not ours.
        return Err(if denied {
            Failure::Denied
        } else {
            Failure::Gone
        });
    }
    out.links = links;
    out.links_failed = failed;

    if out.nthreads > 1 {
        read_threads(dir, &mut out);
    }
    if want_fds && !out.stat.as_ref().is_some_and(Stat::kthread) {
        read_fds(dir, &mut out);
    }
    Ok(out)
}

/// Reads the ten ns links under an open `ns` directory. Returns the inodes,
/// how many could not be read, and whether any refusal was EACCES.
fn read_links(nsdir: BorrowedFd<'_>) -> (Links, usize, bool) {
    let mut links = [0u64; 10];
    let mut failed = 0;
    let mut denied = false;
    let mut buf = [0u8; 64];
    for (i, (_, cname, ty)) in LINKS.iter().enumerate() {
        match sys::readlink_at(nsdir, cname, &mut buf) {
            Ok(text) => match ns::parse_link(text) {
                Some((t, inum)) if t == *ty => links[i] = inum,
                _ => failed += 1,
            },
            // Old kernels lack time/cgroup links: not a failure.
            Err(Errno::ENOENT) => {}
            Err(e) => {
                denied |= matches!(e, Errno::EACCES | Errno::EPERM);
                failed += 1;
            }
        }
    }
    (links, failed, denied)
}

/// `nsdir` is the process's open `ns` directory.
fn read_threads(nsdir: BorrowedFd<'_>, out: &mut ProcRead) {
    let Ok(taskdir) = sys::open_dir(nsdir, c"../task") else {
        out.threads_failed += 1;
        return;
    };
    let Ok(tids) = sys::list_numbers(taskdir.as_fd()) else {
        out.threads_failed += 1;
        return;
    };
    for tid in tids {
        if tid == out.pid {
            continue;
        }
        out.threads_seen += 1;
        let name = NumName::with_suffix(tid as u64, "/ns");
        let nsdir = sys::open_path_dir(taskdir.as_fd(), name.as_cstr());
        let Ok(nsdir) = nsdir else {
            out.threads_failed += 1;
            continue;
        };
        let (links, failed, _) = read_links(nsdir.as_fd());
        if failed == LINKS.len() {
            out.threads_failed += 1;
            continue;
        }
        if links.iter().zip(&out.links).any(|(t, l)| *t != 0 && t != l) {
            out.threads.push((tid, links));
        }
    }
}

/// `nsdir` is the process's open `ns` directory.
fn read_fds(nsdir: BorrowedFd<'_>, out: &mut ProcRead) {
    let fddir = sys::open_dir(nsdir, c"../fd");
    let listed = fddir
        .as_ref()
        .map_err(|e| *e)
        .and_then(|d| sys::list_numbers(d.as_fd()).map(|f| (d, f)));
    let (fddir, fds) = match listed {
        Ok(x) => x,
        Err(e) => {
            out.fd_dir_failed = Some(Failure::of(e));
            return;
        }
    };
    let mut buf = [0u8; 256];
    for fd in fds {
        out.fds_seen += 1;
        let name = NumName::new(fd as u64);
        match sys::readlink_at(fddir.as_fd(), name.as_cstr(), &mut buf) {
            Ok(text) => out.fds.extend(classify_fd(fddir.as_fd(), fd, text)),
            // Closed between listing and reading: nothing held.
            Err(Errno::ENOENT) => {}
            Err(_) => out.fds_failed += 1,
        }
    }
}

/// What fd `fd` of the open `/proc/PID/fd` directory `fddir` holds, from
/// its link `text`: a namespace, a socket, a tun/tap device, a ring or a
/// pin; `None` for everything else.
pub fn classify_fd(fddir: BorrowedFd<'_>, fd: u32, text: &[u8]) -> Option<FdSeen> {
    if let Some(inode) = text
        .strip_prefix(b"socket:[")
        .and_then(|r| r.strip_suffix(b"]"))
    {
        let inode = std::str::from_utf8(inode).ok()?.parse().ok()?;
        return Some(FdSeen::Socket {
            fd: fd as i32,
            inode,
            net: 0,
        });
    }
    if text == b"/dev/net/tun" {
        return Some(FdSeen::Tun { fd: fd as i32 });
    }
    if let Some(kind) = fdinfo::classify(text) {
        return read_fdinfo(fddir, fd, kind, text.to_vec());
    }
    if text.ends_with(b"]")
        && let Some((ty, inum)) = ns::parse_link(text)
    {
        return Some(FdSeen::Ns {
            fd: fd as i32,
            ty,
            inum,
        });
    }
    if maybe_nsfs_path(text) {
        let name = NumName::new(fd as u64);
        let (ty, inum) = reopen_ns(fddir, name.as_cstr())?;
        return Some(FdSeen::Ns {
            fd: fd as i32,
            ty,
            inum,
        });
    }
    None
}

/// What an io_uring, pidfd or /proc fd pins, from its fdinfo where needed.
fn read_fdinfo(
    fddir: BorrowedFd<'_>,
    fd: u32,
    kind: fdinfo::Kind,
    link: Vec<u8>,
) -> Option<FdSeen> {
    let fd = fd as i32;
    let info = || {
        let name = std::ffi::CString::new(format!("../fdinfo/{fd}")).ok()?;
        let mut buf = Vec::new();
        sys::read_at(fddir, &name, &mut buf).ok().map(|_| buf)
    };
    match kind {
        fdinfo::Kind::Ring => {
            let files = fdinfo::ring_files(&info()?);
            (!files.is_empty()).then_some(FdSeen::Ring { fd, files })
        }
        fdinfo::Kind::Pidfd => fdinfo::pidfd_exited(&info()?).then_some(FdSeen::Pin {
            fd,
            kind: PinKind::DeadPidfd,
            link,
        }),
        fdinfo::Kind::Pin(kind) => Some(FdSeen::Pin { fd, kind, link }),
    }
}

/// An nsfs file opened through a bind mount shows the mount's path, not
/// `net:[...]`: `/run/netns/NAME` while mounted, and `/` once the mount is
/// detached (`ip netns delete` does that while the fd lives on). Those few
/// paths are reopened and asked for their namespace type; other paths are
/// not, to keep the scan cheap.
fn maybe_nsfs_path(text: &[u8]) -> bool {
    text == b"/" || text.starts_with(b"/run/netns/") || text.starts_with(b"/var/run/netns/")
}

/// Reopens an fd through its magic link; `Some` when it is a namespace.
pub fn reopen_ns(fddir: BorrowedFd<'_>, name: &std::ffi::CStr) -> Option<(NsType, u64)> {
    let file = sys::open_read(fddir, name).ok()?;
    let ty = ns::get_type(file.as_fd())?;
    let (inum, _) = sys::fstat(file.as_fd()).ok()?;
    Some((ty, inum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let s =
            parse_stat(b"42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 3 0 100 0 0")
                .unwrap();
        assert_eq!(s.comm, b"a) b (c)");
        assert_eq!(s.ppid, 7);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.threads, 3);
        assert!(!s.kthread());
        let k = parse_stat(b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0")
            .unwrap();
        assert!(k.kthread());
        assert_eq!(parse_stat(b"2 (x) S 0"), None);
        assert_eq!(parse_stat(b"garbage"), None);
    }
}
