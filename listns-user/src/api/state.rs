//! What the watch loop shares with the API server: a snapshot of the
//! inventory, taken when a request wants a fresher one (at most every
//! [`MIN_INTERVAL`]), and every event the loop saw, kept in a bounded ring
//! (for replay and for each namespace's history) and broadcast live.
//!
//! The loop never waits for the server: it clones its inventory into a new
//! snapshot and swaps an `Arc`; events are pushed under a lock held for a
//! few pointer moves, and broadcast on a channel that drops what a slow
//! reader has not taken (the reader is then cut off). The server renders
//! from the snapshot it holds, never from the loop's inventory.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hyper::{StatusCode, body::Bytes};
use tokio::sync::{Notify, broadcast, watch};

use super::record::{Kept, Record};
use crate::{
    inventory::{
        Container, Inventory, Namespace, NsKey, State,
        live::{Change, TaskEvent},
    },
    output::contract::{Lost, Rescan, VerdictKind},
    stats::ScanStats,
};

/// Snapshots are taken at most this often, however many requests ask; a
/// request is answered from one at most this old without waiting. Each
/// costs the loop a copy of its live inventory (a few milliseconds under
/// churn): at four a second that stays off the event lag's tail.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// How long a request waits for the loop to publish a fresher snapshot
/// before it answers from the one it has.
const WAIT_FRESH: Duration = Duration::from_secs(1);
/// Events kept for replay (`/v1/events?since=`).
pub const RING: usize = 10_000;
/// Events kept per namespace (its history in `/v1/namespaces/{id}`).
pub const HISTORY: usize = 32;
/// Events a live stream may fall behind before it is cut off.
pub const STREAM_BACKLOG: usize = 4_096;

/// The inventory as the loop had it at one moment.
pub struct Snapshot {
    pub inv: Inventory,
    /// The last scan's counts (`-J`'s `scan`).
    pub stats: ScanStats,
    pub taken: Instant,
    /// The cursor of the last event applied before it was taken.
    pub cursor: u64,
    /// Counts the snapshots taken (0: the empty one before the first).
    pub generation: u64,
}

/// What the loop publishes and the server reads.
pub struct Shared {
    snapshot: Mutex<Arc<Snapshot>>,
    /// The inventory changed since the last snapshot.
    dirty: AtomicBool,
    /// A request wants a fresher snapshot.
    wanted: Notify,
    /// Bumped at each snapshot, for requests that wait for one.
    published: watch::Sender<u64>,
    ring: Mutex<Ring>,
    live: broadcast::Sender<Kept>,
    /// Answers rendered from the current snapshot.
    rendered: Mutex<Rendered>,
    /// The namespaces found gone that the watcher remembers, as they were
    /// when found: kept apart from the snapshots, which copy the live
    /// inventory only (under churn the gone far outnumber the live).
    gone: Mutex<BTreeMap<NsKey, Arc<Namespace>>>,
    /// Streams cut off because they fell behind.
    pub cut: AtomicU64,
    /// How many gone namespaces the watcher remembers (`--max-gone`).
    pub max_gone: usize,
}

/// Answers rendered from one snapshot, by request: two hundred clients
/// polling the same thing cost one rendering per snapshot, not two hundred.
#[derive(Default)]
struct Rendered {
    generation: u64,
    answers: HashMap<String, Bytes>,
}

/// Distinct requests kept per snapshot; past it, answers are rendered
/// each time (a client varying its query cannot grow the cache).
const RENDERED_MAX: usize = 64;

#[derive(Default)]
struct Ring {
    events: VecDeque<Kept>,
    /// The last cursor given out (0: none yet).
    last: u64,
    /// Each namespace's recent events, and how many older ones were dropped.
    history: HashMap<NsKey, (VecDeque<Kept>, u64), foldhash::fast::RandomState>,
    /// The cursor of each remembered namespace's `gone` event.
    gone: HashMap<NsKey, u64, foldhash::fast::RandomState>,
}

/// A page of replay: the events after a cursor, and how many after it
/// are no longer kept.
pub struct Replay {
    pub events: Vec<Kept>,
    pub dropped: u64,
    pub last: u64,
}

impl Shared {
    pub fn new(inv: Inventory, stats: ScanStats, max_gone: usize) -> Arc<Shared> {
        let (published, _) = watch::channel(0);
        let (live, _) = broadcast::channel(STREAM_BACKLOG);
        Arc::new(Shared {
            snapshot: Mutex::new(Arc::new(Snapshot {
                inv,
                stats,
                // Old already: the first request asks for a real one.
                taken: Instant::now()
                    .checked_sub(MIN_INTERVAL)
                    .unwrap_or_else(Instant::now),
                cursor: 0,
                generation: 0,
            })),
            rendered: Mutex::new(Rendered::default()),
            gone: Mutex::new(BTreeMap::new()),
            dirty: AtomicBool::new(false),
            wanted: Notify::new(),
            published,
            ring: Mutex::new(Ring::default()),
            live,
            cut: AtomicU64::new(0),
            max_gone,
        })
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The inventory as recent as the loop can give it: when it changed
    /// since a snapshot older than [`MIN_INTERVAL`], asks the loop for a
    /// new one and waits (at most a second: a stalled loop still gets an
    /// answer, a stale one).
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let current = self.current();
        if !self.dirty.load(Ordering::Acquire) || current.taken.elapsed() < MIN_INTERVAL {
            return current;
        }
        let mut published = self.published.subscribe();
        self.wanted.notify_one();
        let _ = tokio::time::timeout(WAIT_FRESH, published.changed()).await;
        self.current()
    }

    /// The answer to `request` (its path and query) from `snap`: rendered
    /// once per snapshot. Only successes are kept.
    pub fn rendered(
        &self,
        snap: &Snapshot,
        request: &str,
        render: impl FnOnce() -> (StatusCode, Bytes),
    ) -> (StatusCode, Bytes) {
        {
            let cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
            if cache.generation == snap.generation
                && let Some(b) = cache.answers.get(request)
            {
                return (StatusCode::OK, b.clone());
            }
        }
        let (status, body) = render();
        let mut cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if cache.generation != snap.generation {
            cache.generation = snap.generation;
            cache.answers.clear();
        }
        if status == StatusCode::OK && cache.answers.len() < RENDERED_MAX {
            cache.answers.insert(request.to_string(), body.clone());
        }
        (status, body)
    }

    /// The events after `since` still kept, oldest first, at most `limit`.
    pub fn replay(&self, since: u64, limit: usize) -> Replay {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let first = ring.events.front().map_or(ring.last + 1, |k| k.cursor);
        let dropped = first.saturating_sub(since + 1);
        let skip = (since + 1).saturating_sub(first) as usize;
        Replay {
            events: ring.events.iter().skip(skip).take(limit).cloned().collect(),
            dropped,
            last: ring.last,
        }
    }

    /// A namespace's kept events, oldest first, and how many were dropped.
    pub fn history(&self, key: &NsKey) -> (Vec<Kept>, u64) {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.history
            .get(key)
            .map(|(h, dropped)| (h.iter().cloned().collect(), *dropped))
            .unwrap_or_default()
    }

    /// The gone namespaces remembered, newest first, each with the cursor
    /// of its `gone` event.
    pub fn gone(&self) -> Vec<(NsKey, Arc<Namespace>, Option<u64>)> {
        let gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<_> = gone
            .iter()
            .map(|(k, ns)| (*k, ns.clone(), self.gone_cursor(k)))
            .collect();
        list.sort_by_key(|(_, ns, _)| match ns.state {
            State::Gone { since_ns } => std::cmp::Reverse(since_ns),
            State::Alive => std::cmp::Reverse(0),
        });
        list
    }

    /// The snapshot's live inventory with the gone namespaces added: all
    /// the watcher knows (`/v1/inventory`, one namespace's detail).
    pub fn whole(&self, snap: &Snapshot) -> Inventory {
        let mut inv = snap.inv.clone();
        let gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        for (k, ns) in gone.iter() {
            inv.insert(*k, Namespace::clone(ns));
        }
        inv
    }

    /// The cursor of a namespace's `gone` event, while remembered.
    pub fn gone_cursor(&self, key: &NsKey) -> Option<u64> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.gone.get(key).copied()
    }

    /// The last cursor given out.
    pub fn last_cursor(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).last
    }

    /// Live events from now on, and the last cursor before them (so that a
    /// stream can replay up to it first without a gap or a repeat).
    pub fn subscribe(&self) -> (broadcast::Receiver<Kept>, u64) {
        // Under the ring's lock: `publish` pushes and sends under it too.
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        (self.live.subscribe(), ring.last)
    }

    /// Live streams now.
    pub fn streams(&self) -> usize {
        self.live.receiver_count()
    }
}

/// The loop's side.
pub struct Publisher {
    shared: Arc<Shared>,
    /// A request asked for a snapshot; it is taken when `MIN_INTERVAL`
    /// has passed since the last one.
    requested: bool,
    last_taken: Instant,
}

impl Publisher {
    pub fn new(shared: Arc<Shared>) -> Publisher {
        Publisher {
            shared,
            requested: false,
            last_taken: Instant::now(),
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The inventory changed: the next request asks for a new snapshot.
    pub fn changed(&self) {
        self.shared.dirty.store(true, Ordering::Release);
    }

    /// The namespaces a task event created, joined or left: one event
    /// each, sharing one copy of the task event.
    pub fn task(&mut self, ev: TaskEvent, changes: &[Change], container: Option<&Container>) {
        if changes.is_empty() {
            return;
        }
        let ev = Arc::new(ev);
        let container = container.map(|c| Arc::new(c.clone()));
        for c in changes {
            let record = Record::Change {
                ev: ev.clone(),
                change: c.clone(),
                container: container.clone(),
            };
            self.keep(record, Some(c.key));
        }
    }

    /// A verdict on a namespace: a `gone` one is remembered for
    /// `/v1/gone`, one found alive (hidden, discovered) is not.
    pub fn verdict(&mut self, kind: VerdictKind, key: NsKey, ns: &Namespace, time_ns: u64) {
        // One copy, shared by the event and the memory of gone ones.
        let ns = Arc::new(ns.clone());
        {
            let mut gone = self.shared.gone.lock().unwrap_or_else(|e| e.into_inner());
            if kind == VerdictKind::Gone {
                gone.insert(key, ns.clone());
            } else {
                gone.remove(&key);
            }
        }
        let record = Record::Verdict {
            kind,
            key,
            ns,
            time_ns,
        };
        self.keep(record, Some(key));
    }

    pub fn lost(&mut self, lost: Lost) {
        self.keep(Record::Lost(lost), None);
    }

    pub fn rescan(&mut self, rescan: Rescan) {
        self.keep(Record::Rescan(rescan), None);
    }

    /// Keeps an event (the namespace it is about gets it in its history)
    /// and sends it to the live streams.
    fn keep(&mut self, record: Record, about: Option<NsKey>) {
        let gone = matches!(
            record,
            Record::Verdict {
                kind: VerdictKind::Gone,
                ..
            }
        );
        let mut ring = self.shared.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.last += 1;
        let cursor = ring.last;
        let kept = Kept::new(cursor, record);
        if ring.events.len() == RING {
            ring.events.pop_front();
        }
        ring.events.push_back(kept.clone());
        if let Some(key) = about {
            let (h, dropped) = ring.history.entry(key).or_default();
            if h.len() == HISTORY {
                h.pop_front();
                *dropped += 1;
            }
            h.push_back(kept.clone());
            if gone {
                ring.gone.insert(key, cursor);
            }
        }
        // Never blocks: a receiver that falls behind finds it has lagged.
        // Without one, nothing is stored.
        let _ = self.shared.live.send(kept);
        self.changed();
    }

    /// When the next snapshot is due: `None` until a request asks.
    pub fn due(&self) -> Option<Instant> {
        self.requested.then(|| self.last_taken + MIN_INTERVAL)
    }

    /// Waits for a request that wants a fresher snapshot.
    pub async fn wanted(&mut self) {
        if self.requested {
            return std::future::pending().await;
        }
        self.shared.wanted.notified().await;
        self.requested = true;
    }

    /// Takes a snapshot of `inv` for the server; returns the time it took
    /// (the loop's time: the `api_snapshot_duration` metric).
    pub fn publish(&mut self, inv: &Inventory, stats: &ScanStats) -> Duration {
        self.requested = false;
        self.last_taken = Instant::now();
        let cursor = self.shared.last_cursor();
        self.shared.dirty.store(false, Ordering::Release);
        let generation = *self.shared.published.borrow() + 1;
        let snap = Arc::new(Snapshot {
            inv: inv.alive_copy(),
            stats: stats.clone(),
            taken: self.last_taken,
            cursor,
            generation,
        });
        let old = std::mem::replace(
            &mut *self
                .shared
                .snapshot
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            snap,
        );
        self.shared.published.send_replace(generation);
        // The old one is freed by its last reader; most often here, which
        // is the loop's time, so hand it to a thread of its own when it is
        // big (freeing 10,000 namespaces takes milliseconds).
        if old.inv.len() > 1_000 {
            std::thread::spawn(move || drop(old));
        }
        self.last_taken.elapsed()
    }

    /// Forgets what the API keeps of namespaces the lifecycle forgot: as
    /// they are forgotten, a few at a time (under churn, thousands a
    /// second: a sweep of everything once a second stalled the loop for
    /// tens of milliseconds).
    pub fn forget(&mut self, keys: &[NsKey]) {
        if keys.is_empty() {
            return;
        }
        let mut ring = self.shared.ring.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            ring.history.remove(k);
            ring.gone.remove(k);
        }
        drop(ring);
        let mut gone = self.shared.gone.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            gone.remove(k);
        }
    }

    /// The same for anything else the inventory no longer has (a rescan
    /// may drop a namespace): a sweep of everything, so run rarely.
    pub fn prune(&mut self, inv: &Inventory) {
        let stale: Vec<NsKey> = {
            let ring = self.shared.ring.lock().unwrap_or_else(|e| e.into_inner());
            ring.history
                .keys()
                .filter(|k| inv.get(k).is_none())
                .copied()
                .collect()
        };
        self.forget(&stale);
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
