//! Kernel features that decide whether a test can run, found out with raw
//! system calls.

use std::{
    fs::File,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
};

/// `struct file_handle` with room for an nsfs handle (16 bytes: u64 ns id,
/// u32 CLONE_NEW* type, u32 inode).
#[repr(C)]
struct NsfsHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; 16],
}

/// Whether nsfs file handles work here (Linux 6.18+, and the caller may
/// open them: CAP_SYS_ADMIN in the initial namespaces): `name_to_handle_at`
/// on our own netns, then `open_by_handle_at` of that handle must give back
/// an fd on the same inode.
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
    match (ns.metadata(), reopened.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// The running kernel's (major, minor), from uname(2); (0, 0) if unknown.
pub fn kernel_version() -> (u32, u32) {
    // SAFETY: utsname is plain bytes; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid utsname to write to.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (0, 0);
    }
    // SAFETY: the kernel NUL-terminates release.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// The 64-bit id of the namespace at `path` (`NS_GET_ID`, Linux 6.18+),
/// asked with a raw ioctl: an oracle for tests of listns's own ioctls.
/// None where the kernel has no namespace ids.
pub fn ns_id(path: &str) -> Option<u64> {
    // _IOR(0xb7, 0xd, __u64) from <linux/nsfs.h>, written out.
    const NS_GET_ID: libc::c_ulong = 0x8008_b70d;
    let f = File::open(path).ok()?;
    let mut id: u64 = 0;
    // SAFETY: NS_GET_ID writes one u64 through the pointer.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_ID, &mut id) };
    (r == 0).then_some(id)
}
