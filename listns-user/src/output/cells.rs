//! Cells: what each column shows for one row. A row is a namespace and the
//! process it shows (lsns's `proc`): the lowest-pid process that is in the
//! namespace, none when no process is (then PID, PPID, COMMAND and PATH are
//! empty, as in lsns), or, for `listns NAMESPACE`, each process in it.

use std::{cell::RefCell, collections::HashMap};

use super::{columns::Column, sanitize};
use crate::{
    filter,
    inventory::{Container, Holder, Inventory, Namespace, NetnsId, NsKey, Process},
};

/// One cell, before it is rendered as text or JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(u64),
    /// Text listns made (a type name, a holder summary).
    Text(String),
    /// Text from outside (a command line, a path), as raw bytes: the table
    /// escapes it, JSON carries it exactly (see `contract::exact`).
    Bytes(Vec<u8>),
    /// Several texts from outside (NSFS paths): one per line in a table,
    /// joined by `,` with `-W`, `-r` and in JSON.
    List(Vec<Vec<u8>>),
    Null,
}

impl Value {
    /// The cell as a terminal may safely show it, on one line.
    pub fn display(&self) -> String {
        match self {
            Value::Num(n) => n.to_string(),
            Value::Text(t) => sanitize::escape(t).into_owned(),
            Value::Bytes(b) => sanitize::escape_bytes(b).into_owned(),
            Value::List(items) => items
                .iter()
                .map(|b| sanitize::escape_bytes(b))
                .collect::<Vec<_>>()
                .join(","),
            Value::Null => String::new(),
        }
    }

    /// The cell as display lines: a list gives one line per item.
    pub fn display_lines(&self) -> Vec<String> {
        match self {
            Value::List(items) if !items.is_empty() => items
                .iter()
                .map(|b| sanitize::escape_bytes(b).into_owned())
                .collect(),
            other => vec![other.display()],
        }
    }

    /// The raw bytes of a text cell (a list joined by `,`).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Value::Num(n) => Some(n.to_string().into_bytes()),
            Value::Text(t) => Some(t.as_bytes().to_vec()),
            Value::Bytes(b) => Some(b.clone()),
            Value::List(items) => Some(items.join(&b","[..])),
            Value::Null => None,
        }
    }

    /// The cell as `-Q` sees it: numbers as numbers, text as (lossy) UTF-8,
    /// empty as empty.
    pub fn filter_cell(&self) -> Option<filter::Cell> {
        match self {
            Value::Num(n) => Some(filter::Cell::Number(*n)),
            Value::Null => None,
            other => Some(filter::Cell::Str(
                String::from_utf8_lossy(&other.bytes().unwrap_or_default()).into_owned(),
            )),
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
            .or_insert_with(|| crate::sys::users::name_of(uid))
            .clone()
            .unwrap_or_else(|| uid.to_string())
    }

    /// The process a namespace's row shows: the lowest pid among the
    /// processes that are in it (their own link, not `*_for_children`),
    /// as lsns picks it. None when no process is in it, whatever else
    /// holds it (HOLDERS says what does).
    pub fn pid(&self, ns: &Namespace) -> Option<u32> {
        member_pids(ns).next()
    }

    /// A cell of a namespace's row (its own process, see [`Cells::pid`]).
    pub fn value(&self, key: &NsKey, ns: &Namespace, col: Column) -> Value {
        self.cell(key, ns, self.pid(ns), col)
    }

    /// A cell of the row for namespace `key` showing process `pid`.
    pub fn cell(&self, key: &NsKey, ns: &Namespace, pid: Option<u32>, col: Column) -> Value {
        let proc_of = || pid.and_then(|p| self.inv.processes.get(&p));
        match col {
            Column::Ns => Value::Num(key.inum),
            Column::Type => Value::Text(key.ty.name().into()),
            Column::Path => pid.map_or(Value::Null, |p| {
                Value::Text(format!("/proc/{p}/ns/{}", key.ty.name()))
            }),
            Column::Nprocs => Value::Num(nprocs(ns) as u64),
            Column::Pid => pid.map_or(Value::Null, |p| Value::Num(p as u64)),
            Column::Ppid => proc_of().map_or(Value::Null, |p| Value::Num(p.ppid as u64)),
            Column::Command => proc_of()
                .map(command)
                .filter(|c| !c.is_empty())
                .map_or(Value::Null, Value::Bytes),
            Column::Uid => self
                .uid(key, ns, pid)
                .map_or(Value::Null, |u| Value::Num(u as u64)),
            Column::User => self
                .uid(key, ns, pid)
                .map_or(Value::Null, |u| Value::Text(self.user_name(u))),
            // lsns: the id, or `unassigned`; JSON has null for the latter
            // (`contract::NamespaceRow`).
            Column::Netnsid => match ns.netnsid {
                Some(NetnsId::Id(n)) => Value::Text(n.to_string()),
                Some(NetnsId::Unassigned) => Value::Text("unassigned".into()),
                None => Value::Null,
            },
            Column::Nsfs => {
                let mut paths: Vec<Vec<u8>> = ns
                    .holders
                    .iter()
                    .filter_map(|h| match h {
                        Holder::BindMount { path, .. } => Some(path.as_bytes().to_vec()),
                        _ => None,
                    })
                    .collect();
                paths.dedup();
                if paths.is_empty() {
                    Value::Null
                } else {
                    Value::List(paths)
                }
            }
            // lsns prints 0 where there is no parent or owner.
            Column::Pns => Value::Num(ns.parent.map_or(0, |k| k.inum)),
            Column::Ons => Value::Num(ns.owner.map_or(0, |k| k.inum)),
            Column::Id => key.id.map_or(Value::Null, Value::Num),
            Column::Holders => Value::Text(holders_summary(ns)),
            Column::Container => self.container(key, ns),
            // comm[pid] syscall, as the tracer saw the creation.
            Column::Creator => ns.origin.as_ref().map_or(Value::Null, |o| {
                let mut b = o.comm.as_bytes().to_vec();
                b.extend_from_slice(format!("[{}] {}", o.pid, o.syscall).as_bytes());
                Value::Bytes(b)
            }),
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

    /// UID as lsns shows it: the process's; for a row without one, the uid
    /// that created the user namespace (the namespace itself, or the user
    /// namespace that owns it). lsns asks NS_GET_OWNER_UID of the namespace
    /// itself, which the kernel answers only for user namespaces, and shows
    /// 0 otherwise; the two agree wherever root created the owner.
    fn uid(&self, key: &NsKey, ns: &Namespace, pid: Option<u32>) -> Option<u32> {
        if let Some(p) = pid.and_then(|p| self.inv.processes.get(&p)) {
            return Some(p.uid);
        }
        if key.ty == crate::ns::NsType::User {
            return ns.creator_uid;
        }
        ns.owner
            .and_then(|o| self.inv.get(&o))
            .and_then(|o| o.creator_uid)
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

    /// CONTAINER: `name (short id)`, or `runtime:id` when nothing names it.
    fn container(&self, key: &NsKey, ns: &Namespace) -> Value {
        self.container_of(key, ns)
            .map_or(Value::Null, |c| Value::Text(c.label()))
    }

    /// A row as `-Q` sees it: every column by name, shown or not.
    pub fn filter_row<'r>(
        &'r self,
        key: &'r NsKey,
        ns: &'r Namespace,
        pid: Option<u32>,
    ) -> impl Fn(&str) -> Option<filter::Cell> + 'r {
        move |name| {
            self.cell(key, ns, pid, Column::from_name(name)?)
                .filter_cell()
        }
    }
}

/// Processes that are in the namespace (their own link), lowest pid first.
pub fn member_pids(ns: &Namespace) -> impl Iterator<Item = u32> + '_ {
    let mut last = None;
    ns.holders.iter().filter_map(move |h| match h {
        // Holders are ordered by kind, then pid: equal pids are adjacent.
        Holder::Process { pid, link } if !link.ends_with("_for_children") && last != Some(*pid) => {
            last = Some(*pid);
            Some(*pid)
        }
        _ => None,
    })
}

/// A process's command as lsns shows it: its command line with NULs
/// between the arguments as spaces, or its `comm` when it has none
/// (kernel threads).
pub fn command(p: &Process) -> Vec<u8> {
    if p.cmdline.is_empty() {
        p.comm.as_bytes().to_vec()
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
    member_pids(ns).count()
}

/// `procs:3 fds:1 bind:1`: counts by holder kind, in a fixed order.
pub fn holders_summary(ns: &Namespace) -> String {
    let mut procs = std::collections::BTreeSet::new();
    let (mut threads, mut fds, mut sockets, mut binds, mut children) = (0, 0, 0, 0, 0);
    let (mut tuns, mut rings) = (0, 0);
    for h in &ns.holders {
        match h {
            Holder::Process { pid, .. } => {
                procs.insert(*pid);
            }
            Holder::Thread { .. } => threads += 1,
            Holder::Fd { .. } => fds += 1,
            Holder::Socket { .. } => sockets += 1,
            Holder::Tun { .. } => tuns += 1,
            Holder::IoUring { .. } => rings += 1,
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
        (rings, "io_uring"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::NsType;

    #[test]
    fn summary_counts_kinds() {
        let mut inv = Inventory::new();
        for pid in [3, 3, 4] {
            inv.add_holder(NsType::Net, 9, None, Holder::Process { pid, link: "net" });
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
        inv.add_holder(NsType::Net, 9, None, Holder::IoUring { pid: 5, fd: 8 });
        let (_, ns) = inv.iter().next().unwrap();
        assert_eq!(holders_summary(ns), "procs:2 fds:1 io_uring:1 bind:1");
        assert_eq!(nprocs(ns), 2);
    }

    #[test]
    fn for_children_links_and_fds_give_no_process() {
        let mut inv = Inventory::new();
        inv.add_holder(
            NsType::Time,
            9,
            None,
            Holder::Process {
                pid: 3,
                link: "time_for_children",
            },
        );
        inv.add_holder(NsType::Time, 9, None, Holder::Fd { pid: 4, fd: 5 });
        let (k, ns) = inv.iter().next().unwrap();
        assert_eq!(nprocs(ns), 0);
        assert_eq!(holders_summary(ns), "procs:1 fds:1");
        let cells = Cells::new(&inv);
        assert_eq!(cells.pid(ns), None);
        for c in [Column::Pid, Column::Ppid, Column::Command, Column::Path] {
            assert_eq!(cells.value(k, ns, c), Value::Null, "{c:?}");
        }
    }

    #[test]
    fn lists_show_one_line_per_item() {
        let v = Value::List(vec![b"/run/netns/a".to_vec(), b"/x\x1b".to_vec()]);
        assert_eq!(v.display_lines(), ["/run/netns/a", "/x\\x1b"]);
        assert_eq!(v.display(), "/run/netns/a,/x\\x1b");
        assert_eq!(
            v.filter_cell(),
            Some(filter::Cell::Str("/run/netns/a,/x\u{1b}".into()))
        );
        assert_eq!(Value::Null.filter_cell(), None);
        assert_eq!(Value::Num(7).filter_cell(), Some(filter::Cell::Number(7)));
    }
}
