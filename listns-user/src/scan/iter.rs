//! Step 1 from the kernel (`--scan=iter`): the records of one pass of the
//! task and task-file iterators (`trace::iter`) turned into the same
//! per-process reads the /proc pass makes (`procs::ProcRead`), so that
//! everything after step 1 is the same code whichever pass ran.
//!
//! What the iterators cannot tell is read from /proc for those fds only:
//! files that pin a namespace without being one (io_uring, pidfds, /proc
//! files, tun/tap devices; see `fdinfo`), and nsfs files whose type the
//! kernel's BTF did not let the program read.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};

use listns_common::{
    FILE_LOOK, FILE_NS, FILE_SOCKET, IterFile, IterTask, SLOT_CGROUP, SLOT_IPC, SLOT_MNT, SLOT_NET,
    SLOT_PID, SLOT_PID_FOR_CHILDREN, SLOT_TIME, SLOT_TIME_FOR_CHILDREN, SLOT_USER, SLOT_UTS,
};

use super::procs::{self, Failure, FdSeen, Links, ProcRead, Stat};
use crate::{
    ns::NsType,
    sys::{self, NumName},
    trace::iter::Pass,
};

/// The record slot of each of `procs::LINKS`.
const SLOT_OF_LINK: [usize; 10] = [
    SLOT_MNT,
    SLOT_NET,
    SLOT_PID,
    SLOT_USER,
    SLOT_UTS,
    SLOT_IPC,
    SLOT_CGROUP,
    SLOT_TIME,
    SLOT_PID_FOR_CHILDREN,
    SLOT_TIME_FOR_CHILDREN,
];

fn links_of(t: &IterTask) -> Links {
    SLOT_OF_LINK.map(|slot| u64::from(t.ns[slot].inum))
}

/// Every process of `pass`, in pid order, as the /proc pass would read it
/// (`Err(Gone)` for one whose namespaces could not be read at all: a
/// zombie, as there). `root` is the live procfs, for the fds the iterator
/// leaves to /proc.
pub fn reads(root: BorrowedFd<'_>, pass: &Pass) -> Vec<(u32, Result<ProcRead, Failure>)> {
    let mut by_pid: BTreeMap<u32, (Option<&IterTask>, Vec<&IterTask>)> = BTreeMap::new();
    for t in &pass.tasks {
        let entry = by_pid.entry(t.tgid).or_default();
        if t.tid == t.tgid {
            entry.0 = Some(t);
        } else {
            entry.1.push(t);
        }
    }
    let mut files: BTreeMap<u32, Vec<&IterFile>> = BTreeMap::new();
    for f in &pass.files {
        files.entry(f.tgid).or_default().push(f);
    }
    let mut out = Vec::with_capacity(by_pid.len());
    for (pid, (leader, threads)) in by_pid {
        // A thread group whose leader the pass did not see: it exited
        // between the two, and the process with it.
        let Some(leader) = leader else { continue };
        let links = links_of(leader);
        if links.iter().all(|&l| l == 0) {
            out.push((pid, Err(Failure::Gone)));
            continue;
        }
        let comm = leader.comm;
        let comm = comm[..comm.iter().position(|&b| b == 0).unwrap_or(16)].to_vec();
        let nthreads = 1 + threads.len() as u32;
        let mut p = ProcRead {
            pid,
            uid: leader.uid,
            stat: Some(Stat {
                comm,
                ppid: leader.ppid,
                flags: u64::from(leader.flags),
                threads: nthreads,
            }),
            nthreads,
            links,
            threads_seen: threads.len(),
            ..Default::default()
        };
        let mut tids: Vec<(u32, Links)> = threads
            .iter()
            .map(|t| (t.tid, links_of(t)))
            .filter(|(_, l)| l.iter().zip(&links).any(|(t, l)| *t != 0 && t != l))
            .collect();
        tids.sort_unstable_by_key(|t| t.0);
        p.threads = tids;
        if let Some(fs) = files.get(&pid) {
            read_files(root, &mut p, fs);
        }
        out.push((pid, Ok(p)));
    }
    out
}

/// The fds of one process from its file records; /proc for those the
/// kernel pass leaves to it.
fn read_files(root: BorrowedFd<'_>, p: &mut ProcRead, files: &[&IterFile]) {
    let mut fddir = None;
    let mut buf = [0u8; 256];
    for f in files {
        p.fds_seen += 1;
        let fd = f.fd as i32;
        match (f.kind, NsType::from_clone_flag(f.ns_type)) {
            (FILE_NS, Some(ty)) => p.fds.push(FdSeen::Ns {
                fd,
                ty,
                inum: f.inum,
            }),
            (FILE_SOCKET, _) => p.fds.push(FdSeen::Socket {
                fd,
                inode: f.inum,
                net: f.net,
            }),
            (FILE_NS | FILE_LOOK, _) => {
                let dir = fddir.get_or_insert_with(|| {
                    let name = NumName::with_suffix(u64::from(p.pid), "/fd");
                    sys::open_dir(root, name.as_cstr())
                });
                let Ok(dir) = dir else {
                    p.fds_failed += 1;
                    continue;
                };
                let name = NumName::new(u64::from(f.fd));
                if f.kind == FILE_NS {
                    // An nsfs file whose type the program could not read:
                    // reopened and asked, whatever path it was opened by.
                    match procs::reopen_ns(dir.as_fd(), name.as_cstr()) {
                        Some((ty, inum)) => p.fds.push(FdSeen::Ns { fd, ty, inum }),
                        None => p.fds_failed += 1,
                    }
                    continue;
                }
                match sys::readlink_at(dir.as_fd(), name.as_cstr(), &mut buf) {
                    Ok(text) => p.fds.extend(procs::classify_fd(dir.as_fd(), f.fd, text)),
                    // Closed since the pass: nothing held.
                    Err(nix::errno::Errno::ENOENT) => {}
                    Err(_) => p.fds_failed += 1,
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use listns_common::{NS_SLOTS, NsRef};

    fn task(tgid: u32, tid: u32, base: u32) -> IterTask {
        let mut ns = [NsRef::default(); NS_SLOTS];
        for (slot, r) in ns.iter_mut().enumerate() {
            r.inum = base + slot as u32;
        }
        IterTask {
            tgid,
            tid,
            ppid: 1,
            uid: 1000,
            flags: 0,
            _pad: 0,
            comm: *b"sleep\0\0\0\0\0\0\0\0\0\0\0",
            ns,
        }
    }

    #[test]
    fn tasks_become_processes_with_their_odd_threads_in_pid_order() {
        let mut odd = task(10, 12, 100);
        odd.ns[SLOT_NET].inum = 999;
        let pass = Pass {
            tasks: vec![task(20, 20, 100), task(10, 11, 100), odd, task(10, 10, 100)],
            files: vec![
                IterFile {
                    tgid: 10,
                    fd: 3,
                    kind: FILE_NS,
                    ns_type: libc::CLONE_NEWUTS as u32,
                    inum: 555,
                    net: 0,
                },
                IterFile {
                    tgid: 10,
                    fd: 4,
                    kind: FILE_SOCKET,
                    ns_type: 0,
                    inum: 77,
                    net: 103,
                },
            ],
            files_seen: 9,
        };
        let root = std::fs::File::open("/").unwrap();
        let reads = reads(root.as_fd(), &pass);
        let pids: Vec<u32> = reads.iter().map(|r| r.0).collect();
        assert_eq!(pids, [10, 20]);
        let p = reads[0].1.as_ref().unwrap();
        assert_eq!(p.nthreads, 3);
        assert_eq!(p.threads_seen, 2);
        assert_eq!(p.stat.as_ref().unwrap().comm, b"sleep");
        // Only the thread whose netns differs; links in /proc's order.
        assert_eq!(p.threads.len(), 1);
        assert_eq!(p.threads[0].0, 12);
        assert_eq!(p.threads[0].1[1], 999);
        assert_eq!(p.links[0], 100 + SLOT_MNT as u64);
        assert_eq!(p.links[3], 100 + SLOT_USER as u64);
        assert_eq!(
            p.fds,
            [
                FdSeen::Ns {
                    fd: 3,
                    ty: NsType::Uts,
                    inum: 555
                },
                FdSeen::Socket {
                    fd: 4,
                    inode: 77,
                    net: 103
                }
            ]
        );
    }

    #[test]
    fn a_process_with_no_readable_namespace_is_gone_as_in_proc() {
        let mut zombie = task(30, 30, 0);
        zombie.ns = [NsRef::default(); NS_SLOTS];
        let pass = Pass {
            tasks: vec![zombie],
            ..Default::default()
        };
        let root = std::fs::File::open("/").unwrap();
        let reads = reads(root.as_fd(), &pass);
        assert!(matches!(reads[0].1, Err(Failure::Gone)));
    }
}
