//! `-J`: `{"namespaces": [...]}` as lsns prints it, each object with at
//! least `ns`, `type`, `id` and `holders`, then the chosen columns under
//! their lowercase names, in that order (serde_json's `preserve_order`
//! keeps keys in insertion order). Numbers are numbers, an empty cell is
//! `null`. With `-T`, a row's children in the tree are nested under
//! `"children"`, as lsns nests them; without it the list is flat.
//!
//! Text from outside is carried exactly: a string holds the real
//! characters (JSON's own escaping covers control characters). Text that is
//! not valid UTF-8 cannot be a JSON string as it is; then the string holds
//! it decoded with U+FFFD for each invalid sequence, and a sibling key
//! `<key>_hex` holds the exact bytes in hex. A consumer that sees no
//! `_hex` key has the exact text.

use std::io::{self, Write};

use serde::{Serialize, ser::SerializeMap};
use serde_json::{Map, Value};

use super::{
    View,
    columns::{self, Cells, Column},
    events, tree,
};
use crate::{
    inventory::{Holder, Namespace, NetnsId, NsKey, State},
    ns::NsType,
    stats::ScanStats,
};

/// Puts text from outside under `key`, and its bytes under `<key>_hex`
/// when they are not UTF-8.
pub fn put_bytes(obj: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            obj.insert(key.into(), text.into());
        }
        Err(_) => {
            obj.insert(key.into(), String::from_utf8_lossy(bytes).into());
            obj.insert(format!("{key}_hex"), hex(bytes).into());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Puts a cell under `key`.
pub fn put_value(obj: &mut Map<String, Value>, key: &str, v: columns::Value) {
    match v {
        columns::Value::Num(n) => {
            obj.insert(key.into(), n.into());
        }
        columns::Value::Text(t) => {
            obj.insert(key.into(), t.into());
        }
        columns::Value::Bytes(b) => put_bytes(obj, key, &b),
        columns::Value::List(items) => put_bytes(obj, key, &items.join(&b","[..])),
        columns::Value::Null => {
            obj.insert(key.into(), Value::Null);
        }
    }
}

/// One holder: `{"kind": "fd", "pid": 3, "fd": 9}`.
pub fn holder(h: &Holder) -> Value {
    serde_json::to_value(HolderOut(h)).unwrap_or(Value::Null)
}

/// One holder, serialized straight to the writer: a 10,000-process host
/// has 80,000 of them, and a map per holder was most of `-J`'s user time.
struct HolderOut<'a>(&'a Holder);

impl Serialize for HolderOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("kind", self.0.kind())?;
        match self.0 {
            Holder::Process { pid, link } => {
                map.serialize_entry("pid", pid)?;
                map.serialize_entry("link", link)?;
            }
            Holder::Thread { pid, tid, link } => {
                map.serialize_entry("pid", pid)?;
                map.serialize_entry("tid", tid)?;
                map.serialize_entry("link", link)?;
            }
            Holder::Fd { pid, fd } | Holder::Socket { pid, fd } | Holder::Tun { pid, fd } => {
                map.serialize_entry("pid", pid)?;
                map.serialize_entry("fd", fd)?;
            }
            Holder::BindMount { path, mnt_ns } => {
                let bytes = path.as_bytes();
                map.serialize_entry("path", &String::from_utf8_lossy(bytes))?;
                if std::str::from_utf8(bytes).is_err() {
                    map.serialize_entry("path_hex", &hex(bytes))?;
                }
                map.serialize_entry("mnt_ns", mnt_ns)?;
            }
            Holder::Child { ty, ns } => {
                map.serialize_entry("type", ty.name())?;
                map.serialize_entry("ns", ns)?;
            }
        }
        map.end()
    }
}

/// A namespace's holders, each written as it is serialized.
struct Holders<'a>(&'a std::collections::BTreeSet<Holder>);

impl Serialize for Holders<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(HolderOut))
    }
}

/// A namespace's object, showing its own process (see `Cells::pid`).
pub fn namespace_object(
    cells: &Cells<'_>,
    key: &NsKey,
    ns: &Namespace,
    cols: &[Column],
) -> Map<String, Value> {
    row_object(cells, key, ns, cells.pid(ns), cols)
}

/// The object of the row for namespace `key` showing process `pid`.
pub fn row_object(
    cells: &Cells<'_>,
    key: &NsKey,
    ns: &Namespace,
    pid: Option<u32>,
    cols: &[Column],
) -> Map<String, Value> {
    let (mut obj, tail) = row_parts(cells, key, ns, pid, cols);
    obj.insert(
        "holders".into(),
        Value::Array(ns.holders.iter().map(holder).collect()),
    );
    obj.extend(tail);
    obj
}

/// A row's object in two parts: the keys before `holders` and those after
/// it (`-J` writes the holders between them as it goes).
fn row_parts(
    cells: &Cells<'_>,
    key: &NsKey,
    ns: &Namespace,
    pid: Option<u32>,
    cols: &[Column],
) -> (Map<String, Value>, Map<String, Value>) {
    let mut obj = Map::new();
    obj.insert("ns".into(), key.inum.into());
    obj.insert("type".into(), key.ty.name().into());
    obj.insert("id".into(), key.id.into());
    for c in cols {
        match c {
            Column::Ns | Column::Type | Column::Id | Column::Holders => {}
            Column::Container => {
                obj.insert("container".into(), container(cells, key, ns));
            }
            Column::Netnsid => {
                obj.insert("netnsid".into(), netnsid(key, ns));
            }
            _ => put_value(&mut obj, &c.key(), cells.cell(key, ns, pid, *c)),
        }
    }
    // Every fact listns knows, whatever the columns: for net its NETNSID
    // (null when unassigned) and `ip netns` names; nsfs paths and the
    // container where there are any.
    if key.ty == NsType::Net {
        if !cols.contains(&Column::Netnsid) {
            obj.insert("netnsid".into(), netnsid(key, ns));
        }
        if !cols.contains(&Column::Name) {
            put_value(&mut obj, "name", cells.cell(key, ns, pid, Column::Name));
        }
    }
    if !cols.contains(&Column::Nsfs) {
        let v = cells.cell(key, ns, pid, Column::Nsfs);
        if v != columns::Value::Null {
            put_value(&mut obj, "nsfs", v);
        }
    }
    if !cols.contains(&Column::Container) && cells.container_of(key, ns).is_some() {
        obj.insert("container".into(), container(cells, key, ns));
    }
    let before = obj;
    let mut obj = Map::new();
    // Alive, but nothing a scan can see holds it (see lifecycle).
    obj.insert("hidden".into(), ns.hidden.into());
    if let State::Gone { since_ns } = ns.state {
        obj.insert("gone".into(), events::rfc3339(since_ns).into());
    }
    if let Some(o) = &ns.origin {
        let mut created = Map::new();
        created.insert("time".into(), events::rfc3339(o.time_ns).into());
        created.insert("pid".into(), o.pid.into());
        created.insert("tid".into(), o.tid.into());
        put_bytes(&mut created, "comm", o.comm.as_bytes());
        created.insert("syscall".into(), o.syscall.into());
        created.insert("flags".into(), crate::ns::flag_names(o.flags).into());
        created.insert(
            "container".into(),
            o.container
                .as_ref()
                .map_or(Value::Null, events::container_json),
        );
        obj.insert("created".into(), Value::Object(created));
    }
    (before, obj)
}

/// The container of a namespace's holders as an object (`runtime`, `id`,
/// `name`, and `pod`, `k8s_namespace` where known), or null.
fn container(cells: &Cells<'_>, key: &NsKey, ns: &Namespace) -> Value {
    cells
        .container_of(key, ns)
        .map_or(Value::Null, events::container_json)
}

/// NETNSID in JSON: the number, or null (unassigned, not asked, not net).
fn netnsid(key: &NsKey, ns: &Namespace) -> Value {
    match (key.ty, ns.netnsid) {
        (NsType::Net, Some(NetnsId::Id(n))) => n.into(),
        _ => Value::Null,
    }
}

/// The namespace list, built one object at a time as it is written (a
/// 10,000-process host has tens of thousands of holders).
struct List<'a, 'b>(&'a View<'b>);

impl Serialize for List<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let view = self.0;
        if view.tree.is_some() {
            let (roots, kids) = tree::children(&view.parents);
            let mut seq = s.serialize_seq(Some(roots.len()))?;
            for r in roots {
                seq.serialize_element(&Node {
                    view,
                    row: r,
                    kids: &kids,
                })?;
            }
            return seq.end();
        }
        let mut seq = s.serialize_seq(Some(view.rows.len()))?;
        for i in 0..view.rows.len() {
            seq.serialize_element(&Node {
                view,
                row: i,
                kids: &[],
            })?;
        }
        seq.end()
    }
}

/// A row, written as it is serialized, with its children nested under
/// `children` (none in a flat list: `kids` is empty).
struct Node<'a, 'b> {
    view: &'a View<'b>,
    row: usize,
    kids: &'a [Vec<usize>],
}

impl Serialize for Node<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let view = self.view;
        let (k, ns) = view.rows[self.row];
        let (before, after) = row_parts(&view.cells, k, ns, view.procs[self.row], view.cols);
        let mut map = s.serialize_map(None)?;
        for (k, v) in &before {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("holders", &Holders(&ns.holders))?;
        for (k, v) in &after {
            map.serialize_entry(k, v)?;
        }
        let children = self.kids.get(self.row).map_or(&[][..], Vec::as_slice);
        if !children.is_empty() {
            let nodes: Vec<Node<'_, '_>> = children
                .iter()
                .map(|&c| Node {
                    view: self.view,
                    row: c,
                    kids: self.kids,
                })
                .collect();
            map.serialize_entry("children", &nodes)?;
        }
        map.end()
    }
}

/// The top level: `namespaces`, then `scan` (what was read and how).
struct Top<'a, 'b> {
    namespaces: List<'a, 'b>,
    stats: Option<&'a ScanStats>,
}

impl Serialize for Top<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("namespaces", &self.namespaces)?;
        if let Some(stats) = self.stats {
            map.serialize_entry("scan", stats)?;
        }
        map.end()
    }
}

pub fn render(out: &mut impl Write, view: &View<'_>, stats: Option<&ScanStats>) -> io::Result<()> {
    let namespaces = List(view);
    serde_json::to_writer_pretty(&mut *out, &Top { namespaces, stats })
        .map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_shapes() {
        let h = Holder::Fd { pid: 3, fd: 9 };
        assert_eq!(holder(&h).to_string(), r#"{"kind":"fd","pid":3,"fd":9}"#);
        let h = Holder::Child {
            ty: NsType::User,
            ns: 4,
        };
        assert_eq!(
            holder(&h).to_string(),
            r#"{"kind":"child","type":"user","ns":4}"#
        );
    }

    #[test]
    fn text_is_exact_and_non_utf8_is_unambiguous() {
        let mut obj = Map::new();
        // Real characters, control characters included: JSON escapes them.
        put_bytes(&mut obj, "comm", b"a\x1bb\\x1b");
        assert_eq!(obj["comm"], "a\u{1b}b\\x1b");
        assert!(!obj.contains_key("comm_hex"));
        let line = Value::Object(obj.clone()).to_string();
        assert!(line.contains(r#""a\u001bb\\x1b""#), "{line}");
        // Not UTF-8: lossy text plus the exact bytes.
        put_bytes(&mut obj, "path", b"ok\xff!");
        assert_eq!(obj["path"], "ok\u{fffd}!");
        assert_eq!(obj["path_hex"], "6f6bff21");
    }
}
