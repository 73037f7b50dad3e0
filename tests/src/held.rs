//! A held state with one namespace of every kind the scan finds, each
//! held by nothing else: for the tests that check that listns under the
//! shipped privileges (the unit's, the DaemonSet's, systemd's) lists what
//! root lists (tests/tests/packaging/coverage.rs, and `listns-held` in the
//! systemd guest of `cargo xtask integration-test systemd`). The types and
//! inodes come from the kernel (fstat of an nsfs fd in the process that
//! made each namespace), never from listns.

use std::{
    collections::BTreeSet,
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use serde_json::Value;

use crate::{
    NetnsGuard,
    kernel::{recv_fd, send_fd},
};

/// The uid of the "other user" whose processes hold namespaces.
const OTHER_UID: u32 = 4321;

/// (type, inode) of every namespace in `listns -J` output.
pub fn json_keys(json: &[u8]) -> BTreeSet<(String, u64)> {
    let v: Value = serde_json::from_slice(json).expect("listns -J prints JSON");
    v["namespaces"]
        .as_array()
        .expect("a namespaces array")
        .iter()
        .filter_map(|n| Some((n["type"].as_str()?.to_string(), n["ns"].as_u64()?)))
        .collect()
}

/// One namespace of the held state: what holds it, its type and inode
/// (from the kernel: fstat of an nsfs fd in the process that made it).
#[derive(Clone, Debug)]
pub struct Case {
    pub what: &'static str,
    pub ty: &'static str,
    pub ns: u64,
}

/// The held state: every kind of holder the scan looks at, each holding a
/// namespace that nothing else holds. Dropping it releases them all.
pub struct Held {
    pub cases: Vec<Case>,
    /// Children that hold namespaces until killed.
    children: Vec<i32>,
    /// Our own fds that hold namespaces (and the children's sockets).
    _fds: Vec<OwnedFd>,
    /// The thread in its own UTS namespace ends when this is dropped.
    _thread: std::sync::mpsc::Sender<()>,
    _named: NetnsGuard,
    _dir: tempfile::TempDir,
}

impl Drop for Held {
    fn drop(&mut self) {
        for &pid in &self.children {
            // SAFETY: kill and reap our own children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// The inode of the nsfs file at `path`, raw (callable in a forked child).
///
/// # Safety
/// Only raw syscalls: callable after fork.
unsafe fn ino_of(path: &std::ffi::CStr) -> u64 {
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let mut st: libc::stat = std::mem::zeroed();
        let ok = fd >= 0 && libc::fstat(fd, &mut st) == 0;
        libc::close(fd);
        if ok { st.st_ino } else { 0 }
    }
}

/// Forks a child that runs `body` (raw syscalls only) with one end of a
/// socketpair; `body` returns the exit code, or never returns (it blocks
/// on the socket until the parent goes). Returns the child's pid and our
/// end.
fn fork_child(body: impl FnOnce(i32) -> i32) -> (i32, OwnedFd) {
    let mut sv = [0i32; 2];
    // SAFETY: a socketpair into a valid array.
    assert_eq!(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        },
        0
    );
    // SAFETY: the child makes raw syscalls only, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            libc::close(sv[0]);
            libc::_exit(body(sv[1]));
        }
    }
    // SAFETY: our end, owned from here on.
    unsafe {
        libc::close(sv[1]);
        (pid, OwnedFd::from_raw_fd(sv[0]))
    }
}

/// Reads the u64 a child wrote (raw).
fn read_u64(sock: &OwnedFd) -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: reads at most 8 bytes into b.
    let n = unsafe { libc::read(sock.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
    assert_eq!(n, 8, "the child did not say its namespace's inode");
    u64::from_ne_bytes(b)
}

/// Writes `v` to `sock` (raw: in a child).
unsafe fn write_u64(sock: i32, v: u64) -> bool {
    unsafe { libc::write(sock, (&raw const v).cast(), 8) == 8 }
}

/// In a child: becomes `OTHER_UID`, says `ino`, and blocks until the
/// parent closes its end or kills it.
unsafe fn say_and_wait(sock: i32, ino: u64) -> i32 {
    unsafe {
        if libc::setresgid(OTHER_UID, OTHER_UID, OTHER_UID) != 0
            || libc::setresuid(OTHER_UID, OTHER_UID, OTHER_UID) != 0
            || !write_u64(sock, ino)
        {
            return 3;
        }
        let mut b = [0u8; 1];
        libc::read(sock, b.as_mut_ptr().cast(), 1);
        0
    }
}

/// `/dev/net/tun`'s TUNSETIFF = _IOW('T', 202, int).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

impl Held {
    /// Builds the held state (root); `name` is its /run/netns entry.
    pub fn build(name: &'static str) -> Held {
        let mut cases = Vec::new();
        let mut children = Vec::new();
        let mut fds = Vec::new();

        // /run/netns (ip netns add): a bind mount in our mount namespace.
        let named = NetnsGuard::new(name);
        let ino = crate::ns_inode(format!("/run/netns/{name}"));
        cases.push(Case {
            what: "/run/netns (ip netns)",
            ty: "net",
            ns: ino,
        });

        // A netns bind-mounted inside a mount namespace that no process is
        // in: a child makes both, mounts the netns on a file of a tmpfs of
        // its own, sends its mount namespace to us (held by our fd from
        // then on) and exits. The scan must enter that mount namespace.
        let dir = tempfile::tempdir().unwrap();
        let tmpfs = CString::new(dir.path().to_str().unwrap()).unwrap();
        let file = CString::new(format!("{}/net", dir.path().display())).unwrap();
        let (pid, sock) = fork_child(|s| unsafe {
            let null = std::ptr::null();
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    null,
                    c"/".as_ptr(),
                    null,
                    libc::MS_REC | libc::MS_PRIVATE,
                    null.cast(),
                ) != 0
                || libc::mount(
                    c"none".as_ptr(),
                    tmpfs.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    null.cast(),
                ) != 0
            {
                return 1;
            }
            libc::close(libc::open(
                file.as_ptr(),
                libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC,
                0o600,
            ));
            if libc::unshare(libc::CLONE_NEWNET) != 0
                || libc::mount(
                    c"/proc/self/ns/net".as_ptr(),
                    file.as_ptr(),
                    null,
                    libc::MS_BIND,
                    null.cast(),
                ) != 0
            {
                return 2;
            }
            let mnt = libc::open(c"/proc/self/ns/mnt".as_ptr(), libc::O_RDONLY);
            let ino = ino_of(c"/proc/self/ns/net");
            if !send_fd(s, mnt) || !write_u64(s, ino) {
                return 3;
            }
            0
        });
        let mnt = recv_fd(sock.as_raw_fd()).expect("the mount namespace's fd");
        let ino = read_u64(&sock);
        reap(pid);
        cases.push(Case {
            what: "netns bind-mounted in a mount ns no process is in",
            ty: "net",
            ns: ino,
        });
        cases.push(Case {
            what: "mount ns held by an fd",
            ty: "mnt",
            ns: crate::ns_inode(format!("/proc/self/fd/{}", mnt.as_raw_fd())),
        });
        fds.push(mnt);

        // An IPC namespace held by one fd of ours only.
        let (pid, sock) = fork_child(|s| unsafe {
            if libc::unshare(libc::CLONE_NEWIPC) != 0 {
                return 1;
            }
            let fd = libc::open(c"/proc/self/ns/ipc".as_ptr(), libc::O_RDONLY);
            if !send_fd(s, fd) || !write_u64(s, ino_of(c"/proc/self/ns/ipc")) {
                return 3;
            }
            0
        });
        let fd = recv_fd(sock.as_raw_fd()).expect("the ipc namespace's fd");
        cases.push(Case {
            what: "ipc ns held by an fd",
            ty: "ipc",
            ns: read_u64(&sock),
        });
        reap(pid);
        fds.push(fd);

        // Another user's process holding a netns through a socket only,
        // one holding a netns through a tun device only, and one in a UTS
        // namespace of its own.
        type Body = fn(i32) -> i32;
        let bodies: [(&str, &str, Body); 3] = [
            ("netns held by another user's socket", "net", |s| unsafe {
                let orig = libc::open(
                    c"/proc/self/ns/net".as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                );
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return 1;
                }
                let ino = ino_of(c"/proc/self/ns/net");
                libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                if libc::setns(orig, libc::CLONE_NEWNET) != 0 {
                    return 2;
                }
                say_and_wait(s, ino)
            }),
            ("netns held by another user's tun fd", "net", |s| unsafe {
                let orig = libc::open(
                    c"/proc/self/ns/net".as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                );
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return 1;
                }
                let ino = ino_of(c"/proc/self/ns/net");
                let tun = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR);
                let mut ifr: libc::ifreq = std::mem::zeroed();
                for (i, b) in b"lcov%d".iter().enumerate() {
                    ifr.ifr_name[i] = *b as libc::c_char;
                }
                ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
                if tun < 0 || libc::ioctl(tun, TUNSETIFF, &ifr) != 0 {
                    return 4;
                }
                if libc::setns(orig, libc::CLONE_NEWNET) != 0 {
                    return 2;
                }
                say_and_wait(s, ino)
            }),
            ("uts ns of another user's process", "uts", |s| unsafe {
                if libc::unshare(libc::CLONE_NEWUTS) != 0 {
                    return 1;
                }
                say_and_wait(s, ino_of(c"/proc/self/ns/uts"))
            }),
        ];
        // A kernel whose tun driver is a module that is not loaded (the
        // systemd guest has no modules) has no tun case.
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun");
        for (what, ty, body) in bodies {
            if what.contains("tun")
                && let Err(e) = &tun
            {
                eprintln!("held: no tun-held netns: /dev/net/tun: {e}");
                continue;
            }
            let (pid, sock) = fork_child(body);
            children.push(pid);
            cases.push(Case {
                what,
                ty,
                ns: read_u64(&sock),
            });
            fds.push(sock);
        }

        // A thread of ours in a UTS namespace of its own.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (itx, irx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS)
                .expect("unshare(CLONE_NEWUTS)");
            itx.send(crate::ns_inode("/proc/thread-self/ns/uts"))
                .unwrap();
            let _ = rx.recv();
        });
        let ino = irx
            .recv_timeout(Duration::from_secs(5))
            .expect("the thread's uts");
        cases.push(Case {
            what: "uts ns of a thread",
            ty: "uts",
            ns: ino,
        });

        Held {
            cases,
            children,
            _fds: fds,
            _thread: tx,
            _named: named,
            _dir: dir,
        }
    }
}

/// Waits for a child that must have exited 0.
fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "a child that builds the held state failed: {status:#x}"
    );
}

/// The held cases that `seen` lacks, by name.
pub fn lost(cases: &[Case], seen: &BTreeSet<(String, u64)>) -> Vec<&'static str> {
    cases
        .iter()
        .filter(|c| !seen.contains(&(c.ty.to_string(), c.ns)))
        .map(|c| c.what)
        .collect()
}
