//! Step 7 of a scan: what rows show about processes beyond their
//! namespaces (comm, ppid, command line, container), read only for the
//! processes that will be shown unless every process is wanted.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

use super::{container, procs, runtime::Resolver};
use crate::{
    inventory::{Inventory, Process},
    sys,
    text::RawText,
};

/// How much to read about each process beyond its namespaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Details {
    /// Command line and container only for the process shown for each
    /// namespace (the lowest pid), and containers of a few holders of each
    /// non-initial namespace. Cheapest.
    #[default]
    Representatives,
    /// Command line and container for every process (the classic view).
    All,
}

/// Pids up to this get their stat read in the main pass.
const EAGER_STAT_PIDS: u32 = 256;

impl Details {
    /// Whether to read /proc/PID/stat during the main pass: for every
    /// process when all details are wanted, else only for low pids, where
    /// kthreadd and the first kernel threads are (the initial namespaces
    /// are decided from them). The rest is read for the processes shown.
    pub fn eager_stat(self, pid: u32) -> bool {
        self == Details::All || pid <= EAGER_STAT_PIDS
    }
}

/// Reads command lines and containers of the processes `details` asks for;
/// containers are named by `names` (the runtimes' files, see `runtime`),
/// and keep the cgroup's `runtime:id` where nothing names them.
pub fn read(
    root: BorrowedFd<'_>,
    inv: &mut Inventory,
    details: Details,
    names: &mut Resolver,
    workers: usize,
) {
    let mut cmdline_of: Vec<u32> = Vec::new();
    let mut container_of: Vec<u32> = Vec::new();
    match details {
        Details::All => {
            cmdline_of.extend(inv.processes.keys());
            container_of.extend(inv.processes.keys());
        }
        Details::Representatives => {
            for (key, ns) in inv.iter() {
                let mut pids = ns.representative_pids();
                if let Some(first) = pids.next() {
                    cmdline_of.push(first);
                    if !inv.is_initial(key) {
                        container_of.push(first);
                        container_of.extend(pids.take(3));
                    }
                }
            }
        }
    }
    cmdline_of.sort_unstable();
    cmdline_of.dedup();
    container_of.sort_unstable();
    container_of.dedup();

    // Stat (where the main pass did not read it) and command line; the
    // files are read by `workers` threads (the CPUs are otherwise idle at
    // this point of the scan) and applied here, in pid order.
    cmdline_of.retain(|pid| inv.processes.contains_key(pid));
    let wants_stat = |pid: &u32| inv.processes.get(pid).is_some_and(|p| p.comm.is_empty());
    let jobs: Vec<(u32, bool)> = cmdline_of.iter().map(|&p| (p, wants_stat(&p))).collect();
    let read = read_parallel(&jobs, workers, |&(pid, stat), buf| {
        let stat = if stat {
            // Every process has a comm: its stat was not read in the main pass.
            read_file(root, pid, "stat", buf)
                .ok()
                .and_then(|_| procs::parse_stat(buf))
        } else {
            None
        };
        let cmdline = read_file(root, pid, "cmdline", buf)
            .ok()
            .map(|_| RawText::new(buf.strip_suffix(b"\0").unwrap_or(buf)));
        (stat, cmdline)
    });
    for (&(pid, _), (stat, cmdline)) in jobs.iter().zip(read) {
        let Some(p) = inv.processes.get_mut(&pid) else {
            continue;
        };
        if let Some(st) = stat {
            fill_from_stat(p, &st);
        }
        if let Some(c) = cmdline {
            p.cmdline = c;
        }
    }

    // Containers, from /proc/PID/cgroup (kernel threads have none).
    container_of.retain(|pid| inv.processes.get(pid).is_some_and(|p| !p.kthread));
    let read = read_parallel(&container_of, workers, |&pid, buf| {
        read_file(root, pid, "cgroup", buf)
            .ok()
            .map(|_| container::from_cgroup_file(buf))
    });
    for (&pid, found) in container_of.iter().zip(read) {
        if let (Some(p), Some(found)) = (inv.processes.get_mut(&pid), found) {
            p.container = found.map(|c| names.resolve(&c, Some(pid)));
        }
    }
}

/// Reads `/proc/PID/NAME` into `buf`.
fn read_file(root: BorrowedFd<'_>, pid: u32, name: &str, buf: &mut Vec<u8>) -> Result<(), Errno> {
    let path = std::ffi::CString::new(format!("{pid}/{name}")).map_err(|_| Errno::EINVAL)?;
    sys::read_at(root, &path, buf)
}

/// `f` over `jobs` on up to `workers` threads, each on a contiguous share;
/// the results in the order of `jobs`.
fn read_parallel<J: Sync, R: Send>(
    jobs: &[J],
    workers: usize,
    f: impl Fn(&J, &mut Vec<u8>) -> R + Sync,
) -> Vec<R> {
    // Below this many files a thread costs more than it saves.
    const MIN_PER_THREAD: usize = 64;
    let workers = workers.min(jobs.len() / MIN_PER_THREAD).max(1);
    let run = |share: &[J]| {
        let mut buf = Vec::new();
        share.iter().map(|j| f(j, &mut buf)).collect::<Vec<R>>()
    };
    if workers == 1 {
        return run(jobs);
    }
    let run = &run;
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(workers))
            .map(|share| s.spawn(move || run(share)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("details reader panicked"))
            .collect()
    })
}

pub fn fill_from_stat(p: &mut Process, st: &procs::Stat) {
    p.ppid = st.ppid;
    p.comm = RawText::new(&st.comm);
    p.kthread = st.kthread();
}
