//! `listns watch`: start the tracer, scan, print the inventory, then print
//! every namespace event as it happens and keep the inventory current.
//!
//! The tracer starts before the scan so that nothing created while the scan
//! runs is missed (its records wait in the ring buffer).

use std::{
    io::{BufWriter, StdoutLock},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::WatchArgs,
    inventory::{Inventory, live::ChangeKind},
    lifecycle::{Lifecycle, Method, Tuning, Verdict, listns_syscall},
    output::{events, stream::EventWriter},
    scan::{Scanner, container, initial},
    trace::{Batch, Options, TraceError, Tracer},
};

/// How often watch rescans when the tracer cannot run.
const FALLBACK_RESCAN: Duration = Duration::from_secs(2);

/// After lost records, the reconciling rescan waits this long, so that a
/// flood of losses costs one rescan, not one per batch. Another loss after
/// that rescan schedules another: a rescan always follows the last loss.
const LOSS_RESCAN_DELAY: Duration = Duration::from_millis(250);

/// `listns watch`: scan, print, then trace live until SIGINT/SIGTERM.
pub fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    // Signals first: a Ctrl-C during start-up must still detach cleanly.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut w = Watch::start(&args)?;
    let stop = sleep_until(
        args.duration
            .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s)),
    );
    tokio::pin!(stop);
    let mut fallback = tokio::time::interval(FALLBACK_RESCAN);
    fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    fallback.tick().await; // the first tick is immediate: the scan just ran
    loop {
        tokio::select! {
            batch = next_batch(&mut w.tracer) => w.on_batch(batch?)?,
            _ = sleep_until(w.lifecycle.next_due().map(tokio::time::Instant::from_std)) => w.on_lifecycle()?,
            _ = fallback.tick(), if w.tracer.is_none() => w.on_fallback_tick()?,
            _ = sleep_until(w.loss_rescan.map(tokio::time::Instant::from_std)) => w.on_loss_rescan()?,
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = &mut stop => break,
        }
    }
    w.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Everything the loop keeps.
struct Watch {
    proc_root: PathBuf,
    tracer: Option<Tracer>,
    inv: Inventory,
    lifecycle: Lifecycle,
    out: EventWriter<BufWriter<StdoutLock<'static>>>,
    /// When the rescan that reconciles lost records is due.
    loss_rescan: Option<Instant>,
}

impl Watch {
    /// Starts the tracer (or says why it cannot and what that misses),
    /// scans, seeds the kernel's map and prints the inventory.
    fn start(args: &WatchArgs) -> anyhow::Result<Watch> {
        let proc_root = PathBuf::from("/proc");
        let opts = Options {
            initial: initial::quick(&proc_root),
            btf: args.btf.clone(),
            ring_bytes: args.ring_buffer_size,
            ..Options::default()
        };
        let tracer = match Tracer::start(&opts) {
            Ok(t) => {
                for line in t.status.notes.iter().chain(&t.status.failed) {
                    eprintln!("listns: {line}");
                }
                Some(t)
            }
            Err(e) => {
                eprintln!(
                    "listns: cannot start the tracer: {:#}\nlistns: falling back to a rescan every {} s: \
                     namespaces that live shorter than that are missed and creators are unknown \
                     (`discovered` events instead of `created`)",
                    anyhow::Error::new(e),
                    FALLBACK_RESCAN.as_secs()
                );
                None
            }
        };
        let (mut inv, stats) = Scanner::new(&proc_root).scan()?;
        if let Some(summary) = stats.summary() {
            eprintln!("listns: {summary}");
        }
        let (method, how) = Method::detect();
        eprintln!("listns: {how}");
        match listns_syscall::list_all() {
            Ok(ids) => {
                let n = inv.add_unexplained(&ids, |id| method.inode_of(id)).len();
                if n > 0 {
                    eprintln!(
                        "listns: listns() knows {n} namespaces that no scan explains: listed as hidden"
                    );
                }
            }
            Err(e) => eprintln!(
                "listns: {e}: namespaces created before this start and held where no scan looks cannot be found"
            ),
        }
        let tuning = Tuning {
            forget_after: Duration::from_secs_f64(args.forget_after),
            max_gone: args.max_gone,
            ..Tuning::default()
        };
        let mut w = Watch {
            proc_root,
            tracer,
            inv,
            lifecycle: Lifecycle::new(method, tuning, Instant::now()),
            out: EventWriter::new(BufWriter::new(std::io::stdout().lock()), args.json),
            loss_rescan: None,
        };
        w.seed();
        if !args.events_only {
            w.out.existing(&w.inv)?;
        }
        w.out.flush()?;
        Ok(w)
    }

    /// Applies the kernel's records; after lost records, schedules a rescan.
    fn on_batch(&mut self, batch: Batch) -> anyhow::Result<()> {
        let now = Instant::now();
        for ev in &batch.events {
            let changes = self.inv.apply(ev);
            for change in &changes {
                if change.kind == ChangeKind::Created
                    && let Some(c) = container::of_pid(&self.proc_root, ev.pid)
                    && let Some(origin) = self
                        .inv
                        .get_mut(&change.key)
                        .and_then(|ns| ns.origin.as_mut())
                {
                    // While the creator still runs; one already gone stays unattributed.
                    origin.container = Some(format!("{}:{}", c.runtime, c.id));
                }
                self.out.change(ev, change)?;
            }
            self.lifecycle.note(&changes, &self.inv, now);
        }
        if batch.lost > 0 {
            self.out.lost(batch.lost, batch.missed)?;
            self.loss_rescan
                .get_or_insert_with(|| now + LOSS_RESCAN_DELAY);
        }
        self.out.flush()?;
        Ok(())
    }

    /// The rescan after lost records: what it found that the inventory did
    /// not know (namespaces whose records were lost) is reported
    /// `discovered`, then a `rescan` line sums it up.
    fn on_loss_rescan(&mut self) -> anyhow::Result<()> {
        self.loss_rescan = None;
        let (namespaces, discovered) = self.rescan()?;
        let now_ns = events::now_ns();
        for key in &discovered {
            self.out.verdict("discovered", key, &self.inv, now_ns)?;
        }
        // Where listns(2) exists it also names what no scan can see (an
        // nsfs fd in flight) among the namespaces whose records were lost.
        if let Ok(ids) = listns_syscall::list_all() {
            let method = &self.lifecycle.method;
            for key in self.inv.add_unexplained(&ids, |id| method.inode_of(id)) {
                self.out.verdict("hidden", &key, &self.inv, now_ns)?;
            }
        }
        self.out.rescan(namespaces, discovered.len())?;
        self.out.flush()?;
        Ok(())
    }

    /// Runs the liveness checks that are due and forgets what has been gone
    /// long enough.
    fn on_lifecycle(&mut self) -> anyhow::Result<()> {
        let now_ns = events::now_ns();
        let proc_root = self.proc_root.clone();
        let scan = || Scanner::new(&proc_root).scan().ok().map(|(inv, _)| inv);
        for verdict in self
            .lifecycle
            .run(&mut self.inv, Instant::now(), now_ns, scan)
        {
            match verdict {
                Verdict::Gone(key) => {
                    self.out.verdict("gone", &key, &self.inv, now_ns)?;
                    if let Some(t) = self.tracer.as_mut() {
                        t.forget(&key);
                    }
                }
                Verdict::Hidden(key) => self.out.verdict("hidden", &key, &self.inv, now_ns)?,
                Verdict::Discovered(key) => {
                    self.out.verdict("discovered", &key, &self.inv, now_ns)?
                }
            }
        }
        self.lifecycle.forget(&mut self.inv, now_ns);
        self.out.flush()?;
        Ok(())
    }

    /// Without the tracer: what a rescan found that was not known.
    fn on_fallback_tick(&mut self) -> anyhow::Result<()> {
        let (_, discovered) = self.rescan()?;
        let now_ns = events::now_ns();
        for key in &discovered {
            self.out.verdict("discovered", key, &self.inv, now_ns)?;
        }
        self.out.flush()?;
        Ok(())
    }

    /// Rescans, merges, re-seeds the kernel's map and schedules checks of
    /// the namespaces nothing holds any more. Returns the inventory's size
    /// and what the rescan found that was not known.
    fn rescan(&mut self) -> anyhow::Result<(usize, Vec<crate::inventory::NsKey>)> {
        let (new, _) = Scanner::new(&self.proc_root).scan()?;
        let rescan = self.inv.merge_rescan(new);
        self.seed();
        self.lifecycle.check_soon(&rescan.unheld, Instant::now());
        Ok((self.inv.len(), rescan.discovered))
    }

    /// Tells the kernel which namespaces exist already, so that it reports
    /// them as joined, not created.
    fn seed(&mut self) {
        let Some(t) = self.tracer.as_mut() else {
            return;
        };
        let failed = t.seed(&self.inv);
        if failed > 0 {
            eprintln!(
                "listns: {failed} namespaces could not be marked as known in the kernel; they may be reported as created when joined"
            );
        }
    }

    /// Reports what the kernel delivered before the signal, then detaches
    /// every program (dropping the tracer closes every map).
    fn finish(mut self) -> anyhow::Result<()> {
        if let Some(t) = self.tracer.as_mut() {
            let batch = t.drain_now();
            for ev in &batch.events {
                for change in self.inv.apply(ev) {
                    self.out.change(ev, &change)?;
                }
            }
            if batch.lost > 0 {
                self.out.lost(batch.lost, batch.missed)?;
            }
        }
        self.out.flush()?;
        drop(self.tracer.take());
        Ok(())
    }
}

/// The tracer's next batch; never, without a tracer.
async fn next_batch(tracer: &mut Option<Tracer>) -> Result<Batch, TraceError> {
    match tracer {
        Some(t) => t.next_batch().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
