//! fds that pin a namespace without being one, told apart by their
//! `/proc/PID/fd` link and read in `/proc/PID/fdinfo` (proc(5)):
//!
//! - an io_uring (`anon_inode:[io_uring]`) whose registered files include
//!   nsfs files: its fdinfo lists them after `UserFiles:`, one
//!   `%5u: PATH` line each, the path escaped by `seq_file_path` (space,
//!   tab, newline, backslash as octal), so an nsfs file prints as
//!   `uts:[4026531838]`; the file lives as long as the ring, and nothing
//!   reopens it;
//! - a pidfd (`anon_inode:[pidfd]`) whose process has exited (fdinfo
//!   `Pid: -1`), or an open `/proc/PID` directory of one (the link ends in
//!   ` (deleted)`): it may hold that process's pid namespace;
//! - a file under `/proc/PID/net/` (`seq_open_net` took a reference on the
//!   netns it was opened in, which no ioctl names).

use crate::{
    ns::{self, NsType},
    stats::PinKind,
};

/// What an fd's link says it may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ring,
    Pidfd,
    Pin(PinKind),
}

/// Classifies an fd by its link text; `None` for everything else.
pub fn classify(link: &[u8]) -> Option<Kind> {
    match link {
        b"anon_inode:[io_uring]" => return Some(Kind::Ring),
        b"anon_inode:[pidfd]" => return Some(Kind::Pidfd),
        _ if link.starts_with(b"pidfd:[") => return Some(Kind::Pidfd),
        _ => {}
    }
    let rest = link.strip_prefix(b"/proc/")?;
    // /proc/PID or /proc/PID/task/TID, then what follows.
    let after_pid = skip_number(rest)?;
    let after_task = after_pid
        .strip_prefix(b"/task/")
        .and_then(skip_number)
        .unwrap_or(after_pid);
    if after_task == b" (deleted)" {
        return Some(Kind::Pin(PinKind::DeadProcDir));
    }
    let file = after_task.strip_prefix(b"/net/")?;
    (!file.is_empty()).then_some(Kind::Pin(PinKind::ProcNet))
}

/// What follows a run of ASCII digits at the start (at least one).
fn skip_number(s: &[u8]) -> Option<&[u8]> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    (n > 0).then(|| &s[n..])
}

/// The namespaces among a ring's registered files (fdinfo `UserFiles:`).
/// Entries named by a path (an nsfs file opened through a bind mount) are
/// not namespaces this can name, and are left out.
pub fn ring_files(fdinfo: &[u8]) -> Vec<(NsType, u64)> {
    let mut out = Vec::new();
    let mut lines = fdinfo.split(|&b| b == b'\n');
    if lines
        .by_ref()
        .find(|l| l.starts_with(b"UserFiles:"))
        .is_none()
    {
        return out;
    }
    for line in lines {
        // Entries are indented; the next field (`UserBufs:`) is not.
        if !line.starts_with(b" ") {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let path = line[colon + 1..].trim_ascii_start();
        // An nsfs file's d_path never starts with '/'; a path does.
        if !path.starts_with(b"/")
            && let Some(found) = ns::parse_link(path)
        {
            out.push(found);
        }
    }
    out
}

/// Whether a pidfd's fdinfo says its process has exited (`Pid: -1`).
pub fn pidfd_exited(fdinfo: &[u8]) -> bool {
    fdinfo.split(|&b| b == b'\n').any(|l| {
        l.strip_prefix(b"Pid:")
            .is_some_and(|v| v.trim_ascii() == b"-1")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(classify(b"anon_inode:[io_uring]"), Some(Kind::Ring));
        assert_eq!(classify(b"anon_inode:[pidfd]"), Some(Kind::Pidfd));
        assert_eq!(classify(b"pidfd:[1234]"), Some(Kind::Pidfd));
        let net = Some(Kind::Pin(PinKind::ProcNet));
        assert_eq!(classify(b"/proc/17/net/dev"), net);
        assert_eq!(classify(b"/proc/17/task/18/net/tcp6"), net);
        assert_eq!(classify(b"/proc/17/net"), None);
        assert_eq!(classify(b"/proc/17/netx/dev"), None);
        assert_eq!(classify(b"/proc/self/net/dev"), None);
        let dead = Some(Kind::Pin(PinKind::DeadProcDir));
        assert_eq!(classify(b"/proc/17898 (deleted)"), dead);
        assert_eq!(classify(b"/proc/1/task/2 (deleted)"), dead);
        assert_eq!(classify(b"/proc/17898"), None);
        assert_eq!(classify(b"/proc/x (deleted)"), None);
        assert_eq!(classify(b"/tmp/a"), None);
        assert_eq!(classify(b"socket:[5]"), None);
    }

    #[test]
    fn ring_fdinfo() {
        // As 6.18 prints it (one registered file, one empty slot).
        let info = b"pos:\t0\nflags:\t02000002\nSqThreadCpu:\t-1\nUserFiles:\t2\n    0: uts:[4026531838]\n   12: /run/netns/x\n   13: net:[4026532001]\n   14: /tmp/uts:[5]\nUserBufs:\t0\n    0: ipc:[1]\nPollList:\n";
        assert_eq!(
            ring_files(info),
            vec![(NsType::Uts, 4026531838), (NsType::Net, 4026532001)]
        );
        assert!(ring_files(b"pos:\t0\n").is_empty());
        assert!(ring_files(b"UserFiles:\t0\nUserBufs:\t0\n").is_empty());
    }

    #[test]
    fn pidfd_fdinfo() {
        assert!(pidfd_exited(b"pos:\t0\nPid:\t-1\nNSpid:\t-1\n"));
        assert!(!pidfd_exited(b"pos:\t0\nPid:\t17\nNSpid:\t17\n"));
        assert!(!pidfd_exited(b"pos:\t0\n"));
    }
}
