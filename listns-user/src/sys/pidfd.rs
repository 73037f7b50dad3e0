//! Processes by pidfd: a handle that never names a reused pid.

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, Signal};

use super::fs::errno;

/// `pidfd_open(2)`. A pid of 0 or above `i32::MAX` is EINVAL, as the
/// kernel answers for pids it cannot take.
pub fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(Errno::EINVAL)?;
    rustix::process::pidfd_open(pid, PidfdFlags::empty()).map_err(errno)
}

/// `pidfd_getfd(2)`: a duplicate (close-on-exec) of another process's fd.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: i32) -> Result<OwnedFd, Errno> {
    rustix::process::pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty()).map_err(errno)
}

/// `pidfd_send_signal(2)` of a named signal (`libc::SIGTERM`, ...); an
/// unnamed number (a real-time signal) is EINVAL.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    let sig = Signal::from_named_raw(sig).ok_or(Errno::EINVAL)?;
    rustix::process::pidfd_send_signal(pidfd, sig).map_err(errno)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, AsRawFd};

    use super::*;

    #[test]
    fn a_pidfd_signals_its_process_and_refuses_bad_pids() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = pidfd_open(child.id()).unwrap();
        pidfd_send_signal(fd.as_fd(), libc::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(pidfd_open(0).err(), Some(Errno::EINVAL));
        assert_eq!(pidfd_open(u32::MAX).err(), Some(Errno::EINVAL));
        // A file of ours, duplicated through our own pidfd: the same inode.
        let file = tempfile::tempfile().unwrap();
        let own = pidfd_open(std::process::id()).unwrap();
        let dup = pidfd_getfd(own.as_fd(), file.as_raw_fd()).unwrap();
        let ino = |fd: BorrowedFd<'_>| nix::sys::stat::fstat(fd).unwrap().st_ino;
        assert_eq!(ino(dup.as_fd()), ino(file.as_fd()));
    }
}
