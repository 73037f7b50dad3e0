//! Namespace lifecycle: alive, gone, hidden.
//!
//! When the last known holder of a namespace goes away (an exit, a setns
//! away), the namespace may be dead, being torn down (network namespaces
//! die asynchronously), or alive through a reference no scan can see. After
//! a short debounce, off the event path, its liveness is checked: by nsfs
//! file handle where the kernel has them (one syscall, no holder needed),
//! otherwise by looking for holders again. Dead: `gone`. Alive but no
//! holder found by a fresh scan, after a few tries: `hidden`. A periodic
//! sweep catches the rest, and gone namespaces are forgotten after a while
//! so that a tracer running for weeks keeps flat memory.

pub mod handle;
pub mod listns_syscall;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, Instant},
};

use crate::inventory::{Inventory, NsKey, State, live::Change, live::ChangeKind};
pub use handle::{Handles, Liveness};

/// How liveness is decided on this kernel.
#[derive(Debug)]
pub enum Method {
    /// nsfs file handles (6.18+).
    Handles(Handles),
    /// Re-checking the holders with a scan: a namespace alive only through
    /// a reference no scan can see is then indistinguishable from a dead one.
    Holders,
}

impl Method {
    /// Handles where they work, else holders; with the reason.
    pub fn detect() -> (Method, String) {
        match Handles::probe() {
            Ok(h) => (
                Method::Handles(h),
                "liveness by nsfs file handle (open_by_handle_at)".into(),
            ),
            Err(why) => (
                Method::Holders,
                format!(
                    "liveness by re-checking holders: {why}; a namespace kept alive by a reference no scan \
                     can see will be reported gone, not hidden"
                ),
            ),
        }
    }

    /// The inode of a namespace known by id only, where handles can tell.
    pub fn inode_of(&self, id: u64) -> Option<u64> {
        match self {
            Method::Handles(h) => h.inode_of(id),
            Method::Holders => None,
        }
    }

    fn check(&self, key: &NsKey) -> Liveness {
        match self {
            Method::Handles(h) => h.check(key),
            Method::Holders => Liveness::Unknown,
        }
    }
}

/// What the lifecycle found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Gone(NsKey),
    Hidden(NsKey),
    /// A rescan found it and the inventory did not know it (its records
    /// were lost, or it came from where no event looks).
    Discovered(NsKey),
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    due: Instant,
    tries: u32,
}

/// Shortest sweep interval when liveness needs a rescan.
pub const HOLDERS_SWEEP: Duration = Duration::from_secs(10);

/// Tuning; the defaults suit a long-running tracer.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// First check after the last holder went away.
    pub debounce: Duration,
    /// Checks of an alive namespace without holders before it is hidden
    /// (netns teardown is asynchronous: it can look alive for a while).
    pub tries: u32,
    /// How often every tracked namespace is checked (with handles: one
    /// syscall each; 10,000 namespaces take a few milliseconds).
    pub sweep_every: Duration,
    /// Gone namespaces are forgotten after this long.
    pub forget_after: Duration,
    /// At most this many gone namespaces are remembered (the oldest go
    /// first), so memory stays bounded at any churn rate.
    pub max_gone: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            debounce: Duration::from_millis(200),
            tries: 4,
            sweep_every: Duration::from_secs(2),
            forget_after: Duration::from_secs(600),
            max_gone: 10_000,
        }
    }
}

pub struct Lifecycle {
    pub method: Method,
    pub tuning: Tuning,
    pending: BTreeMap<NsKey, Pending>,
    /// `pending` ordered by due time: the next check and the due ones are
    /// found without a walk (thousands are pending under churn, and the
    /// event loop asks for the next one after every batch).
    queue: BTreeSet<(Instant, NsKey)>,
    last_sweep: Instant,
    /// Gone namespaces, oldest first, for `forget`.
    gone: VecDeque<(u64, NsKey)>,
}

impl Lifecycle {
    /// Whether `key`'s liveness is decided by its holders (a rescan), not
    /// by its nsfs handle: on kernels without handles, and for a key whose
    /// id is unknown.
    fn by_holders(&self, key: &NsKey) -> bool {
        matches!(self.method, Method::Holders) || key.id.is_none()
    }

    pub fn new(method: Method, mut tuning: Tuning, now: Instant) -> Self {
        if matches!(method, Method::Holders) {
            // Each sweep is a full rescan there: not every two seconds.
            tuning.sweep_every = tuning.sweep_every.max(HOLDERS_SWEEP);
        }
        Lifecycle {
            method,
            tuning,
            pending: BTreeMap::new(),
            queue: BTreeSet::new(),
            last_sweep: now,
            gone: VecDeque::new(),
        }
    }

    /// Schedules a check of every namespace that just lost its last holder.
    pub fn note(&mut self, changes: &[Change], inv: &Inventory, now: Instant) {
        for c in changes.iter().filter(|c| c.kind == ChangeKind::Left) {
            if let Some(ns) = inv.get(&c.key)
                && ns.holders.is_empty()
                && ns.state == State::Alive
                && !inv.is_initial(&c.key)
            {
                self.schedule(c.key, now + self.tuning.debounce, 0);
            }
        }
    }

    /// Schedules a check of `key`, unless one is scheduled already.
    fn schedule(&mut self, key: NsKey, due: Instant, tries: u32) {
        if let std::collections::btree_map::Entry::Vacant(e) = self.pending.entry(key) {
            e.insert(Pending { due, tries });
            self.queue.insert((due, key));
        }
    }

    /// Cancels the check of `key`, if one is scheduled.
    fn unschedule(&mut self, key: &NsKey) {
        if let Some(p) = self.pending.remove(key) {
            self.queue.remove(&(p.due, *key));
        }
    }

    /// Schedules a check of these namespaces (a rescan found them unheld).
    pub fn check_soon(&mut self, keys: &[NsKey], now: Instant) {
        for key in keys {
            self.schedule(*key, now + self.tuning.debounce, 0);
        }
    }

    /// When the next check is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        let pending = self.queue.first().map(|&(due, _)| due);
        let sweep = self.last_sweep + self.tuning.sweep_every;
        Some(pending.map_or(sweep, |p| p.min(sweep)))
    }

    /// Runs the checks that are due. `rescan` returns a fresh scan (None if
    /// it failed); it is called at most once. `now_ns` is wall-clock time
    /// for the `Gone` state.
    pub fn run(
        &mut self,
        inv: &mut Inventory,
        now: Instant,
        now_ns: u64,
        rescan: impl FnOnce() -> Option<Inventory>,
    ) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        if now >= self.last_sweep + self.tuning.sweep_every {
            self.last_sweep = now;
            self.sweep(inv, now, now_ns, &mut verdicts);
        }
        let mut due = Vec::new();
        while let Some(&(when, key)) = self.queue.first()
            && when <= now
        {
            self.queue.pop_first();
            if let Some(p) = self.pending.remove(&key) {
                due.push((key, p));
            }
        }
        if due.is_empty() {
            return verdicts;
        }
        let mut unexplained = Vec::new();
        for (key, p) in due {
            match inv.get(&key) {
                // Holders only: known holders may be stale, the rescan decides.
                Some(ns)
                    if ns.state == State::Alive
                        && (ns.holders.is_empty() || self.by_holders(&key)) => {}
                _ => continue, // found a holder meanwhile, or already decided
            }
            match self.method.check(&key) {
                Liveness::Dead => {
                    self.mark_gone(inv, &key, now_ns);
                    verdicts.push(Verdict::Gone(key));
                }
                Liveness::Alive | Liveness::Unknown => unexplained.push((key, p)),
            }
        }
        if unexplained.is_empty() {
            return verdicts;
        }
        // Something still holds these (or we cannot tell): look again.
        if let Some(scan) = rescan() {
            let r = inv.merge_rescan(scan);
            verdicts.extend(r.discovered.into_iter().map(Verdict::Discovered));
        }
        for (key, p) in unexplained {
            let Some(ns) = inv.get(&key) else { continue };
            if !ns.holders.is_empty() || ns.state != State::Alive {
                continue;
            }
            match self.method {
                // A namespace the tracer saw without its id (a record read
                // while it was being set up or torn down) has no handle to
                // check: like every one on kernels without handles, the
                // rescan decides.
                _ if self.by_holders(&key) => {
                    self.mark_gone(inv, &key, now_ns);
                    verdicts.push(Verdict::Gone(key));
                }
                Method::Handles(_) if p.tries + 1 < self.tuning.tries => {
                    let backoff = self.tuning.debounce * 2u32.pow(p.tries + 1);
                    self.schedule(key, now + backoff, p.tries + 1);
                }
                Method::Handles(_) | Method::Holders => {
                    if let Some(ns) = inv.get_mut(&key)
                        && !ns.hidden
                    {
                        ns.hidden = true;
                        verdicts.push(Verdict::Hidden(key));
                    }
                }
            }
        }
        verdicts
    }

    /// With handles, every alive namespace is checked (one syscall each),
    /// so deaths that no event announced (an unmount, an fd closed, a
    /// process in the initial namespaces exiting with an fd) are seen; an
    /// alive one with no known holder gets the hidden check. Without
    /// handles, only namespaces with no known holder are checked.
    fn sweep(
        &mut self,
        inv: &mut Inventory,
        now: Instant,
        now_ns: u64,
        verdicts: &mut Vec<Verdict>,
    ) {
        let alive: Vec<(NsKey, bool)> = inv
            .iter()
            .filter(|(k, ns)| ns.state == State::Alive && !inv.is_initial(k))
            .map(|(k, ns)| (*k, ns.holders.is_empty() && !ns.hidden))
            .collect();
        log::debug!("lifecycle: sweeping {} alive namespaces", alive.len());
        for (key, unheld) in alive {
            if let Method::Handles(h) = &self.method
                && h.check(&key) == Liveness::Dead
            {
                self.mark_gone(inv, &key, now_ns);
                self.unschedule(&key);
                verdicts.push(Verdict::Gone(key));
            } else if unheld || matches!(self.method, Method::Holders) {
                // Holders only: every namespace goes through the rescan,
                // since its known holders may be stale.
                self.schedule(key, now, 0);
            }
        }
    }

    /// Forgets the namespaces gone for longer than `forget_after`, and the
    /// oldest gone ones beyond `max_gone`; returns them. Cheap: it walks only
    /// the queue of gone namespaces, oldest first.
    pub fn forget(&mut self, inv: &mut Inventory, now_ns: u64) -> Vec<NsKey> {
        let limit = self.tuning.forget_after.as_nanos() as u64;
        let mut out = Vec::new();
        while let Some(&(since, key)) = self.gone.front() {
            if now_ns.saturating_sub(since) <= limit && self.gone.len() <= self.tuning.max_gone {
                break;
            }
            self.gone.pop_front();
            // Still the same gone namespace (not seen alive again since).
            if inv
                .get(&key)
                .is_some_and(|ns| ns.state == State::Gone { since_ns: since })
            {
                inv.forget(&key);
                self.unschedule(&key);
                out.push(key);
            }
        }
        out
    }

    fn mark_gone(&mut self, inv: &mut Inventory, key: &NsKey, now_ns: u64) {
        if let Some(ns) = inv.get_mut(key) {
            ns.state = State::Gone { since_ns: now_ns };
            ns.hidden = false;
            self.gone.push_back((now_ns, *key));
        }
    }
}

#[cfg(test)]
mod tests;
