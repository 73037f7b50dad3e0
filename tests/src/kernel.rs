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

/// Whether this kernel gives namespaces 64-bit ids: `ioctl(NS_GET_ID)` on
/// our own netns.
pub fn kernel_has_ns_ids() -> bool {
    ns_id_of_path("/proc/self/ns/net").is_some()
}

#[repr(C)]
struct NsfsHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; 16],
}

/// Whether nsfs file handles work here: `name_to_handle_at` on our own
/// netns, then `open_by_handle_at` of that handle must give back an fd on
/// the same inode.
pub fn kernel_has_nsfs_handles() -> bool {
    let Ok(ns) = File::open("/proc/self/ns/net") else {
        return false;
    };
    let mut fh = NsfsHandle {
        handle_bytes: 16,
        handle_type: 0,
        f_handle: [0; 16],
    };
    let mut mnt_id = 0;
    // SAFETY: fh has room for the 16 bytes handle_bytes announces; the
    // empty path is used with AT_EMPTY_PATH.
    let r = unsafe {
        libc::name_to_handle_at(
            ns.as_raw_fd(),
            c"".as_ptr(),
            (&raw mut fh).cast(),
            &mut mnt_id,
            libc::AT_EMPTY_PATH,
        )
    };
    if r != 0 {
        return false;
    }
    // SAFETY: fh is the complete handle the kernel just wrote.
    let fd = unsafe {
        libc::open_by_handle_at(
            ns.as_raw_fd(),
            (&raw mut fh).cast(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a new fd that we own.
    let reopened = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    use std::os::unix::fs::MetadataExt;
    match (ns.metadata(), reopened.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

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
            if let Some(id) = line.strip_prefix("prog_id:") {
                if let Ok(id) = id.trim().parse() {
                    out.insert(id);
                }
            }
        }
    }
    out
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
