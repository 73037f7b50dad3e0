//! The `listns watch` stream: the inventory first (a table, or one
//! `existing` object per namespace), then one line per event, as text or
//! NDJSON, flushed once per batch.

use std::io::{self, Write};

use super::{
    Filter, View,
    columns::{Cells, Column},
    events, json,
    summary::{self, Subject},
    table::{self, Style},
};
use crate::inventory::{
    Inventory, Namespace, NsKey,
    followed::Followed,
    live::{Change, TaskEvent},
};

/// Writes events as text or NDJSON.
pub struct EventWriter<W: Write> {
    json: bool,
    w: W,
}

impl<W: Write> EventWriter<W> {
    pub fn new(w: W, json: bool) -> Self {
        EventWriter { json, w }
    }

    fn line(&mut self, text: String, json: serde_json::Value) -> io::Result<()> {
        if self.json {
            writeln!(self.w, "{json}")
        } else {
            writeln!(self.w, "{text}")
        }
    }

    /// The inventory: a table, or one `existing` line per namespace; only
    /// the namespaces `filter` selects and `keep` accepts.
    pub fn existing(
        &mut self,
        inv: &Inventory,
        filter: &Filter,
        keep: impl Fn(&Cells<'_>, &NsKey, &Namespace) -> bool,
    ) -> io::Result<()> {
        let mut view = View::new(inv, filter, &Column::DEFAULT);
        let cells = &view.cells;
        let rows: Vec<_> = view
            .rows
            .iter()
            .copied()
            .filter(|(k, ns)| keep(cells, k, ns))
            .collect();
        view.rows = rows;
        if self.json {
            for (key, ns) in &view.rows {
                let mut obj = serde_json::Map::new();
                obj.insert("event".into(), "existing".into());
                obj.extend(json::namespace_object(&view.cells, key, ns, view.cols));
                serde_json::to_writer(&mut self.w, &obj)?;
                writeln!(self.w)?;
            }
        } else {
            table::render(&mut self.w, &view, Style::default())?;
            writeln!(self.w, "-- watching namespace events (Ctrl-C to stop)")?;
        }
        Ok(())
    }

    /// A task event: one JSON object per namespace it created, joined or
    /// left (of those not filtered out), or one text line naming them all.
    pub fn task(&mut self, ev: &TaskEvent, changes: &[&Change]) -> io::Result<()> {
        if self.json {
            for c in changes {
                writeln!(self.w, "{}", events::change_json(ev, c))?;
            }
        } else if let Some(line) = events::task_text(ev, changes) {
            writeln!(self.w, "{line}")?;
        }
        Ok(())
    }

    /// Lifecycle verdicts (`gone`, `hidden`) or a rescan's `discovered`,
    /// reached at the same moment: one JSON object per namespace, one text
    /// line per creator.
    pub fn verdicts(
        &mut self,
        event: &str,
        keys: &[NsKey],
        inv: &Inventory,
        now_ns: u64,
    ) -> io::Result<()> {
        let items: Vec<(&NsKey, &Namespace)> =
            keys.iter().filter_map(|k| Some((k, inv.get(k)?))).collect();
        if self.json {
            for (key, ns) in items {
                writeln!(self.w, "{}", events::verdict_json(event, key, ns, now_ns))?;
            }
        } else {
            for group in events::group_by_origin(&items) {
                writeln!(self.w, "{}", events::verdict_text(event, &group, now_ns))?;
            }
        }
        Ok(())
    }

    /// The end of a followed run: what the tree did with namespaces.
    pub fn summary(
        &mut self,
        subject: &Subject,
        followed: &Followed,
        inv: &Inventory,
        now_ns: u64,
    ) -> io::Result<()> {
        if self.json {
            writeln!(self.w, "{}", summary::json(subject, followed, inv, now_ns))
        } else {
            for line in summary::text(subject, followed, inv, now_ns) {
                writeln!(self.w, "{line}")?;
            }
            Ok(())
        }
    }

    pub fn lost(&mut self, count: u64) -> io::Result<()> {
        self.line(events::lost_text(count), events::lost_json(count))
    }

    pub fn rescan(&mut self, namespaces: usize, discovered: usize) -> io::Result<()> {
        self.line(
            events::rescan_text(namespaces, discovered),
            events::rescan_json(namespaces, discovered),
        )
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
