//! The `listns watch` stream: the inventory first (a table, or one
//! `existing` object per namespace), then one line per event, as text or
//! NDJSON, flushed once per batch. With `-Q`, only the lines whose JSON
//! object matches the filter are written (in text mode too).

use std::io::{self, Write};

use super::{
    Filter, View,
    columns::{Cells, Column},
    events, json,
    summary::{self, Subject},
    table::{self, Style},
};
use crate::filter::{self, Kind};
use crate::inventory::{
    Inventory, Namespace, NsKey,
    followed::Followed,
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

    /// The inventory: a table, or one `existing` line per namespace; only
    /// the namespaces `filter` selects and `keep` accepts.
    pub fn existing(
        &mut self,
        inv: &Inventory,
        filter: &Filter,
        keep: impl Fn(&Cells<'_>, &NsKey, &Namespace) -> bool,
    ) -> io::Result<()> {
        let mut view = View::new(inv, filter, &Column::DEFAULT);
        let chosen: Vec<bool> = view
            .rows
            .iter()
            .map(|(k, ns)| keep(&view.cells, k, ns))
            .collect();
        view.retain(|i| chosen[i]);
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
        let pass: Vec<bool> = objects.iter().map(|o| self.passes(o)).collect();
        view.retain(|i| pass[i]);
        if self.json {
            for (obj, _) in objects.iter().zip(&pass).filter(|(_, k)| **k) {
                serde_json::to_writer(&mut self.w, obj)?;
                writeln!(self.w)?;
            }
        } else {
            table::render(&mut self.w, &view, Style::default())?;
            writeln!(self.w, "-- watching namespace events (Ctrl-C to stop)")?;
        }
        Ok(())
    }

    /// A task event: one JSON object per namespace it created, joined or
    /// left (of those not filtered out, `-Q` included), or one text line
    /// naming them all.
    pub fn task(&mut self, ev: &TaskEvent, changes: &[&Change]) -> io::Result<()> {
        if self.filter.is_none() {
            // Nothing to match: no object to build, each line written as
            // it is serialized.
            if self.json {
                for c in changes {
                    serde_json::to_writer(&mut self.w, &events::ChangeLine::new(ev, c))?;
                    writeln!(self.w)?;
                }
            } else if let Some(line) = events::task_text(ev, changes) {
                writeln!(self.w, "{line}")?;
            }
            return Ok(());
        }
        let mut shown = Vec::with_capacity(changes.len());
        for c in changes {
            let obj = events::change_json(ev, c);
            if obj.as_object().is_none_or(|o| self.passes(o)) {
                shown.push((*c, obj));
            }
        }
        if self.json {
            for (_, obj) in &shown {
                writeln!(self.w, "{obj}")?;
            }
        } else {
            let refs: Vec<&Change> = shown.iter().map(|(c, _)| *c).collect();
            if let Some(line) = events::task_text(ev, &refs) {
                writeln!(self.w, "{line}")?;
            }
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
        let mut items: Vec<(&NsKey, &Namespace)> = Vec::new();
        let mut objects = Vec::new();
        for k in keys {
            let Some(ns) = inv.get(k) else { continue };
            let obj = events::verdict_json(event, k, ns, now_ns);
            if obj.as_object().is_none_or(|o| self.passes(o)) {
                items.push((k, ns));
                objects.push(obj);
            }
        }
        if self.json {
            for obj in objects {
                writeln!(self.w, "{obj}")?;
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

    /// The writer underneath (to reopen a file).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }
}
