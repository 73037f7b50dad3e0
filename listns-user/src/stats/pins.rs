//! What keeps a namespace alive where the scan sees the reference but
//! cannot open the namespace (docs/scan-coverage.md, "Seen but not
//! opened"): network namespaces that only a netns id names, and fds and
//! mounts that pin a namespace nothing reaches. `-J` carries them under
//! `scan`; the summary line counts them.

use serde::{Deserialize, Serialize};

/// A network namespace that a netns id names and that no namespace the
/// scan found is: alive (the kernel drops a peer's id when it dies) and
/// held by something no scan can see, such as an fd in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnfoundNetns {
    /// Inode of the network namespace whose id table has the id.
    pub seen_from: u64,
    /// The id that namespace gives it (`ip netns list-id`).
    pub nsid: u32,
    /// Devices in `seen_from` whose other end lives in it (veth peers,
    /// macvlan, vxlan...: `IFLA_LINK_NETNSID`).
    pub links: Vec<NetDevice>,
}

/// A network device, as rtnetlink names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetDevice {
    pub ifindex: u32,
    /// The interface name (chosen by whoever made the device).
    pub name: String,
}

/// What kind of reference a [`Pin`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PinKind {
    /// An open file under `/proc/PID/net/`: it holds the network
    /// namespace it was opened in, which no ioctl names.
    ProcNet,
    /// A pidfd of a process that has exited: it may hold that process's
    /// pid namespace (`PIDFD_GET_PID_NAMESPACE` answers ESRCH).
    DeadPidfd,
    /// An open `/proc/PID` directory of a process that has exited: same.
    DeadProcDir,
    /// A `proc` mount whose pid namespace has no process left: it holds
    /// that pid namespace, which nothing names.
    EmptyPidnsProc,
}

/// One reference that pins a namespace the scan cannot open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pin {
    pub kind: PinKind,
    /// The process holding the fd; for a mount, a process of the mount
    /// namespace it was read in (0 when that namespace has none).
    pub pid: u32,
    /// The fd, for fds.
    pub fd: Option<i32>,
    /// For mounts: the mount namespace's inode.
    pub mnt_ns: Option<u64>,
    /// The fd's path or the mount point, as the kernel printed it, with
    /// U+FFFD for bytes that are not UTF-8 (then `path_hex` has them).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
}

impl Pin {
    /// A pin whose path is `bytes`, kept exactly (hex when not UTF-8).
    pub fn new(kind: PinKind, pid: u32, fd: Option<i32>, mnt_ns: Option<u64>, bytes: &[u8]) -> Pin {
        let path_hex = std::str::from_utf8(bytes)
            .is_err()
            .then(|| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        Pin {
            kind,
            pid,
            fd,
            mnt_ns,
            path: String::from_utf8_lossy(bytes).into_owned(),
            path_hex,
        }
    }
}

/// The summary's phrase for what is held but cannot be opened, or `None`.
pub fn phrase(unfound: &[UnfoundNetns], pins: &[Pin]) -> Option<String> {
    let mut parts = Vec::new();
    if !unfound.is_empty() {
        parts.push(format!(
            "{} netns ids naming a netns not found",
            unfound.len()
        ));
    }
    for (kind, what) in [
        (PinKind::ProcNet, "open /proc/PID/net files"),
        (PinKind::DeadPidfd, "pidfds of exited processes"),
        (PinKind::DeadProcDir, "/proc/PID fds of exited processes"),
        (
            PinKind::EmptyPidnsProc,
            "proc mounts of empty pid namespaces",
        ),
    ] {
        let n = pins.iter().filter(|p| p.kind == kind).count();
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "held where no scan can open it (see -J scan): {}",
            parts.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_keeps_bytes_and_phrase_counts() {
        let p = Pin::new(PinKind::EmptyPidnsProc, 0, None, Some(9), b"/m\xff");
        assert_eq!(p.path, "/m\u{fffd}");
        assert_eq!(p.path_hex.as_deref(), Some("2f6dff"));
        assert_eq!(
            Pin::new(PinKind::ProcNet, 1, Some(3), None, b"/proc/1/net/dev").path_hex,
            None
        );
        assert_eq!(phrase(&[], &[]), None);
        let u = UnfoundNetns {
            seen_from: 1,
            nsid: 0,
            links: vec![],
        };
        assert_eq!(
            phrase(&[u], &[p.clone(), p]).unwrap(),
            "held where no scan can open it (see -J scan): 1 netns ids naming a netns not found, 2 proc mounts of empty pid namespaces"
        );
    }
}
