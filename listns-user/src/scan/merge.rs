//! Step 1's second half: folding each process read into sightings (which
//! namespace, held how), the sockets to probe, the readers of each mount
//! namespace's mountinfo and the candidates for the initial namespaces.

use std::collections::HashMap;

use super::{
    details, initial,
    procs::{self, Failure, FdSeen, LINKS, ProcRead},
    sockets,
};
use crate::{
    inventory::{Holder, Inventory, Process},
    ns::NsType,
    stats::{Pin, ScanStats},
};

/// Accumulates per-process reads into sightings.
#[derive(Default)]
pub struct Merged {
    pub sightings: HashMap<(NsType, u64), Vec<Holder>>,
    pub sockets: sockets::SocketRefs,
    /// tun/tap fds: (pid, fd), in pid order.
    pub tuns: Vec<(u32, i32)>,
    /// mnt namespace inode -> (processes, kernel threads) in it.
    pub mnt_reader: HashMap<u64, (Vec<u32>, Vec<u32>)>,
    /// Links of the processes that can tell the initial namespaces.
    pub candidates: initial::Candidates,
}

impl Merged {
    fn sight(&mut self, ty: NsType, inum: u64, holder: Holder) {
        self.sightings.entry((ty, inum)).or_default().push(holder);
    }

    pub fn add(&mut self, inv: &mut Inventory, stats: &mut ScanStats, p: ProcRead) {
        stats.processes += 1;
        stats.links_failed += p.links_failed;
        stats.threads += p.threads_seen;
        stats.threads_failed += p.threads_failed;
        stats.fds += p.fds_seen;
        stats.fds_failed += p.fds_failed;
        if p.fd_dir_failed.is_some_and(|f| f != Failure::Gone) {
            stats.fd_dirs_failed += 1;
        }
        let pid = p.pid;
        let kthread = p.stat.as_ref().is_some_and(procs::Stat::kthread);
        self.candidates.offer(pid, kthread, &p.links);
        for (i, &inum) in p.links.iter().enumerate() {
            if inum == 0 {
                continue;
            }
            // pid_for_children/time_for_children matter only where they differ.
            if let Some(&(_, own)) = procs::FOR_CHILDREN_OF.iter().find(|(c, _)| *c == i)
                && p.links[own] == inum
            {
                continue;
            }
            let (name, _, ty) = LINKS[i];
            let link = name;
            self.sight(ty, inum, Holder::Process { pid, link });
        }
        if p.links[0] != 0 {
            // Up to three readers per mount namespace, real processes first
            // (kernel threads come first in pid order).
            let readers = self.mnt_reader.entry(p.links[0]).or_default();
            let list = if kthread {
                &mut readers.1
            } else {
                &mut readers.0
            };
            if list.len() < 3 {
                list.push(pid);
            }
        }
        for (tid, links) in &p.threads {
            for (i, &inum) in links.iter().enumerate() {
                if inum != 0 && inum != p.links[i] {
                    let (name, _, ty) = LINKS[i];
                    let (tid, link) = (*tid, name);
                    self.sight(ty, inum, Holder::Thread { pid, tid, link });
                }
            }
        }
        for f in &p.fds {
            match *f {
                FdSeen::Ns { fd, ty, inum } => self.sight(ty, inum, Holder::Fd { pid, fd }),
                FdSeen::Socket { fd, inode, net } => self.sockets.add(inode, pid, fd, net),
                FdSeen::Tun { fd } => self.tuns.push((pid, fd)),
                FdSeen::Ring { fd, ref files } => {
                    for &(ty, inum) in files {
                        self.sight(ty, inum, Holder::IoUring { pid, fd });
                    }
                }
                FdSeen::Pin { fd, kind, ref link } => {
                    stats.pins.push(Pin::new(kind, pid, Some(fd), None, link));
                }
            }
        }
        let mut proc = Process {
            pid,
            uid: p.uid,
            ..Default::default()
        };
        if let Some(st) = &p.stat {
            details::fill_from_stat(&mut proc, st);
        }
        inv.processes.insert(pid, proc);
    }
}
