//! Identity and hierarchy: for every namespace found, open it once (through
//! any path that reaches it), read its 64-bit id (`NS_GET_ID`), its owning
//! user namespace (`NS_GET_USERNS`) and, for pid and user namespaces, its
//! parent (`NS_GET_PARENT`). Owners and parents are followed up to the root,
//! so a user namespace that nothing but its children keep alive still
//! appears, held by `child`.
//!
//! A user namespace's creator uid (`NS_GET_OWNER_UID`) is read on the way:
//! lsns shows it as UID and USER of namespaces that no process is in.
//!
//! Opening costs a few syscalls per namespace, not per process.

use std::{
    collections::{HashMap, HashSet},
    ffi::CString,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
};

use super::netnsid;
use crate::{
    inventory::{Holder, Inventory},
    ns::{self, NsType, Relative},
    sys,
};

/// Ways to reach a namespace besides its holders' /proc links.
#[derive(Default)]
pub struct Extra {
    /// Paths relative to the procfs root (e.g. `PID/root/run/netns/x`).
    pub paths: HashMap<(NsType, u64), Vec<Vec<u8>>>,
    /// Already open fds (from sockets, /run/netns).
    pub fds: HashMap<(NsType, u64), OwnedFd>,
}

/// What the pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Namespaces opened (directly or as an owner/parent of another).
    pub opened: usize,
    /// Namespaces no path could open (gone meanwhile, or refused).
    pub unopened: usize,
}

/// Opens every namespace in `inv` and records ids, owners and parents;
/// hands every network namespace opened to `nsids` (NETNSID).
pub fn resolve(
    root: BorrowedFd<'_>,
    inv: &mut Inventory,
    mut extra: Extra,
    nsids: &mut netnsid::Collector,
) -> Outcome {
    let mut out = Outcome::default();
    let mut visited: HashSet<(NsType, u64)> = HashSet::new();
    let keys: Vec<_> = inv.iter().map(|(k, _)| *k).collect();
    for key in keys {
        if visited.contains(&(key.ty, key.inum)) {
            continue;
        }
        let fd = extra
            .fds
            .remove(&(key.ty, key.inum))
            .or_else(|| open_via_holders(root, inv, key.ty, key.inum, &extra));
        let Some(fd) = fd else {
            out.unopened += 1;
            continue;
        };
        visited.insert((key.ty, key.inum));
        walk(inv, &mut visited, fd, key.ty, key.inum, &mut out, nsids);
    }
    nsids.flush();
    out
}

/// Reads one namespace and, through an explicit stack, its ancestors.
fn walk(
    inv: &mut Inventory,
    visited: &mut HashSet<(NsType, u64)>,
    fd: OwnedFd,
    ty: NsType,
    inum: u64,
    out: &mut Outcome,
    nsids: &mut netnsid::Collector,
) {
    let mut stack = vec![(fd, ty, inum)];
    while let Some((fd, ty, inum)) = stack.pop() {
        out.opened += 1;
        let id = ns::get_id(fd.as_fd());
        let key = inv.entry(ty, inum, id).0;
        if ty == NsType::User {
            inv.get_mut(&key).expect("entry created it").creator_uid =
                ns::get_owner_uid(fd.as_fd());
        }
        let mut relatives = vec![(Relative::Owner, NsType::User)];
        if ty == NsType::Pid {
            relatives.push((Relative::Parent, NsType::Pid));
        }
        for (which, rty) in relatives {
            let Ok(Some(rfd)) = ns::get_related(fd.as_fd(), which) else {
                continue;
            };
            let Ok((rinum, _)) = sys::fstat(rfd.as_fd()) else {
                continue;
            };
            let rid = ns::get_id(rfd.as_fd());
            let rkey = inv.entry(rty, rinum, rid).0;
            inv.get_mut(&rkey)
                .expect("entry created it")
                .holders
                .insert(Holder::Child { ty, ns: inum });
            let this = inv.get_mut(&key).expect("entry created it");
            match which {
                Relative::Owner => {
                    this.owner = Some(rkey);
                    // A user namespace's owner is its parent.
                    if ty == NsType::User {
                        this.parent = Some(rkey);
                    }
                }
                Relative::Parent => this.parent = Some(rkey),
            }
            if visited.insert((rty, rinum)) {
                stack.push((rfd, rty, rinum));
            }
        }
        if ty == NsType::Net {
            nsids.push(key, fd);
        }
    }
}

/// Tries a few of the namespace's holders, then any extra path, until one
/// opens and is still that namespace (an inode can be reused meanwhile).
pub(super) fn open_via_holders(
    root: BorrowedFd<'_>,
    inv: &Inventory,
    ty: NsType,
    inum: u64,
    extra: &Extra,
) -> Option<OwnedFd> {
    let key = inv.by_inode(ty, inum)?;
    let ns = inv.get(&key)?;
    let from_holders = ns.holders.iter().filter_map(holder_path).take(3);
    let from_extra = extra
        .paths
        .get(&(ty, inum))
        .into_iter()
        .flatten()
        .take(3)
        .cloned();
    for path in from_holders.chain(from_extra) {
        let Ok(cpath) = CString::new(path) else {
            continue;
        };
        let Ok(fd) = sys::open_read(root, &cpath) else {
            continue;
        };
        if is_namespace(fd.as_fd(), ty, inum) {
            return Some(fd);
        }
    }
    None
}

/// Whether an open fd is the namespace (type, inode).
pub fn is_namespace(fd: BorrowedFd<'_>, ty: NsType, inum: u64) -> bool {
    matches!(sys::fstat(fd), Ok((i, _)) if i == inum) && ns::get_type(fd) == Some(ty)
}

/// The path, relative to the procfs root, that opens what a holder holds.
fn holder_path(h: &Holder) -> Option<Vec<u8>> {
    let s = match h {
        Holder::Process { pid, link } => format!("{pid}/ns/{link}"),
        Holder::Thread { pid, tid, link } => format!("{pid}/task/{tid}/ns/{link}"),
        Holder::Fd { pid, fd } => format!("{pid}/fd/{fd}"),
        _ => return None,
    };
    Some(s.into_bytes())
}

/// A path inside another process's mount namespace, reached through its
/// `/proc/PID/root`.
pub fn via_root(pid: u32, path: &[u8]) -> Vec<u8> {
    let mut p = format!("{pid}/root").into_bytes();
    if !path.starts_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(path);
    p
}
