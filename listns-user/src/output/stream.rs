//! The `listns watch` stream: the inventory first (a table, or one
//! `existing` object per namespace), then one line per event, as text or
//! NDJSON, flushed once per batch. With `-Q`, only the lines whose JSON
//! object matches the filter are written (in text mode too).

use std::io::{self, Write};

use super::{
    Selection, View,
    columns::{Cells, Column},
    contract::{self, Lost, NamespaceRow, Rescan, Time, VerdictKind, WatchLine},
    events, fit,
    summary::{self, Subject},
    table::{self, Style},
};
use crate::filter::{self, Cell, Kind, Row};
use crate::inventory::{
    Container, Inventory, Namespace, NsKey,
    followed::Followed,
    live::{Change, TaskEvent},
};

/// Parses a watch `-Q` expression against the keys of the JSON lines
/// (`contract::watch_keys`); names are matched in any case, so the list's
/// column names are those keys too (see [`FilterView`] for the two that
/// differ).
pub fn event_filter(expr: &str) -> Result<filter::Query, filter::FilterError> {
    filter::Query::new(expr, &contract::watch_keys())
}

/// The keys `watch -Q` takes, by the type it compares them as: `numbers`,
/// `booleans` and `text`.
pub fn watch_keys_by_kind() -> Vec<(&'static str, Vec<String>)> {
    let keys = contract::watch_keys();
    let of = |kinds: &[Kind]| {
        keys.iter()
            .filter(|k| kinds.contains(&k.kind))
            .map(|k| k.name.clone())
            .collect()
    };
    vec![
        ("numbers", of(&[Kind::Number, Kind::Float])),
        ("booleans", of(&[Kind::Boolean])),
        ("text", of(&[Kind::String])),
    ]
}

/// A watch line as `-Q` sees it: its JSON object, where the list's column
/// names mean what they mean in the list: COMMAND is `comm` in lines with
/// no `command` (events), and CONTAINER the container as the list's
/// CONTAINER column prints it (`name (short id)`, or `runtime:id`), not
/// its object's JSON text.
pub struct FilterView<'a>(pub &'a serde_json::Map<String, serde_json::Value>);

impl Row for FilterView<'_> {
    fn cell(&self, column: &str) -> Option<Cell> {
        let obj = self.0;
        match column.to_ascii_lowercase().as_str() {
            "command" if !obj.contains_key("command") => obj.cell("comm"),
            "container" => match obj.get("container")? {
                serde_json::Value::Object(c) => container_label(c).map(Cell::Str),
                _ => obj.cell(column),
            },
            _ => obj.cell(column),
        }
    }
}

/// `Container::label` of a container's JSON object.
fn container_label(c: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let text = |k: &str| c.get(k).and_then(|v| v.as_str()).map(String::from);
    let container = Container {
        runtime: "",
        id: text("id")?,
        name: text("name"),
        pod: text("pod"),
        k8s_namespace: text("k8s_namespace"),
        ..Container::default()
    };
    let label = container.label();
    // Unnamed: `runtime:id`, with the runtime's own name.
    Some(match label.strip_prefix(':') {
        Some(id) => format!("{}:{id}", text("runtime").unwrap_or_default()),
        None => label,
    })
}

/// Writes events as text or NDJSON.
pub struct EventWriter<W: Write> {
    json: bool,
    w: W,
    filter: Option<filter::Query>,
    /// Whether an evaluation error was reported already (then: no match).
    warned: bool,
    /// Text lines are wrapped to this many columns (a terminal).
    width: Option<usize>,
    /// A JSON line is serialized here, then written in one go: serde
    /// writes token by token, and each small write through the sink's
    /// layers cost more than the line's bytes (a tenth of the watcher's
    /// time under churn).
    line_buf: Vec<u8>,
}

impl<W: Write> EventWriter<W> {
    pub fn new(w: W, json: bool) -> Self {
        EventWriter {
            json,
            w,
            filter: None,
            warned: false,
            width: None,
            line_buf: Vec::with_capacity(1024),
        }
    }

    /// Wraps text lines to `width` terminal columns (see `fit::wrap`).
    pub fn with_width(mut self, width: Option<usize>) -> Self {
        self.width = width;
        self
    }

    /// Writes a text line, wrapped to the width, its continuations
    /// indented under the event's first namespace.
    fn text_line(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.w, "{}", fit::wrap(text, self.width, events::INDENT))
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
        match f.matches(&FilterView(&obj)) {
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
        self.line_buf.clear();
        serde_json::to_writer(&mut self.line_buf, line)?;
        self.line_buf.push(b'\n');
        self.w.write_all(&self.line_buf)
    }

    /// A line about no one namespace: its text or its JSON, if it passes.
    fn line(&mut self, text: String, line: WatchLine<'_>) -> io::Result<()> {
        if !self.passes(&line) {
            return Ok(());
        }
        if self.json {
            self.json_line(&line)
        } else {
            self.text_line(&text)
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
    /// naming them all; with the task's container where known.
    pub fn task(
        &mut self,
        ev: &TaskEvent,
        changes: &[&Change],
        container: Option<&Container>,
    ) -> io::Result<()> {
        let mut shown = Vec::with_capacity(changes.len());
        for c in changes {
            if self.wants_lines() {
                let line = WatchLine::change_in(ev, c, container);
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
            && let Some(text) = events::task_text(ev, &shown, container)
        {
            self.text_line(&text)?;
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
                self.text_line(&text)?;
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
            // Continuations under the text after `-- summary: `, and
            // under each namespace's inode.
            for line in summary::text(subject, followed, inv, now_ns) {
                let indent = if line.starts_with("--") { 12 } else { 7 };
                writeln!(self.w, "{}", fit::wrap(&line, self.width, indent))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::live::{ChangeKind, TaskEventKind};
    use crate::ns::NsType;

    fn created_net(comm: &str) -> (TaskEvent, Change) {
        let ev = TaskEvent {
            comm: comm.into(),
            flags: libc::CLONE_NEWNET as u64,
            ..TaskEvent::test(TaskEventKind::Unshare, 5)
        };
        let c = Change {
            kind: ChangeKind::Created,
            key: NsKey::new(NsType::Net, 4026532000, Some(42)),
            link: "net",
        };
        (ev, c)
    }

    /// The lines `-Q expr` lets through for one created event.
    fn passes(expr: &str, container: Option<&Container>) -> bool {
        let (ev, c) = created_net("unshare");
        let mut w =
            EventWriter::new(Vec::new(), true).with_filter(Some(event_filter(expr).unwrap()));
        w.task(&ev, &[&c], container).unwrap();
        !w.w.is_empty()
    }

    #[test]
    fn list_column_names_filter_events() {
        let web = Container {
            name: Some("web".into()),
            ..Container::new("podman", "0123456789abcdef0123")
        };
        assert!(passes(
            "TYPE == \"net\" && NS == 4026532000 && PID == 5",
            None
        ));
        // COMMAND is the task's comm in an event line.
        assert!(passes("COMMAND == \"unshare\"", None));
        assert!(!passes("COMMAND == \"other\"", None));
        // CONTAINER as the list prints it; the lower-case key too.
        assert!(passes(
            "CONTAINER =~ \"^web [(]0123456789ab[)]$\"",
            Some(&web)
        ));
        assert!(passes("container == \"web (0123456789ab)\"", Some(&web)));
        assert!(!passes("CONTAINER =~ \"^web\"", None));
        let unnamed = Container::new("podman", "0123456789abcdef0123");
        assert!(passes(
            "CONTAINER == \"podman:0123456789ab\"",
            Some(&unnamed)
        ));
        // A list column with no key in watch's lines names the keys.
        let e = event_filter("CREATOR == 1").unwrap_err().to_string();
        assert!(
            e.contains("unknown column CREATOR") && e.contains("cgroup_id"),
            "{e}"
        );
    }

    #[test]
    fn created_lines_carry_the_container_in_json_and_text() {
        let (ev, c) = created_net("unshare");
        let web = Container {
            name: Some("web".into()),
            ..Container::new("podman", "0123456789abcdef0123")
        };
        let mut w = EventWriter::new(Vec::new(), true);
        w.task(&ev, &[&c], Some(&web)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.w).unwrap();
        assert_eq!(v["container"]["name"], "web");
        assert_eq!(v["container"]["id"], "0123456789abcdef0123");
        assert_eq!(v["container"]["runtime"], "podman");
        let mut w = EventWriter::new(Vec::new(), true);
        w.task(&ev, &[&c], None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.w).unwrap();
        assert!(v["container"].is_null(), "{v}");
        let mut w = EventWriter::new(Vec::new(), false);
        w.task(&ev, &[&c], Some(&web)).unwrap();
        let text = String::from_utf8(w.w).unwrap();
        assert!(
            text.trim_end().ends_with("  in web (0123456789ab)"),
            "{text}"
        );
    }

    #[test]
    fn text_lines_wrap_on_a_terminal_only() {
        let (mut ev, _) = created_net("unshare");
        ev.flags = (libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC) as u64;
        let changes: Vec<Change> = [
            (NsType::Net, 4026532387),
            (NsType::Uts, 4026532385),
            (NsType::Ipc, 4026532386),
        ]
        .into_iter()
        .map(|(ty, inum)| Change {
            kind: ChangeKind::Created,
            key: NsKey::new(ty, inum, None),
            link: ty.name(),
        })
        .collect();
        let refs: Vec<&Change> = changes.iter().collect();
        let web = Container {
            name: Some("web".into()),
            ..Container::new("podman", "0123456789abcdef0123")
        };
        let mut pipe = EventWriter::new(Vec::new(), false);
        pipe.task(&ev, &refs, Some(&web)).unwrap();
        let pipe = String::from_utf8(pipe.w).unwrap();
        assert_eq!(pipe.lines().count(), 1, "{pipe}");
        assert!(pipe.len() > 100, "the test needs a long line: {pipe}");
        let mut tty = EventWriter::new(Vec::new(), false).with_width(Some(100));
        tty.task(&ev, &refs, Some(&web)).unwrap();
        let tty = String::from_utf8(tty.w).unwrap();
        assert!(tty.lines().count() > 1, "{tty}");
        for l in tty.lines() {
            assert!(l.chars().count() <= 100, "{l:?}");
        }
        for l in tty.lines().skip(1) {
            assert!(l.starts_with(&" ".repeat(26)), "{l:?}");
        }
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(words(&tty), words(&pipe), "nothing lost");
    }
}
