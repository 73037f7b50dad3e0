//! The snapshot: every namespace on the host and what holds it.
//!
//! This file runs the steps in order; each lives in its own file:
//! 1. processes, threads and fds (`procs`), read by a pool of threads
//!    (`workers`) and folded into sightings (`merge`);
//! 2. sockets asked for their netns (`sockets`), and tun/tap fds for
//!    their device's (`tun`);
//! 3. nsfs bind mounts in every mount namespace (`bindmounts`, parsed by
//!    `mounts`);
//! 4. `ip netns` entries (`netns`), then the mounts of mount namespaces
//!    that no process is in, through a child that enters them (`mntns`);
//! 5. ids, owners and parents (`hierarchy`), and NETNSID of each network
//!    namespace opened on the way (`netnsid`); netns ids that name no
//!    namespace found (`nsid_tables`);
//! 6. which namespaces are the host's (`initial`);
//! 7. command lines and containers of the processes shown (`details`,
//!    `container`).
//!
//! What was read and what was not is counted in `crate::stats`.
//!
//! The procfs root is a parameter: unit tests hand in fixture trees. The
//! ioctls run only on fds that really open, so on a fixture tree they fail
//! and are counted. A process that vanishes or refuses is skipped and
//! counted, never fatal.

pub mod attribution;
mod bindmounts;
pub mod container;
mod details;
mod fdinfo;
pub mod hierarchy;
pub mod host;
pub mod initial;
mod iter;
mod merge;
mod mntns;
pub mod mounts;
pub mod netns;
pub mod netnsid;
mod nsid_tables;
pub mod procs;
pub mod runtime;
pub mod sockets;
mod tun;
mod workers;

use std::{
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::PathBuf,
};

use crate::{
    inventory::{Holder, Inventory, NetnsId},
    ns::NsType,
    sys,
};
use procs::Failure;

pub use crate::stats::{InitialSource, ScanPass, ScanStats};
pub use details::Details;

/// What cannot be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open the procfs root {path}")]
    ProcRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the iterator scan (--scan=iter) cannot run: {0} (--scan=proc reads /proc instead)")]
    Iter(String),
}

/// Which pass reads processes, threads and fds (step 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanSource {
    /// The kernel's iterators where this kernel and these privileges allow
    /// them, else /proc (saying why, once).
    #[default]
    Auto,
    /// /proc only.
    Proc,
    /// The kernel's iterators only: an error where they cannot run.
    Iter,
}

/// `--scan=auto` reads /proc on hosts with fewer tasks (processes and
/// threads) than this: the kernel pass has a fixed cost (aya reading the
/// kernel's BTF twice to load two programs: ~50 ms on a 2-CPU VM), which
/// /proc's 30-60 µs per process costs at 1,000 to 1,700 processes
/// (BENCHMARKS.md).
pub const ITER_MIN_TASKS: usize = 2000;

/// Why the iterators did not run, once this process knows: they are not
/// tried again (a watcher's rescans), and it is said once.
static ITER_REFUSED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Configures and runs a scan.
#[derive(Clone, Debug)]
pub struct Scanner {
    proc_root: PathBuf,
    netns_dirs: Vec<PathBuf>,
    /// Threads that read processes (at least 1).
    workers: usize,
    details: Details,
    /// Whether a helper thread may enter every network namespace found to
    /// read its netns id table (not for a watcher's scans: [`Self::watching`]).
    enter_netns: bool,
    source: ScanSource,
    /// The kernel's BTF, for the iterator pass's offsets.
    btf: PathBuf,
}

impl Scanner {
    /// A scanner of the procfs at `proc_root`, with `ip netns` entries
    /// looked for in /run/netns and /var/run/netns.
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        Scanner {
            proc_root: proc_root.into(),
            netns_dirs: vec!["/run/netns".into(), "/var/run/netns".into()],
            workers: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            details: Details::default(),
            enter_netns: true,
            source: ScanSource::default(),
            btf: "/sys/kernel/btf/vmlinux".into(),
        }
    }

    /// Which pass reads processes, threads and fds.
    pub fn source(mut self, source: ScanSource) -> Self {
        self.source = source;
        self
    }

    /// The kernel's BTF file (for the iterator pass).
    pub fn btf(mut self, btf: impl Into<PathBuf>) -> Self {
        self.btf = btf.into();
        self
    }

    /// For the scans of a watcher, whose tracer reports every setns(2):
    /// only the scanner's own netns id table is read, without entering the
    /// others. Entering them would make the watcher report its own joins
    /// and leaves, and with a small ring buffer its rescan after lost
    /// records would overflow it again, rescan after rescan.
    pub fn watching(mut self) -> Self {
        self.enter_netns = false;
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
        let mut stats = ScanStats {
            live: is_live(root.as_fd()),
            host_view: host::check(&self.proc_root).is_none(),
            ..Default::default()
        };
        let mut inv = Inventory::new();

        // 1. Processes, threads and fds, read in parallel (or by the
        // kernel's iterators), merged in pid order.
        let phase = |name: &str| {
            log::debug!(
                "scan: {name} done at {:.1} ms",
                start.elapsed().as_secs_f64() * 1e3
            )
        };
        let mut files_seen = None;
        let reads = match self.iter_pass(root.as_fd(), &mut stats)? {
            Some(pass) => {
                phase("kernel pass");
                files_seen = Some(pass.files_seen as usize);
                iter::reads(root.as_fd(), &pass)
            }
            None => {
                let pids = sys::list_numbers(root.as_fd()).map_err(|e| root_err(e.into()))?;
                phase("listing");
                let details = self.details;
                let reads = workers::read_all(root.as_fd(), &pids, self.workers, |pid| {
                    details.eager_stat(pid)
                });
                pids.into_iter().zip(reads).collect()
            }
        };
        phase("processes");
        let mut merged = merge::Merged::default();
        for (pid, r) in reads {
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
        if let Some(n) = files_seen {
            stats.fds = n;
        }
        for ((ty, inum), holders) in std::mem::take(&mut merged.sightings) {
            let ns = inv.entry(ty, inum, None).1;
            if ns.holders.is_empty() {
                // Collecting sorts once and builds the tree in bulk; inserting
                // one by one searched the tree for each of ~80,000 holders.
                ns.holders = holders.into_iter().collect();
            } else {
                ns.holders.extend(holders);
            }
        }
        phase("merge");
        let mut extra = hierarchy::Extra::default();

        // 2. Sockets.
        if stats.live && !merged.sockets.by_inode.is_empty() {
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

        // 2b. tun/tap fds: the netns of their device.
        if stats.live && !merged.tuns.is_empty() {
            let (answers, failed) = tun::probe(&merged.tuns);
            stats.tun_fds = answers.len();
            stats.tun_failed = failed;
            for a in answers {
                let known = inv.by_inode(NsType::Net, a.inum).is_some();
                let ns = inv.entry(NsType::Net, a.inum, a.id).1;
                ns.holders.insert(Holder::Tun {
                    pid: a.pid,
                    fd: a.fd,
                });
                if !known {
                    extra.fds.entry((NsType::Net, a.inum)).or_insert(a.netns);
                }
            }
        }

        phase("sockets");
        // 3. nsfs bind mounts, one process per mount namespace.
        let self_mnt = own_mnt_ns(root.as_fd());
        bindmounts::read(
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

        // 4b. Mount namespaces no process is in, entered by a child.
        if stats.live {
            mntns::read_unentered(
                root.as_fd(),
                &mut inv,
                &mut stats,
                &merged.mnt_reader,
                &mut extra,
            );
        }

        phase("mounts, netns");
        // 5. Ids, owners, parents.
        if stats.live {
            // NETNSID of every network namespace opened on the way (lsns's
            // column): one rtnetlink socket, requests in windows.
            let mut nsids = netnsid::Collector::new();
            let out = hierarchy::resolve(root.as_fd(), &mut inv, extra, &mut nsids);
            stats.namespaces_opened = out.opened;
            stats.namespaces_unopened = out.unopened;
            stats.netnsid_failed = nsids.failed;
            phase("ids, owners, parents");
            // Netns ids that name no namespace found.
            nsid_tables::read(&mut nsids, &mut stats, self.enter_netns);
            for (key, id) in nsids.found {
                if let Some(ns) = inv.get_mut(&key) {
                    ns.netnsid = Some(id.map_or(NetnsId::Unassigned, NetnsId::Id));
                }
            }
        } else {
            stats.namespaces_unopened = inv.len();
        }

        phase("hierarchy");
        // 6. The host's initial namespaces.
        let (initial, how) = initial::determine(&merged.candidates, &inv);
        inv.initial = initial;
        stats.initial = how;

        // 7. Command lines and containers.
        let mut names = runtime::Resolver::new("/", &self.proc_root);
        details::read(
            root.as_fd(),
            &mut inv,
            self.details,
            &mut names,
            self.workers,
        );

        phase("details");
        stats.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok((inv, stats))
    }

    /// Runs the kernel's iterators when `source` asks for them and they can
    /// run here; `None`: read /proc (with the reason in `stats.pass_note`
    /// the first time, under `Auto`).
    fn iter_pass(
        &self,
        root: BorrowedFd<'_>,
        stats: &mut ScanStats,
    ) -> Result<Option<crate::trace::iter::Pass>, ScanError> {
        match self.source {
            ScanSource::Proc => return Ok(None),
            // Below this many tasks /proc is read sooner than the
            // iterators' fixed cost is paid (BENCHMARKS.md).
            ScanSource::Auto if tasks(root).is_none_or(|n| n < ITER_MIN_TASKS) => return Ok(None),
            _ => {}
        }
        let why_not = if !stats.live || self.proc_root != std::path::Path::new("/proc") {
            Some(format!(
                "{} is not this process's live /proc, whose pids the kernel's iterators give",
                self.proc_root.display()
            ))
        } else if !stats.host_view {
            Some(
                "listns is not in the host's PID namespace, and the kernel's iterators give \
                 the host's pids"
                    .to_string(),
            )
        } else {
            ITER_REFUSED.get().cloned()
        };
        let result = match why_not {
            Some(why) => Err(why),
            None => crate::trace::iter::run(&self.btf).map_err(|e| {
                let why = e.to_string();
                // Said once, and not tried again by this process.
                let first = ITER_REFUSED.set(why.clone()).is_ok();
                if first && self.source == ScanSource::Auto {
                    stats.pass_note = Some(why.clone());
                }
                why
            }),
        };
        match (result, self.source) {
            (Ok(pass), _) => {
                stats.pass = ScanPass::Iter;
                Ok(Some(pass))
            }
            (Err(why), ScanSource::Iter) => Err(ScanError::Iter(why)),
            (Err(_), _) => Ok(None),
        }
    }

    /// Step 7 alone, on an inventory made elsewhere (a watcher's, read on
    /// the same host): command lines and containers of the processes its
    /// `details` wants, read now; a process gone since keeps what it had.
    pub fn read_details(&self, inv: &mut Inventory) -> Result<(), ScanError> {
        let root: OwnedFd = std::fs::File::open(&self.proc_root)
            .map_err(|source| ScanError::ProcRoot {
                path: self.proc_root.clone(),
                source,
            })?
            .into();
        let mut names = runtime::Resolver::new("/", &self.proc_root);
        details::read(root.as_fd(), inv, self.details, &mut names, self.workers);
        Ok(())
    }
}

/// The kernel's count of tasks (`nr_threads`, every process's threads in
/// every pid namespace): the field after the `/` in `loadavg`, one small
/// read where listing /proc takes 10 ms at 10,000 processes.
fn tasks(root: BorrowedFd<'_>) -> Option<usize> {
    let mut buf = Vec::with_capacity(64);
    sys::read_at(root, c"loadavg", &mut buf).ok()?;
    parse_loadavg_tasks(&buf)
}

fn parse_loadavg_tasks(text: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(text).ok()?;
    let field = text.split_ascii_whitespace().nth(3)?;
    field.split_once('/')?.1.parse().ok()
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

#[cfg(test)]
mod tests;
