//! What `/healthz` answers: 200 while the tracer runs with every hook and
//! the watch loop keeps up; 503 with a one-line reason otherwise.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How long the watch loop may go without a heartbeat before it counts as
/// stalled (it beats every second when idle).
pub const STALL_AFTER: Duration = Duration::from_secs(10);

pub struct Health {
    start: Instant,
    /// Milliseconds since `start` of the loop's last heartbeat.
    beat_ms: AtomicU64,
    /// The tracer could not start: watch runs on rescans.
    fallback: AtomicBool,
    /// Hooks that could not be attached.
    missing: Mutex<Vec<String>>,
    /// Whether start-up is over (tracer attached or fallen back, initial
    /// inventory out): until then listns is not watching yet.
    started: AtomicBool,
    /// What the watch loop is doing now (an index into `STEPS`), so that
    /// a stall says where the loop is stuck.
    step: AtomicU8,
}

/// The watch loop's steps, as `Health::enter` takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    Waiting = 0,
    Records,
    Lifecycle,
    Rescan,
    Snapshot,
}

/// Every step, at its index (`Step as u8`).
const STEPS: [Step; 5] = [
    Step::Waiting,
    Step::Records,
    Step::Lifecycle,
    Step::Rescan,
    Step::Snapshot,
];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Waiting => "waiting for work",
            Step::Records => "applying the kernel's records",
            Step::Lifecycle => "checking liveness",
            Step::Rescan => "rescanning after lost records",
            Step::Snapshot => "publishing a snapshot for the API",
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Health {
            start: Instant::now(),
            beat_ms: AtomicU64::new(0),
            fallback: AtomicBool::new(false),
            missing: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            step: AtomicU8::new(Step::Waiting as u8),
        }
    }
}

impl Health {
    /// The watch loop is alive and has written what it had.
    pub fn beat(&self) {
        self.beat_at(self.start.elapsed());
    }

    fn beat_at(&self, now: Duration) {
        self.beat_ms
            .store(now.as_millis() as u64, Ordering::Relaxed);
    }

    /// The watch loop starts `step` (`Step::Waiting` when it is done).
    pub fn enter(&self, step: Step) {
        self.step.store(step as u8, Ordering::Relaxed);
    }

    pub fn set_fallback(&self, on: bool) {
        self.fallback.store(on, Ordering::Relaxed);
    }

    pub fn set_missing_hooks(&self, hooks: Vec<String>) {
        *self.missing.lock().unwrap_or_else(|e| e.into_inner()) = hooks;
    }

    /// The tracer is attached (or watch fell back to rescans) and the
    /// initial inventory is out: watching from now on. The stall clock of
    /// `/livez` starts here: the loop beats only once the start-up scan is
    /// over, and a long start-up (a big node) is not a stall.
    pub fn set_started(&self) {
        self.set_started_at(self.start.elapsed());
    }

    fn set_started_at(&self, now: Duration) {
        self.beat_at(now);
        self.started.store(true, Ordering::Relaxed);
    }

    /// `None` when healthy, else why not (one line).
    pub fn problem(&self) -> Option<String> {
        self.problem_at(self.start.elapsed())
    }

    /// `None` unless the watch loop has stalled (what a restart can cure).
    pub fn stalled(&self) -> Option<String> {
        self.stalled_at(self.start.elapsed())
    }

    fn stalled_at(&self, now: Duration) -> Option<String> {
        if !self.started.load(Ordering::Relaxed) {
            // Starting is /healthz's business (503 "starting"); liveness
            // counts from the end of the start-up scan.
            return None;
        }
        let since = now.saturating_sub(Duration::from_millis(self.beat_ms.load(Ordering::Relaxed)));
        (since > STALL_AFTER).then(|| {
            format!(
                "consumer stalled: the watch loop has made no progress for {} s (it is {})",
                since.as_secs(),
                STEPS
                    .get(usize::from(self.step.load(Ordering::Relaxed)))
                    .map_or("at an unknown step", |s| s.name())
            )
        })
    }

    /// Why the picture is not there yet, while starting.
    pub fn starting(&self) -> Option<String> {
        self.starting_at(self.start.elapsed())
    }

    fn starting_at(&self, now: Duration) -> Option<String> {
        (!self.started.load(Ordering::Relaxed)).then(|| {
            format!(
                "starting: attaching the tracer and taking the initial inventory ({} s so far)",
                now.as_secs()
            )
        })
    }

    fn problem_at(&self, now: Duration) -> Option<String> {
        if let Some(starting) = self.starting_at(now) {
            return Some(starting);
        }
        if let Some(stalled) = self.stalled_at(now) {
            return Some(stalled);
        }
        if self.fallback.load(Ordering::Relaxed) {
            return Some(
                "tracer not running: fell back to rescans every 2 s (short-lived namespaces are missed)"
                    .into(),
            );
        }
        let missing = self.missing.lock().unwrap_or_else(|e| e.into_inner());
        if !missing.is_empty() {
            return Some(format!("hooks missing: {}", missing.join(", ")));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_then_each_problem() {
        let h = Health::default();
        h.beat();
        // Not healthy before the tracer's start is over.
        let starting = h.problem_at(Duration::from_secs(1)).unwrap();
        assert!(starting.starts_with("starting"), "{starting}");
        h.set_started();
        assert_eq!(h.problem_at(Duration::from_secs(1)), None);
        h.set_missing_hooks(vec!["sys_enter_setns".into()]);
        assert_eq!(
            h.problem_at(Duration::from_secs(1)).as_deref(),
            Some("hooks missing: sys_enter_setns")
        );
        h.set_fallback(true);
        assert!(
            h.problem_at(Duration::from_secs(1))
                .unwrap()
                .starts_with("tracer not running")
        );
        // Liveness cares about a stall only.
        assert_eq!(h.stalled_at(Duration::from_secs(1)), None);
        let stalled = h.problem_at(Duration::from_secs(30)).unwrap();
        assert!(stalled.starts_with("consumer stalled"), "{stalled}");
        assert_eq!(h.stalled_at(Duration::from_secs(30)), Some(stalled));
    }

    #[test]
    fn liveness_counts_from_the_end_of_start_up() {
        let h = Health::default();
        h.beat_at(Duration::ZERO);
        // A start-up scan of 60 s (a big node): starting, not stalled.
        assert_eq!(h.stalled_at(Duration::from_secs(60)), None);
        assert!(
            h.problem_at(Duration::from_secs(60))
                .unwrap()
                .starts_with("starting")
        );
        h.set_started_at(Duration::from_secs(60));
        assert_eq!(h.stalled_at(Duration::from_secs(65)), None);
        assert_eq!(h.problem_at(Duration::from_secs(65)), None);
        // From then on the loop must beat.
        let stalled = h.stalled_at(Duration::from_secs(71)).unwrap();
        assert!(stalled.contains("for 11 s"), "{stalled}");
        // And says where it is stuck.
        assert!(stalled.ends_with("(it is waiting for work)"), "{stalled}");
        h.enter(Step::Lifecycle);
        let stalled = h.stalled_at(Duration::from_secs(71)).unwrap();
        assert!(stalled.ends_with("(it is checking liveness)"), "{stalled}");
    }
}
