//! Thin wrappers over the few syscalls the scan makes in its hot loop:
//! everything relative to an open directory fd, into caller-owned buffers,
//! so that reading one process costs a handful of syscalls and no path
//! building. Errors come back as `Errno` so callers can tell a process that
//! vanished (ENOENT/ESRCH) from one they may not read (EACCES/EPERM).

use std::{
    ffi::CStr,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

use nix::errno::Errno;

/// A NUL-terminated decimal number, formatted without allocating.
pub(crate) struct NumName {
    buf: [u8; 24],
    start: usize,
}

impl NumName {
    pub(crate) fn new(mut n: u64) -> Self {
        let mut buf = [0u8; 24];
        let mut i = buf.len() - 1; // buf[23] stays NUL
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        NumName { buf, start: i }
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[self.start..]).expect("one trailing NUL")
    }
}

fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: `name` is NUL-terminated; the kernel returns a new fd or -1.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Opens a directory for `*at` calls only (O_PATH: no read permission needed).
pub(crate) fn open_path_dir(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, libc::O_PATH | libc::O_DIRECTORY)
}

/// Opens a directory for listing.
pub(crate) fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY)
}

/// Opens a file (or, following the magic link, a namespace) read-only.
pub(crate) fn open_read(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, libc::O_RDONLY)
}

/// `readlinkat` into `buf`; returns the link text.
pub(crate) fn readlink_at<'b>(
    dir: BorrowedFd<'_>,
    name: &CStr,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Errno> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(&buf[..n as usize])
    }
}

/// Reads a whole (small, procfs) file at `name` into `buf`, replacing its content.
pub(crate) fn read_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut Vec<u8>) -> Result<(), Errno> {
    let fd = open_read(dir, name)?;
    read_fd(&fd, buf)
}

pub(crate) fn read_fd(fd: &OwnedFd, buf: &mut Vec<u8>) -> Result<(), Errno> {
    buf.clear();
    if buf.capacity() < 4096 {
        buf.reserve(4096);
    }
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let spare = buf.capacity() - buf.len();
        // SAFETY: reads at most `spare` bytes into the uninitialised tail.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf.as_mut_ptr().add(buf.len()).cast(),
                spare,
            )
        };
        match n {
            0 => return Ok(()),
            n if n > 0 => {
                // SAFETY: the kernel initialised n more bytes.
                unsafe { buf.set_len(buf.len() + n as usize) }
            }
            _ => {
                let e = Errno::last();
                if e != Errno::EINTR {
                    return Err(e);
                }
            }
        }
    }
}

/// `fstat` an fd: (inode, uid).
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> Result<(u64, u32), Errno> {
    nix::sys::stat::fstat(fd).map(|st| (st.st_ino, st.st_uid))
}

/// Calls `f` with each entry name of an open directory (`getdents64` on a
/// borrowed fd, so the same fd can serve `*at` calls afterwards).
pub(crate) fn for_each_entry(dir: BorrowedFd<'_>, mut f: impl FnMut(&[u8])) -> Result<(), Errno> {
    let mut buf = [0u64; 2048];
    loop {
        // SAFETY: the kernel writes at most size_of_val(&buf) bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        if n < 0 {
            return Err(Errno::last());
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: reinterpreting the initialised prefix of a u64 buffer as bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        let mut off = 0;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        while off + 19 <= bytes.len() {
            let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
            if reclen == 0 || off + reclen > bytes.len() {
                return Err(Errno::EIO);
            }
            let name = &bytes[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                f(name);
            }
            off += reclen;
        }
    }
}

/// `fstatat` without following links: (uid, nlink).
pub(crate) fn fstatat(dir: BorrowedFd<'_>, name: &CStr) -> Result<(u32, u64), Errno> {
    // SAFETY: zeroed stat is a valid out-parameter; name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok((st.st_uid, st.st_nlink))
    }
}

/// Lists the numeric entries of a directory (pids, tids, fd numbers), sorted.
pub(crate) fn list_numbers(dir: BorrowedFd<'_>) -> Result<Vec<u32>, Errno> {
    let mut out = Vec::new();
    for_each_entry(dir, |name| out.extend(parse_u32(name)))?;
    out.sort_unstable();
    Ok(out)
}

/// Lists every entry name of a directory except `.` and `..`, sorted.
pub(crate) fn list_names(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    for_each_entry(dir, |name| out.push(name.to_vec()))?;
    out.sort();
    Ok(out)
}

pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `pidfd_open(2)`.
pub(crate) fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if fd < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
    }
}

/// `pidfd_getfd(2)`: a duplicate of another process's fd.
pub(crate) fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall; returns a new fd or -1.
    let new = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if new < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(new as libc::c_int) })
    }
}

/// `SIOCGSKNS`: opens the network namespace a socket was created in.
pub(crate) fn socket_netns(sock: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    const SIOCGSKNS: libc::c_ulong = 0x894C;
    // SAFETY: SIOCGSKNS takes no argument and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSKNS as _) };
    if fd < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `TUNGETDEVNETNS` (Linux 5.2+): opens the network namespace of the
/// device a tun/tap fd is attached to.
pub(crate) fn tun_netns(tun: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // _IO('T', 227)
    const TUNGETDEVNETNS: libc::c_ulong = 0x54e3;
    // SAFETY: TUNGETDEVNETNS takes no argument and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(tun.as_raw_fd(), TUNGETDEVNETNS as _) };
    if fd < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_names() {
        assert_eq!(NumName::new(0).as_cstr().to_bytes(), b"0");
        assert_eq!(NumName::new(4026531840).as_cstr().to_bytes(), b"4026531840");
        assert_eq!(
            NumName::new(u64::MAX).as_cstr().to_bytes(),
            b"18446744073709551615"
        );
    }

    #[test]
    fn numbers_only() {
        assert_eq!(parse_u32(b"123"), Some(123));
        assert_eq!(parse_u32(b"self"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"99999999999"), None);
    }
}
