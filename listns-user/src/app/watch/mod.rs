//! `listns watch`: start the tracer, scan, print the inventory, then print
//! every namespace event as it happens and keep the inventory current.
//! With `-- COMMAND` or `--follow-pid PID` it follows one process tree and ends
//! with a summary of what that tree did with namespaces.
//!
//! The tracer starts before the scan so that nothing created while the scan
//! runs is missed (its records wait in the ring buffer).

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use super::{
    follow::{Ended, Followee},
    print::WatchFilter,
};

mod following;
mod remote;
mod serving;
mod start;
mod waits;
use crate::{
    api::Publisher,
    cli::WatchArgs,
    inventory::{Inventory, NsKey, followed::Followed, live::ChangeKind},
    lifecycle::{Lifecycle, Verdict, listns_syscall},
    output::contract::{Lost, Rescan, Time},
    output::{
        contract::VerdictKind, events, fit, sink::Sink, stream::EventWriter, summary::Subject,
    },
    scan::{Scanner, attribution::Containers},
    service::{Telemetry, health::Step},
    stats::ScanStats,
    trace::{Batch, Tracer},
};
use serving::wanted;
use waits::{exited, next_batch, sleep_until};

/// How often watch rescans when the tracer cannot run.
const FALLBACK_RESCAN: Duration = Duration::from_secs(2);

/// After lost records, the reconciling rescan waits this long, so that a
/// flood of losses costs one rescan, not one per batch. Another loss after
/// that rescan schedules another: a rescan always follows the last loss.
const LOSS_RESCAN_DELAY: Duration = Duration::from_millis(250);

/// `listns watch`: scan, print, then trace live until SIGINT/SIGTERM, or
/// until the followed command exits.
pub fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    if let Some(from) = &args.from {
        return remote::watch(&args, from);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    // Signals first: a Ctrl-C during start-up must still detach cleanly.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let following = args.following();
    let mut w = Watch::start(&args, following)?;
    let followee = if following {
        Some(w.follow(&args)?)
    } else {
        None
    };
    let stop = sleep_until(args.duration.map(|d| tokio::time::Instant::now() + d));
    tokio::pin!(stop);
    let mut fallback = tokio::time::interval(FALLBACK_RESCAN);
    fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    fallback.tick().await; // the first tick is immediate: the scan just ran
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A command gets the terminal's Ctrl-C itself: the first one waits for
    // it to exit (SIGTERM is passed on to it); a second one stops at once.
    let ours = !args.command.is_empty();
    let mut interrupted = false;
    let mut ended = None;
    loop {
        w.enter(Step::Waiting);
        let snapshot_due = w.api.as_ref().and_then(Publisher::due);
        tokio::select! {
            batch = next_batch(&mut w.tracer) => w.on_batch(batch?)?,
            _ = sleep_until(w.lifecycle.next_due().map(tokio::time::Instant::from_std)) => w.on_lifecycle()?,
            _ = fallback.tick(), if w.tracer.is_none() => w.on_fallback_tick()?,
            _ = sleep_until(w.loss_rescan.map(tokio::time::Instant::from_std)) => w.on_loss_rescan()?,
            _ = heartbeat.tick() => w.on_heartbeat(),
            _ = wanted(w.api.as_mut()) => {}
            _ = sleep_until(snapshot_due.map(tokio::time::Instant::from_std)) => w.publish(),
            _ = sighup.recv() => w.out.get_mut().reopen()?,
            r = exited(followee.as_ref()) => {
                r.context("waiting for the followed process")?;
                ended = followee.as_ref().map(Followee::reap);
                break;
            }
            _ = sigint.recv() => {
                if ours && !interrupted {
                    interrupted = true;
                    fit::note("waiting for the command to exit (interrupt again to stop now)");
                    continue;
                }
                break;
            }
            _ = sigterm.recv() => {
                if let (true, false, Some(f)) = (ours, interrupted, followee.as_ref()) {
                    interrupted = true;
                    f.signal(libc::SIGTERM);
                    continue;
                }
                break;
            }
            _ = &mut stop => break,
        }
    }
    let mut status = ExitCode::SUCCESS;
    if let Some(f) = &followee {
        w.settle(args.settle).await?;
        let subject = Subject {
            command: f.command.clone(),
            pid: f.pid,
            exit_code: ended.and_then(|e| e.code),
            signal: ended.and_then(|e| e.signal),
            running: ended.is_none(),
        };
        w.summary(&subject)?;
        status = ExitCode::from(ended.map_or(0, |e: Ended| e.status()));
    }
    w.finish()?;
    Ok(status)
}

/// Everything the loop keeps.
struct Watch {
    /// How its rescans scan (`--scan`, the BTF).
    scanner: Scanner,
    tracer: Option<Tracer>,
    inv: Inventory,
    lifecycle: Lifecycle,
    out: EventWriter<Sink>,
    /// Metrics and health, with `--metrics`.
    telemetry: Option<Telemetry>,
    print: WatchFilter,
    /// What the followed tree did (following only).
    followed: Option<Followed>,
    containers: Containers,
    /// When the rescan that reconciles lost records is due.
    loss_rescan: Option<Instant>,
    /// What the inventory API is told, when it is served.
    api: Option<Publisher>,
    /// The last scan's counts, for the API's `-J` documents.
    stats: ScanStats,
}

impl Watch {
    /// Applies the kernel's records and prints what passes the filters;
    /// after lost records, schedules a rescan.
    fn on_batch(&mut self, batch: Batch) -> anyhow::Result<()> {
        self.enter(Step::Records);
        let now = Instant::now();
        // Each event's time, for the lag metric once its lines are out.
        let times: Vec<u64> = match &self.telemetry {
            Some(_) => batch.events.iter().map(|e| e.time_ns).collect(),
            None => Vec::new(),
        };
        for owned in batch.events {
            let ev = &owned;
            let changes = self.inv.apply(ev);
            let creates = changes.iter().any(|c| c.kind == ChangeKind::Created);
            let mut container = if creates || self.print.container.is_some() {
                self.containers.of(ev)
            } else {
                None
            };
            if let Some(api) = self.api.as_mut() {
                api.changed();
            }
            for change in &changes {
                if change.kind == ChangeKind::Created
                    && let Some(origin) = self
                        .inv
                        .get_mut(&change.key)
                        .and_then(|ns| ns.origin.as_mut())
                {
                    // While the creator still runs; one already gone stays unattributed.
                    origin.container = container.clone();
                }
                if let Some(t) = &self.telemetry {
                    t.change(change);
                }
            }
            if let Some(f) = self.followed.as_mut() {
                f.note(ev, &changes, &self.inv);
            }
            let shown: Vec<_> = changes
                .iter()
                .filter(|c| self.print.change(ev, container.as_ref(), c))
                .collect();
            // Joined and left lines name the container too: looked up
            // only for a line that is printed.
            if container.is_none() && !creates && !shown.is_empty() {
                container = self.containers.of(ev);
            }
            self.out.task(ev, &shown, container.as_ref())?;
            if ev.process_gone() {
                self.containers.forget(ev.pid);
            }
            self.lifecycle.note(&changes, &self.inv, now);
            if let Some(api) = self.api.as_mut() {
                api.task(owned, &changes, container.as_ref());
            }
        }
        if batch.lost > 0 {
            if let Some(api) = self.api.as_mut() {
                api.lost(Lost {
                    time: Time(events::now_ns()),
                    count: batch.lost,
                    missed: batch.missed,
                });
            }
            self.out.lost(batch.lost, batch.missed)?;
            if let Some(t) = &self.telemetry {
                t.lost(batch.lost);
            }
            self.loss_rescan
                .get_or_insert_with(|| now + LOSS_RESCAN_DELAY);
        }
        self.out.flush()?;
        if let Some(t) = &self.telemetry {
            t.written(&times, events::now_ns());
            // Applying records is progress: a long backlog is not a stall.
            t.health.beat();
        }
        Ok(())
    }

    /// The rescan after lost records: what it found that the inventory did
    /// not know (namespaces whose records were lost) is reported
    /// `discovered`, then a `rescan` line sums it up.
    fn on_loss_rescan(&mut self) -> anyhow::Result<()> {
        self.enter(Step::Rescan);
        self.loss_rescan = None;
        let (namespaces, discovered) = self.rescan()?;
        let now_ns = events::now_ns();
        self.print_verdicts(VerdictKind::Discovered, discovered.clone(), now_ns)?;
        // Where listns(2) exists it also names what no scan can see (an
        // nsfs fd in flight) among the namespaces whose records were lost.
        if let Ok(ids) = listns_syscall::list_all() {
            let method = &self.lifecycle.method;
            let hidden = self.inv.add_unexplained(&ids, |id| method.inode_of(id));
            self.print_verdicts(VerdictKind::Hidden, hidden, now_ns)?;
        }
        if let Some(api) = self.api.as_mut() {
            api.rescan(Rescan {
                time: Time(now_ns),
                namespaces: namespaces as u64,
                discovered: discovered.len() as u64,
            });
        }
        self.out.rescan(namespaces, discovered.len())?;
        self.out.flush()?;
        Ok(())
    }

    /// Runs the liveness checks that are due and forgets what has been gone
    /// long enough.
    fn on_lifecycle(&mut self) -> anyhow::Result<()> {
        self.enter(Step::Lifecycle);
        let now_ns = events::now_ns();
        let scanner = self.scanner.clone();
        let scan = || scanner.scan().ok().map(|(inv, _)| inv);
        let (mut gone, mut hidden, mut discovered) = (Vec::new(), Vec::new(), Vec::new());
        for verdict in self
            .lifecycle
            .run(&mut self.inv, Instant::now(), now_ns, scan)
        {
            match verdict {
                Verdict::Gone(key) => {
                    if let Some(t) = &self.telemetry {
                        t.gone(&key);
                    }
                    gone.push(key);
                }
                Verdict::Hidden(key) => hidden.push(key),
                Verdict::Discovered(key) => discovered.push(key),
            }
        }
        if let Some(t) = self.tracer.as_mut() {
            t.forget(&gone);
        }
        self.print_verdicts(VerdictKind::Gone, gone, now_ns)?;
        self.print_verdicts(VerdictKind::Hidden, hidden, now_ns)?;
        self.print_verdicts(VerdictKind::Discovered, discovered, now_ns)?;
        let forgotten = self.lifecycle.forget(&mut self.inv, now_ns);
        if let Some(api) = self.api.as_mut() {
            api.forget(&forgotten);
        }
        self.out.flush()?;
        Ok(())
    }

    fn print_verdicts(
        &mut self,
        event: VerdictKind,
        keys: Vec<NsKey>,
        now_ns: u64,
    ) -> anyhow::Result<()> {
        // The API is told everything; the filters choose what is printed.
        if let Some(api) = self.api.as_mut() {
            for k in &keys {
                if let Some(ns) = self.inv.get(k) {
                    api.verdict(event, *k, ns, now_ns);
                }
            }
        }
        let shown: Vec<NsKey> = keys
            .into_iter()
            .filter(|k| self.print.verdict(k, &self.inv, self.followed.as_ref()))
            .collect();
        if !shown.is_empty() {
            self.out.verdicts(event, &shown, &self.inv, now_ns)?;
        }
        Ok(())
    }

    /// Without the tracer: what a rescan found that was not known.
    fn on_fallback_tick(&mut self) -> anyhow::Result<()> {
        self.enter(Step::Rescan);
        let (_, discovered) = self.rescan()?;
        self.print_verdicts(VerdictKind::Discovered, discovered, events::now_ns())?;
        self.out.flush()?;
        Ok(())
    }

    /// Rescans, merges, re-seeds the kernel's map and schedules checks of
    /// the namespaces nothing holds any more. Returns the inventory's size
    /// and what the rescan found that was not known.
    fn rescan(&mut self) -> anyhow::Result<(usize, Vec<NsKey>)> {
        let (new, stats) = self.scanner.scan()?;
        if let Some(why) = &stats.pass_note {
            fit::note(&format!(
                "the kernel's iterators did not run ({why}): rescans read /proc instead"
            ));
        }
        if let Some(t) = &self.telemetry {
            t.rescan(&stats);
        }
        let rescan = self.inv.merge_rescan(new);
        self.stats = stats;
        if let Some(api) = self.api.as_mut() {
            api.changed();
            // What the rescan dropped, the API forgets too.
            api.prune(&self.inv);
        }
        self.seed();
        self.lifecycle.check_soon(&rescan.unheld, Instant::now());
        Ok((self.inv.len(), rescan.discovered))
    }

    /// Tells the health check what the loop is doing (a stall names it).
    fn enter(&self, step: Step) {
        if let Some(t) = &self.telemetry {
            t.health.enter(step);
        }
    }

    /// Once a second: tells the health check the loop is alive, and the
    /// gauges what is alive and hidden now.
    fn on_heartbeat(&mut self) {
        if let Some(t) = &self.telemetry {
            t.tick(&self.inv);
        }
    }

    /// A snapshot of the inventory for the API's requests.
    fn publish(&mut self) {
        self.enter(Step::Snapshot);
        if let Some(api) = self.api.as_mut() {
            let took = api.publish(&self.inv, &self.stats);
            if let Some(t) = &self.telemetry {
                t.metrics.api_snapshot.observe(took.as_secs_f64());
            }
        }
    }

    /// Tells the kernel which namespaces exist already, so that it reports
    /// them as joined, not created.
    fn seed(&mut self) {
        let Some(t) = self.tracer.as_mut() else {
            return;
        };
        let failed = t.seed(&self.inv);
        if failed > 0 {
            fit::note(&format!(
                "{failed} namespaces could not be marked as known in the kernel; they may be \
                 reported as created when joined"
            ));
        }
    }

    /// Reports what the kernel delivered before the signal, then detaches
    /// every program (dropping the tracer closes every map).
    fn finish(mut self) -> anyhow::Result<()> {
        // After a summary nothing more is printed.
        if self.followed.is_none()
            && let Some(t) = self.tracer.as_mut()
        {
            let batch = t.drain_now();
            self.on_batch(batch)?;
        }
        self.out.flush()?;
        drop(self.tracer.take());
        Ok(())
    }
}
