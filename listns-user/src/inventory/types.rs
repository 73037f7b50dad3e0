//! The inventory's data: a namespace's identity, what holds it, who made
//! it, and the processes and containers the scan or the tracer saw.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::{ns::NsType, text::RawText};

/// Identity of one namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NsKey {
    #[serde(rename = "type")]
    pub ty: NsType,
    #[serde(rename = "ns")]
    pub inum: u64,
    /// `NS_GET_ID` / `ns_common.ns_id`; `None` where the kernel has no ids.
    pub id: Option<u64>,
}

impl NsKey {
    pub fn new(ty: NsType, inum: u64, id: Option<u64>) -> Self {
        NsKey { ty, inum, id }
    }
}

/// One thing that keeps a namespace alive. Ordered by process first
/// (holders without one last), then kind: everything a process holds is
/// one range, which an exit removes with one look-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A process (thread-group leader) has it in `/proc/PID/ns/<link>`;
    /// `link` is the link's name (`net`, `pid_for_children`, ...).
    Process { pid: u32, link: &'static str },
    /// A thread whose own namespace differs from its thread-group leader's.
    Thread {
        pid: u32,
        tid: u32,
        link: &'static str,
    },
    /// An open nsfs file descriptor.
    Fd { pid: u32, fd: i32 },
    /// An nsfs bind mount, at `path` as seen in mount namespace `mnt_ns`.
    BindMount { path: RawText, mnt_ns: u64 },
    /// A socket created in it (found with SIOCGSKNS).
    Socket { pid: u32, fd: i32 },
    /// A tun/tap fd whose device lives in it (found with TUNGETDEVNETNS):
    /// the device, and so the netns, lives as long as the fd.
    Tun { pid: u32, fd: i32 },
    /// An io_uring whose registered (fixed) files include an nsfs file of
    /// it, as the ring's fdinfo `UserFiles:` shows: the file lives as long
    /// as the ring, even with its own fd closed, and nothing reopens it.
    IoUring { pid: u32, fd: i32 },
    /// A namespace it owns (user namespaces) or its child (pid and user
    /// namespaces), which keeps a reference to it.
    Child { ty: NsType, ns: u64 },
}

impl Holder {
    /// The short name used in the HOLDERS column and the JSON `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Holder::Process { .. } => "process",
            Holder::Thread { .. } => "thread",
            Holder::Fd { .. } => "fd",
            Holder::BindMount { .. } => "bind-mount",
            Holder::Socket { .. } => "socket",
            Holder::Tun { .. } => "tun",
            Holder::IoUring { .. } => "io-uring",
            Holder::Child { .. } => "child",
        }
    }

    /// The process this holder belongs to, if any.
    pub fn pid(&self) -> Option<u32> {
        match *self {
            Holder::Process { pid, .. }
            | Holder::Thread { pid, .. }
            | Holder::Fd { pid, .. }
            | Holder::Socket { pid, .. }
            | Holder::Tun { pid, .. }
            | Holder::IoUring { pid, .. } => Some(pid),
            Holder::BindMount { .. } | Holder::Child { .. } => None,
        }
    }

    /// Its place in the order before the fields of its kind: the pid (none
    /// last), then the kind. One match, as this runs for every comparison
    /// in every holder set.
    fn head(&self) -> u64 {
        // Holders without a pid come after every pid, even u32::MAX.
        const NONE: u64 = 1 << 32;
        let (pid, rank) = match *self {
            Holder::Process { pid, .. } => (u64::from(pid), 0),
            Holder::Thread { pid, .. } => (u64::from(pid), 1),
            Holder::Fd { pid, .. } => (u64::from(pid), 2),
            Holder::BindMount { .. } => (NONE, 3),
            Holder::Socket { pid, .. } => (u64::from(pid), 4),
            Holder::Tun { pid, .. } => (u64::from(pid), 5),
            Holder::Child { .. } => (NONE, 6),
            Holder::IoUring { pid, .. } => (u64::from(pid), 7),
        };
        (pid << 8) | rank
    }
}

impl Ord for Holder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use Holder::*;
        self.head()
            .cmp(&other.head())
            .then_with(|| match (self, other) {
                (Process { link: a, .. }, Process { link: b, .. }) => a.cmp(b),
                (
                    Thread {
                        tid: a, link: l, ..
                    },
                    Thread {
                        tid: b, link: m, ..
                    },
                ) => (a, l).cmp(&(b, m)),
                (Fd { fd: a, .. }, Fd { fd: b, .. })
                | (Socket { fd: a, .. }, Socket { fd: b, .. })
                | (Tun { fd: a, .. }, Tun { fd: b, .. })
                | (IoUring { fd: a, .. }, IoUring { fd: b, .. }) => a.cmp(b),
                (BindMount { path: a, mnt_ns: m }, BindMount { path: b, mnt_ns: n }) => {
                    (a, m).cmp(&(b, n))
                }
                (Child { ty: a, ns: m }, Child { ty: b, ns: n }) => (a, m).cmp(&(b, n)),
                // Different kinds differ in `head`: decided above.
                _ => std::cmp::Ordering::Equal,
            })
    }
}

impl PartialOrd for Holder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Who created a namespace, as the tracer saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub pid: u32,
    pub tid: u32,
    pub comm: RawText,
    /// `clone` (any fork/clone/clone3), `unshare` or `setns`.
    pub syscall: &'static str,
    pub flags: u64,
    /// Wall-clock time of creation, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The creator's container, when it was still there to be asked.
    pub container: Option<Container>,
}

/// A network namespace's NETNSID as rtnetlink answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetnsId {
    Id(u32),
    /// No id assigned (lsns prints `unassigned`).
    Unassigned,
}

/// Liveness of a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Alive,
    /// Found dead; `since_ns` is wall-clock nanoseconds since the epoch.
    Gone { since_ns: u64 },
}

/// Everything known about one namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    pub holders: BTreeSet<Holder>,
    /// The owning user namespace (lsns ONS).
    pub owner: Option<NsKey>,
    /// The parent namespace, for pid and user namespaces (lsns PNS).
    pub parent: Option<NsKey>,
    /// For a user namespace: the effective uid of its creator
    /// (`NS_GET_OWNER_UID`), where the scan could open it.
    pub creator_uid: Option<u32>,
    /// `ip netns` names (entries of /run/netns and /var/run/netns).
    pub netns_names: BTreeSet<RawText>,
    /// net only: the id the scanner's network namespace assigned to it
    /// (`RTM_GETNSID`, lsns's NETNSID); `None` when it was not asked.
    pub netnsid: Option<NetnsId>,
    pub origin: Option<Origin>,
    pub state: State,
    /// Alive, but the latest scan found nothing holding it: kept alive by
    /// a reference no scan can see (set by `lifecycle`).
    pub hidden: bool,
}

impl Namespace {
    /// Pids that hold it, best representative first: processes whose own
    /// link it is (lowest pid), then any other holder's pid. The first is
    /// the PID column's.
    pub fn representative_pids(&self) -> impl Iterator<Item = u32> + '_ {
        let own = self.holders.iter().filter_map(|h| match h {
            Holder::Process { pid, link } if !link.ends_with("_for_children") => Some(*pid),
            _ => None,
        });
        let mut rest: Vec<u32> = self.holders.iter().filter_map(Holder::pid).collect();
        rest.sort_unstable();
        rest.dedup();
        // Holders sort by kind first, so the own-link pids come out ascending.
        own.chain(rest)
    }
}

/// The cgroup hierarchy the tracer reads each task's cgroup in, for
/// container attribution: the unified (cgroup2) one, or on a host with v1
/// controllers one of them (runtimes put a container in every hierarchy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupHierarchy {
    Unified,
    /// A v1 controller by name (`memory`, `pids`, ...).
    Controller(String),
}

/// A container a process is in: the runtime and id that its cgroup path
/// claims, and what users call it where the runtime's files say
/// (`scan::runtime`). Serialized as the JSON `container` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Container {
    /// docker, containerd, kubernetes, podman, lxc, systemd-nspawn, ...
    pub runtime: &'static str,
    pub id: String,
    /// The engine's name (`podman --name`, `docker --name`, nerdctl), or
    /// under Kubernetes the container's name in its pod; null when unknown.
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_container: Option<String>,
}

impl Container {
    /// A bare claim (nothing named yet).
    pub fn new(runtime: &'static str, id: impl Into<String>) -> Self {
        Container {
            runtime,
            id: id.into(),
            ..Default::default()
        }
    }

    /// The first 12 characters of the id, as the engines print it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// What a table shows: `name (shortid)`, `ns/pod/container (shortid)`
    /// under Kubernetes, or `runtime:shortid` when nothing named it. Raw:
    /// the names come from whoever started the container, so output
    /// escapes this.
    pub fn label(&self) -> String {
        let id = self.short_id();
        match (&self.k8s_namespace, &self.pod, &self.name) {
            (Some(ns), Some(pod), Some(c)) => format!("{ns}/{pod}/{c} ({id})"),
            (Some(ns), Some(pod), None) => format!("{ns}/{pod} ({id})"),
            (_, _, Some(name)) => format!("{name} ({id})"),
            _ => format!("{}:{id}", self.runtime),
        }
    }

    /// Whether `what` names this container: its name, its pod's name, or
    /// its id or an id prefix of at least 4 characters.
    pub fn matches(&self, what: &str) -> bool {
        (what.len() >= 4 && self.id.starts_with(what))
            || self.name.as_deref() == Some(what)
            || self.pod.as_deref() == Some(what)
    }
}

/// What the scan or the tracer knows of a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    /// `comm`, as the kernel gave it.
    pub comm: RawText,
    /// Command line as the kernel gave it (arguments separated by NULs,
    /// without the last NUL); empty for kernel threads.
    pub cmdline: RawText,
    pub container: Option<Container>,
    pub kthread: bool,
}
