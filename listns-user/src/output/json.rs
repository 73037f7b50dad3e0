//! `-J`: `{"namespaces": [...]}` as lsns prints it, each object with at
//! least `ns`, `type`, `id` and `holders`, then the chosen columns under
//! their lowercase names. serde_json escapes control characters; bytes that
//! were not UTF-8 arrive as `\xNN` text, so the output is valid JSON always.

use std::io::{self, Write};

use serde::{Serialize, ser::SerializeMap};

use super::{
    columns::{Cells, Column},
    events,
};
use crate::{
    inventory::{Namespace, NsKey, State},
    scan::ScanStats,
};

/// A JSON object that keeps its keys in insertion order (serde_json's own
/// map would sort them).
pub struct Object(pub Vec<(String, serde_json::Value)>);

impl Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

pub fn namespace_object(cells: &Cells<'_>, key: &NsKey, ns: &Namespace, cols: &[Column]) -> Object {
    let mut obj: Vec<(String, serde_json::Value)> = vec![
        ("ns".into(), key.inum.into()),
        ("type".into(), key.ty.name().into()),
        (
            "id".into(),
            key.id.map_or(serde_json::Value::Null, Into::into),
        ),
    ];
    for c in cols {
        if matches!(c, Column::Ns | Column::Type | Column::Id | Column::Holders) {
            continue;
        }
        obj.push((c.key(), cells.value(key, ns, *c).json()));
    }
    obj.push((
        "holders".into(),
        serde_json::to_value(&ns.holders).expect("holders serialise"),
    ));
    // Alive, but nothing a scan can see holds it (see lifecycle).
    obj.push(("hidden".into(), ns.hidden.into()));
    if let State::Gone { since_ns } = ns.state {
        obj.push(("gone".into(), events::rfc3339(since_ns).into()));
    }
    if let Some(o) = &ns.origin {
        obj.push((
            "created".into(),
            serde_json::json!({
                "time": events::rfc3339(o.time_ns),
                "pid": o.pid,
                "tid": o.tid,
                "comm": o.comm,
                "syscall": o.syscall,
                "flags": crate::ns::flag_names(o.flags),
                "container": o.container,
            }),
        ));
    }
    Object(obj)
}

/// The namespace list, built one object at a time as it is written (a
/// 10,000-process host has tens of thousands of holders).
struct List<'a, 'b> {
    cells: &'a Cells<'b>,
    cols: &'a [Column],
    rows: &'a [(&'b NsKey, &'b Namespace)],
}

impl Serialize for List<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for (k, ns) in self.rows {
            seq.serialize_element(&namespace_object(self.cells, k, ns, self.cols))?;
        }
        seq.end()
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

pub fn render(
    out: &mut impl Write,
    cells: &Cells<'_>,
    cols: &[Column],
    rows: &[(&NsKey, &Namespace)],
    stats: Option<&ScanStats>,
) -> io::Result<()> {
    let namespaces = List { cells, cols, rows };
    serde_json::to_writer_pretty(&mut *out, &Top { namespaces, stats })
        .map_err(io::Error::other)?;
    writeln!(out)
}
