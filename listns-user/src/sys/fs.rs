//! Files and directories relative to an open directory fd, for the scan's
//! hot loop: into caller-owned buffers, so that reading one process costs
//! a handful of syscalls, no path building and no allocation. Errors come
//! back as `Errno` so callers can tell a process that vanished
//! (ENOENT/ESRCH) from one they may not read (EACCES/EPERM).

use std::{
    ffi::CStr,
    mem::MaybeUninit,
    os::fd::{BorrowedFd, OwnedFd},
};

use nix::errno::Errno;
use rustix::fs::{AtFlags, Mode, OFlags, RawDir};

/// rustix's errno as nix's, which the callers match on.
pub(super) fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// A decimal number, optionally followed by a short suffix (`"/ns"`), as a
/// NUL-terminated name formatted on the stack.
pub struct NumName {
    buf: [u8; 32],
    len: usize,
}

impl NumName {
    pub fn new(n: u64) -> NumName {
        NumName::with_suffix(n, "")
    }

    /// `n` then `suffix` (at most 11 bytes, no NUL).
    pub fn with_suffix(n: u64, suffix: &str) -> NumName {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        let len = digits.len() + suffix.len();
        let mut buf = [0u8; 32]; // 20 digits at most, then the suffix, then NUL
        buf[..digits.len()].copy_from_slice(digits);
        buf[digits.len()..len].copy_from_slice(suffix.as_bytes());
        NumName { buf, len }
    }

    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).expect("one trailing NUL")
    }
}

fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: OFlags) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty()).map_err(errno)
}

/// Opens a directory for `*at` calls only (O_PATH: no read permission needed).
pub fn open_path_dir(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, OFlags::PATH | OFlags::DIRECTORY)
}

/// Opens a directory for listing.
pub fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Opens a file (or, following the magic link, a namespace) read-only.
pub fn open_read(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, OFlags::RDONLY)
}

/// `readlinkat` into `buf`; returns the link text (cut at `buf.len()`).
pub fn readlink_at<'b>(
    dir: BorrowedFd<'_>,
    name: &CStr,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Errno> {
    let n = rustix::fs::readlinkat_raw(dir, name, &mut *buf).map_err(errno)?;
    Ok(&buf[..n])
}

/// Reads a whole (small, procfs) file at `name` into `buf`, replacing its content.
pub fn read_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut Vec<u8>) -> Result<(), Errno> {
    let fd = open_read(dir, name)?;
    read_fd(&fd, buf)
}

/// Reads `fd` to its end into `buf`, replacing its content; `buf` keeps
/// its capacity from call to call.
pub fn read_fd(fd: &OwnedFd, buf: &mut Vec<u8>) -> Result<(), Errno> {
    buf.clear();
    if buf.capacity() < 4096 {
        buf.reserve(4096);
    }
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(errno(e)),
        }
    }
}

/// `fstat` an fd: (inode, uid).
pub fn fstat(fd: BorrowedFd<'_>) -> Result<(u64, u32), Errno> {
    rustix::fs::fstat(fd)
        .map(|st| (st.st_ino, st.st_uid))
        .map_err(errno)
}

/// `fstatat` without following links: (uid, nlink).
pub fn fstatat(dir: BorrowedFd<'_>, name: &CStr) -> Result<(u32, u64), Errno> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| (st.st_uid, st.st_nlink))
        .map_err(errno)
}

/// Calls `f` with each entry name of an open directory except `.` and
/// `..` (`getdents64` on a borrowed fd, so the same fd can serve `*at`
/// calls afterwards; the listing starts where the fd's offset is).
pub fn for_each_entry(dir: BorrowedFd<'_>, mut f: impl FnMut(&[u8])) -> Result<(), Errno> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 16384];
    let mut entries = RawDir::new(dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(errno)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            f(name);
        }
    }
    Ok(())
}

/// Lists the numeric entries of a directory (pids, tids, fd numbers), sorted.
pub fn list_numbers(dir: BorrowedFd<'_>) -> Result<Vec<u32>, Errno> {
    let mut out = Vec::new();
    for_each_entry(dir, |name| out.extend(parse_u32(name)))?;
    out.sort_unstable();
    Ok(out)
}

/// Lists every entry name of a directory except `.` and `..`, sorted.
pub fn list_names(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    for_each_entry(dir, |name| out.push(name.to_vec()))?;
    out.sort();
    Ok(out)
}

/// A decimal u32 written with digits only (no sign, no spaces).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn num_names() {
        assert_eq!(NumName::new(0).as_cstr().to_bytes(), b"0");
        assert_eq!(NumName::new(4026531840).as_cstr().to_bytes(), b"4026531840");
        assert_eq!(
            NumName::new(u64::MAX).as_cstr().to_bytes(),
            b"18446744073709551615"
        );
        assert_eq!(NumName::with_suffix(0, "/ns").as_cstr().to_bytes(), b"0/ns");
        assert_eq!(
            NumName::with_suffix(4242, "/ns").as_cstr().to_bytes(),
            b"4242/ns"
        );
        assert_eq!(
            NumName::with_suffix(u64::MAX, "/ns").as_cstr().to_bytes(),
            b"18446744073709551615/ns"
        );
    }

    #[test]
    fn numbers_only() {
        assert_eq!(parse_u32(b"123"), Some(123));
        assert_eq!(parse_u32(b"self"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"99999999999"), None);
    }

    /// Names and counts written out by hand: more entries than one
    /// getdents64 buffer holds, none of them `.` or `..`.
    #[test]
    fn lists_a_directory_larger_than_one_buffer() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..1500 {
            std::fs::write(dir.path().join(format!("{i}")), b"").unwrap();
        }
        std::fs::write(dir.path().join("not-a-number"), b"").unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        let numbers = list_numbers(d.as_fd()).unwrap();
        assert_eq!(numbers, (0..1500).collect::<Vec<u32>>());
        let d = std::fs::File::open(dir.path()).unwrap();
        let names = list_names(d.as_fd()).unwrap();
        assert_eq!(names.len(), 1501);
        assert!(names.contains(&b"not-a-number".to_vec()));
    }

    #[test]
    fn reads_links_and_files_relative_to_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("net:[4026531840]", dir.path().join("l")).unwrap();
        let big = vec![b'x'; 10_000];
        std::fs::write(dir.path().join("f"), &big).unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            readlink_at(d.as_fd(), c"l", &mut buf).unwrap(),
            b"net:[4026531840]"
        );
        let mut content = Vec::new();
        read_at(d.as_fd(), c"f", &mut content).unwrap();
        assert_eq!(content, big);
        assert_eq!(
            read_at(d.as_fd(), c"missing", &mut content),
            Err(Errno::ENOENT)
        );
    }
}
