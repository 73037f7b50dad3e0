//! The snapshot: every namespace on the host and what holds it.
//!
//! Sources, one file each: processes and threads (`procs`), their open fds
//! (in `procs`, asked further in `sockets`), nsfs bind mounts in every mount
//! namespace (`mounts`), `ip netns` entries (`netns`), and the owner/parent
//! hierarchy (`hierarchy`). Container attribution reads cgroup paths
//! (`container`); `initial` decides which namespaces are the host's.
//!
//! The procfs root is a parameter: unit tests hand in fixture trees. The
//! ioctls run only on fds that really open, so on a fixture tree they fail
//! and are counted. A process that vanishes or refuses is skipped and
//! counted, never fatal.

pub mod container;
pub mod hierarchy;
pub mod initial;
pub mod mounts;
pub mod netns;
pub mod netnsid;
pub mod procs;
pub mod runtime;
pub mod sockets;
mod sys;

use std::{
    collections::{BTreeMap, HashMap},
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::PathBuf,
};

use serde::Serialize;

use crate::{
    inventory::{Holder, Inventory, Process},
    ns::NsType,
    output::sanitize,
};
use procs::{Failure, FdSeen, LINKS, ProcRead};
use sys::NumName;

pub use initial::InitialSource;

/// What cannot be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open the procfs root {path}")]
    ProcRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Pids up to this get their stat read in the main pass.
const EAGER_STAT_PIDS: u32 = 256;

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

/// Configures and runs a scan.
#[derive(Clone, Debug)]
pub struct Scanner {
    proc_root: PathBuf,
    netns_dirs: Vec<PathBuf>,
    workers: usize,
    fds: bool,
    sockets: bool,
    details: Details,
}

/// Counts of what was read and what could not be.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanStats {
    /// Whether the root is the live procfs of our own pid namespace (the
    /// ioctls and socket probes run only then).
    pub live: bool,
    pub processes: usize,
    pub processes_gone: usize,
    pub processes_denied: usize,
    /// The first few pids that refused (PID 1 does on some hosts).
    pub denied_pids: Vec<u32>,
    pub processes_failed: usize,
    /// ns links that could not be read in otherwise readable processes.
    pub links_failed: usize,
    pub threads: usize,
    pub threads_failed: usize,
    pub fds: usize,
    pub fds_failed: usize,
    /// Processes whose fd directory could not be listed.
    pub fd_dirs_failed: usize,
    pub sockets: usize,
    pub sockets_failed: usize,
    pub mount_namespaces_read: usize,
    pub mountinfo_failed: usize,
    pub mountinfo_bad_lines: usize,
    pub netns_entries: usize,
    pub netns_failed: usize,
    pub namespaces_opened: usize,
    pub namespaces_unopened: usize,
    /// How each initial namespace was determined.
    pub initial: BTreeMap<NsType, InitialSource>,
    pub elapsed_ms: f64,
}

impl ScanStats {
    /// Processes that could not be read, for whatever reason.
    pub fn processes_unread(&self) -> usize {
        self.processes_gone + self.processes_denied + self.processes_failed
    }

    /// One line for stderr saying what could not be read, or `None` when
    /// everything was.
    pub fn summary(&self) -> Option<String> {
        let fds_unread = self.fds_failed + self.fd_dirs_failed;
        let other = self.threads_failed
            + self.sockets_failed
            + self.mountinfo_failed
            + self.mountinfo_bad_lines
            + self.netns_failed
            + self.links_failed;
        if self.processes_unread() == 0 && fds_unread == 0 && other == 0 {
            return None;
        }
        let mut line = format!(
            "could not read {} of {} processes ({} exited, {} denied, {} other), {} fds ({} fd directories)",
            self.processes_unread(),
            self.processes + self.processes_unread(),
            self.processes_gone,
            self.processes_denied,
            self.processes_failed,
            self.fds_failed + self.fd_dirs_failed,
            self.fd_dirs_failed,
        );
        if !self.denied_pids.is_empty() {
            let pids: Vec<String> = self.denied_pids.iter().map(u32::to_string).collect();
            let more = if self.processes_denied > pids.len() {
                ", ..."
            } else {
                ""
            };
            line.push_str(&format!(" (denied: pid {}{more})", pids.join(", ")));
        }
        for (n, what) in [
            (self.threads_failed, "threads"),
            (self.links_failed, "ns links"),
            (self.sockets_failed, "sockets"),
            (self.mountinfo_failed, "mountinfo files"),
            (self.mountinfo_bad_lines, "mountinfo lines"),
            (self.netns_failed, "netns entries"),
        ] {
            if n > 0 {
                line.push_str(&format!(", {n} {what}"));
            }
        }
        if self.processes_denied + self.fd_dirs_failed > 0 && !nix::unistd::geteuid().is_root() {
            line.push_str("; not root: namespaces of other users' processes, their fds and sockets are missing");
        }
        Some(line)
    }
}

impl Scanner {
    /// A scanner of the procfs at `proc_root`, with `ip netns` entries
    /// looked for in /run/netns and /var/run/netns.
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        Scanner {
            proc_root: proc_root.into(),
            netns_dirs: vec!["/run/netns".into(), "/var/run/netns".into()],
            workers: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            fds: true,
            sockets: true,
            details: Details::default(),
        }
    }

    /// Where to look for `ip netns` entries.
    pub fn netns_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.netns_dirs = dirs;
        self
    }

    /// Threads that read processes (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Whether to read every process's fds (and so find fd- and socket-held namespaces).
    pub fn fds(mut self, on: bool) -> Self {
        self.fds = on;
        self
    }

    /// Whether to ask every socket for its netns.
    pub fn sockets(mut self, on: bool) -> Self {
        self.sockets = on;
        self
    }

    pub fn details(mut self, d: Details) -> Self {
        self.details = d;
        self
    }

    /// Runs the scan.
    pub fn scan(&self) -> Result<(Inventory, ScanStats), ScanError> {
        let start = std::time::Instant::now();
        let root_err = |source| ScanError::ProcRoot {
            path: self.proc_root.clone(),
            source,
        };
        let root: OwnedFd = std::fs::File::open(&self.proc_root)
            .map_err(root_err)?
            .into();
        let pids = sys::list_numbers(root.as_fd()).map_err(|e| root_err(e.into()))?;
        let mut stats = ScanStats {
            live: is_live(root.as_fd()),
            ..Default::default()
        };
        let mut inv = Inventory::new();

        // 1. Processes, threads and fds, read in parallel, merged in pid order.
        let phase = |name: &str| {
            log::debug!(
                "scan: {name} done at {:.1} ms",
                start.elapsed().as_secs_f64() * 1e3
            )
        };
        phase("listing");
        let reads = self.read_processes(root.as_fd(), &pids);
        phase("processes");
        let mut merged = Merged::default();
        for (r, &pid) in reads.into_iter().zip(&pids) {
            match r {
                Ok(p) => merged.add(&mut inv, &mut stats, p),
                Err(Failure::Gone) => stats.processes_gone += 1,
                Err(Failure::Denied) => {
                    stats.processes_denied += 1;
                    if stats.denied_pids.len() < 3 {
                        stats.denied_pids.push(pid);
                    }
                }
                Err(Failure::Other) => stats.processes_failed += 1,
            }
        }
        for ((ty, inum), holders) in std::mem::take(&mut merged.sightings) {
            inv.entry(ty, inum, None).1.holders.extend(holders);
        }
        phase("merge");
        let mut extra = hierarchy::Extra::default();

        // 2. Sockets.
        if stats.live && self.sockets && !merged.sockets.by_inode.is_empty() {
            let refs = std::mem::take(&mut merged.sockets);
            stats.sockets = refs.by_inode.len();
            let (answers, failed) =
                sockets::probe(refs, |inum| inv.by_inode(NsType::Net, inum).is_some());
            stats.sockets_failed = failed;
            for a in answers {
                let ns = inv.entry(NsType::Net, a.inum, a.id).1;
                ns.holders.extend(
                    a.holders
                        .iter()
                        .map(|&(pid, fd)| Holder::Socket { pid, fd }),
                );
                if let Some(fd) = a.netns {
                    extra.fds.insert((NsType::Net, a.inum), fd);
                }
            }
        }

        phase("sockets");
        // 3. nsfs bind mounts, one process per mount namespace.
        let self_mnt = own_mnt_ns(root.as_fd());
        mounts_pass(
            root.as_fd(),
            &mut inv,
            &mut stats,
            &merged.mnt_reader,
            self_mnt,
            &mut extra,
        );

        // 4. ip netns entries.
        netns::scan_dirs(
            &self.netns_dirs,
            &mut inv,
            &mut stats,
            self_mnt.map(|(_, m)| m),
            &mut extra,
        );

        phase("mounts, netns");
        // 5. Ids, owners, parents.
        if stats.live {
            let out = hierarchy::resolve(root.as_fd(), &mut inv, extra);
            stats.namespaces_opened = out.opened;
            stats.namespaces_unopened = out.unopened;
        } else {
            stats.namespaces_unopened = inv.len();
        }

        phase("hierarchy");
        // 6. The host's initial namespaces.
        let (initial, how) = initial::determine(&merged.candidates, &inv);
        inv.initial = initial;
        stats.initial = how;

        // 7. Command lines and containers.
        self.read_details(root.as_fd(), &mut inv);

        phase("details");
        stats.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok((inv, stats))
    }

    fn read_processes(&self, root: BorrowedFd<'_>, pids: &[u32]) -> Vec<Result<ProcRead, Failure>> {
        let workers = self.workers.min(pids.len().max(1));
        if workers <= 1 {
            let mut buf = Vec::new();
            return pids
                .iter()
                .map(|&pid| {
                    procs::read_process(root, pid, self.fds, self.eager_stat(pid), &mut buf)
                })
                .collect();
        }
        // Interleaved chunks keep the load even (low pids are kernel threads).
        let chunk = 64;
        let results: Vec<Vec<(usize, Result<ProcRead, Failure>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    s.spawn(move || {
                        let mut buf = Vec::new();
                        let mut out = Vec::new();
                        for (c, block) in pids.chunks(chunk).enumerate() {
                            if c % workers != w {
                                continue;
                            }
                            for (i, &pid) in block.iter().enumerate() {
                                out.push((
                                    c * chunk + i,
                                    procs::read_process(
                                        root,
                                        pid,
                                        self.fds,
                                        self.eager_stat(pid),
                                        &mut buf,
                                    ),
                                ));
                            }
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("scan worker panicked"))
                .collect()
        });
        let mut all: Vec<_> = results.into_iter().flatten().collect();
        all.sort_unstable_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// Whether to read /proc/PID/stat during the main pass: for every
    /// process when all details are wanted, else only for low pids, where
    /// kthreadd and the first kernel threads are (the initial namespaces
    /// are decided from them). The rest is read for the processes shown.
    fn eager_stat(&self, pid: u32) -> bool {
        self.details == Details::All || pid <= EAGER_STAT_PIDS
    }

    fn read_details(&self, root: BorrowedFd<'_>, inv: &mut Inventory) {
        let mut cmdline_of: Vec<u32> = Vec::new();
        let mut container_of: Vec<u32> = Vec::new();
        match self.details {
            Details::All => {
                cmdline_of.extend(inv.processes.keys());
                container_of.extend(inv.processes.keys());
            }
            Details::Representatives => {
                for (key, ns) in inv.iter() {
                    let mut pids = representative_pids(ns);
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
            if !p_has_stat(p) {
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
                p.cmdline = cmdline_text(&buf);
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
                p.container = container::from_cgroup_file(&buf);
            }
        }
    }
}

/// Whether a process's stat fields were read (every process has a comm).
fn p_has_stat(p: &Process) -> bool {
    !p.comm.is_empty()
}

fn fill_from_stat(p: &mut Process, st: &procs::Stat) {
    p.ppid = st.ppid;
    p.comm = sanitize::from_bytes(&st.comm);
    p.kthread = st.kthread();
}

/// Pids that hold a namespace, best representative first: processes whose
/// own link it is (lowest pid), then any other holder's pid.
pub fn representative_pids(ns: &crate::inventory::Namespace) -> impl Iterator<Item = u32> + '_ {
    let own = ns.holders.iter().filter_map(|h| match h {
        Holder::Process { pid, link } if !link.ends_with("_for_children") => Some(*pid),
        _ => None,
    });
    let mut rest: Vec<u32> = ns.holders.iter().filter_map(Holder::pid).collect();
    rest.sort_unstable();
    rest.dedup();
    // Holders sort by kind first, so the own-link pids come out ascending.
    own.chain(rest)
}

/// A command line as listns.py showed it: NULs as spaces, trailing ones dropped.
fn cmdline_text(raw: &[u8]) -> String {
    let trimmed = raw.strip_suffix(b"\0").unwrap_or(raw);
    let spaced: Vec<u8> = trimmed
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    sanitize::from_bytes(&spaced)
}

/// Whether `root` is the live procfs of our own pid namespace: its `self`
/// link names our pid.
fn is_live(root: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 32];
    match sys::readlink_at(root, c"self", &mut buf) {
        Ok(text) => sys::parse_u32(text) == Some(std::process::id()),
        Err(_) => false,
    }
}

/// The scanner's own mount namespace: (a pid in it, its inode), from `self`.
fn own_mnt_ns(root: BorrowedFd<'_>) -> Option<(u32, u64)> {
    let mut buf = [0u8; 64];
    let pid = sys::parse_u32(sys::readlink_at(root, c"self", &mut buf).ok()?)?;
    let text = sys::readlink_at(root, c"self/ns/mnt", &mut buf).ok()?;
    let (_, inum) = crate::ns::parse_link(text)?;
    Some((pid, inum))
}

/// Reads the nsfs mounts of each mount namespace through one of its processes.
fn mounts_pass(
    root: BorrowedFd<'_>,
    inv: &mut Inventory,
    stats: &mut ScanStats,
    readers: &HashMap<u64, (Vec<u32>, Vec<u32>)>,
    self_mnt: Option<(u32, u64)>,
    extra: &mut hierarchy::Extra,
) {
    let mut buf = Vec::new();
    let mut order: Vec<_> = readers.iter().collect();
    order.sort_unstable_by_key(|(m, _)| **m);
    for (&mnt, pids) in order {
        // Another process of the same namespace if the first one went away.
        let read = pids.0.iter().chain(&pids.1).take(3).find_map(|&pid| {
            let name = std::ffi::CString::new(format!("{pid}/mountinfo")).ok()?;
            sys::read_at(root, &name, &mut buf).ok().map(|_| pid)
        });
        let Some(pid) = read else {
            stats.mountinfo_failed += 1;
            continue;
        };
        stats.mount_namespaces_read += 1;
        let parsed = mounts::parse(&buf);
        stats.mountinfo_bad_lines += parsed.bad_lines;
        for m in parsed.mounts {
            let path = sanitize::from_bytes(&m.path);
            let ns = inv.entry(m.ty, m.inum, None).1;
            if self_mnt.map(|(_, s)| s) == Some(mnt)
                && let Some(name) = mounts::netns_name(&m.path)
                && m.ty == NsType::Net
            {
                ns.netns_names.insert(sanitize::from_bytes(name));
            }
            ns.holders.insert(Holder::BindMount { path, mnt_ns: mnt });
            extra
                .paths
                .entry((m.ty, m.inum))
                .or_default()
                .push(hierarchy::via_root(pid, &m.path));
        }
    }
}

/// Accumulates per-process reads into sightings.
#[derive(Default)]
struct Merged {
    sightings: HashMap<(NsType, u64), Vec<Holder>>,
    sockets: sockets::SocketRefs,
    /// mnt namespace inode -> (processes, kernel threads) in it.
    mnt_reader: HashMap<u64, (Vec<u32>, Vec<u32>)>,
    /// Links of the processes that can tell the initial namespaces.
    candidates: initial::Candidates,
}

impl Merged {
    fn add(&mut self, inv: &mut Inventory, stats: &mut ScanStats, p: ProcRead) {
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
            self.sightings
                .entry((ty, inum))
                .or_default()
                .push(Holder::Process {
                    pid,
                    link: name.into(),
                });
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
                    self.sightings
                        .entry((ty, inum))
                        .or_default()
                        .push(Holder::Thread {
                            pid,
                            tid: *tid,
                            link: name.into(),
                        });
                }
            }
        }
        for f in &p.fds {
            match *f {
                FdSeen::Ns { fd, ty, inum } => {
                    self.sightings
                        .entry((ty, inum))
                        .or_default()
                        .push(Holder::Fd { pid, fd });
                }
                FdSeen::Socket { fd, inode } => self.sockets.add(inode, pid, fd),
            }
        }
        let mut proc = Process {
            pid,
            uid: p.uid,
            ..Default::default()
        };
        if let Some(st) = &p.stat {
            fill_from_stat(&mut proc, st);
        }
        inv.processes.insert(pid, proc);
    }
}

/// Convenience: scan the live /proc with default settings.
pub fn scan_host() -> Result<(Inventory, ScanStats), ScanError> {
    Scanner::new("/proc").scan()
}

#[cfg(test)]
mod tests;
