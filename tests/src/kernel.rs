//! What the kernel under test can do and what is loaded in it, found out
//! with raw syscalls and procfs: never with listns's own code, which is
//! what the tests check (a test must not take its "kernel has ids" branch
//! because the code under test says so).

use std::{
    collections::BTreeSet,
    fs::File,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

/// `NS_GET_ID` = `_IOR(0xb7, 0xd, __u64)` (include/uapi/linux/nsfs.h).
pub const NS_GET_ID: libc::c_ulong = (2 << 30) | (8 << 16) | (0xb7 << 8) | 0xd;

/// The 64-bit id of the namespace behind an nsfs fd (6.18+), by raw ioctl.
pub fn ns_id_of_fd(fd: &impl AsRawFd) -> Option<u64> {
    let mut id: u64 = 0;
    // SAFETY: NS_GET_ID writes one u64 through the pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_ID, &mut id) };
    (r == 0 && id != 0).then_some(id)
}

/// The id of the namespace at an nsfs path (`/proc/PID/ns/net`, a bind mount).
pub fn ns_id_of_path(path: &str) -> Option<u64> {
    File::open(path).ok().and_then(|f| ns_id_of_fd(&f))
}

/// `NS_GET_PARENT` = `_IO(0xb7, 0x2)` (include/uapi/linux/nsfs.h).
pub const NS_GET_PARENT: libc::c_ulong = (0xb7 << 8) | 0x2;

/// The inode of the parent of the pid or user namespace at an nsfs path,
/// by raw ioctl and fstat; None when it has none or it is out of reach.
pub fn ns_parent_inode(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let ns = File::open(path).ok()?;
    // SAFETY: NS_GET_PARENT takes no argument and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_PARENT) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new fd that we own.
    let parent = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    parent.metadata().ok().map(|m| m.ino())
}

/// Whether this kernel gives namespaces 64-bit ids: `ioctl(NS_GET_ID)` on
/// our own netns.
pub fn kernel_has_ns_ids() -> bool {
    ns_id_of_path("/proc/self/ns/net").is_some()
}

/// Whether a kprobe can be put on `symbol` here: the kernel has the perf
/// kprobe PMU (CONFIG_KPROBE_EVENTS; aya attaches through it) and a
/// function of that name in /proc/kallsyms.
pub fn kernel_can_kprobe(symbol: &str) -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        && std::fs::read_to_string("/proc/kallsyms").is_ok_and(|syms| {
            syms.lines().any(|l| {
                let mut f = l.split_whitespace().skip(1);
                matches!(f.next(), Some("T" | "t")) && f.next() == Some(symbol)
            })
        })
}

/// Whether listns must forget dead namespaces with its kprobe on
/// `proc_free_inum` here, and can: a kernel without namespace ids (keyed
/// by inode) that can kprobe that function.
pub fn kernel_forgets_on_free() -> bool {
    !kernel_has_ns_ids() && kernel_can_kprobe("proc_free_inum")
}

/// Whether nsfs file handles work here (the probe lives in listns-skip,
/// where listns-user's unit tests can use it too).
pub use listns_skip::kernel_has_nsfs_handles;

/// The ids of the BPF programs that process `pid` holds through its fds
/// (program fds and link fds both show `prog_id:` in their fdinfo);
/// `"self"` for this process.
pub fn prog_ids_of(pid: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return out;
    };
    for fd in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(fd.path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some(id) = line.strip_prefix("prog_id:")
                && let Ok(id) = id.trim().parse()
            {
                out.insert(id);
            }
        }
    }
    out
}

/// The BPF programs held by every process called `listns` (by their ids,
/// from each one's fdinfo): for tests that start listns where its pid is
/// not theirs to know (in a container, under systemd).
pub fn listns_prog_ids() -> BTreeSet<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "listns")
        })
        .flat_map(|pid| prog_ids_of(&pid))
        .collect()
}

/// The `max_entries` of every BPF map named `name` that process `pid`
/// holds: the map ids from its fdinfo, looked up in the kernel.
pub fn map_sizes_of(pid: &str, name: &str) -> Vec<u32> {
    let mut ids = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) {
        for fd in dir.flatten() {
            let text = std::fs::read_to_string(fd.path()).unwrap_or_default();
            ids.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix("map_id:"))
                    .filter_map(|v| v.trim().parse::<u32>().ok()),
            );
        }
    }
    aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter(|m| ids.contains(&m.id()) && m.name_as_str() == Some(name))
        .map(|m| m.max_entries())
        .collect()
}

/// Which of `ids` the kernel still has loaded.
pub fn still_loaded(ids: &BTreeSet<u32>) -> BTreeSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|p| p.id())
        .filter(|id| ids.contains(id))
        .collect()
}

/// Waits (up to `timeout`) until none of `ids` is loaded: the kernel frees
/// a program asynchronously, after an RCU grace period, once its last fd
/// and link are closed. Returns those still loaded at the deadline.
pub fn wait_unloaded(ids: &BTreeSet<u32>, timeout: Duration) -> BTreeSet<u32> {
    let end = std::time::Instant::now() + timeout;
    loop {
        let left = still_loaded(ids);
        if left.is_empty() || std::time::Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `listns(2)`: syscall 470 on x86_64 (Linux 6.19+).
pub const SYS_LISTNS: libc::c_long = 470;

/// One raw `listns(2)` call for namespaces of `ns_type` (a CLONE_NEW* flag,
/// 0 for all) after id `last`: how many ids it wrote, or the errno.
pub fn listns_raw(ns_type: u32, last: u64, ids: &mut [u64]) -> Result<usize, i32> {
    // struct ns_id_req, NS_ID_REQ_SIZE_VER0: size, spare, ns_id, ns_type,
    // spare2, user_ns_id.
    #[repr(C)]
    struct Req(u32, u32, u64, u32, u32, u64);
    let req = Req(32, 0, last, ns_type, 0, 0);
    // SAFETY: req is a valid 32-byte request; ids has room for ids.len().
    let r = unsafe {
        libc::syscall(
            SYS_LISTNS,
            &raw const req,
            ids.as_mut_ptr(),
            ids.len(),
            0u32,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as usize)
    }
}

/// Every id `listns(2)` lists for `ns_type`, in pages of 1000 (ENOENT after
/// a full page ends the listing); the errno when the first call fails.
pub fn listns_all_raw(ns_type: u32) -> Result<Vec<u64>, i32> {
    let mut out = Vec::new();
    let mut buf = vec![0u64; 1000];
    loop {
        let last = out.last().copied().unwrap_or(0);
        match listns_raw(ns_type, last, &mut buf) {
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    return Ok(out);
                }
            }
            Err(libc::ENOENT) if last != 0 => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// The running kernel's (major, minor) (the probe lives in listns-skip).
pub use listns_skip::kernel_version;

/// A network namespace held only by an nsfs fd in flight: a forked child
/// unshares it, sends its `/proc/self/ns/net` over one end of a unix
/// socketpair and exits without it being received. Returns the child's pid
/// and the two ends (`a` sent on, `b` to receive on); closing both
/// releases the namespace.
pub fn netns_in_flight() -> (i32, i32, i32) {
    let mut sv = [0i32; 2];
    // SAFETY: a socketpair into a valid array of two fds.
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) },
        0
    );
    let (a, b) = (sv[0], sv[1]);
    // SAFETY: the child makes raw syscalls only, then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                libc::_exit(1);
            }
            let fd = libc::open(c"/proc/self/ns/net".as_ptr(), libc::O_RDONLY);
            libc::_exit(if send_fd(a, fd) { 0 } else { 2 });
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    (pid, a, b)
}

/// Sends `fd` over the unix socket `sock` with SCM_RIGHTS (one data byte),
/// with raw syscalls only: callable in a forked child.
///
/// # Safety
/// `sock` and `fd` must be open descriptors.
pub unsafe fn send_fd(sock: i32, fd: i32) -> bool {
    unsafe {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
        libc::sendmsg(sock, &msg, 0) == 1
    }
}

/// Receives one fd sent by [`send_fd`] on `sock`; None when none came.
pub fn recv_fd(sock: i32) -> Option<OwnedFd> {
    // SAFETY: a msghdr over our own buffers; the fd received is ours.
    unsafe {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) != 1 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// Puts an fd of the file at `path` in flight: opened, sent over one end of
/// a new unix socketpair and closed here, never received. Returns both ends;
/// dropping them drops the last reference the fd held. A namespace opened
/// this way is then held by nothing a scan can see.
pub fn in_flight(path: &str) -> (OwnedFd, OwnedFd) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    let mut sv = [0i32; 2];
    // SAFETY: a socketpair into a valid array of two fds, owned at once.
    let (a, b) = unsafe {
        assert_eq!(
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()),
            0
        );
        (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1]))
    };
    // SAFETY: both fds are open.
    assert!(unsafe { send_fd(a.as_raw_fd(), file.as_raw_fd()) });
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_get_id_is_the_uapi_number() {
        // _IOR(0xb7, 0xd, __u64) as <linux/nsfs.h> expands it on x86_64.
        assert_eq!(NS_GET_ID, 0x8008_b70d);
    }

    #[test]
    fn own_fds_hold_no_programs() {
        assert!(prog_ids_of("self").is_empty());
    }
}
