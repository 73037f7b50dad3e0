//! sustained (part of trace): two creator processes make UTS namespaces
//! flat out for ten seconds while a consumer reports them, side by side in
//! one run with rounds alternated. The consumers are `listns watch --json
//! --events-only` and the peer an investigator would type instead, a
//! bpftrace one-liner on sys_exit_unshare. Each round runs the creators
//! alone, then with each consumer (the order alternates between rounds);
//! a last run alone closes the sequence, so every traced run sits between
//! two runs alone. Method: BENCHMARKS.md, "Consumer and event lag".

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{Watch, creators, fork_exit, median};

/// The peer, exactly as issue 24 gives it.
const PROG: &str = r#"tracepoint:syscalls:sys_exit_unshare /args->ret == 0/ { printf("%d %s %u\n", pid, comm, curtask->nsproxy->uts_ns->ns.inum); }"#;
/// Length of each creators' run.
const SECS: f64 = 10.0;
const ROUNDS: u32 = 3;
/// How long a consumer may take to report what the creators made.
const CATCH_UP: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Consumer {
    /// The creators alone.
    None,
    Bpftrace,
    Listns,
}

impl Consumer {
    fn name(self) -> &'static str {
        match self {
            Consumer::None => "none",
            Consumer::Bpftrace => "bpftrace",
            Consumer::Listns => "listns",
        }
    }
}

/// One creators' run and what its consumer did meanwhile.
struct Run {
    round: u32,
    consumer: Consumer,
    made: u64,
    elapsed: f64,
    /// The consumer's user+system CPU seconds over the creators' run.
    cpu: f64,
    /// Lines it reported for the namespaces the creators made (bpftrace:
    /// event lines; listns: `created` lines) and for other processes'
    /// (the machine is shared), and events it said it lost.
    reported: u64,
    others: u64,
    lost: u64,
}

impl Run {
    fn round(&self) -> String {
        if self.round > ROUNDS {
            "end".into()
        } else {
            self.round.to_string()
        }
    }

    fn rate(&self) -> f64 {
        self.made as f64 / self.elapsed
    }

    /// CPU per namespace made, in µs.
    fn cpu_per_ns(&self) -> f64 {
        1e6 * self.cpu / self.made.max(1) as f64
    }
}

/// CPU seconds (user, system) process `pid` has used so far, all its
/// threads together (/proc/PID/stat of the thread group).
pub(crate) fn cpu_of(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf reads a constant.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    // Fields after the comm: state is 0, utime 11, stime 12.
    (get(11), get(12))
}

/// bpftrace from the distribution, installed by the project's script when
/// missing.
fn ensure_bpftrace() -> Result<()> {
    let script = listns_tests::packaging::root().join("packaging/install-test-deps.sh");
    let status = Command::new(&script)
        .arg("bpftrace")
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    let runs = Command::new("bpftrace")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        bail!(
            "bpftrace, the sustained bench's peer, is missing and `{} bpftrace` did not install it ({status}); \
             install it (apt-get install bpftrace) and run the bench again",
            script.display()
        );
    }
    Ok(())
}

/// bpftrace attaches tracepoints through tracefs (listns mounts it itself).
fn ensure_tracefs() -> Result<()> {
    const TRACEFS: &str = "/sys/kernel/tracing";
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(());
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mounting tracefs at {TRACEFS} (bpftrace needs it)"))?;
    println!("mounted tracefs at {TRACEFS} (bpftrace needs it)");
    Ok(())
}

/// `bpftrace -e PROG`, its stdout counted by a thread.
struct Bpftrace {
    child: Child,
    lines: Arc<AtomicU64>,
    /// Lines for this bench's processes (the creators).
    ours: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    reader: JoinHandle<()>,
    /// Its stderr, kept for an error message (on every start it warns that
    /// it could not raise RLIMIT_MEMLOCK, which is harmless here).
    stderr: JoinHandle<Vec<u8>>,
}

impl Bpftrace {
    fn start() -> Result<Bpftrace> {
        let mut child = Command::new("bpftrace")
            .args(["-e", PROG])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting bpftrace")?;
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let lines = Arc::new(AtomicU64::new(0));
        let (ours, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (n, o, l) = (lines.clone(), ours.clone(), lost.clone());
        let (attached, ready) = mpsc::channel();
        // As little work per line as for listns's reader (main.rs): an
        // event line is "PID COMM INUM"; bpftrace says "Attaching 1
        // probe..." first, and "Lost N events" when its perf buffer
        // overflowed.
        let reader = std::thread::spawn(move || {
            let mut out = BufReader::with_capacity(1 << 16, out);
            let mut line = Vec::new();
            while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                if line.first().is_some_and(u8::is_ascii_digit) {
                    n.fetch_add(1, Ordering::Relaxed);
                    if line.split(|&b| b == b' ').nth(1) == Some(b"listns-bench") {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                } else if line.starts_with(b"Attaching ") {
                    let _ = attached.send(());
                } else if let Some(count) = lost_events(&line) {
                    l.fetch_add(count, Ordering::Relaxed);
                }
                line.clear();
            }
        });
        if let Err(e) = ready.recv_timeout(Duration::from_secs(60)) {
            let why = match e {
                mpsc::RecvTimeoutError::Timeout => "did not attach within 60 s",
                mpsc::RecvTimeoutError::Disconnected => "exited before attaching",
            };
            let _ = child.kill();
            let status = child.wait()?;
            let _ = reader.join();
            let said = stderr.join().unwrap_or_default();
            bail!(
                "bpftrace {why} ({status}); it said: {}",
                String::from_utf8_lossy(&said).trim().escape_debug()
            );
        }
        // The same settling time as listns gets after attaching (main.rs).
        std::thread::sleep(Duration::from_secs(2));
        Ok(Bpftrace {
            child,
            lines,
            ours,
            lost,
            reader,
            stderr,
        })
    }

    fn stop(mut self) -> Result<()> {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait()?;
        let _ = self.reader.join();
        let said = self.stderr.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "bpftrace exited with {status}; it said: {}",
                String::from_utf8_lossy(&said).trim().escape_debug()
            );
        }
        Ok(())
    }
}

/// N from bpftrace's "Lost N events" line.
fn lost_events(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    let n = line.strip_prefix("Lost ")?.strip_suffix(" events\n")?;
    n.parse().ok()
}

/// A consumer while it runs.
enum Running {
    Bpftrace(Bpftrace),
    Listns(Watch),
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Bpftrace(b) => b.child.id(),
            Running::Listns(w) => w.child.id(),
        }
    }

    /// Lines reported for this bench's namespaces, for any process's, and
    /// events it said it lost.
    fn counts(&self) -> [u64; 3] {
        let all = match self {
            Running::Bpftrace(b) => [&b.ours, &b.lines, &b.lost],
            Running::Listns(w) => [&w.ours, &w.created, &w.lost],
        };
        all.map(|n| n.load(Ordering::Relaxed))
    }

    fn stop(self) -> Result<()> {
        match self {
            Running::Bpftrace(b) => b.stop(),
            Running::Listns(w) => w.stop(),
        }
    }
}

pub fn sustained_rate() -> Result<()> {
    println!(
        "## sustained: 2 creator processes making UTS namespaces flat out for {SECS:.0} s, \
         alone and with each consumer, {ROUNDS} rounds alternated"
    );
    ensure_bpftrace()?;
    ensure_tracefs()?;
    let mut runs = Vec::new();
    for round in 1..=ROUNDS {
        runs.push(alone(round)?);
        let order = if round % 2 == 1 {
            [Consumer::Bpftrace, Consumer::Listns]
        } else {
            [Consumer::Listns, Consumer::Bpftrace]
        };
        for c in order {
            // The lag at a paced rate, once, in the first listns round.
            runs.push(traced(round, c, round == 1)?);
        }
    }
    // The closing run alone (its round shows as "end").
    runs.push(alone(ROUNDS + 1)?);
    summary(&runs);
    Ok(())
}

fn alone(round: u32) -> Result<Run> {
    let (made, elapsed) = creators(SECS)?;
    let run = Run {
        round,
        consumer: Consumer::None,
        made,
        elapsed,
        cpu: 0.0,
        reported: 0,
        others: 0,
        lost: 0,
    };
    println!(
        "round {:<3} none      {:>6.0} UTS namespaces/s ({made} in {elapsed:.1} s)",
        run.round(),
        run.rate()
    );
    Ok(run)
}

/// One creators' run with `consumer` reporting; CPU is measured over the
/// creators' run only, the wait for the consumer to catch up after it.
fn traced(round: u32, consumer: Consumer, paced_lag: bool) -> Result<Run> {
    let c = match consumer {
        Consumer::Bpftrace => Running::Bpftrace(Bpftrace::start()?),
        _ => Running::Listns(Watch::start()?),
    };
    if let (Running::Listns(w), true) = (&c, paced_lag) {
        lag_at_1000(w)?;
    }
    if let Running::Listns(w) = &c {
        w.take_lag();
    }
    let [ours0, all0, lost0] = c.counts();
    let cpu0 = cpu_of(c.pid());
    let (made, elapsed) = creators(SECS)?;
    let cpu1 = cpu_of(c.pid());
    // The consumer may lag behind the creators (it shares 2 CPUs with
    // them): give it time, and say how long it needed.
    let stopped = Instant::now();
    listns_tests::wait_for(CATCH_UP, || {
        let [ours, _, lost] = c.counts();
        (ours - ours0 + lost - lost0 >= made).then_some(())
    });
    let caught_up = stopped.elapsed().as_secs_f64();
    let [ours, all, lost] = c.counts();
    let lag = match &c {
        Running::Listns(w) => {
            let (p50, p99, n) = w.take_lag();
            format!("; event lag p50 {p50:.1} ms, p99 {p99:.1} ms over {n} created lines")
        }
        Running::Bpftrace(_) => String::new(),
    };
    c.stop()?;
    let run = Run {
        round,
        consumer,
        made,
        elapsed,
        cpu: (cpu1.0 - cpu0.0) + (cpu1.1 - cpu0.1),
        reported: ours - ours0,
        others: (all - all0) - (ours - ours0),
        lost: lost - lost0,
    };
    println!(
        "round {round:<3} {:<9} {:>6.0} UTS namespaces/s ({made} in {elapsed:.1} s); consumer CPU {:.2} s user + {:.2} s system, \
         {:.1} µs per namespace; reported {}/{made} (and {} of other processes), lost {} ({caught_up:.1} s after the creators stopped){lag}",
        consumer.name(),
        run.rate(),
        cpu1.0 - cpu0.0,
        cpu1.1 - cpu0.1,
        run.cpu_per_ns(),
        run.reported,
        run.others,
        run.lost,
    );
    Ok(run)
}

/// One process makes 1,000 namespaces/s for 10 s, the lag a quiet host
/// sees: from each `created` line's kernel timestamp to the bench reading
/// the line.
fn lag_at_1000(w: &Watch) -> Result<()> {
    w.take_lag();
    let seen0 = w.ours.load(Ordering::Relaxed);
    let paced = create_paced(1000.0, 10.0)?;
    listns_tests::wait_for(Duration::from_secs(30), || {
        (w.ours.load(Ordering::Relaxed) - seen0 >= paced).then_some(())
    });
    let (p50, p99, n) = w.take_lag();
    println!(
        "listns event lag at 1,000/s: p50 {p50:.1} ms, p99 {p99:.1} ms over {n} created lines ({paced} made in 10 s)"
    );
    Ok(())
}

/// One process forks a child that unshares a UTS namespace and exits,
/// `rate` times a second for `secs` (each on its tick; late ticks are not
/// made up). Returns how many were made.
fn create_paced(rate: f64, secs: f64) -> Result<u64> {
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut made = 0u64;
    let mut next = start;
    while start.elapsed().as_secs_f64() < secs {
        fork_exit(1, libc::CLONE_NEWUTS);
        made += 1;
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        } else {
            next = Instant::now();
        }
    }
    Ok(made)
}

/// Each traced run's rate against the mean of the nearest runs alone
/// before and after it (drift in the machine's load over the sequence does
/// not count as the consumer's).
fn rate_kept(runs: &[Run], i: usize) -> f64 {
    let is_alone = |r: &&Run| r.consumer == Consumer::None;
    let before = runs[..i].iter().rev().find(is_alone);
    let after = runs[i + 1..].iter().find(is_alone);
    match (before, after) {
        (Some(b), Some(a)) => runs[i].rate() / ((b.rate() + a.rate()) / 2.0),
        _ => f64::NAN,
    }
}

fn summary(runs: &[Run]) {
    println!();
    println!("| round | consumer | made/s | rate kept | CPU per namespace | reported/made |");
    println!("|---:|---|---:|---:|---:|---:|");
    for (i, r) in runs.iter().enumerate() {
        if r.consumer == Consumer::None {
            println!("| {} | none | {:.0} | | | |", r.round(), r.rate());
            continue;
        }
        let lost = if r.lost > 0 {
            format!(" ({} lost)", r.lost)
        } else {
            String::new()
        };
        println!(
            "| {} | {} | {:.0} | {:.0}% | {:.1} µs | {}/{}{lost} |",
            r.round(),
            r.consumer.name(),
            r.rate(),
            100.0 * rate_kept(runs, i),
            r.cpu_per_ns(),
            r.reported,
            r.made,
        );
    }
    println!();
    // Per round: (rate kept, CPU per namespace) of each consumer.
    let of = |c: Consumer| -> Vec<(f64, f64)> {
        (1..=ROUNDS)
            .filter_map(|round| {
                let i = runs
                    .iter()
                    .position(|r| r.round == round && r.consumer == c)?;
                Some((rate_kept(runs, i), runs[i].cpu_per_ns()))
            })
            .collect()
    };
    let mut alone: Vec<f64> = runs
        .iter()
        .filter(|r| r.consumer == Consumer::None)
        .map(Run::rate)
        .collect();
    println!(
        "median none:     {:.0} UTS namespaces/s ({} runs)",
        median(&mut alone),
        alone.len()
    );
    let (bpftrace, listns) = (of(Consumer::Bpftrace), of(Consumer::Listns));
    for (c, v) in [(Consumer::Bpftrace, &bpftrace), (Consumer::Listns, &listns)] {
        let mut kept: Vec<f64> = v.iter().map(|p| p.0).collect();
        let mut cpu: Vec<f64> = v.iter().map(|p| p.1).collect();
        println!(
            "median {:<9} rate kept {:.0}%, CPU per namespace {:.1} µs ({} rounds)",
            format!("{}:", c.name()),
            100.0 * median(&mut kept),
            median(&mut cpu),
            v.len()
        );
    }
    let ratio = |pick: fn(&(f64, f64)) -> f64| {
        let mut r: Vec<f64> = listns
            .iter()
            .zip(&bpftrace)
            .map(|(l, b)| pick(l) / pick(b))
            .collect();
        median(&mut r)
    };
    println!(
        "listns/bpftrace CPU per namespace ratio: {:.2} (median of per-round ratios)",
        ratio(|p| p.1)
    );
    println!(
        "listns/bpftrace rate kept ratio: {:.2} (median of per-round ratios)",
        ratio(|p| p.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpftrace_lost_line() {
        assert_eq!(lost_events(b"Lost 1234 events\n"), Some(1234));
        assert_eq!(lost_events(b"Attaching 1 probe...\n"), None);
        assert_eq!(lost_events(b"Lost many events\n"), None);
    }

    #[test]
    fn rate_kept_against_the_runs_alone_around() {
        let run = |consumer, made| Run {
            round: 1,
            consumer,
            made,
            elapsed: 10.0,
            cpu: 0.0,
            reported: 0,
            others: 0,
            lost: 0,
        };
        let runs = [
            run(Consumer::None, 1000),
            run(Consumer::Bpftrace, 810),
            run(Consumer::Listns, 450),
            run(Consumer::None, 800),
        ];
        // 81/s and 45/s against the mean of 100/s and 80/s, 90/s.
        assert!((rate_kept(&runs, 1) - 0.9).abs() < 1e-9);
        assert!((rate_kept(&runs, 2) - 0.5).abs() < 1e-9);
    }
}
