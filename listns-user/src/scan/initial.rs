//! Which namespaces are the host's initial ones. listns.py took PID 1's
//! links; on some hosts those are unreadable even for root, and PID 1 can be
//! anything inside a container. Kernel threads never change namespaces, so
//! kthreadd (PID 2), or failing it any kernel thread, is the reference; then
//! PID 1; then, as a last resort, the inode numbers the kernel gives its
//! initial namespaces (fixed for all types since 6.18; mnt and net were
//! dynamic before).

use std::collections::BTreeMap;

use serde::Serialize;

use super::procs::{LINKS, Links};
use crate::{inventory::Inventory, ns::NsType};

/// How an initial namespace was determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitialSource {
    /// kthreadd, PID 2.
    Kthreadd,
    /// Another kernel thread (pid).
    KernelThread(u32),
    /// PID 1's links.
    Pid1,
    /// The kernel's fixed inode number for that type.
    FixedInode,
}

impl std::fmt::Display for InitialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitialSource::Kthreadd => f.write_str("kthreadd (pid 2)"),
            InitialSource::KernelThread(pid) => write!(f, "kernel thread {pid}"),
            InitialSource::Pid1 => f.write_str("pid 1"),
            InitialSource::FixedInode => f.write_str("fixed initial inode"),
        }
    }
}

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

/// One phrase for the stats line: "kthreadd (pid 2)" or a per-type list.
pub fn describe(how: &BTreeMap<NsType, InitialSource>) -> String {
    let mut sources: Vec<InitialSource> = how.values().copied().collect();
    sources.dedup();
    if sources.len() == 1 && how.len() == 8 {
        return sources[0].to_string();
    }
    let mut parts: Vec<String> = how.iter().map(|(t, s)| format!("{t}: {s}")).collect();
    let missing: Vec<&str> = NsType::ALL
        .iter()
        .filter(|t| !how.contains_key(t))
        .map(|t| t.name())
        .collect();
    if !missing.is_empty() {
        parts.push(format!("unknown for {}", missing.join(",")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
