//! `cargo xtask bench soak [--seconds N] [--rate R]`: a benchmark, not a
//! test. `listns watch --json --events-only --forget-after 5` (the release
//! binary) runs under steady namespace churn for ten minutes by default:
//! R children a second (default 200), each unsharing a UTS and an IPC
//! namespace (every tenth a network namespace too) and exiting at once.
//! The watcher's resident memory is sampled every 10 s; after a one-minute
//! warm-up it must stay flat. Every `created` must be matched by a `gone`
//! (counted per namespace id, or inode where there are no ids), unless the
//! namespace is still alive at the end. Prints the samples and a verdict;
//! exits non-zero when memory grew or a creation went unmatched.

use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const WARM_UP: Duration = Duration::from_secs(60);
/// Growth allowed after warm-up, last sample against the first.
const FLAT_KIB: u64 = 1024;

/// (type, id or inode, is an id)
type Key = (String, u64, bool);

fn key(v: &Value) -> Key {
    let ty = v["type"].as_str().unwrap_or("").to_string();
    match v["id"].as_u64() {
        Some(id) => (ty, id, true),
        None => (ty, v["ns"].as_u64().unwrap_or(0), false),
    }
}

#[derive(Default)]
struct Tally {
    created: HashMap<Key, u64>,
    gone: HashMap<Key, u64>,
    n_created: u64,
    n_gone: u64,
    lost: u64,
    rescans: u64,
}

fn arg(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} takes a whole number")),
        None => Ok(default),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |r| r.1)
        .split_whitespace()
        .collect();
    let ticks: u64 = rest.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + rest.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// One churn child: unshares `flags` and exits at once.
fn churn_one(flags: i32) {
    // SAFETY: the child makes one raw syscall and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe { libc::_exit(if libc::unshare(flags) == 0 { 0 } else { 1 }) };
    }
    if pid > 0 {
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs = arg(&args, "--seconds", 600)?;
    let rate = arg(&args, "--rate", 200)?.max(1);
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the soak creates namespaces and loads eBPF: run it as root (cargo xtask bench soak)"
        );
    }
    let bin = listns_tests::listns_bin_release();
    let mut child = Command::new(&bin)
        .args(["watch", "--json", "--events-only", "--forget-after", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let out = child.stdout.take().unwrap();
    let t = tally.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let mut t = t.lock().unwrap();
            match v["event"].as_str() {
                Some("created") => {
                    *t.created.entry(key(&v)).or_default() += 1;
                    t.n_created += 1;
                }
                Some("gone") => {
                    *t.gone.entry(key(&v)).or_default() += 1;
                    t.n_gone += 1;
                }
                Some("lost") => t.lost += v["count"].as_u64().unwrap_or(0),
                Some("rescan") => t.rescans += 1,
                _ => {}
            }
        }
    });
    let pid_s = pid.to_string();
    listns_tests::wait_for(Duration::from_secs(30), || {
        (listns_tests::kernel::prog_ids_of(&pid_s).len() >= listns_tests::watch::programs())
            .then_some(())
    })
    .context("listns watch did not load its programs within 30 s")?;
    std::thread::sleep(Duration::from_secs(2));

    let stop = Arc::new(AtomicBool::new(false));
    let children = Arc::new(AtomicU64::new(0));
    let (s, c) = (stop.clone(), children.clone());
    let churn = std::thread::spawn(move || {
        let start = Instant::now();
        let mut n: u64 = 0;
        while !s.load(Ordering::Relaxed) {
            let mut flags = libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
            if n.is_multiple_of(10) {
                flags |= libc::CLONE_NEWNET;
            }
            churn_one(flags);
            n += 1;
            c.store(n, Ordering::Relaxed);
            // Steady: child n starts at n / rate seconds.
            let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    });

    println!(
        "soak: {secs} s of churn, {rate} children/s (UTS+IPC each, NET every tenth), \
         listns watch --forget-after 5, RSS every {} s",
        SAMPLE_EVERY.as_secs()
    );
    println!("|   t (s) | RSS (KiB) | created | gone | lost | children | watcher CPU (s) |");
    println!("|--------:|----------:|--------:|-----:|-----:|---------:|----------------:|");
    let start = Instant::now();
    let mut samples = Vec::new();
    let total = Duration::from_secs(secs);
    while start.elapsed() < total {
        let next = (SAMPLE_EVERY * (samples.len() as u32 + 1)).min(total);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
        if child.try_wait()?.is_some() {
            bail!("listns watch exited during the soak");
        }
        let rss = rss_kib(pid);
        let at = start.elapsed();
        let (created, gone, lost) = {
            let t = tally.lock().unwrap();
            (t.n_created, t.n_gone, t.lost)
        };
        println!(
            "| {:7.0} | {rss:9} | {created:7} | {gone:4} | {lost:4} | {:8} | {:15.1} |",
            at.as_secs_f64(),
            children.load(Ordering::Relaxed),
            cpu_secs(pid)
        );
        samples.push((at, rss));
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    let made = children.load(Ordering::Relaxed);

    // Let the last gone verdicts arrive (debounce, netns teardown, sweeps).
    let settle = Instant::now();
    let mut unmatched: Vec<Key> = Vec::new();
    while settle.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(2));
        let t = tally.lock().unwrap();
        unmatched = t
            .created
            .iter()
            .filter(|(k, n)| t.gone.get(*k).copied().unwrap_or(0) < **n)
            .map(|(k, _)| k.clone())
            .collect();
        if unmatched.is_empty() {
            break;
        }
    }
    // Still alive at the end (not ours, or held on): not a miss.
    let alive = alive_now(&bin)?;
    let missing: Vec<&Key> = unmatched.iter().filter(|k| !alive.contains(*k)).collect();

    // SAFETY: our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait()?;
    reader.join().unwrap();
    let t = tally.lock().unwrap();

    let after: Vec<u64> = samples
        .iter()
        .filter(|(at, _)| *at >= WARM_UP)
        .map(|(_, r)| *r)
        .collect();
    let (first, last, max, min) = (
        after.first().copied().unwrap_or(0),
        after.last().copied().unwrap_or(0),
        after.iter().copied().max().unwrap_or(0),
        after.iter().copied().min().unwrap_or(0),
    );
    println!(
        "soak: {made} children, {} created and {} gone events, {} records lost, {} rescans; \
         watcher exit {status}",
        t.n_created, t.n_gone, t.lost, t.rescans
    );
    println!(
        "soak: RSS after the {} s warm-up: first {first} KiB, last {last} KiB, min {min}, max {max} \
         ({:+} KiB)",
        WARM_UP.as_secs(),
        last as i64 - first as i64
    );
    println!(
        "soak: {} created namespaces without a gone; {} of them still alive, {} missing",
        unmatched.len(),
        unmatched.len() - missing.len(),
        missing.len()
    );
    let mut failed = Vec::new();
    if after.len() < 2 {
        failed.push("too short to judge memory after the warm-up".to_string());
    } else if last > first + FLAT_KIB {
        failed.push(format!("RSS grew by {} KiB after warm-up", last - first));
    }
    if !missing.is_empty() {
        failed.push(format!(
            "{} creations never matched by a gone, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    if !status.success() {
        failed.push(format!("listns watch exited with {status}"));
    }
    if failed.is_empty() {
        println!("soak: PASS (flat memory, every created matched by a gone)");
        Ok(())
    } else {
        bail!("soak: FAIL: {}", failed.join("; "))
    }
}

/// Every namespace alive now, as `listns -J` lists it.
fn alive_now(bin: &std::path::Path) -> Result<HashSet<Key>> {
    let out = Command::new(bin).arg("-J").output()?;
    let v: Value = serde_json::from_slice(&out.stdout).context("listns -J")?;
    Ok(v["namespaces"]
        .as_array()
        .map(|a| a.iter().map(key).collect())
        .unwrap_or_default())
}
