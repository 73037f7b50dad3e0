//! Which namespaces are the host's initial ones. listns.py took PID 1's
//! links; on some hosts those are unreadable even for root, and PID 1 can be
//! anything inside a container. Kernel threads never change namespaces, so
//! kthreadd (PID 2), or failing it any kernel thread, is the reference; then
//! PID 1; then, as a last resort, the inode numbers the kernel gives its
//! initial namespaces (fixed for all types since 6.18; mnt and net were
//! dynamic before).

use std::collections::BTreeMap;

use super::procs::{LINKS, Links};
use crate::{inventory::Inventory, ns::NsType, stats::InitialSource};

/// The kernel's fixed inode numbers of the initial namespaces
/// (include/linux/proc_ns.h). mnt and net are fixed since 6.18.
pub fn fixed_inode(ty: NsType) -> u64 {
    match ty {
        NsType::Ipc => 0xEFFF_FFFF,
        NsType::Uts => 0xEFFF_FFFE,
        NsType::User => 0xEFFF_FFFD,
        NsType::Pid => 0xEFFF_FFFC,
        NsType::Cgroup => 0xEFFF_FFFB,
        NsType::Time => 0xEFFF_FFFA,
        NsType::Net => 0xEFFF_FFF9,
        NsType::Mnt => 0xEFFF_FFF8,
    }
}

/// The processes that can tell: kthreadd, the lowest other kernel thread, PID 1.
#[derive(Debug, Default)]
pub struct Candidates {
    kthreadd: Option<Links>,
    kthread: Option<(u32, Links)>,
    pid1: Option<Links>,
}

impl Candidates {
    pub fn offer(&mut self, pid: u32, kthread: bool, links: &Links) {
        match (pid, kthread) {
            (2, true) => self.kthreadd = Some(*links),
            (1, _) => self.pid1 = Some(*links),
            (_, true) if self.kthread.is_none() => self.kthread = Some((pid, *links)),
            _ => {}
        }
    }
}

/// The initial namespaces without a full scan (for the tracer, which starts
/// before the scan): the same decision as the scan's, from kthreadd, the
/// first other kernel thread and PID 1, with the same kernel-thread check.
/// A type none of them can tell is missing.
pub fn quick(proc_root: &std::path::Path) -> BTreeMap<NsType, u64> {
    let Ok(root) = std::fs::File::open(proc_root) else {
        return BTreeMap::new();
    };
    let root = std::os::fd::OwnedFd::from(root);
    let mut c = Candidates::default();
    let mut buf = Vec::new();
    for pid in [2, 1].into_iter().chain(3..=64) {
        if let Ok(p) =
            super::procs::read_process(std::os::fd::AsFd::as_fd(&root), pid, false, true, &mut buf)
        {
            let kthread = p.stat.as_ref().is_some_and(super::procs::Stat::kthread);
            c.offer(pid, kthread, &p.links);
        }
        if c.kthreadd.is_some() || (pid > 2 && c.kthread.is_some()) {
            break;
        }
    }
    determine(&c, &Inventory::new()).0
}

/// Decides the initial namespace of each type, and how.
pub fn determine(
    c: &Candidates,
    inv: &Inventory,
) -> (BTreeMap<NsType, u64>, BTreeMap<NsType, InitialSource>) {
    let mut initial = BTreeMap::new();
    let mut how = BTreeMap::new();
    for (i, &(_, _, ty)) in LINKS.iter().enumerate().take(8) {
        let from = |links: &Option<Links>| links.map(|l| l[i]).filter(|&n| n != 0);
        let found = from(&c.kthreadd)
            .map(|n| (n, InitialSource::Kthreadd))
            .or_else(|| {
                c.kthread.and_then(|(pid, l)| {
                    (l[i] != 0).then_some((l[i], InitialSource::KernelThread(pid)))
                })
            })
            .or_else(|| from(&c.pid1).map(|n| (n, InitialSource::Pid1)))
            .or_else(|| {
                let n = fixed_inode(ty);
                inv.by_inode(ty, n).map(|_| (n, InitialSource::FixedInode))
            });
        if let Some((n, src)) = found {
            initial.insert(ty, n);
            how.insert(ty, src);
        }
    }
    (initial, how)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::describe;

    fn links(base: u64) -> Links {
        let mut l = [0; 10];
        for (i, x) in l.iter_mut().enumerate() {
            *x = base + i as u64;
        }
        l
    }

    #[test]
    fn kthreadd_wins_over_pid1() {
        let mut c = Candidates::default();
        c.offer(1, false, &links(100));
        c.offer(2, true, &links(200));
        let (init, how) = determine(&c, &Inventory::new());
        assert_eq!(init[&NsType::Net], 201);
        assert_eq!(how[&NsType::Net], InitialSource::Kthreadd);
        assert_eq!(describe(&how), "kthreadd (pid 2)");
    }

    #[test]
    fn unreadable_pid1_falls_back() {
        // PID 1 unreadable (never offered), no kthreadd, another kernel thread.
        let mut c = Candidates::default();
        c.offer(7, true, &links(300));
        c.offer(9, true, &links(400));
        let (init, how) = determine(&c, &Inventory::new());
        assert_eq!(init[&NsType::Mnt], 300);
        assert_eq!(how[&NsType::Mnt], InitialSource::KernelThread(7));
    }

    #[test]
    fn fixed_inodes_as_last_resort() {
        let mut inv = Inventory::new();
        inv.entry(NsType::User, 4026531837, None);
        inv.entry(NsType::Time, 4026531834, None);
        let (init, how) = determine(&Candidates::default(), &inv);
        assert_eq!(init.get(&NsType::User), Some(&4026531837));
        assert_eq!(how[&NsType::Time], InitialSource::FixedInode);
        assert_eq!(init.get(&NsType::Net), None, "not seen, not claimed");
        assert!(describe(&how).contains("unknown for mnt,net"));
    }

    #[test]
    fn fixed_values_match_platform() {
        assert_eq!(fixed_inode(NsType::Ipc), 4026531839);
        assert_eq!(fixed_inode(NsType::Time), 4026531834);
        assert_eq!(fixed_inode(NsType::Net), 4026531833);
        assert_eq!(fixed_inode(NsType::Mnt), 4026531832);
    }
}
