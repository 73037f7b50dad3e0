//! The columns: names as lsns spells them where the meaning is the same,
//! and how each is computed from the inventory. Table, JSON and tree all
//! read cells from here.

use std::{cell::RefCell, collections::HashMap};

use super::sanitize;
use crate::inventory::{Container, Holder, Inventory, Namespace, NsKey, Process};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Ns,
    Type,
    Nprocs,
    Pid,
    Ppid,
    User,
    Command,
    Netnsid,
    Nsfs,
    Pns,
    Ons,
    Id,
    Holders,
    Container,
    Name,
}

impl Column {
    pub const ALL: [Column; 15] = [
        Column::Ns,
        Column::Type,
        Column::Nprocs,
        Column::Pid,
        Column::Ppid,
        Column::User,
        Column::Command,
        Column::Netnsid,
        Column::Nsfs,
        Column::Pns,
        Column::Ons,
        Column::Id,
        Column::Holders,
        Column::Container,
        Column::Name,
    ];

    /// lsns's default columns, plus HOLDERS.
    pub const DEFAULT: [Column; 7] = [
        Column::Ns,
        Column::Type,
        Column::Nprocs,
        Column::Pid,
        Column::User,
        Column::Command,
        Column::Holders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Ns => "NS",
            Column::Type => "TYPE",
            Column::Nprocs => "NPROCS",
            Column::Pid => "PID",
            Column::Ppid => "PPID",
            Column::User => "USER",
            Column::Command => "COMMAND",
            Column::Netnsid => "NETNSID",
            Column::Nsfs => "NSFS",
            Column::Pns => "PNS",
            Column::Ons => "ONS",
            Column::Id => "ID",
            Column::Holders => "HOLDERS",
            Column::Container => "CONTAINER",
            Column::Name => "NAME",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Column::Ns => "namespace identifier (inode number)",
            Column::Type => "kind of namespace",
            Column::Nprocs => "number of processes in the namespace",
            Column::Pid => "lowest PID of a process holding the namespace",
            Column::Ppid => "PPID of the PID",
            Column::User => "username of the PID",
            Column::Command => "command line of the PID ([name] for kernel threads)",
            Column::Netnsid => "namespace ID as used by network subsystem",
            Column::Nsfs => "nsfs bind mount paths",
            Column::Pns => "parent namespace identifier (inode number)",
            Column::Ons => "owner namespace identifier (inode number)",
            Column::Id => "64-bit namespace id (NS_GET_ID, Linux 6.18+)",
            Column::Holders => {
                "what keeps it alive: procs, threads, fds, sockets, bind mounts, child namespaces"
            }
            Column::Container => {
                "container of a holding process: name (short id), or runtime:id when unnamed"
            }
            Column::Name => "ip netns names",
        }
    }

    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    /// JSON key: the name in lowercase, as lsns does.
    pub fn key(self) -> String {
        self.name().to_ascii_lowercase()
    }

    pub fn right_aligned(self) -> bool {
        matches!(
            self,
            Column::Ns
                | Column::Nprocs
                | Column::Pid
                | Column::Ppid
                | Column::Netnsid
                | Column::Pns
                | Column::Ons
                | Column::Id
        )
    }
}

/// One cell, before it is rendered as text or JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(u64),
    /// Text listns made (a type name, a holder summary).
    Text(String),
    /// Text from outside (a command line, a path), as raw bytes: the table
    /// escapes it, JSON carries it exactly (see `json::put_bytes`).
    Bytes(Vec<u8>),
    Null,
}

impl Value {
    /// The cell as a terminal may safely show it.
    pub fn display(&self) -> String {
        match self {
            Value::Num(n) => n.to_string(),
            Value::Text(t) => sanitize::escape(t).into_owned(),
            Value::Bytes(b) => sanitize::escape_bytes(b).into_owned(),
            Value::Null => String::new(),
        }
    }
}

/// What cells need besides the inventory: a user name cache.
pub struct Cells<'a> {
    pub inv: &'a Inventory,
    users: RefCell<HashMap<u32, Option<String>>>,
}

impl<'a> Cells<'a> {
    pub fn new(inv: &'a Inventory) -> Self {
        Cells {
            inv,
            users: RefCell::new(HashMap::new()),
        }
    }

    fn user_name(&self, uid: u32) -> String {
        self.users
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
            .unwrap_or_else(|| uid.to_string())
    }

    /// The pid shown for a namespace.
    pub fn pid(&self, ns: &Namespace) -> Option<u32> {
        ns.representative_pids().next()
    }

    pub fn value(&self, key: &NsKey, ns: &Namespace, col: Column) -> Value {
        let proc_of = || self.pid(ns).and_then(|p| self.inv.processes.get(&p));
        match col {
            Column::Ns => Value::Num(key.inum),
            Column::Type => Value::Text(key.ty.name().into()),
            Column::Nprocs => Value::Num(nprocs(ns) as u64),
            Column::Pid => self.pid(ns).map_or(Value::Null, |p| Value::Num(p as u64)),
            Column::Ppid => proc_of().map_or(Value::Null, |p| Value::Num(p.ppid as u64)),
            Column::User => proc_of().map_or(Value::Null, |p| Value::Text(self.user_name(p.uid))),
            Column::Command => proc_of().map_or(Value::Null, |p| Value::Bytes(command(p))),
            Column::Netnsid => ns.netnsid.map_or(Value::Null, |n| Value::Num(n as u64)),
            Column::Nsfs => {
                let paths: Vec<&[u8]> = ns
                    .holders
                    .iter()
                    .filter_map(|h| match h {
                        Holder::BindMount { path, .. } => Some(path.as_bytes()),
                        _ => None,
                    })
                    .collect();
                if paths.is_empty() {
                    Value::Null
                } else {
                    Value::Bytes(paths.join(&b","[..]))
                }
            }
            Column::Pns => ns.parent.map_or(Value::Null, |k| Value::Num(k.inum)),
            Column::Ons => ns.owner.map_or(Value::Null, |k| Value::Num(k.inum)),
            Column::Id => key.id.map_or(Value::Null, Value::Num),
            Column::Holders => Value::Text(holders_summary(ns)),
            Column::Container => self.container(key, ns),
            Column::Name => {
                if ns.netns_names.is_empty() {
                    Value::Null
                } else {
                    let names: Vec<&[u8]> = ns.netns_names.iter().map(|n| n.as_bytes()).collect();
                    Value::Bytes(names.join(&b","[..]))
                }
            }
        }
    }

    /// The container of the first holding process that has one; none for
    /// the host's initial namespaces.
    pub fn container_of(&self, key: &NsKey, ns: &Namespace) -> Option<&'a Container> {
        if self.inv.is_initial(key) {
            return None;
        }
        let inv = self.inv;
        ns.representative_pids()
            .find_map(|p| inv.processes.get(&p)?.container.as_ref())
    }

    fn container(&self, key: &NsKey, ns: &Namespace) -> Value {
        self.container_of(key, ns)
            .map_or(Value::Null, |c| Value::Text(c.label()))
    }
}

/// A process's command as listns shows it: its command line with NULs
/// between the arguments as spaces (as listns.py and lsns show it), or
/// `[comm]` for kernel threads and processes without one.
pub fn command(p: &Process) -> Vec<u8> {
    if p.kthread || p.cmdline.is_empty() {
        let mut out = Vec::with_capacity(p.comm.as_bytes().len() + 2);
        out.push(b'[');
        out.extend_from_slice(p.comm.as_bytes());
        out.push(b']');
        out
    } else {
        p.cmdline
            .as_bytes()
            .iter()
            .map(|&b| if b == 0 { b' ' } else { b })
            .collect()
    }
}

/// Processes that have it as their own namespace (as lsns counts them).
pub fn nprocs(ns: &Namespace) -> usize {
    let mut last = None;
    let mut n = 0;
    for h in &ns.holders {
        if let Holder::Process { pid, link } = h
            && !link.ends_with("_for_children")
            && last != Some(*pid)
        {
            // Holders are ordered by pid within a kind, so equal pids are adjacent.
            n += 1;
            last = Some(*pid);
        }
    }
    n
}

/// `procs:3 fds:1 bind:1`: counts by holder kind, in a fixed order.
pub fn holders_summary(ns: &Namespace) -> String {
    let mut procs = std::collections::BTreeSet::new();
    let (mut threads, mut fds, mut sockets, mut binds, mut children) = (0, 0, 0, 0, 0);
    let mut tuns = 0;
    for h in &ns.holders {
        match h {
            Holder::Process { pid, .. } => {
                procs.insert(*pid);
            }
            Holder::Thread { .. } => threads += 1,
            Holder::Fd { .. } => fds += 1,
            Holder::Socket { .. } => sockets += 1,
            Holder::Tun { .. } => tuns += 1,
            Holder::BindMount { .. } => binds += 1,
            Holder::Child { .. } => children += 1,
        }
    }
    let mut parts = Vec::new();
    if ns.hidden {
        // The seed's unsolved case: say so where nobody can miss it.
        parts.push(match &ns.origin {
            Some(o) => format!(
                "HIDDEN(created by pid {} {} via {})",
                o.pid,
                sanitize::escape_bytes(o.comm.as_bytes()),
                o.syscall
            ),
            None => "HIDDEN".into(),
        });
    }
    if let crate::inventory::State::Gone { .. } = ns.state {
        parts.push("GONE".into());
    }
    for (n, name) in [
        (procs.len(), "procs"),
        (threads, "threads"),
        (fds, "fds"),
        (sockets, "sockets"),
        (tuns, "tun"),
        (binds, "bind"),
        (children, "children"),
    ] {
        if n > 0 {
            parts.push(format!("{name}:{n}"));
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// Parses `-o` names; `+COL` appends to the defaults, as lsns allows.
pub fn parse_list(names: &[String]) -> Result<Vec<Column>, String> {
    if names.is_empty() {
        return Ok(Column::DEFAULT.to_vec());
    }
    let mut cols = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let (append, n) = match n.strip_prefix('+') {
            Some(rest) if i == 0 => (true, rest),
            _ => (false, n.as_str()),
        };
        if append {
            cols.extend(Column::DEFAULT);
        }
        cols.push(
            Column::from_name(n)
                .ok_or_else(|| format!("unknown column: {n} (see --list-columns)"))?,
        );
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::NsType;

    #[test]
    fn summary_counts_kinds() {
        let mut inv = Inventory::new();
        for pid in [3, 3, 4] {
            inv.add_holder(
                NsType::Net,
                9,
                None,
                Holder::Process {
                    pid,
                    link: "net".into(),
                },
            );
        }
        inv.add_holder(NsType::Net, 9, None, Holder::Fd { pid: 5, fd: 7 });
        inv.add_holder(
            NsType::Net,
            9,
            None,
            Holder::BindMount {
                path: "/x".into(),
                mnt_ns: 1,
            },
        );
        let (_, ns) = inv.iter().next().unwrap();
        assert_eq!(holders_summary(ns), "procs:2 fds:1 bind:1");
        assert_eq!(nprocs(ns), 2);
    }

    #[test]
    fn for_children_links_do_not_count_as_members() {
        let mut inv = Inventory::new();
        inv.add_holder(
            NsType::Time,
            9,
            None,
            Holder::Process {
                pid: 3,
                link: "time_for_children".into(),
            },
        );
        let (_, ns) = inv.iter().next().unwrap();
        assert_eq!(nprocs(ns), 0);
        assert_eq!(holders_summary(ns), "procs:1");
        assert_eq!(Cells::new(&inv).pid(ns), Some(3));
    }

    #[test]
    fn column_lists() {
        assert_eq!(parse_list(&[]).unwrap(), Column::DEFAULT.to_vec());
        assert_eq!(
            parse_list(&["ns".into(), "Holders".into()]).unwrap(),
            vec![Column::Ns, Column::Holders]
        );
        assert_eq!(
            parse_list(&["+ID".into()]).unwrap().last(),
            Some(&Column::Id)
        );
        assert!(parse_list(&["bogus".into()]).is_err());
    }
}
