//! The inventory: every namespace known on the host and what holds it.
//! Pure data, no I/O: the scan fills it, trace events update it, output
//! renders it.
//!
//! Identity: a namespace is its type plus inode plus, where the kernel has
//! one, its 64-bit id. Inode numbers are reused by the kernel, ids are not;
//! without ids (kernels before 6.18) a reused inode looks like the same
//! namespace, which is the cost the README describes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::{ns::NsType, text::RawText};

pub mod followed;
pub mod live;

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
            | Holder::Tun { pid, .. } => Some(pid),
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
                | (Tun { fd: a, .. }, Tun { fd: b, .. }) => a.cmp(b),
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

    /// Thread-group leaders that have it in one of their links, lowest first.
    pub fn pids(&self) -> BTreeSet<u32> {
        self.holders
            .iter()
            .filter_map(|h| match h {
                Holder::Process { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect()
    }
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

/// The whole inventory.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    namespaces: BTreeMap<NsKey, Namespace>,
    /// The live namespace that currently has each (type, inode).
    by_inode: HashMap<(NsType, u64), NsKey>,
    pub processes: BTreeMap<u32, Process>,
    /// Inode of each initial namespace (the host's defaults).
    pub initial: BTreeMap<NsType, u64>,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves a (type, inode, maybe id) sighting to the key stored in the
    /// inventory: a sighting without an id matches the live namespace with
    /// that inode; one with an id never matches a namespace with another id.
    pub fn resolve(&self, ty: NsType, inum: u64, id: Option<u64>) -> NsKey {
        match self.by_inode.get(&(ty, inum)) {
            // Two live namespaces never share an inode, so a sighting without
            // an id, or a stored entry without one, is that namespace.
            Some(k) if id.is_none() || k.id.is_none() || k.id == id => *k,
            _ => NsKey::new(ty, inum, id),
        }
    }

    /// The namespace for a sighting, created if new. A sighting that carries
    /// an id upgrades an entry known by inode only.
    pub fn entry(&mut self, ty: NsType, inum: u64, id: Option<u64>) -> (NsKey, &mut Namespace) {
        let (key, _, ns) = self.sighting(ty, inum, id);
        (key, ns)
    }

    /// `entry`, and whether the inventory knew the namespace before.
    pub fn sighting(
        &mut self,
        ty: NsType,
        inum: u64,
        id: Option<u64>,
    ) -> (NsKey, bool, &mut Namespace) {
        let mut key = self.resolve(ty, inum, id);
        if key.id.is_none() && id.is_some() {
            let ns = self.namespaces.remove(&key).unwrap_or_default();
            key.id = id;
            self.namespaces.insert(key, ns);
        }
        // A new id on a known inode: the kernel reused the inode of a dead
        // namespace. The index moves to the new one; the old entry stays
        // until the lifecycle confirms the death and reports it.
        self.by_inode.insert((ty, inum), key);
        match self.namespaces.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => (key, true, e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) => {
                (key, false, e.insert(Namespace::default()))
            }
        }
    }

    pub fn get(&self, key: &NsKey) -> Option<&Namespace> {
        self.namespaces.get(key)
    }

    pub fn get_mut(&mut self, key: &NsKey) -> Option<&mut Namespace> {
        self.namespaces.get_mut(key)
    }

    /// The live namespace with this type and inode.
    pub fn by_inode(&self, ty: NsType, inum: u64) -> Option<NsKey> {
        self.by_inode.get(&(ty, inum)).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NsKey, &Namespace)> {
        self.namespaces.iter()
    }

    pub fn len(&self) -> usize {
        self.namespaces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// Adds a holder; returns true when it was new.
    pub fn add_holder(&mut self, ty: NsType, inum: u64, id: Option<u64>, holder: Holder) -> bool {
        self.entry(ty, inum, id).1.holders.insert(holder)
    }

    /// Whether this is one of the host's initial namespaces.
    pub fn is_initial(&self, key: &NsKey) -> bool {
        self.initial.get(&key.ty) == Some(&key.inum)
    }

    /// Forgets a namespace entirely.
    pub fn forget(&mut self, key: &NsKey) {
        self.namespaces.remove(key);
        if self.by_inode.get(&(key.ty, key.inum)) == Some(key) {
            self.by_inode.remove(&(key.ty, key.inum));
        }
    }
}

impl Inventory {
    /// Takes in a fresh scan (after lost records, or as the tracer-less
    /// fallback): holders come from the scan, what the tracer learnt
    /// (origins) stays. A namespace the scan no longer finds keeps its entry
    /// with no holders, for the lifecycle to decide on.
    pub fn merge_rescan(&mut self, scan: Inventory) -> Rescan {
        let mut before_held = BTreeSet::new();
        for (key, ns) in self.namespaces.iter_mut() {
            if !ns.holders.is_empty() {
                before_held.insert(*key);
            }
            ns.holders.clear();
        }
        let mut out = Rescan::default();
        for (key, found) in scan.namespaces {
            // A remembered gone namespace found alive is a new one that
            // reuses its inode (kernels without ids): discovered, and the
            // dead one's creator is not its creator.
            let alive = self
                .get(&self.resolve(key.ty, key.inum, key.id))
                .map(|ns| ns.state == State::Alive);
            let (key, ns) = self.entry(key.ty, key.inum, key.id);
            if alive != Some(true) {
                out.discovered.push(key);
            }
            let (origin, hidden) = match alive {
                Some(false) => (None, false),
                _ => (ns.origin.take(), ns.hidden),
            };
            *ns = found;
            ns.origin = ns.origin.take().or(origin);
            // Found holding something: no longer hidden.
            ns.hidden = hidden && ns.holders.is_empty();
        }
        self.processes = scan.processes;
        self.initial = scan.initial;
        out.unheld = before_held
            .into_iter()
            .filter(|k| {
                self.get(k)
                    .is_some_and(|ns| ns.holders.is_empty() && ns.state == State::Alive)
            })
            .collect();
        out
    }
}

/// What a rescan changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rescan {
    /// Namespaces the inventory did not have.
    pub discovered: Vec<NsKey>,
    /// Namespaces that had holders and now have none.
    pub unheld: Vec<NsKey>,
}

impl Inventory {
    /// Adds the namespaces that `listns(2)` reports and the inventory does
    /// not have, as hidden, with the inode `inode_of` finds for an id (0
    /// when it cannot: listns(2) gives ids only). Returns their keys.
    pub fn add_unexplained(
        &mut self,
        ids: &[(NsType, u64)],
        mut inode_of: impl FnMut(u64) -> Option<u64>,
    ) -> Vec<NsKey> {
        let known: std::collections::HashSet<(NsType, u64)> = self
            .namespaces
            .keys()
            .filter_map(|k| Some((k.ty, k.id?)))
            .collect();
        let mut added = Vec::new();
        for &(ty, id) in ids {
            if known.contains(&(ty, id)) {
                continue;
            }
            let (key, ns) = match inode_of(id) {
                Some(inum) => self.entry(ty, inum, Some(id)),
                // No inode: kept out of the inode index.
                None => {
                    let key = NsKey::new(ty, 0, Some(id));
                    (key, self.namespaces.entry(key).or_default())
                }
            };
            ns.hidden = true;
            added.push(key);
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_holder(pid: u32) -> Holder {
        Holder::Process { pid, link: "net" }
    }

    #[test]
    fn id_upgrades_inode_only_entry() {
        let mut inv = Inventory::new();
        inv.add_holder(NsType::Net, 10, None, proc_holder(1));
        inv.add_holder(NsType::Net, 10, Some(77), proc_holder(2));
        assert_eq!(inv.len(), 1);
        let (key, ns) = inv.iter().next().unwrap();
        assert_eq!(key.id, Some(77));
        assert_eq!(ns.pids().into_iter().collect::<Vec<_>>(), vec![1, 2]);
        // A later sighting without an id still finds it.
        assert_eq!(inv.resolve(NsType::Net, 10, None), *key);
    }

    #[test]
    fn reused_inode_with_new_id_is_a_new_namespace() {
        let mut inv = Inventory::new();
        inv.add_holder(NsType::Uts, 5, Some(1), proc_holder(1));
        inv.add_holder(NsType::Uts, 5, Some(2), proc_holder(2));
        assert_eq!(inv.len(), 2);
        assert!(inv.get(&NsKey::new(NsType::Uts, 5, Some(1))).is_some());
        assert_eq!(
            inv.by_inode(NsType::Uts, 5),
            Some(NsKey::new(NsType::Uts, 5, Some(2)))
        );
    }

    #[test]
    fn same_inode_other_type_is_distinct() {
        let mut inv = Inventory::new();
        inv.add_holder(NsType::Uts, 5, None, proc_holder(1));
        inv.add_holder(NsType::Ipc, 5, None, proc_holder(1));
        assert_eq!(inv.len(), 2);
    }

    #[test]
    fn rescan_keeps_origins_and_counts_new() {
        let mut inv = Inventory::new();
        inv.add_holder(NsType::Net, 10, Some(1), proc_holder(7));
        let key = NsKey::new(NsType::Net, 10, Some(1));
        inv.get_mut(&key).unwrap().origin = Some(Origin {
            pid: 7,
            tid: 7,
            comm: "unshare".into(),
            syscall: "unshare",
            flags: 0,
            time_ns: 1,
            container: None,
        });
        let mut scan = Inventory::new();
        scan.add_holder(NsType::Net, 10, Some(1), Holder::Fd { pid: 8, fd: 4 });
        scan.add_holder(NsType::Uts, 20, Some(2), proc_holder(8));
        let r = inv.merge_rescan(scan);
        assert_eq!(r.discovered, vec![NsKey::new(NsType::Uts, 20, Some(2))]);
        assert!(r.unheld.is_empty());
        let ns = inv.get(&key).unwrap();
        assert_eq!(ns.origin.as_ref().unwrap().comm, "unshare");
        assert_eq!(
            ns.holders.iter().map(Holder::kind).collect::<Vec<_>>(),
            vec!["fd"]
        );
        assert_eq!(inv.len(), 2);
    }

    #[test]
    fn a_gone_namespace_found_alive_again_is_discovered_without_the_dead_ones_creator() {
        // Without ids: the inode of a gone namespace, reused by a new one
        // whose created record was lost.
        let mut inv = Inventory::new();
        inv.add_holder(NsType::Uts, 30, None, proc_holder(7));
        let key = NsKey::new(NsType::Uts, 30, None);
        let ns = inv.get_mut(&key).unwrap();
        ns.state = State::Gone { since_ns: 5 };
        ns.origin = Some(Origin {
            pid: 7,
            tid: 7,
            comm: "old".into(),
            syscall: "unshare",
            flags: 0,
            time_ns: 1,
            container: None,
        });
        let mut scan = Inventory::new();
        scan.add_holder(NsType::Uts, 30, None, proc_holder(9));
        let r = inv.merge_rescan(scan);
        assert_eq!(r.discovered, vec![key]);
        let ns = inv.get(&key).unwrap();
        assert_eq!(ns.state, State::Alive);
        assert!(ns.origin.is_none(), "{:?}", ns.origin);
    }

    #[test]
    fn listns_ids_no_scan_explains_become_hidden() {
        let mut inv = Inventory::new();
        inv.add_holder(NsType::Net, 10, Some(1), proc_holder(7));
        let added = inv.add_unexplained(
            &[(NsType::Net, 1), (NsType::Net, 2), (NsType::Uts, 1)],
            |id| (id == 2).then_some(4026532999),
        );
        assert_eq!(
            added,
            vec![
                NsKey::new(NsType::Net, 4026532999, Some(2)),
                NsKey::new(NsType::Uts, 0, Some(1))
            ]
        );
        let hidden: Vec<_> = inv
            .iter()
            .filter(|(_, ns)| ns.hidden)
            .map(|(k, _)| (k.ty, k.inum, k.id))
            .collect();
        assert_eq!(
            hidden,
            vec![
                (NsType::Net, 4026532999, Some(2)),
                (NsType::Uts, 0, Some(1))
            ]
        );
    }

    #[test]
    fn rescan_reports_namespaces_that_lost_every_holder() {
        let mut inv = Inventory::new();
        inv.add_holder(NsType::Net, 10, Some(1), proc_holder(7));
        let r = inv.merge_rescan(Inventory::new());
        assert_eq!(r.unheld, vec![NsKey::new(NsType::Net, 10, Some(1))]);
        assert!(inv.get(&r.unheld[0]).unwrap().holders.is_empty());
    }

    /// Holders sort by pid, then kind, and those without a pid come last:
    /// what a process holds is one contiguous run (exits rely on it).
    #[test]
    fn holders_sort_by_process_then_kind() {
        let sorted: Vec<Holder> = vec![
            Holder::Process {
                pid: 5,
                link: "net",
            },
            Holder::Thread {
                pid: 5,
                tid: 6,
                link: "net",
            },
            Holder::Fd { pid: 5, fd: 3 },
            Holder::Socket { pid: 5, fd: 1 },
            Holder::Tun { pid: 5, fd: 0 },
            Holder::Process {
                pid: 6,
                link: "ipc",
            },
            Holder::Fd {
                pid: u32::MAX,
                fd: 0,
            },
            Holder::BindMount {
                path: "/a".into(),
                mnt_ns: 1,
            },
            Holder::BindMount {
                path: "/b".into(),
                mnt_ns: 0,
            },
            Holder::Child {
                ty: NsType::Net,
                ns: 1,
            },
        ];
        let mut shuffled = sorted.clone();
        shuffled.reverse();
        shuffled.swap(2, 7);
        let set: BTreeSet<Holder> = shuffled.into_iter().collect();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), sorted);
    }
}
