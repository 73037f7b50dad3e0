//! The `listns watch` stream: the inventory first (a table, or one
//! `existing` object per namespace), then one line per event, as text or
//! NDJSON, flushed once per batch. With `-Q`, only the lines whose JSON
//! object matches the filter are written (in text mode too).

use std::io::{self, Write};

use super::{
    Selection, View,
    columns::{Cells, Column},
    contract::{self, Lost, NamespaceRow, Rescan, Time, VerdictKind, WatchLine},
    events,
    summary::{self, Subject},
    table::{self, Style},
};
use crate::filter;
use crate::inventory::{
    Inventory, Namespace, NsKey,
    followed::Followed,
    live::{Change, TaskEvent},
};

/// Parses a watch `-Q` expression against the keys of the JSON lines
/// (`contract::watch_keys`).
pub fn event_filter(expr: &str) -> Result<filter::Query, filter::FilterError> {
    filter::Query::new(expr, &contract::watch_keys())
}

/// Writes events as text or NDJSON.
pub struct EventWriter<W: Write> {
    json: bool,
    w: W,
    filter: Option<filter::Query>,
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
    pub fn with_filter(mut self, filter: Option<filter::Query>) -> Self {
        self.filter = filter;
        self
    }

    /// Whether a line passes `-Q`, evaluated on its JSON object. A value
    /// that cannot be compared (text against a number) does not match; the
    /// first such error is reported on stderr.
    fn passes(&mut self, line: &WatchLine<'_>) -> bool {
        let Some(f) = &self.filter else {
            return true;
        };
        let obj = match serde_json::to_value(line) {
            Ok(serde_json::Value::Object(obj)) => obj,
            _ => return false,
        };
        match f.matches(&obj) {
            Ok(m) => m,
            Err(e) => {
                if !std::mem::replace(&mut self.warned, true) {
                    eprintln!("listns: {e}; such lines are not printed");
                }
                false
            }
        }
    }

    /// Whether lines are needed at all: to be written as JSON, or to be
    /// matched by `-Q`. Text without a filter builds none (the event path).
    fn wants_lines(&self) -> bool {
        self.json || self.filter.is_some()
    }

    /// Writes one JSON line.
    fn json_line(&mut self, line: &WatchLine<'_>) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, line)?;
        writeln!(self.w)
    }

    /// A line about no one namespace: its text or its JSON, if it passes.
    fn line(&mut self, text: String, line: WatchLine<'_>) -> io::Result<()> {
        if !self.passes(&line) {
            return Ok(());
        }
        if self.json {
            self.json_line(&line)
        } else {
            writeln!(self.w, "{text}")
        }
    }

    /// The inventory: a table, or one `existing` line per namespace; only
    /// the namespaces `filter` selects and `keep` accepts.
    pub fn existing(
        &mut self,
        inv: &Inventory,
        filter: &Selection,
        keep: impl Fn(&Cells<'_>, &NsKey, &Namespace) -> bool,
    ) -> io::Result<()> {
        let mut view = View::new(inv, filter, &Column::DEFAULT);
        let chosen: Vec<bool> = view
            .rows
            .iter()
            .map(|(k, ns)| keep(&view.cells, k, ns))
            .collect();
        view.retain(|i| chosen[i]);
        if self.wants_lines() {
            let mut pass = Vec::with_capacity(view.rows.len());
            for i in 0..view.rows.len() {
                let line = WatchLine::Existing(NamespaceRow::of_view(&view, i));
                pass.push(self.passes(&line));
                if self.json && pass[i] {
                    self.json_line(&line)?;
                }
            }
            if self.json {
                return Ok(());
            }
            view.retain(|i| pass[i]);
        }
        table::render(&mut self.w, &view, Style::default())?;
        writeln!(self.w, "-- watching namespace events (Ctrl-C to stop)")
    }

    /// A task event: one JSON line per namespace it created, joined or
    /// left (of those not filtered out, `-Q` included), or one text line
    /// naming them all.
    pub fn task(&mut self, ev: &TaskEvent, changes: &[&Change]) -> io::Result<()> {
        let mut shown = Vec::with_capacity(changes.len());
        for c in changes {
            if self.wants_lines() {
                let line = WatchLine::change(ev, c);
                if !self.passes(&line) {
                    continue;
                }
                if self.json {
                    self.json_line(&line)?;
                }
            }
            shown.push(*c);
        }
        if !self.json
            && let Some(text) = events::task_text(ev, &shown)
        {
            writeln!(self.w, "{text}")?;
        }
        Ok(())
    }

    /// Lifecycle verdicts (`gone`, `hidden`) or a rescan's `discovered`,
    /// reached at the same moment: one JSON line per namespace, one text
    /// line per creator.
    pub fn verdicts(
        &mut self,
        kind: VerdictKind,
        keys: &[NsKey],
        inv: &Inventory,
        now_ns: u64,
    ) -> io::Result<()> {
        let mut items: Vec<(&NsKey, &Namespace)> = Vec::new();
        for k in keys {
            let Some(ns) = inv.get(k) else { continue };
            if self.wants_lines() {
                let line = WatchLine::verdict(kind, k, ns, now_ns);
                if !self.passes(&line) {
                    continue;
                }
                if self.json {
                    self.json_line(&line)?;
                }
            }
            items.push((k, ns));
        }
        if !self.json {
            for group in events::group_by_origin(&items) {
                let text = events::verdict_text(kind.name(), &group, now_ns);
                writeln!(self.w, "{text}")?;
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
            let line = WatchLine::Summary(summary::json(subject, followed, inv, now_ns));
            self.json_line(&line)
        } else {
            for line in summary::text(subject, followed, inv, now_ns) {
                writeln!(self.w, "{line}")?;
            }
            Ok(())
        }
    }

    pub fn lost(&mut self, count: u64, missed: u64) -> io::Result<()> {
        let time = Time(events::now_ns());
        let line = WatchLine::Lost(Lost {
            time,
            count,
            missed,
        });
        self.line(events::lost_text(count, missed), line)
    }

    pub fn rescan(&mut self, namespaces: usize, discovered: usize) -> io::Result<()> {
        let line = WatchLine::Rescan(Rescan {
            time: Time(events::now_ns()),
            namespaces: namespaces as u64,
            discovered: discovered as u64,
        });
        self.line(events::rescan_text(namespaces, discovered), line)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// The writer underneath (to reopen a file).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }
}
