//! The live tracer: the only module that touches aya.
//!
//! It resolves kernel struct offsets from BTF, loads the eBPF object
//! embedded at build time, attaches each hook it can, a syscall's enter and
//! exit hooks together or not at all (attach.rs; it says which events are
//! missing for those it cannot), seeds the kernel's map of known
//! namespaces, and hands back decoded records in batches. Lost records are
//! read from the kernel's counter and reported with every batch.

mod attach;
mod btf;
pub mod iter;
mod known;
pub mod offsets;
pub mod record;
mod tracefs;

use std::{collections::BTreeMap, os::fd::AsFd, path::PathBuf, time::Duration};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
};
use listns_common::{Config, NS_SLOTS, OFF_MISSING, RINGBUF_BYTES};
use tokio::io::unix::AsyncFd;

use crate::{
    inventory::{CgroupHierarchy, live::TaskEvent},
    ns::NsType,
};
use record::Clock;

/// The object built by listns-user/build.rs (empty under AYA_BUILD_SKIP).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/listns"));

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(
        "this binary was built without its eBPF programs (AYA_BUILD_SKIP); rebuild with `cargo xtask run`"
    )]
    NoObject,
    #[error(
        "no BTF at {0}: listns cannot locate namespaces in kernel memory on this kernel (CONFIG_DEBUG_INFO_BTF)"
    )]
    NoBtf(PathBuf),
    #[error("reading BTF: {0}")]
    Btf(String),
    #[error("this kernel's BTF lacks {0:?}, which the tracer cannot do without")]
    MissingOffsets(Vec<String>),
    #[error(
        "loading the eBPF programs was refused: the tracer needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)"
    )]
    NotPermitted(#[source] aya::EbpfError),
    #[error("loading the eBPF programs")]
    Load(#[source] aya::EbpfError),
    #[error("eBPF map {0}")]
    Map(&'static str, #[source] aya::maps::MapError),
    #[error("no hook could be attached: {0}")]
    NothingAttached(String),
    #[error("ring buffer: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "this kernel's BTF lacks task_struct.signal or signal_struct.live: following a process tree is not possible here"
    )]
    NoFollow,
    #[error("cannot follow pid {pid}: the kernel's map of followed processes refused it")]
    FollowInsert {
        pid: u32,
        #[source]
        source: aya::maps::MapError,
    },
}

/// What start-up found and did, for the user to read.
#[derive(Debug, Default, Clone)]
pub struct Status {
    /// Notes worth telling the user (tracefs mounted, no namespace ids, ...).
    pub notes: Vec<String>,
    /// Hooks that could not be attached, with the reason and what is missed.
    pub failed: Vec<String>,
    pub attached: Vec<&'static str>,
    /// The hooks (programs) that could not be attached.
    pub missing: Vec<&'static str>,
    /// Whether the kernel has 64-bit namespace ids.
    pub ns_ids: bool,
    /// Whether records carry the task's cgroup in `Options::cgroups`.
    pub cgroups: bool,
}

/// Options for loading.
#[derive(Debug, Clone)]
pub struct Options {
    /// Inode of each initial namespace (a type not in the map is unknown:
    /// every exit is then reported): exits of tasks that live only in these
    /// are not reported.
    pub initial: BTreeMap<NsType, u64>,
    /// Where the kernel's BTF is.
    pub btf: PathBuf,
    /// The hierarchy whose cgroup each record carries (container
    /// attribution); none when `None`.
    pub cgroups: Option<CgroupHierarchy>,
    /// How often the consumer polls the ring buffer.
    pub poll: Duration,
    /// Follow process trees: children of followed processes are followed
    /// (see `Tracer::follow`), and records say whether their task is.
    pub follow: bool,
    /// Size of the kernel ring buffer in bytes (a power of two, a multiple
    /// of the page size: `cli::parse_ring_bytes` checks).
    pub ring_bytes: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            initial: BTreeMap::new(),
            btf: PathBuf::from("/sys/kernel/btf/vmlinux"),
            cgroups: None,
            poll: Duration::from_millis(20),
            follow: false,
            ring_bytes: RINGBUF_BYTES,
        }
    }
}

/// Records per batch at most: with a backlog (a burst, a slow machine)
/// the loop still goes round between batches, so that it beats, publishes
/// the API's snapshots and runs the liveness checks, instead of applying
/// the whole ring buffer (20,000 records) in one go.
const BATCH_MAX: usize = 1024;

/// A batch of events from the kernel.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<TaskEvent>,
    /// Records the kernel could not write since the last batch, and
    /// program runs it skipped (included in `lost`; see `missed`).
    pub lost: u64,
    /// Of `lost`: runs of our programs the kernel skipped since the last
    /// batch (its `recursion_misses`, e.g. a program preempted while
    /// another BPF program ran on that CPU). Each may be a record never
    /// written, and no ring-buffer counter sees it.
    pub missed: u64,
    /// Records that did not decode (a bug if ever non-zero).
    pub malformed: u64,
}

pub struct Tracer {
    // Field order matters on drop: the ring buffer and maps close before the
    // object that detaches the programs.
    ring: RingBuf<MapData>,
    /// Readable when the kernel forces a wakeup (see `next_batch`).
    ring_ready: AsyncFd<std::os::fd::OwnedFd>,
    lost: PerCpuArray<MapData, u64>,
    known: BpfHashMap<MapData, u64, u8>,
    /// `known`'s map, for `BPF_MAP_DELETE_BATCH`; `None` once the kernel
    /// refused it (before 5.6), and then keys are deleted one by one.
    known_fd: Option<std::os::fd::OwnedFd>,
    followed: Option<BpfHashMap<MapData, u32, u8>>,
    lost_seen: u64,
    /// The programs' fds (owned by `_ebpf`), for their `recursion_misses`.
    prog_fds: Vec<i32>,
    missed_seen: u64,
    missed_read: std::time::Instant,
    clock: Clock,
    poll: tokio::time::Interval,
    logger: Option<tokio::task::JoinHandle<()>>,
    _ebpf: Ebpf,
    pub status: Status,
}

impl Tracer {
    /// Loads and attaches everything that this kernel allows. Must run inside
    /// a tokio runtime (the ring buffer and the log reader are async).
    pub fn start(opts: &Options) -> Result<Tracer, TraceError> {
        if OBJECT.is_empty() {
            return Err(TraceError::NoObject);
        }
        let mut status = Status::default();
        let mut resolved = offsets::resolve_file_cached(&opts.btf)?;
        if !resolved.missing.is_empty() {
            return Err(TraceError::MissingOffsets(resolved.missing));
        }
        status.ns_ids = resolved.has_ns_id();
        if let Some(h) = &opts.cgroups {
            status.cgroups = resolved.attribute_by(h);
            if !status.cgroups {
                status.notes.push(format!(
                    "this kernel's BTF does not say where a task's cgroup is ({h:?} hierarchy): \
                     containers are found from each creating process's /proc/PID/cgroup, which \
                     misses processes that exit at once"
                ));
            }
        }
        if let Some(note) = tracefs::ensure_mounted() {
            status.notes.push(note);
        }
        let mut init_inum = [0u32; NS_SLOTS];
        for (slot, inum) in init_inum.iter_mut().enumerate() {
            *inum = opts
                .initial
                .get(&NsType::of_slot(slot))
                .map_or(0, |&n| n as u32);
        }
        let mut follow = resolved.follow;
        if opts.follow {
            if follow.task_signal == OFF_MISSING || follow.signal_live == OFF_MISSING {
                return Err(TraceError::NoFollow);
            }
            follow.enabled = 1;
        }
        let config = Config {
            init_inum,
            wakeup_bytes: opts.ring_bytes / 4,
            _pad: 0,
        };
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("EVENTS", opts.ring_bytes)
            .override_global("OFFSETS", &resolved.offsets, true)
            .override_global("CONFIG", &config, true)
            .override_global("FOLLOW", &follow, true)
            .load(OBJECT)
            .map_err(|e| {
                if is_eperm(&e) {
                    TraceError::NotPermitted(e)
                } else {
                    TraceError::Load(e)
                }
            })?;
        let logger = start_logger(&mut ebpf, &mut status);
        for group in &attach::GROUPS {
            let programs = group.hooks.iter().map(|h| h.program);
            match attach::all_or_nothing(&mut ebpf, group, attach::attach, attach::unload) {
                Ok(()) => status.attached.extend(programs),
                Err(e) => {
                    status.missing.extend(programs);
                    status.failed.push(e);
                }
            }
        }
        if !status.ns_ids {
            status
                .notes
                .push(attach::inode_keys_note(&mut ebpf, &mut status.attached));
        }
        if status.attached.is_empty() {
            return Err(TraceError::NothingAttached(status.failed.join("; ")));
        }
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(TraceError::Map(
                name,
                aya::maps::MapError::InvalidName { name: name.into() },
            ))
        };
        let ring = RingBuf::try_from(take(&mut ebpf, "EVENTS")?)
            .map_err(|e| TraceError::Map("EVENTS", e))?;
        let lost = PerCpuArray::try_from(take(&mut ebpf, "LOST")?)
            .map_err(|e| TraceError::Map("LOST", e))?;
        let known = take(&mut ebpf, "KNOWN")?;
        // A second fd of the same map, for batched deletes (aya has none).
        let known_fd = match &known {
            aya::maps::Map::HashMap(d) | aya::maps::Map::LruHashMap(d) => {
                std::os::fd::AsFd::as_fd(d.fd()).try_clone_to_owned().ok()
            }
            _ => None,
        };
        let known = BpfHashMap::try_from(known).map_err(|e| TraceError::Map("KNOWN", e))?;
        let followed = if opts.follow {
            Some(
                BpfHashMap::try_from(take(&mut ebpf, "FOLLOWED")?)
                    .map_err(|e| TraceError::Map("FOLLOWED", e))?,
            )
        } else {
            None
        };
        let prog_fds = ebpf
            .programs()
            .filter_map(|(_, p)| p.fd().ok())
            .map(|fd| std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(fd)))
            .collect();
        let mut poll = tokio::time::interval(opts.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Tracer {
            ring_ready: crate::sys::readiness(ring.as_fd())?,
            ring,
            lost,
            known,
            known_fd,
            followed,
            lost_seen: 0,
            prog_fds,
            missed_seen: 0,
            missed_read: std::time::Instant::now(),
            clock: Clock::now(),
            poll,
            logger,
            _ebpf: ebpf,
            status,
        })
    }

    /// Follows process `pid` and, from now on, every process it forks (and
    /// they fork, and so on), wherever they re-parent. Only when started
    /// with `Options::follow`.
    pub fn follow(&mut self, pid: u32) -> Result<(), TraceError> {
        let Some(map) = self.followed.as_mut() else {
            return Err(TraceError::NoFollow);
        };
        map.insert(pid, 1, 0)
            .map_err(|source| TraceError::FollowInsert { pid, source })
    }

    /// What the ring buffer holds right now, without waiting (for a last
    /// drain before exit).
    pub fn drain_now(&mut self) -> Batch {
        let mut batch = Batch::default();
        self.drain_into(&mut batch, usize::MAX);
        batch.missed = self.take_missed(true);
        batch.lost = self.take_lost() + batch.missed;
        batch
    }

    /// Decodes at most `max` records into `batch`.
    fn drain_into(&mut self, batch: &mut Batch, max: usize) {
        while batch.events.len() < max
            && let Some(item) = self.ring.next()
        {
            match record::decode(&item, &self.clock) {
                Ok(ev) => batch.events.push(ev),
                Err(e) => {
                    log::warn!("malformed record: {e}");
                    batch.malformed += 1;
                }
            }
        }
    }

    /// Waits for the next non-empty batch: records are submitted without
    /// waking us (a wakeup per record costs more than the record), so this
    /// drains on a short timer, or at once when the kernel forces a wakeup
    /// because the buffer is filling up.
    pub async fn next_batch(&mut self) -> Result<Batch, TraceError> {
        loop {
            let mut batch = Batch::default();
            self.drain_into(&mut batch, BATCH_MAX);
            batch.missed = self.take_missed(false);
            batch.lost = self.take_lost() + batch.missed;
            if !batch.events.is_empty() || batch.lost > 0 || batch.malformed > 0 {
                return Ok(batch);
            }
            tokio::select! {
                guard = self.ring_ready.readable() => guard?.clear_ready(),
                _ = self.poll.tick() => {}
            }
        }
    }

    /// Program runs the kernel skipped since the last call, from the
    /// `recursion_misses` line of each program fd's fdinfo (Linux 5.12+;
    /// 0 where absent). Read at most every 100 ms unless `now`.
    fn take_missed(&mut self, now: bool) -> u64 {
        if !now && self.missed_read.elapsed() < Duration::from_millis(100) {
            return 0;
        }
        self.missed_read = std::time::Instant::now();
        let total: u64 = self
            .prog_fds
            .iter()
            .map(|fd| {
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                    .ok()
                    .and_then(|t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix("recursion_misses:"))
                            .and_then(|v| v.trim().parse::<u64>().ok())
                    })
                    .unwrap_or(0)
            })
            .sum();
        let new = total.saturating_sub(self.missed_seen);
        self.missed_seen = total;
        new
    }

    /// Records lost since the last call.
    fn take_lost(&mut self) -> u64 {
        let total: u64 = match self.lost.get(&0, 0) {
            Ok(values) => values.iter().sum(),
            Err(e) => {
                log::warn!("reading the lost-record counter: {e}");
                return 0;
            }
        };
        let new = total.saturating_sub(self.lost_seen);
        self.lost_seen = total;
        new
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Some(logger) = self.logger.take() {
            logger.abort();
        }
    }
}

/// Forwards the programs' own diagnostics (aya-log) to the `log` crate.
fn start_logger(ebpf: &mut Ebpf, status: &mut Status) -> Option<tokio::task::JoinHandle<()>> {
    let logger = aya_log::EbpfLogger::init(ebpf)
        .map_err(|e| e.to_string())
        .and_then(|l| {
            let ready = crate::sys::readiness(l.as_fd()).map_err(|e| e.to_string())?;
            Ok((l, ready))
        });
    let (mut logger, ready) = match logger {
        Ok(l) => l,
        Err(e) => {
            status
                .notes
                .push(format!("eBPF diagnostics unavailable: {e}"));
            return None;
        }
    };
    Some(tokio::spawn(async move {
        while let Ok(mut guard) = ready.readable().await {
            logger.flush();
            guard.clear_ready();
        }
    }))
}

fn is_eperm(e: &aya::EbpfError) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.raw_os_error() == Some(libc::EPERM)
        {
            return true;
        }
        source = err.source();
    }
    e.to_string().contains("Operation not permitted")
}
