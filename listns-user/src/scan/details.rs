//! Step 7 of a scan: what rows show about processes beyond their
//! namespaces (comm, ppid, command line, container), read only for the
//! processes that will be shown unless every process is wanted.

use std::os::fd::{AsFd, BorrowedFd};

use super::{
    container, procs,
    runtime::Resolver,
    sys::{self, NumName},
};
use crate::{
    inventory::{Inventory, Process},
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
pub fn read(root: BorrowedFd<'_>, inv: &mut Inventory, details: Details, names: &mut Resolver) {
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
    let mut buf = Vec::new();
    for pid in cmdline_of {
        let Some(p) = inv.processes.get_mut(&pid) else {
            continue;
        };
        if p.comm.is_empty() {
            // Its stat was not read in the main pass (every process has a comm).
            let name = NumName::new(pid as u64);
            let stat = sys::open_path_dir(root, name.as_cstr())
                .and_then(|d| sys::read_at(d.as_fd(), c"stat", &mut buf))
                .ok()
                .and_then(|_| procs::parse_stat(&buf));
            if let Some(st) = stat {
                fill_from_stat(p, &st);
            }
        }
        let name = format!("{pid}/cmdline");
        if let Ok(c) = std::ffi::CString::new(name)
            && sys::read_at(root, &c, &mut buf).is_ok()
        {
            p.cmdline = RawText::new(buf.strip_suffix(b"\0").unwrap_or(&buf));
        }
    }
    for pid in container_of {
        let Some(p) = inv.processes.get_mut(&pid) else {
            continue;
        };
        if p.kthread {
            continue;
        }
        let name = format!("{pid}/cgroup");
        if let Ok(c) = std::ffi::CString::new(name)
            && sys::read_at(root, &c, &mut buf).is_ok()
        {
            p.container = container::from_cgroup_file(&buf).map(|c| names.resolve(&c, Some(pid)));
        }
    }
}

pub fn fill_from_stat(p: &mut Process, st: &procs::Stat) {
    p.ppid = st.ppid;
    p.comm = RawText::new(&st.comm);
    p.kthread = st.kthread();
}
