//! An event as the API keeps it: what the loop had in hand (the task
//! event, shared by the changes it made; a verdict's namespace facts), and
//! its JSON made the first time a client needs it, then shared by every
//! client. The loop never serializes for the API: with nobody asking, an
//! event costs it a reference count and a few pointer moves.

use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;

use crate::{
    inventory::{
        Container, Namespace, NsKey,
        live::{Change, TaskEvent},
    },
    output::contract::{Event, Lost, Rescan, VerdictKind, WatchLine},
};

/// What happened, as the loop had it.
pub enum Record {
    /// One namespace a task event created, joined or left.
    Change {
        ev: Arc<TaskEvent>,
        change: Change,
        /// The task's container, where the loop knew it (always for
        /// `created`; for joins and leaves when it printed them).
        container: Option<Arc<Container>>,
    },
    /// A verdict, with the namespace as it was when it was reached.
    Verdict {
        kind: VerdictKind,
        key: NsKey,
        ns: Arc<Namespace>,
        time_ns: u64,
    },
    Lost(Lost),
    Rescan(Rescan),
}

impl Record {
    fn line(&self) -> WatchLine<'_> {
        match self {
            Record::Change {
                ev,
                change,
                container,
            } => WatchLine::change_in(ev, change, container.as_deref()),
            Record::Verdict {
                kind,
                key,
                ns,
                time_ns,
            } => WatchLine::verdict(*kind, key, ns, *time_ns),
            Record::Lost(l) => WatchLine::Lost(l.clone()),
            Record::Rescan(r) => WatchLine::Rescan(r.clone()),
        }
    }
}

/// A kept event: its cursor and its record; cheap to clone.
#[derive(Clone)]
pub struct Kept {
    pub cursor: u64,
    inner: Arc<(Record, OnceLock<Box<RawValue>>)>,
}

impl Kept {
    pub fn new(cursor: u64, record: Record) -> Kept {
        Kept {
            cursor,
            inner: Arc::new((record, OnceLock::new())),
        }
    }

    /// Its JSON (a contract `Event`), made once.
    pub fn raw(&self) -> &RawValue {
        self.inner.1.get_or_init(|| {
            Event {
                cursor: self.cursor,
                line: self.inner.0.line(),
            }
            .to_raw()
        })
    }
}
