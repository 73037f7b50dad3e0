//! The `listns watch` stream: the inventory first (a table, or one
//! `existing` object per namespace), then one line per event, as text or
//! NDJSON, flushed once per batch. With `-Q`, only the lines whose JSON
//! object matches the filter are written (in text mode too).

use std::io::{self, Write};

use super::{
    Filter, View,
    columns::Column,
    events, json,
    table::{self, Style},
};
use crate::filter::{self, Kind};
use crate::inventory::{
    Inventory, NsKey,
    live::{Change, TaskEvent},
};

/// The keys of watch's JSON lines that `-Q` may name (any case), with the
/// type it compares them as; `existing` lines also have the list columns'
/// keys. Keep in step with `events`.
pub const EVENT_KEYS: [(&str, Kind); 20] = [
    ("event", Kind::String),
    ("time", Kind::String),
    ("type", Kind::String),
    ("ns", Kind::Number),
    ("id", Kind::Number),
    ("link", Kind::String),
    ("pid", Kind::Number),
    ("tid", Kind::Number),
    ("ppid", Kind::Number),
    ("uid", Kind::Number),
    ("comm", Kind::String),
    ("syscall", Kind::String),
    ("flags", Kind::String),
    ("fd", Kind::Number),
    ("cgroup_id", Kind::Number),
    ("created", Kind::String),
    ("container", Kind::String),
    ("hidden", Kind::Boolean),
    ("count", Kind::Number),
    ("discovered", Kind::Number),
];

/// Parses a watch `-Q` expression against the event keys.
pub fn event_filter(expr: &str) -> Result<filter::Filter, filter::FilterError> {
    let mut cols: Vec<filter::Column> = EVENT_KEYS
        .iter()
        .map(|(k, kind)| filter::Column::new(*k, *kind))
        .collect();
    for c in Column::ALL {
        if !cols.iter().any(|k| k.name == c.key()) {
            cols.push(filter::Column::new(c.key(), c.kind()));
        }
    }
    filter::Filter::new(expr, &cols)
}

/// Writes events as text or NDJSON.
pub struct EventWriter<W: Write> {
    json: bool,
    w: W,
    filter: Option<filter::Filter>,
    /// Whether an evaluation error was reported already (then: no match).
    warned: bool,
}

impl<W: Write> EventWriter<W> {
    pub fn new(w: W, json: bool) -> Self {
        EventWriter {
            json,
            w,
            filter: None,
            warned: false,
        }
    }

    /// Writes only the lines that match `filter` (see [`event_filter`]).
    pub fn with_filter(mut self, filter: Option<filter::Filter>) -> Self {
        self.filter = filter;
        self
    }

    /// Whether a line's JSON object passes `-Q`. A value that cannot be
    /// compared (text against a number) does not match; the first such
    /// error is reported on stderr.
    fn passes(&mut self, obj: &serde_json::Map<String, serde_json::Value>) -> bool {
        let Some(f) = &self.filter else {
            return true;
        };
        match f.matches(obj) {
            Ok(m) => m,
            Err(e) => {
                if !std::mem::replace(&mut self.warned, true) {
                    eprintln!("listns: {e}; such lines are not printed");
                }
                false
            }
        }
    }

    fn line(&mut self, text: String, json: serde_json::Value) -> io::Result<()> {
        if let Some(obj) = json.as_object()
            && !self.passes(obj)
        {
            return Ok(());
        }
        if self.json {
            writeln!(self.w, "{json}")
        } else {
            writeln!(self.w, "{text}")
        }
    }

    /// The inventory: a table, or one `existing` line per namespace.
    pub fn existing(&mut self, inv: &Inventory) -> io::Result<()> {
        let mut view = View::new(inv, &Filter::default(), &Column::DEFAULT);
        let objects: Vec<_> = view
            .rows
            .iter()
            .map(|(key, ns)| {
                let mut obj = serde_json::Map::new();
                obj.insert("event".into(), "existing".into());
                obj.extend(json::namespace_object(&view.cells, key, ns, view.cols));
                obj
            })
            .collect();
        let keep: Vec<bool> = objects.iter().map(|o| self.passes(o)).collect();
        view.retain(|i| keep[i]);
        if self.json {
            for (obj, _) in objects.iter().zip(&keep).filter(|(_, k)| **k) {
                serde_json::to_writer(&mut self.w, obj)?;
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

    /// The writer underneath (to reopen a file).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }
}
