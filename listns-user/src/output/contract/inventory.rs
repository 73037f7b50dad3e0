//! `GET /v1/inventory`: the watcher's whole inventory, as `listns --from`
//! reads it back to render every list view with the same code as a scan.
//! It carries everything the inventory holds (namespaces with their
//! holders, creators and fates; processes; the initial namespaces) and the
//! watcher's last scan's counts. Text from processes round-trips exactly
//! (the `_hex` siblings); times are the contract's (microseconds), and a
//! creator's flags are its CLONE_NEW* flags, all that listns shows of them.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Container, Hex, Holder, Origin, Text, Time, Which, exact, exact_bytes};
use crate::{
    inventory::{self as inv, Inventory, Namespace, NetnsId, NsKey, Process, State},
    ns::NsType,
    stats::ScanStats,
    text::RawText,
};

/// `GET /v1/inventory`: everything the watcher knows, for `listns --from`.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct InventoryDocument<'a> {
    /// Every namespace the watcher knows: alive, hidden, or gone and not
    /// yet forgotten; ordered by type, inode and id.
    #[serde(borrow)]
    pub namespaces: Vec<NamespaceEntry<'a>>,
    /// Every process it knows, by pid.
    pub processes: Vec<ProcessEntry<'a>>,
    /// The inode of each of the host's initial namespaces, by type.
    pub initial: BTreeMap<NsType, u64>,
    /// What the watcher's last scan read and what it could not.
    pub scan: Cow<'a, ScanStats>,
}

/// One namespace of the inventory, with everything known of it.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "InventoryNamespace", deny_unknown_fields)]
pub struct NamespaceEntry<'a> {
    #[serde(flatten)]
    pub which: Which,
    /// Everything that keeps it alive.
    #[serde(borrow)]
    pub holders: Vec<Holder<'a>>,
    /// The owning user namespace.
    pub owner: Option<Which>,
    /// The parent namespace (pid and user namespaces).
    pub parent: Option<Which>,
    /// A user namespace's creator's effective uid (NS_GET_OWNER_UID).
    pub creator_uid: Option<u32>,
    /// `ip netns` names.
    pub netns_names: Vec<NetnsName<'a>>,
    /// A network namespace's NETNSID in the watcher's network namespace;
    /// -1 when none is assigned, null when it was not asked.
    pub netnsid: Option<i64>,
    /// Who created it, when the tracer saw that.
    #[serde(borrow)]
    pub created: Option<Origin<'a>>,
    /// When it was found dead; null while it lives.
    pub gone: Option<Time>,
    /// Alive, but nothing a scan can see holds it.
    pub hidden: bool,
}

/// An `ip netns` name.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NetnsName<'a> {
    pub name: Text<'a>,
    /// The exact bytes of `name` in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub name_hex: Option<Hex>,
}

/// One process of the inventory. The watcher reads comm, parent, command
/// line and container only of the processes its views show (and of those
/// the tracer saw): the others have them empty.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "InventoryProcess", deny_unknown_fields)]
pub struct ProcessEntry<'a> {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    /// `comm`, as the kernel gave it.
    pub comm: Text<'a>,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub comm_hex: Option<Hex>,
    /// The command line as the kernel gave it: arguments separated by NUL
    /// characters (no NUL after the last); empty for kernel threads.
    pub cmdline: Text<'a>,
    /// The exact bytes of `cmdline` in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub cmdline_hex: Option<Hex>,
    pub container: Option<Container<'a>>,
    /// A kernel thread.
    pub kthread: bool,
}

/// A document that does not describe an inventory.
#[derive(Debug, thiserror::Error)]
#[error("the watcher's inventory: {0}")]
pub struct BadDocument(String);

impl<'a> InventoryDocument<'a> {
    /// The document of an inventory and its last scan's counts, borrowing
    /// from both.
    pub fn new(inv: &'a Inventory, stats: &'a ScanStats) -> Self {
        InventoryDocument {
            namespaces: inv
                .iter()
                .map(|(k, ns)| NamespaceEntry::new(k, ns))
                .collect(),
            processes: inv.processes.values().map(ProcessEntry::new).collect(),
            initial: inv.initial.clone(),
            scan: Cow::Borrowed(stats),
        }
    }

    /// The inventory and scan counts the document describes.
    pub fn into_inventory(self) -> Result<(Inventory, ScanStats), BadDocument> {
        let mut inv = Inventory::new();
        for entry in self.namespaces {
            let key = key(entry.which);
            if inv.get(&key).is_some() {
                return Err(BadDocument(format!(
                    "namespace {}:[{}] is listed twice",
                    key.ty, key.inum
                )));
            }
            inv.insert(key, entry.into_namespace()?);
        }
        for entry in self.processes {
            let p = entry.into_process();
            let pid = p.pid;
            if inv.processes.insert(pid, p).is_some() {
                return Err(BadDocument(format!("process {pid} is listed twice")));
            }
        }
        inv.initial = self.initial;
        Ok((inv, self.scan.into_owned()))
    }
}

fn key(w: Which) -> NsKey {
    NsKey::new(w.ty, w.ns, w.id)
}

impl<'a> NamespaceEntry<'a> {
    pub fn new(k: &NsKey, ns: &'a Namespace) -> Self {
        NamespaceEntry {
            which: Which::from(k),
            holders: ns.holders.iter().map(Holder::from).collect(),
            owner: ns.owner.as_ref().map(Which::from),
            parent: ns.parent.as_ref().map(Which::from),
            creator_uid: ns.creator_uid,
            netns_names: ns
                .netns_names
                .iter()
                .map(|n| {
                    let (name, name_hex) = exact(n.as_bytes());
                    NetnsName { name, name_hex }
                })
                .collect(),
            netnsid: ns.netnsid.map(|n| match n {
                NetnsId::Id(n) => i64::from(n),
                NetnsId::Unassigned => -1,
            }),
            created: ns.origin.as_ref().map(Origin::from),
            gone: match ns.state {
                State::Gone { since_ns } => Some(Time(since_ns)),
                State::Alive => None,
            },
            hidden: ns.hidden,
        }
    }

    fn into_namespace(self) -> Result<Namespace, BadDocument> {
        let holders = self
            .holders
            .into_iter()
            .map(holder)
            .collect::<Result<BTreeSet<_>, _>>()?;
        let netnsid = match self.netnsid {
            None => None,
            Some(-1) => Some(NetnsId::Unassigned),
            Some(n) => Some(NetnsId::Id(u32::try_from(n).map_err(|_| {
                BadDocument(format!("netnsid {n} is neither -1 nor a NETNSID"))
            })?)),
        };
        Ok(Namespace {
            holders,
            owner: self.owner.map(key),
            parent: self.parent.map(key),
            creator_uid: self.creator_uid,
            netns_names: self
                .netns_names
                .into_iter()
                .map(|n| RawText::from(exact_bytes(n.name, n.name_hex)))
                .collect(),
            netnsid,
            origin: self.created.map(origin).transpose()?,
            state: match self.gone {
                Some(Time(since_ns)) => State::Gone { since_ns },
                None => State::Alive,
            },
            hidden: self.hidden,
        })
    }
}

impl<'a> ProcessEntry<'a> {
    pub fn new(p: &'a Process) -> Self {
        let (comm, comm_hex) = exact(p.comm.as_bytes());
        let (cmdline, cmdline_hex) = exact(p.cmdline.as_bytes());
        ProcessEntry {
            pid: p.pid,
            ppid: p.ppid,
            uid: p.uid,
            comm,
            comm_hex,
            cmdline,
            cmdline_hex,
            container: p.container.as_ref().map(Container::from),
            kthread: p.kthread,
        }
    }

    fn into_process(self) -> Process {
        Process {
            pid: self.pid,
            ppid: self.ppid,
            uid: self.uid,
            comm: exact_bytes(self.comm, self.comm_hex).into(),
            cmdline: exact_bytes(self.cmdline, self.cmdline_hex).into(),
            container: self.container.map(Into::into),
            kthread: self.kthread,
        }
    }
}

/// A holder read back. Link names were checked when read (an unknown one
/// fails there); this maps them to the inventory's static text.
fn holder(h: Holder<'_>) -> Result<inv::Holder, BadDocument> {
    let link = |l: &str| {
        super::known_link(l).ok_or_else(|| BadDocument(format!("unknown namespace link {l:?}")))
    };
    Ok(match h {
        Holder::Process { pid, link: l } => inv::Holder::Process {
            pid,
            link: link(l)?,
        },
        Holder::Thread { pid, tid, link: l } => inv::Holder::Thread {
            pid,
            tid,
            link: link(l)?,
        },
        Holder::Fd { pid, fd } => inv::Holder::Fd { pid, fd },
        Holder::BindMount {
            path,
            path_hex,
            mnt_ns,
        } => inv::Holder::BindMount {
            path: exact_bytes(path, path_hex).into(),
            mnt_ns,
        },
        Holder::Socket { pid, fd } => inv::Holder::Socket { pid, fd },
        Holder::Tun { pid, fd } => inv::Holder::Tun { pid, fd },
        Holder::IoUring { pid, fd } => inv::Holder::IoUring { pid, fd },
        Holder::Child { ty, ns } => inv::Holder::Child { ty, ns },
    })
}

fn origin(o: Origin<'_>) -> Result<inv::Origin, BadDocument> {
    let t = o.task;
    Ok(inv::Origin {
        pid: t.pid,
        tid: t.tid,
        syscall: super::known_syscall(t.syscall)
            .ok_or_else(|| BadDocument(format!("unknown syscall {:?}", t.syscall)))?,
        comm: exact_bytes(t.comm, t.comm_hex).into(),
        flags: t.flags.0,
        time_ns: o.time.0,
        container: o.container.map(Into::into),
    })
}

impl From<Container<'_>> for inv::Container {
    fn from(c: Container<'_>) -> Self {
        inv::Container {
            runtime: runtime_name(&c.runtime),
            id: c.id.into_owned(),
            name: c.name.map(Cow::into_owned),
            pod: c.pod.map(Cow::into_owned),
            k8s_namespace: c.k8s_namespace.map(Cow::into_owned),
            k8s_container: c.k8s_container.map(Cow::into_owned),
        }
    }
}

/// A container runtime's name as the static text the inventory keeps:
/// the runtimes listns knows, or (from a newer watcher) one kept for the
/// rest of the process, once per name.
fn runtime_name(name: &str) -> &'static str {
    const KNOWN: [&str; 6] = [
        "docker",
        "containerd",
        "kubernetes",
        "podman",
        "lxc",
        "systemd-nspawn",
    ];
    static OTHERS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    if let Some(k) = KNOWN.into_iter().find(|k| *k == name) {
        return k;
    }
    let mut others = OTHERS.lock().unwrap_or_else(|e| e.into_inner());
    match others.get(name) {
        Some(k) => k,
        None => {
            let k: &'static str = Box::leak(name.into());
            others.insert(k);
            k
        }
    }
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
