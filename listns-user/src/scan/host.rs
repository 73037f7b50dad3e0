//! Can this process see the host? In a container without the host's PID
//! namespace (a common mistake), /proc shows the container's processes
//! only and PID 2 is not kthreadd: a scan then finds the container's
//! namespaces and calls them the host's. Say so instead, once, at start-up;
//! and say what the kernel withholds there too: since Linux 7.0 ("tighten
//! nstree visibility", also in some 6.18 and 6.12 stable kernels),
//! listns(2), nsfs file handles and NS_MNT_GET_NEXT answer in full only to
//! a caller in the initial PID namespace with CAP_SYS_ADMIN in the initial
//! user namespace.

use std::path::Path;

/// The initial PID namespace's inode (PROC_PID_INIT_INO, fixed since 3.8).
const INIT_PID_INO: u64 = 0xEFFF_FFFC;

/// What listns can see, when that is less than the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partial {
    /// Our PID namespace's inode.
    pub pid_ns: u64,
}

impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "listns is not in the host's PID namespace (it is in pid:[{}], the host's is \
             pid:[{INIT_PID_INO}]): /proc shows only the processes of this container, so the \
             namespaces of every other process on the host are missing below, and the \
             \"initial\" namespaces are this container's. The eBPF tracer, if it runs, still \
             sees every task on the host. The kernel, too, answers listns(2), nsfs file \
             handles and NS_MNT_GET_NEXT in full only to a process in the host's PID namespace \
             (Linux 7.0, and stable kernels that took that change): here they may refuse or \
             answer for fewer namespaces, so namespaces that only they find (hidden ones) may be \
             missed and liveness checks by handle may fail. For the whole host run it with the \
             host's PID namespace (podman/docker run --pid=host, Kubernetes hostPID: true).",
            self.pid_ns
        )
    }
}

/// `Some` when `proc_root` (the live /proc) is not the host's view.
pub fn check(proc_root: &Path) -> Option<Partial> {
    let link = std::fs::read_link(proc_root.join("self/ns/pid")).ok()?;
    let (_, inum) = crate::ns::parse_link(link.as_os_str().as_encoded_bytes())?;
    (inum != INIT_PID_INO).then_some(Partial { pid_ns: inum })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_pid_namespace_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("self/ns")).unwrap();
        std::os::unix::fs::symlink("pid:[4026531836]", dir.path().join("self/ns/pid")).unwrap();
        assert_eq!(check(dir.path()), None);
        std::fs::remove_file(dir.path().join("self/ns/pid")).unwrap();
        std::os::unix::fs::symlink("pid:[4026532999]", dir.path().join("self/ns/pid")).unwrap();
        let p = check(dir.path()).unwrap();
        assert_eq!(p.pid_ns, 4026532999);
        assert!(p.to_string().contains("--pid=host"));
        assert!(p.to_string().contains("listns(2), nsfs file handles"));
    }
}
