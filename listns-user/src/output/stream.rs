//! The `listns watch` stream: the inventory first (a table, or one
//! `existing` object per namespace), then one line per event, as text or
//! NDJSON, flushed once per batch.

use std::io::{self, Write};

use super::{
    Filter, View,
    columns::Column,
    events, json,
    table::{self, Style},
};
use crate::inventory::{
    Inventory, NsKey,
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

    /// The inventory: a table, or one `existing` line per namespace.
    pub fn existing(&mut self, inv: &Inventory) -> io::Result<()> {
        let view = View::new(inv, &Filter::default(), &Column::DEFAULT);
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

    /// A namespace created, joined or left by a task.
    pub fn change(&mut self, ev: &TaskEvent, c: &Change) -> io::Result<()> {
        self.line(events::change_text(ev, c), events::change_json(ev, c))
    }

    /// A lifecycle verdict (`gone`, `hidden`) or a rescan's `discovered`.
    pub fn verdict(
        &mut self,
        event: &str,
        key: &NsKey,
        inv: &Inventory,
        now_ns: u64,
    ) -> io::Result<()> {
        let Some(ns) = inv.get(key) else {
            return Ok(());
        };
        self.line(
            events::verdict_text(event, key, ns, now_ns),
            events::verdict_json(event, key, ns, now_ns),
        )
    }

    pub fn lost(&mut self, count: u64, missed: u64) -> io::Result<()> {
        self.line(
            events::lost_text(count, missed),
            events::lost_json(count, missed),
        )
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
