//! The inventory API's own answers (`/v1/...` on the watcher): what is not
//! already a `-J` document ([`ListDocument`](super::ListDocument)) or a
//! watch line ([`WatchLine`]).
//!
//! The watcher keeps recent events as the JSON it wrote once ([`Event`],
//! serialized when the event happened), so a page of events or a
//! namespace's history is written from those bytes, not built again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{NamespaceRow, Verdict, WatchLine};

/// The answer to a request that failed (4xx, 5xx).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    /// What was wrong, in one line, as the command line would say it.
    pub error: String,
    /// The query parameter or path segment at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// For a `filter`: the 1-based character of the expression where it
    /// goes wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

/// One event the watcher saw: a watch line with the cursor that names it.
#[derive(Serialize, JsonSchema)]
pub struct Event<'a> {
    /// Counts the watcher's events from 1 up, one per line; `since=` takes
    /// it to resume after this event. A restarted watcher counts from 1
    /// again.
    pub cursor: u64,
    #[serde(flatten)]
    pub line: WatchLine<'a>,
}

impl Event<'_> {
    /// The event as the JSON kept for replay.
    pub fn to_raw(&self) -> Box<RawValue> {
        serde_json::value::to_raw_value(self).expect("an event serializes")
    }
}

/// Events kept as the JSON they were made into once ([`Event`]).
#[derive(Clone, Debug, Default)]
pub struct RawEvents<'a>(pub Vec<&'a RawValue>);

impl Serialize for RawEvents<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

/// `GET /v1/events?since=CURSOR`: the events after a cursor that the
/// watcher still keeps, oldest first.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EventPage<'a> {
    #[schemars(with = "Vec<Event<'static>>")]
    pub events: RawEvents<'a>,
    /// The cursor to pass as `since` to continue: the last event's, or the
    /// request's `since` when there was none.
    pub next: u64,
    /// Events after `since` that the watcher no longer keeps (it keeps the
    /// most recent ones only): 0 when `events` starts right after `since`.
    pub dropped: u64,
}

/// `GET /v1/namespaces/{id}`: one namespace, its processes, and what
/// happened to it while the watcher ran.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NamespaceDetail<'a> {
    /// Its row with every column, as `listns -J -o +ALL` writes it.
    pub namespace: NamespaceRow<'a>,
    /// One row per process in it, as `listns -J NAMESPACE` writes them.
    pub processes: Vec<NamespaceRow<'a>>,
    /// Its events, oldest first (created, joined, left, hidden, gone), at
    /// most the most recent few dozen.
    #[schemars(with = "Vec<Event<'static>>")]
    pub history: RawEvents<'a>,
    /// Older events of it that were not kept.
    pub history_dropped: u64,
}

/// `GET /v1/gone`: the namespaces found dead, newest first.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GoneList<'a> {
    pub gone: Vec<Gone<'a>>,
}

/// A namespace found dead, and how long it lived.
#[derive(Serialize, JsonSchema)]
pub struct Gone<'a> {
    /// The cursor of its `gone` event, while the watcher remembers it.
    pub cursor: Option<u64>,
    /// `time` is when it was found dead.
    #[serde(flatten)]
    pub verdict: Verdict<'a>,
    /// From its creation to `time`, in milliseconds, where the tracer saw
    /// the creation.
    pub lifetime_ms: Option<f64>,
}
