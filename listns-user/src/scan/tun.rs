//! Network namespaces held by tun/tap devices. A tun fd (`/dev/net/tun`
//! after `TUNSETIFF`) keeps its device, and the device keeps the network
//! namespace it was created in, wherever the fd's owner lives; nothing in
//! /proc says which namespace that is. `TUNGETDEVNETNS` on a duplicate of
//! the fd (`pidfd_getfd`, as for sockets) opens it.

use std::os::fd::{AsFd, OwnedFd};

use crate::sys;
use nix::errno::Errno;

/// The answer for one tun fd.
pub struct TunNetns {
    pub pid: u32,
    pub fd: i32,
    pub inum: u64,
    pub id: Option<u64>,
    pub netns: OwnedFd,
}

/// Asks each tun fd for its device's netns. Returns the answers and how
/// many could not be asked (the process or fd went away, or we may not).
/// A tun fd not attached to a device holds nothing and is not counted.
pub fn probe(tuns: &[(u32, i32)]) -> (Vec<TunNetns>, usize) {
    let mut out = Vec::new();
    let mut failed = 0;
    let mut current: Option<(u32, Option<OwnedFd>)> = None;
    for &(pid, fd) in tuns {
        if current.as_ref().map(|c| c.0) != Some(pid) {
            current = Some((pid, sys::pidfd_open(pid).ok()));
        }
        let Some(pidfd) = current.as_ref().and_then(|c| c.1.as_ref()) else {
            failed += 1;
            continue;
        };
        let netns = sys::pidfd_getfd(pidfd.as_fd(), fd).and_then(|t| sys::tun_netns(t.as_fd()));
        let netns = match netns {
            Ok(n) => n,
            // EBADFD: no device attached (TUNSETIFF not called yet).
            Err(Errno::EBADFD) => continue,
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        let Ok((inum, _)) = sys::fstat(netns.as_fd()) else {
            failed += 1;
            continue;
        };
        let id = crate::ns::get_id(netns.as_fd());
        out.push(TunNetns {
            pid,
            fd,
            inum,
            id,
            netns,
        });
    }
    (out, failed)
}
