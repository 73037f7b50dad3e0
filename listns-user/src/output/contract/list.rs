//! `listns -J`: the document, one object per namespace row, its holders
//! and its creator.

use std::{borrow::Cow, collections::BTreeSet};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize, Serializer};

use super::{Container, Hex, Holder, Task, Text, Time, exact};
use crate::{
    inventory::{self, Namespace, NetnsId, NsKey, State},
    ns::NsType,
    output::{
        View,
        columns::{Cells, Column, Value},
        tree,
    },
    stats::ScanStats,
};

/// `listns -J`.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ListOutput", deny_unknown_fields)]
pub struct ListDocument<'a> {
    /// Every namespace shown, ordered by inode as lsns orders them; with
    /// `-T`, only the tree's roots, the rest nested under `children`.
    #[schemars(with = "Vec<NamespaceRow<'static>>")]
    pub namespaces: Rows<'a>,
    /// What the scan read and what it could not.
    pub scan: &'a ScanStats,
}

/// The rows of a view, each built as it is written (a 10,000-process host
/// has tens of thousands of holders).
pub struct Rows<'a>(pub &'a View<'a>);

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let view = self.0;
        if view.tree.is_none() {
            return s.collect_seq((0..view.rows.len()).map(|i| NamespaceRow::of_view(view, i)));
        }
        let (roots, kids) = tree::children(&view.parents);
        s.collect_seq(roots.into_iter().map(|r| nested(view, r, &kids)))
    }
}

/// Row `i` with the rows under it in the tree.
fn nested<'a>(view: &'a View<'a>, i: usize, kids: &[Vec<usize>]) -> NamespaceRow<'a> {
    let mut row = NamespaceRow::of_view(view, i);
    let under = kids.get(i).map_or(&[][..], Vec::as_slice);
    if !under.is_empty() {
        row.children = Some(under.iter().map(|&c| nested(view, c, kids)).collect());
    }
    row
}

/// One namespace. `ns`, `type`, `id`, `holders` and `hidden` are always
/// there; the other keys are the columns chosen with `-o` (lsns's names in
/// lower case; the default set is ns, type, nprocs, pid, user, command),
/// null where a column has no value. With `listns NAMESPACE` each object is
/// one process in that namespace (`pid`, `ppid`, `user`, `command`, `path`
/// and `uid` are the process's).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Namespace")]
pub struct NamespaceRow<'a> {
    /// The inode number (lsns NS). Inodes are reused by the kernel.
    pub ns: u64,
    #[serde(rename = "type")]
    pub ty: NsType,
    /// The 64-bit namespace id (NS_GET_ID, Linux 6.18+), never reused; null
    /// on older kernels.
    pub id: Option<u64>,
    /// `/proc/PID/ns/TYPE` of `pid`; null without `pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Option<String>>,
    /// Processes that have it as their own namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub nprocs: Option<u64>,
    /// The lowest pid of the processes that are in it (lsns PID); null when
    /// no process is in it (`holders` says what holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<Option<u32>>,
    /// The parent pid of `pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<Option<u32>>,
    /// The uid of `pid`; without one, the uid that created the user
    /// namespace it is (or that owns it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Option<u32>>,
    /// The user name of `uid` (the number where the name is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Option<String>>,
    /// The id the scanning process's network namespace gave this network
    /// namespace (`ip netns set`, lsns NETNSID); null when none is
    /// assigned. Always there for `net`, whatever the columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netnsid: Option<Option<u32>>,
    /// nsfs bind-mount paths, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsfs: Option<Option<Text<'a>>>,
    /// The exact bytes of `nsfs` in hex, only when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub nsfs_hex: Option<Hex>,
    /// The command line of `pid`, arguments separated by spaces; the bare
    /// comm for kernel threads; null without `pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Option<Text<'a>>>,
    /// The exact bytes of `command` in hex, only when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub command_hex: Option<Hex>,
    /// The parent namespace's inode (pid and user namespaces); 0 where
    /// there is none, as in lsns.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub pns: Option<u64>,
    /// The owning user namespace's inode; 0 where there is none (the
    /// initial user namespace), as in lsns.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub ons: Option<u64>,
    /// The container of a holding process; there whenever one is known,
    /// whatever the columns (null when the column is chosen and none is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Option<Container<'a>>>,
    /// `ip netns` names, comma-separated. Always there for `net`, whatever
    /// the columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<Text<'a>>>,
    /// The exact bytes of `name` in hex, only when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub name_hex: Option<Hex>,
    /// Everything that keeps it alive.
    pub holders: Holders<'a>,
    /// Alive, but nothing a scan can see holds it.
    pub hidden: bool,
    /// When it was found dead, for namespaces reported gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Time")]
    pub gone: Option<Time>,
    /// Who created it, when the tracer saw that.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Origin<'a>")]
    pub created: Option<Origin<'a>>,
    /// With `-T`: the rows drawn under this one in the tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<NamespaceRow<'a>>")]
    pub children: Option<Vec<NamespaceRow<'a>>>,
}

impl<'a> NamespaceRow<'a> {
    /// Row `i` of a view.
    pub fn of_view(view: &'a View<'a>, i: usize) -> Self {
        let (key, ns) = view.rows[i];
        Self::new(&view.cells, key, ns, view.procs[i], view.cols)
    }

    /// The object of the row for namespace `key` showing process `pid`,
    /// with the columns `cols` and every fact listns knows whatever the
    /// columns: for net its NETNSID and `ip netns` names, nsfs paths and
    /// the container where there are any.
    pub fn new(
        cells: &Cells<'a>,
        key: &NsKey,
        ns: &'a Namespace,
        pid: Option<u32>,
        cols: &[Column],
    ) -> Self {
        let mut row = NamespaceRow {
            ns: key.inum,
            ty: key.ty,
            id: key.id,
            holders: Holders(&ns.holders),
            hidden: ns.hidden,
            gone: match ns.state {
                State::Gone { since_ns } => Some(Time(since_ns)),
                State::Alive => None,
            },
            created: ns.origin.as_ref().map(Origin::from),
            nprocs: None,
            pid: None,
            ppid: None,
            uid: None,
            user: None,
            command: None,
            command_hex: None,
            path: None,
            netnsid: None,
            nsfs: None,
            nsfs_hex: None,
            pns: None,
            ons: None,
            container: None,
            name: None,
            name_hex: None,
            children: None,
        };
        for &c in cols {
            row.set(c, cells, key, ns, pid);
        }
        // Every fact listns knows, whatever the columns: for net its
        // NETNSID and `ip netns` names (null when none), nsfs paths and the
        // container where there are any.
        if key.ty == NsType::Net {
            for c in [Column::Netnsid, Column::Name] {
                if !cols.contains(&c) {
                    row.set(c, cells, key, ns, pid);
                }
            }
        }
        if !cols.contains(&Column::Nsfs) {
            row.set(Column::Nsfs, cells, key, ns, pid);
            if matches!(row.nsfs, Some(None)) {
                row.nsfs = None;
            }
        }
        if !cols.contains(&Column::Container) {
            row.set(Column::Container, cells, key, ns, pid);
            if matches!(row.container, Some(None)) {
                row.container = None;
            }
        }
        row
    }

    /// Puts column `c` of the row showing process `pid` in its key: the
    /// cell's value, except where JSON says more than the table's text
    /// (NETNSID is a number or null, CONTAINER an object).
    fn set(
        &mut self,
        c: Column,
        cells: &Cells<'a>,
        key: &NsKey,
        ns: &'a Namespace,
        pid: Option<u32>,
    ) {
        let v = || cells.cell(key, ns, pid, c);
        let num = || match v() {
            Value::Num(n) => Some(n),
            _ => None,
        };
        let small = || num().and_then(|n| u32::try_from(n).ok());
        let string = || {
            v().bytes().map(|b| {
                String::from_utf8(b)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            })
        };
        match c {
            // Always there.
            Column::Ns | Column::Type | Column::Id | Column::Holders => {}
            Column::Nprocs => self.nprocs = num(),
            Column::Pid => self.pid = Some(small()),
            Column::Ppid => self.ppid = Some(small()),
            Column::Uid => self.uid = Some(small()),
            Column::Pns => self.pns = num(),
            Column::Ons => self.ons = num(),
            Column::User => self.user = Some(string()),
            Column::Path => self.path = Some(string()),
            Column::Netnsid => {
                self.netnsid = Some(match ns.netnsid {
                    Some(NetnsId::Id(n)) => Some(n),
                    _ => None,
                })
            }
            Column::Container => {
                self.container = Some(cells.container_of(key, ns).map(Container::from))
            }
            Column::Command => (self.command, self.command_hex) = text(v()),
            Column::Nsfs => (self.nsfs, self.nsfs_hex) = text(v()),
            Column::Name => (self.name, self.name_hex) = text(v()),
        }
    }
}

/// A text cell as a chosen key (null when empty) and its hex sibling.
fn text(v: Value) -> (Option<Option<Text<'static>>>, Option<Hex>) {
    match v.bytes() {
        None => (Some(None), None),
        Some(b) => {
            let (t, hex) = exact(b);
            (Some(Some(t)), hex)
        }
    }
}

/// A namespace's holders, each written as it is serialized.
#[derive(Clone, Copy)]
pub struct Holders<'a>(pub &'a BTreeSet<inventory::Holder>);

/// No holders (a namespace the inventory no longer has).
pub static NO_HOLDERS: BTreeSet<inventory::Holder> = BTreeSet::new();

impl Default for Holders<'_> {
    fn default() -> Self {
        Holders(&NO_HOLDERS)
    }
}

impl Serialize for Holders<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Holder::from))
    }
}

impl JsonSchema for Holders<'_> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Holders".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<Vec<Holder<'static>>>()
    }
}

/// The creator of a namespace, as the tracer saw it.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Origin<'a> {
    pub time: Time,
    #[serde(flatten, borrow)]
    pub task: Task<'a>,
    /// The creator's container, when it had one.
    pub container: Option<Container<'a>>,
}

impl<'a> From<&'a inventory::Origin> for Origin<'a> {
    fn from(o: &'a inventory::Origin) -> Self {
        Origin {
            time: Time(o.time_ns),
            task: Task::new(o.pid, o.tid, o.comm.as_bytes(), o.syscall, o.flags),
            container: o.container.as_ref().map(Container::from),
        }
    }
}

/// `listns -H -J`: every column, as lsns lists them.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ColumnList<'a> {
    #[serde(rename = "lsns-columns")]
    pub columns: Vec<ColumnInfo<'a>>,
}

/// One column of `listns -H -J`.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ColumnInfo<'a> {
    /// The column's name (libsmartcols calls it the holder).
    pub holder: &'a str,
    /// `<integer>` or `<string>`: how `-J` writes its cells and `-Q`
    /// compares them.
    #[serde(rename = "type")]
    pub ty: &'a str,
    pub description: &'a str,
}
