//! Network namespaces held only by sockets. A socket keeps the netns it was
//! created in alive, and nothing in /proc shows which one that is; the
//! `SIOCGSKNS` ioctl on the socket opens it. The socket belongs to another
//! process, so it is duplicated first with `pidfd_getfd` (root, or ptrace
//! rights over the owner).
//!
//! Each distinct socket (by inode; forked children share them) is asked once,
//! one process at a time, so few fds are open at once. Only on the live
//! procfs of our own pid namespace: on any other tree the pids would name
//! unrelated processes.

use std::{
    collections::{HashMap, HashSet},
    os::fd::{AsFd, OwnedFd},
};

use crate::sys;

/// Every (pid, fd) that has each socket open.
#[derive(Debug, Default)]
pub struct SocketRefs {
    /// socket inode -> holders, in the order seen (lowest pid first).
    pub by_inode: HashMap<u64, Vec<(u32, i32)>>,
    /// socket inode -> its netns inode, where the scan read it in the
    /// kernel (the iterator scan).
    pub net: HashMap<u64, u64>,
}

impl SocketRefs {
    /// `net`: the socket's netns inode, 0 when not known.
    pub fn add(&mut self, inode: u64, pid: u32, fd: i32, net: u64) {
        self.by_inode.entry(inode).or_default().push((pid, fd));
        if net != 0 {
            self.net.insert(inode, net);
        }
    }
}

/// The answer for one socket.
pub struct SocketNetns {
    pub inum: u64,
    pub id: Option<u64>,
    /// An open fd on the netns, kept only for the first socket of a netns
    /// that `known` did not know (the hierarchy pass needs one to ask).
    pub netns: Option<OwnedFd>,
    pub holders: Vec<(u32, i32)>,
}

/// Asks each socket for its netns. Returns the answers and how many sockets
/// could not be asked (the process or fd went away, or we may not). A
/// socket whose netns the scan read already, in a netns `known` knows, is
/// answered without a system call.
pub fn probe(refs: SocketRefs, known: impl Fn(u64) -> bool) -> (Vec<SocketNetns>, usize) {
    let mut out = Vec::with_capacity(refs.by_inode.len());
    let mut sockets: Vec<Vec<(u32, i32)>> = Vec::with_capacity(refs.by_inode.len());
    for (inode, holders) in refs.by_inode {
        match refs.net.get(&inode) {
            Some(&inum) if known(inum) => out.push(SocketNetns {
                inum,
                id: None,
                netns: None,
                holders,
            }),
            _ => sockets.push(holders),
        }
    }
    out.sort_unstable_by_key(|a| a.holders[0]);
    sockets.sort_unstable_by_key(|h| h[0]);
    let mut failed = 0;
    let mut kept: HashSet<u64> = HashSet::new();
    let mut current: Option<(u32, Option<OwnedFd>)> = None;
    for holders in sockets {
        let mut answered = None;
        for (i, &(pid, fd)) in holders.iter().enumerate() {
            // The first holder's pidfd is reused across that pid's sockets;
            // a fallback holder gets a one-off pidfd.
            let one_off;
            let pidfd = if i == 0 {
                if current.as_ref().map(|c| c.0) != Some(pid) {
                    current = Some((pid, sys::pidfd_open(pid).ok()));
                }
                current.as_ref().and_then(|c| c.1.as_ref())
            } else {
                one_off = sys::pidfd_open(pid).ok();
                one_off.as_ref()
            };
            let Some(pidfd) = pidfd else { continue };
            let Ok(sock) = sys::pidfd_getfd(pidfd.as_fd(), fd) else {
                continue;
            };
            let Ok(netns) = sys::socket_netns(sock.as_fd()) else {
                continue;
            };
            let Ok((inum, _)) = sys::fstat(netns.as_fd()) else {
                continue;
            };
            answered = Some((inum, netns));
            break;
        }
        match answered {
            Some((inum, fd)) => {
                let id = crate::ns::get_id(fd.as_fd());
                let keep = !known(inum) && kept.insert(inum);
                out.push(SocketNetns {
                    inum,
                    id,
                    netns: keep.then_some(fd),
                    holders,
                });
            }
            None => failed += 1,
        }
    }
    (out, failed)
}
