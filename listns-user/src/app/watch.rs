//! `listns watch`: start the tracer, scan, print the inventory, then print
//! every namespace event as it happens and keep the inventory current.
//!
//! The tracer starts before the scan so that nothing created while the scan
//! runs is missed (its records wait in the ring buffer).

use std::{
    io::{BufWriter, Write},
    path::Path,
    process::ExitCode,
    time::Duration,
};

use listns_common::{NS_SLOTS, NsRef, SLOT_TYPE};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::WatchArgs,
    inventory::{Inventory, NsKey, State, live::ChangeKind},
    lifecycle::{Lifecycle, Method, Tuning, Verdict, listns_syscall},
    ns::{NsType, parse_link, slot_name},
    output::{
        Filter,
        columns::{Cells, Column},
        events, json,
        table::{self, Style},
    },
    scan::Scanner,
    trace::{Options, Tracer},
};

/// `listns watch`: scan, print, then trace live until SIGINT/SIGTERM.
pub fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let proc_root = Path::new("/proc");
    let mut out = Printer {
        json: args.json,
        w: BufWriter::new(std::io::stdout().lock()),
    };
    let opts = Options {
        initial: initial_inums(proc_root),
        btf: args.btf.clone(),
        ..Options::default()
    };
    // Signals first: a Ctrl-C during start-up must still detach cleanly.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    // Without the tracer (no BTF, not root, no hook attached, ...) watch
    // still runs, on rescans: say what that misses.
    let mut tracer = match Tracer::start(&opts) {
        Ok(t) => {
            for note in &t.status.notes {
                eprintln!("listns: {note}");
            }
            for failed in &t.status.failed {
                eprintln!("listns: {failed}");
            }
            Some(t)
        }
        Err(e) => {
            let e = anyhow::Error::new(e);
            eprintln!(
                "listns: cannot start the tracer: {e:#}\nlistns: falling back to a rescan every {} s: \
                 namespaces that live shorter than that are missed and creators are unknown \
                 (`discovered` events instead of `created`)",
                FALLBACK_RESCAN.as_secs()
            );
            None
        }
    };
    let (mut inv, stats) = Scanner::new(proc_root).scan()?;
    if let Some(summary) = stats.summary() {
        eprintln!("listns: {summary}");
    }
    if let Some(t) = tracer.as_mut() {
        seed(t, &inv);
    }
    let (method, how) = Method::detect();
    eprintln!("listns: {how}");
    let tuning = Tuning {
        forget_after: Duration::from_secs_f64(args.forget_after),
        max_gone: args.max_gone,
        ..Tuning::default()
    };
    let mut lifecycle = Lifecycle::new(method, tuning, std::time::Instant::now());
    match listns_syscall::list_all() {
        Ok(ids) => {
            let n = inv.add_unexplained(&ids);
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
    if !args.events_only {
        out.existing(&inv)?;
    }
    out.flush()?;
    let scan = || Scanner::new(proc_root).scan().ok().map(|(inv, _)| inv);
    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    let stop = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    let mut fallback = tokio::time::interval(FALLBACK_RESCAN);
    fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    fallback.tick().await; // the first tick is immediate: the scan just ran
    loop {
        tokio::select! {
            batch = next_batch(&mut tracer) => {
                let (batch, tracer) = (batch?, tracer.as_mut().expect("batches come from a tracer"));
                let now = std::time::Instant::now();
                for ev in &batch.events {
                    let changes = inv.apply(ev);
                    for change in &changes {
                        if change.kind == ChangeKind::Created {
                            attribute_container(&mut inv, proc_root, &change.key, ev.pid);
                        }
                        out.change(ev, change)?;
                    }
                    lifecycle.note(&changes, &inv, now);
                }
                if batch.lost > 0 {
                    out.lost(batch.lost)?;
                    let (new, _) = Scanner::new(proc_root).scan()?;
                    let rescan = inv.merge_rescan(new);
                    seed(tracer, &inv);
                    lifecycle.check_soon(&rescan.unheld, now);
                    out.rescan(inv.len(), rescan.discovered.len())?;
                }
                out.flush()?;
            }
            _ = tokio::time::sleep_until(lifecycle_due(&lifecycle)) => {
                let now_ns = events::now_ns();
                for verdict in lifecycle.run(&mut inv, std::time::Instant::now(), now_ns, scan) {
                    match verdict {
                        Verdict::Gone(key) => {
                            out.verdict("gone", &key, &inv, now_ns)?;
                            if let Some(t) = tracer.as_mut() {
                                t.forget_known([known_ref(&key)]);
                            }
                        }
                        Verdict::Hidden(key) => out.verdict("hidden", &key, &inv, now_ns)?,
                    }
                }
                lifecycle.forget(&mut inv, now_ns);
                out.flush()?;
            }
            _ = fallback.tick(), if tracer.is_none() => {
                let (new, _) = Scanner::new(proc_root).scan()?;
                let rescan = inv.merge_rescan(new);
                let now_ns = events::now_ns();
                for key in &rescan.discovered {
                    out.verdict("discovered", key, &inv, now_ns)?;
                }
                lifecycle.check_soon(&rescan.unheld, std::time::Instant::now());
                out.flush()?;
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = &mut stop => break,
        }
    }
    // What the kernel delivered before the signal still gets reported.
    if let Some(t) = tracer.as_mut() {
        let batch = t.drain_now();
        for ev in &batch.events {
            for change in inv.apply(ev) {
                out.change(ev, &change)?;
            }
        }
        if batch.lost > 0 {
            out.lost(batch.lost)?;
        }
    }
    out.flush()?;
    // Dropping the tracer detaches every program and closes every map.
    drop(tracer);
    Ok(ExitCode::SUCCESS)
}

/// Names the creator's container (docker, podman, ...) from its cgroup,
/// while the creator still runs; a creator already gone stays unattributed.
fn attribute_container(inv: &mut Inventory, proc_root: &Path, key: &NsKey, pid: u32) {
    let Ok(content) = std::fs::read(proc_root.join(pid.to_string()).join("cgroup")) else {
        return;
    };
    if let Some(c) = crate::scan::container::from_cgroup_file(&content)
        && let Some(origin) = inv.get_mut(key).and_then(|ns| ns.origin.as_mut())
    {
        origin.container = Some(format!("{}:{}", c.runtime, c.id));
    }
}

/// How often watch rescans when the tracer cannot run.
const FALLBACK_RESCAN: Duration = Duration::from_secs(2);

/// The tracer's next batch; never, without a tracer.
async fn next_batch(
    tracer: &mut Option<Tracer>,
) -> Result<crate::trace::Batch, crate::trace::TraceError> {
    match tracer {
        Some(t) => t.next_batch().await,
        None => std::future::pending().await,
    }
}

fn lifecycle_due(lc: &Lifecycle) -> tokio::time::Instant {
    let due = lc
        .next_due()
        .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(3600));
    tokio::time::Instant::from_std(due)
}

/// The kernel map's view of a namespace: a slot of its type and its identity.
fn known_ref(key: &NsKey) -> (usize, NsRef) {
    let slot = (0..NS_SLOTS)
        .find(|&s| SLOT_TYPE[s] == key.ty.clone_flag())
        .unwrap_or(0);
    (
        slot,
        NsRef {
            id: key.id.unwrap_or(0),
            inum: key.inum as u32,
            _pad: 0,
        },
    )
}

/// Tells the kernel which namespaces exist already, so that it reports them
/// as joined, not created.
fn seed(tracer: &mut Tracer, inv: &Inventory) {
    let refs = inv
        .iter()
        .filter(|(_, ns)| ns.state == State::Alive)
        .map(|(key, _)| known_ref(key));
    let failed = tracer.seed_known(refs);
    if failed > 0 {
        eprintln!(
            "listns: {failed} namespaces could not be marked as known in the kernel; they may be reported as created when joined"
        );
    }
}

/// Inodes of the initial namespaces per slot, from kthreadd (PID 2), which
/// always lives in them (PID 1's links can be unreadable, even for root).
/// 0 where unknown: the kernel then reports every exit.
fn initial_inums(proc_root: &Path) -> [u32; NS_SLOTS] {
    let mut out = [0; NS_SLOTS];
    for (slot, inum) in out.iter_mut().enumerate() {
        let link = proc_root.join("2/ns").join(slot_name(slot));
        if let Ok(text) = std::fs::read_link(&link)
            && let Some((ty, n)) = parse_link(text.as_os_str().as_encoded_bytes())
            && ty == NsType::of_slot(slot)
        {
            *inum = n as u32;
        }
    }
    out
}

/// Writes events as text or NDJSON, flushed once per batch.
struct Printer<W: Write> {
    json: bool,
    w: W,
}

impl<W: Write> Printer<W> {
    fn line(&mut self, text: String, json: serde_json::Value) -> std::io::Result<()> {
        if self.json {
            writeln!(self.w, "{json}")
        } else {
            writeln!(self.w, "{text}")
        }
    }

    /// The inventory: a table, or one `existing` line per namespace.
    fn existing(&mut self, inv: &Inventory) -> anyhow::Result<()> {
        let cells = Cells::new(inv);
        let rows = Filter::default().select(inv);
        if self.json {
            for (key, ns) in rows {
                let mut obj = json::namespace_object(&cells, key, ns, &Column::DEFAULT);
                obj.0.insert(0, ("event".into(), "existing".into()));
                serde_json::to_writer(&mut self.w, &obj)?;
                writeln!(self.w)?;
            }
        } else {
            table::render(
                &mut self.w,
                &cells,
                &Column::DEFAULT,
                &rows,
                Style::default(),
            )?;
            writeln!(self.w, "-- watching namespace events (Ctrl-C to stop)")?;
        }
        Ok(())
    }

    fn change(
        &mut self,
        ev: &crate::inventory::live::TaskEvent,
        c: &crate::inventory::live::Change,
    ) -> std::io::Result<()> {
        self.line(events::change_text(ev, c), events::change_json(ev, c))
    }

    fn verdict(
        &mut self,
        event: &str,
        key: &NsKey,
        inv: &Inventory,
        now_ns: u64,
    ) -> std::io::Result<()> {
        let Some(ns) = inv.get(key) else {
            return Ok(());
        };
        self.line(
            events::verdict_text(event, key, ns, now_ns),
            events::verdict_json(event, key, ns, now_ns),
        )
    }

    fn lost(&mut self, count: u64) -> std::io::Result<()> {
        self.line(events::lost_text(count), events::lost_json(count))
    }

    fn rescan(&mut self, namespaces: usize, discovered: usize) -> std::io::Result<()> {
        self.line(
            events::rescan_text(namespaces, discovered),
            events::rescan_json(namespaces, discovered),
        )
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}
