//! The iterator scan's bench (issue 25; BENCHMARKS.md, "Scan through BPF
//! iterators"): N processes held in groups of 25 with namespaces and
//! sockets of their own (as listns-user/benches/scan.rs builds them), then
//! `listns --scan=iter -J`, `listns --scan=proc -J` and `lsns -J` on that
//! state, rounds alternated, each run's stdout read to the end; wall time
//! and CPU time (wait4's rusage of the child) of each.
//!
//! Checks in the same run: `scan.pass` is "iter" for the iterator scan
//! and "proc" for the /proc scan; every (type, inode) of `lsns -J` is in
//! both listns outputs; the two listns outputs list the same namespaces.
//!
//! `#[ignore]`d: `cargo xtask bench iter` runs it alone in a kernel-matrix
//! guest (kernels that refuse BPF iterators exist; the guests' accept
//! them), and with `--host` on this machine's kernel too. Sizes and rounds come
//! from `LISTNS_ITER_BENCH_SIZES` (default 10000) and
//! `LISTNS_ITER_BENCH_ROUNDS` (default 3). Progress and the table go to
//! stderr uncaptured, each line after `LISTNS-BENCH: ` (the marker xtask
//! echoes from a guest's console).

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use listns_tests::{crowd::Crowd, held::json_keys, listns_bin, listns_bin_release};

/// Prefix of every line this bench prints (xtask's console reader shows them).
const MARK: &str = "LISTNS-BENCH: ";

/// One line to stderr, past libtest's capture, so that it shows as it happens.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{MARK}{line}");
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// Processes on the system now (numeric entries of /proc).
fn processes() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count()
}

fn read_num(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

/// One /proc/meminfo value, in kB ("?" when missing).
fn meminfo(key: &str) -> String {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}

/// Raises a kernel limit (threads-max, pid_max) to `need` when it is lower.
fn raise(path: &str, need: u64) {
    let have = read_num(path);
    if have < need {
        std::fs::write(path, need.to_string()).unwrap_or_else(|e| panic!("raising {path}: {e}"));
        say(&format!("{path}: {have} raised to {}", read_num(path)));
    }
}

/// One timed run of a tool.
struct Run {
    wall: f64,
    /// User + system CPU seconds of the child (wait4's rusage).
    cpu: f64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn secs(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6
}

/// Runs `bin args` with stdout read to the end (kept for the checks) and
/// stderr kept for a failure's message; fails the bench when it fails.
fn run(bin: &Path, args: &[&str]) -> Run {
    run_env(bin, args, &[])
}

/// [`run`] with more environment variables.
fn run_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let start = Instant::now();
    // Reaped by wait4 below (for its rusage), not by std.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let mut err = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, once (std's Child is never waited on).
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall = start.elapsed().as_secs_f64();
    let stderr = errors.join().unwrap();
    assert_eq!(
        r,
        child.id() as i32,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} {} failed (wait status {status:#x}): {}",
        bin.display(),
        args.join(" "),
        String::from_utf8_lossy(&stderr).trim()
    );
    Run {
        wall,
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        stdout,
        stderr,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// `scan.pass` of a `listns -J` output.
fn scan_pass(json: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(json).expect("listns -J prints JSON");
    v["scan"]["pass"].as_str().unwrap_or("(none)").to_string()
}

/// The tools, in the order of the table's columns.
const TOOLS: [&str; 3] = ["iter", "proc", "lsns"];

#[test]
#[ignore = "a bench of minutes: `cargo xtask bench iter` runs it in a guest"]
fn iter_scan_bench() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the bench creates namespaces and loads BPF iterators: run it as root"
    );
    let sizes: Vec<usize> = std::env::var("LISTNS_ITER_BENCH_SIZES")
        .unwrap_or_else(|_| "10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("LISTNS_ITER_BENCH_SIZES: numbers"))
        .collect();
    let rounds: usize = env_or("LISTNS_ITER_BENCH_ROUNDS", 3);
    // Off the line libtest has begun ("test iter_scan_bench ... "), so that
    // every line of ours starts with the marker.
    let _ = writeln!(std::io::stderr().lock());
    assert!(rounds >= 1);
    // The release build when there is one (`cargo xtask bench iter` puts
    // one in the guest), else this build's.
    let release = listns_bin_release();
    let listns: PathBuf = if release.exists() {
        release
    } else {
        listns_bin()
    };
    let lsns = PathBuf::from("lsns");
    // SAFETY: plain prctl: orphans of the held state are ours to reap.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let base = processes();
    let biggest = *sizes.iter().max().unwrap() as u64;
    raise("/proc/sys/kernel/threads-max", base as u64 + biggest + 2000);
    raise(
        "/proc/sys/kernel/pid_max",
        (base as u64 + biggest) * 2 + 4096,
    );
    say(&format!(
        "kernel {}, {} cpus, MemTotal {} kB, {base} processes before; listns {}; {rounds} rounds, order rotated each round",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        meminfo("MemTotal"),
        listns.display(),
    ));

    let mut table = vec![
        "| processes | namespaces | iter -J | proc -J | lsns -J | lsns / iter | proc / iter | iter CPU | proc CPU | lsns CPU | checks |".to_string(),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|".to_string(),
    ];
    let mut failures = Vec::new();
    for &n in &sizes {
        let t = Instant::now();
        let held = Crowd::hold(n, |up, secs| {
            say(&format!("  {up} of {n} processes up ({secs:.0} s)"))
        });
        let total = processes();
        say(&format!(
            "{n} processes held in {:.1} s ({total} in all; MemAvailable {} kB)",
            t.elapsed().as_secs_f64(),
            meminfo("MemAvailable")
        ));
        // wall and CPU seconds per tool, per round.
        let mut wall = [Vec::new(), Vec::new(), Vec::new()];
        let mut cpu = [Vec::new(), Vec::new(), Vec::new()];
        let mut last: [Vec<u8>; 3] = Default::default();
        let mut sources: [BTreeSet<String>; 2] = Default::default();
        for round in 0..rounds {
            for k in 0..TOOLS.len() {
                // Rounds alternated: each round starts with the next tool.
                let i = (round + k) % TOOLS.len();
                let r = match TOOLS[i] {
                    "iter" => run(&listns, &["--scan=iter", "-J"]),
                    "proc" => run(&listns, &["--scan=proc", "-J"]),
                    _ => run(&lsns, &["-J"]),
                };
                say(&format!(
                    "  round {}/{rounds}: {:<4} {:8.3} s wall, {:8.3} s CPU, {} KiB out",
                    round + 1,
                    TOOLS[i],
                    r.wall,
                    r.cpu,
                    r.stdout.len() >> 10
                ));
                wall[i].push(r.wall);
                cpu[i].push(r.cpu);
                if i < 2 {
                    sources[i].insert(scan_pass_of_run(&r.stdout));
                }
                last[i] = r.stdout;
            }
        }
        // Where listns's time goes: one more run of each pass, untimed,
        // with listns's own debug log (the scan's phases: `scan: ... done
        // at ... ms`; aya's debug lines left out).
        for pass in ["iter", "proc"] {
            let r = run_env(
                &listns,
                &[&format!("--scan={pass}"), "-J"],
                &[("RUST_LOG", "listns=debug")],
            );
            say(&format!(
                "  --scan={pass} with RUST_LOG=listns=debug, {:.3} s wall:",
                r.wall
            ));
            for line in String::from_utf8_lossy(&r.stderr).lines().take(40) {
                say(&format!("    {line}"));
            }
        }
        let keys: Vec<BTreeSet<(String, u64)>> = last.iter().map(|o| json_keys(o)).collect();
        let (iter, proc, lsns_keys) = (&keys[0], &keys[1], &keys[2]);
        let mut checks = Vec::new();
        for (i, want) in [(0, "iter"), (1, "proc")] {
            let got = scan_pass(&last[i]);
            let all = &sources[i];
            if got != want || all.len() != 1 {
                checks.push(format!("scan.pass of --scan={want}: {all:?}"));
            }
        }
        let not_iter: Vec<_> = lsns_keys.difference(iter).collect();
        let not_proc: Vec<_> = lsns_keys.difference(proc).collect();
        let only_iter: Vec<_> = iter.difference(proc).collect();
        let only_proc: Vec<_> = proc.difference(iter).collect();
        for (what, v) in [
            ("in lsns, not in --scan=iter", &not_iter),
            ("in lsns, not in --scan=proc", &not_proc),
            ("in --scan=iter only", &only_iter),
            ("in --scan=proc only", &only_proc),
        ] {
            if !v.is_empty() {
                checks.push(format!(
                    "{} {what}: {:?}",
                    v.len(),
                    v.iter().take(10).collect::<Vec<_>>()
                ));
            }
        }
        let m: Vec<f64> = wall.iter().map(|v| median(v.clone())).collect();
        let c: Vec<f64> = cpu.iter().map(|v| median(v.clone())).collect();
        table.push(format!(
            "| {total} | {} | {:.3} s | {:.3} s | {:.3} s | {:.1}x | {:.1}x | {:.3} s | {:.3} s | {:.3} s | {} |",
            iter.len(),
            m[0],
            m[1],
            m[2],
            m[2] / m[0],
            m[1] / m[0],
            c[0],
            c[1],
            c[2],
            if checks.is_empty() {
                "ok".to_string()
            } else {
                "FAILED".to_string()
            }
        ));
        say(&format!(
            "{n}: lsns / iter {:.1}x (target at least 30x: {}), proc / iter {:.1}x",
            m[2] / m[0],
            if m[2] / m[0] >= 30.0 {
                "met"
            } else {
                "NOT met"
            },
            m[1] / m[0]
        ));
        for c in &checks {
            say(&format!("CHECK FAILED at {n}: {c}"));
        }
        failures.extend(checks.into_iter().map(|c| format!("{n}: {c}")));
        drop(held);
        std::thread::sleep(Duration::from_millis(500));
    }
    say(&format!(
        "medians of {rounds} rounds, wall (CPU: user + system of the child), {}:",
        if listns.starts_with(listns_bin_release().parent().unwrap()) {
            "release listns"
        } else {
            "debug listns"
        }
    ));
    for line in &table {
        say(line);
    }
    assert!(
        failures.is_empty(),
        "checks failed:\n{}",
        failures.join("\n")
    );
}

/// `scan.pass` of one run, cheaply: the `scan` object is the last member
/// of the document, so it is parsed from the output's tail when it is
/// there (else the whole output is).
fn scan_pass_of_run(json: &[u8]) -> String {
    let tail = &json[json.len().saturating_sub(64 << 10)..];
    let key = b"\"scan\":";
    if let Some(at) = tail.windows(key.len()).rposition(|w| w == key)
        && let Some(Ok(scan)) = serde_json::Deserializer::from_slice(&tail[at + key.len()..])
            .into_iter::<serde_json::Value>()
            .next()
    {
        return scan["pass"].as_str().unwrap_or("(none)").to_string();
    }
    scan_pass(json)
}
