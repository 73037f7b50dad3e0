//! `listns-bench api` (issue 20): the inventory API under load. Method and
//! results: BENCHMARKS.md, "Inventory API under load".
//!
//! Side by side in one run, rounds alternated: the flat-out creators with
//! `listns watch --json --events-only --api-socket TMP/api.sock` and no
//! client, and the same with 200 clients each asking `GET /v1/namespaces`
//! over the socket ten times a second. Then the latency of that request
//! with 10,000 namespaces held.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{Watch, creators};

const CLIENTS: usize = 200;
const PERIOD: Duration = Duration::from_millis(100);
const SECS: f64 = 30.0;
const ROUNDS: usize = 2;
const HELD: usize = 10_000;

/// One `GET path` over a fresh connection (`Connection: close`, as curl
/// does): the status code, the body's size in bytes (headers included)
/// and the time to the last byte.
fn get(socket: &Path, path: &str) -> std::io::Result<(u16, usize, Duration)> {
    let start = Instant::now();
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::with_capacity(1 << 16);
    s.read_to_end(&mut buf)?;
    let took = start.elapsed();
    let code = buf
        .get(9..12)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, buf.len(), took))
}

/// p50 and p99 of `v` (sorted here), in milliseconds.
fn percentiles(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// This process's CPU seconds (user + system, all threads): the clients'
/// own cost, on the same two CPUs as listns and the creators.
fn own_cpu() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

/// What the clients saw.
#[derive(Default)]
struct Polls {
    latencies: Vec<f64>,
    errors: u64,
    skipped: u64,
    bytes: u64,
}

/// `CLIENTS` threads, each asking `GET /v1/namespaces` every `PERIOD`
/// (phases spread over the period; a tick missed while a request is out
/// is skipped, not made up), until `stop`.
fn poll(socket: &Path, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Polls>> {
    (0..CLIENTS)
        .map(|i| {
            let (socket, stop) = (socket.to_path_buf(), stop.clone());
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    let mut p = Polls::default();
                    let mut next = Instant::now() + PERIOD.mul_f64(i as f64 / CLIENTS as f64);
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        match get(&socket, "/v1/namespaces") {
                            Ok((200, n, took)) => {
                                p.latencies.push(took.as_secs_f64() * 1e3);
                                p.bytes += n as u64;
                            }
                            _ => p.errors += 1,
                        }
                        next += PERIOD;
                        while next < Instant::now() {
                            next += PERIOD;
                            p.skipped += 1;
                        }
                    }
                    p
                })
                .expect("a client thread")
        })
        .collect()
}

/// One run: a watcher serving `dir/api.sock`, the flat-out creators for
/// `SECS`, with or without the clients. Prints one line.
fn run(dir: &Path, clients: bool) -> Result<()> {
    let socket = dir.join("api.sock");
    let _ = std::fs::remove_file(&socket);
    let w = Watch::start_with(&["--api-socket".as_ref(), socket.as_os_str()])?;
    let answered = listns_tests::wait_for(Duration::from_secs(20), || {
        get(&socket, "/v1/namespaces").ok().filter(|a| a.0 == 200)
    });
    if answered.is_none() {
        let _ = w.stop();
        bail!(
            "{}: GET /v1/namespaces never answered 200",
            socket.display()
        );
    }
    w.take_lag();
    let lost0 = w.lost.load(Ordering::Relaxed);
    let created0 = w.created.load(Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let (cpu0, listns0) = (own_cpu(), w.cpu());
    let threads = if clients {
        poll(&socket, &stop)
    } else {
        Vec::new()
    };
    let (made, elapsed) = creators(SECS)?;
    stop.store(true, Ordering::Relaxed);
    let mut all = Polls::default();
    for t in threads {
        let p = t.join().map_err(|_| anyhow::anyhow!("a client panicked"))?;
        all.latencies.extend(p.latencies);
        all.errors += p.errors;
        all.skipped += p.skipped;
        all.bytes += p.bytes;
    }
    let (cpu1, listns1) = (own_cpu(), w.cpu());
    let drained = Instant::now();
    listns_tests::wait_for(Duration::from_secs(60), || {
        (w.created.load(Ordering::Relaxed) - created0 >= made).then_some(())
    });
    let drain = drained.elapsed().as_secs_f64();
    let created = w.created.load(Ordering::Relaxed) - created0;
    let (p50, p99, n) = w.take_lag();
    let lost = w.lost.clone();
    w.stop()?;
    let lost = lost.load(Ordering::Relaxed) - lost0;
    let what = if clients {
        format!("{CLIENTS} clients ")
    } else {
        "no client   ".into()
    };
    print!(
        "{what} made {:>6.0}/s, created lines {created}/{made} ({drain:.1} s to drain), lost {lost}; \
         lag p50 {p50:.1} ms p99 {p99:.1} ms ({n}); listns CPU {:.1} s, bench {:.1} s",
        made as f64 / elapsed,
        (listns1.0 + listns1.1) - (listns0.0 + listns0.1),
        cpu1 - cpu0,
    );
    if clients {
        let count = all.latencies.len();
        let (r50, r99) = percentiles(&mut all.latencies);
        print!(
            "; requests {count} ({:.0}/s, {} errors, {} ticks skipped, {:.0} KB each) p50 {r50:.1} ms p99 {r99:.1} ms",
            count as f64 / elapsed,
            all.errors,
            all.skipped,
            all.bytes as f64 / count.max(1) as f64 / 1e3,
        );
    }
    println!();
    Ok(())
}

/// `GET` latencies with `HELD` UTS namespaces held by fds of this process.
fn held_latency(dir: &Path) -> Result<()> {
    let limit = libc::rlimit {
        rlim_cur: (HELD + 1024) as u64,
        rlim_max: (HELD + 1024) as u64,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        bail!("cannot raise RLIMIT_NOFILE to {}", HELD + 1024);
    }
    // unshare is per thread: a helper thread makes them, the fds keep them.
    let files = crate::web::hold(HELD)?;
    let socket = dir.join("api.sock");
    let _ = std::fs::remove_file(&socket);
    let w = Watch::start_with(&["--api-socket".as_ref(), socket.as_os_str()])?;
    // The answer holds them all (checked once, through curl).
    let body = std::process::Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(&socket)
        .arg("http://localhost/v1/namespaces?type=uts")
        .output()
        .context("curl")?;
    let doc: serde_json::Value = serde_json::from_slice(&body.stdout)
        .with_context(|| format!("GET /v1/namespaces ({})", body.status))?;
    let listed = doc["namespaces"].as_array().map_or(0, Vec::len);
    if listed < HELD {
        bail!("GET /v1/namespaces?type=uts lists {listed} namespaces, fewer than the {HELD} held");
    }
    for (path, n) in [
        ("/v1/namespaces", 50),
        ("/v1/namespaces?type=net", 200),
        ("/v1/gone", 200),
    ] {
        let mut lat = Vec::new();
        let mut size = 0;
        for _ in 0..n {
            let (code, bytes, took) = get(&socket, path)?;
            if code != 200 {
                bail!("GET {path}: {code}");
            }
            lat.push(took.as_secs_f64() * 1e3);
            size = bytes;
        }
        let (p50, p99) = percentiles(&mut lat);
        println!(
            "{path:<26} at {listed} UTS namespaces: p50 {p50:.1} ms, p99 {p99:.1} ms ({n} requests one after another, {:.0} KB each)",
            size as f64 / 1e3
        );
    }
    w.stop()?;
    drop(files);
    Ok(())
}

pub fn api_bench() -> Result<()> {
    println!(
        "## api: {CLIENTS} clients polling GET /v1/namespaces at {} Hz during {SECS:.0} s of flat-out creation, against none (rounds alternated, same run)",
        1.0 / PERIOD.as_secs_f64()
    );
    let tmp = tempfile::tempdir()?;
    let dir: PathBuf = tmp.path().to_path_buf();
    for round in 0..ROUNDS {
        // ABBA: each kind goes first once.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for clients in order {
            print!("round {}  ", round + 1);
            run(&dir, clients)?;
        }
    }
    println!("## api: request latency with {HELD} namespaces held");
    held_latency(&dir)
}
