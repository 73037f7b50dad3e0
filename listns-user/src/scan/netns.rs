//! `ip netns` entries: files in /run/netns (and /var/run/netns, usually the
//! same directory through a symlink) with a network namespace bind-mounted on
//! them. The names attach to the namespace; the bind mount itself is also
//! found in mountinfo, so a holder is added here only when mountinfo did not
//! show it.

use std::{
    collections::HashSet,
    ffi::CString,
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::PathBuf,
};

use super::{ScanStats, hierarchy};
use crate::{
    inventory::{Holder, Inventory},
    ns::NsType,
    sys,
    text::RawText,
};

pub fn scan_dirs(
    dirs: &[PathBuf],
    inv: &mut Inventory,
    stats: &mut ScanStats,
    self_mnt: Option<u64>,
    extra: &mut hierarchy::Extra,
) {
    let mut seen_dirs = HashSet::new();
    for dir in dirs {
        // /var/run is usually /run: list each real directory once.
        let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if !seen_dirs.insert(real.clone()) {
            continue;
        }
        let Ok(d) = std::fs::File::open(&real) else {
            continue;
        };
        let d: OwnedFd = d.into();
        let Ok(names) = sys::list_names(d.as_fd()) else {
            continue;
        };
        for name in names {
            stats.netns_entries += 1;
            let Ok(cname) = CString::new(name.clone()) else {
                stats.netns_failed += 1;
                continue;
            };
            let opened = sys::open_read(d.as_fd(), &cname).ok().and_then(|fd| {
                let (inum, _) = sys::fstat(fd.as_fd()).ok()?;
                hierarchy::is_namespace(fd.as_fd(), NsType::Net, inum).then_some((fd, inum))
            });
            // A plain file left behind by a dead `ip netns` is not a namespace.
            let Some((fd, inum)) = opened else {
                stats.netns_failed += 1;
                continue;
            };
            let id = crate::ns::get_id(fd.as_fd());
            let known = inv.by_inode(NsType::Net, inum).is_some();
            let ns = inv.entry(NsType::Net, inum, id).1;
            ns.netns_names.insert(RawText::new(&name));
            let mut path = real.as_os_str().as_bytes().to_vec();
            path.push(b'/');
            path.extend_from_slice(&name);
            if !ns
                .holders
                .iter()
                .any(|h| matches!(h, Holder::BindMount { .. }))
            {
                ns.holders.insert(Holder::BindMount {
                    path: path.into(),
                    mnt_ns: self_mnt.unwrap_or(0),
                });
            }
            if !known {
                extra.fds.insert((NsType::Net, inum), fd);
            }
        }
    }
}
