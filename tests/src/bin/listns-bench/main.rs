//! `cargo xtask bench`: listns measured against a peer run side by side in
//! the same run. Method and results: BENCHMARKS.md.
//!
//! trace: the cost of the live tracer (`listns watch --json` writing to a
//! pipe this bench reads) on the host's fork+exit and unshare paths, as the
//! ratio of rounds with and without it, interleaved A/B so that drift hits
//! both; the highest namespace-creation rate this machine reaches, held for
//! ten seconds, alone, with listns and with a bpftrace one-liner, rounds
//! alternated (peer.rs); and the memory each tracked namespace costs the
//! inventory.
//!
//! api (only when named): the inventory API under load (api.rs).
//! web (only when named): the web page's first render with 10,000
//! namespaces, in headless chromium (web.rs).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, bail};

mod api;
mod hooks;
mod peer;
mod web;

/// Counts live heap bytes, to measure the inventory's memory per namespace.
struct Counting;
static HEAP: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HEAP.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HEAP.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, secs] = args.as_slice()
        && cmd == CREATE
    {
        let (made, elapsed) = create_flat_out(secs.parse()?)?;
        println!("{made} {elapsed}");
        return Ok(());
    }
    let all = args.is_empty();
    let want = |name: &str| all || args.iter().any(|a| a == name);
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the benchmarks create namespaces and load eBPF: run them as root (cargo xtask bench)"
        );
    }
    if want("trace") {
        trace_bench()?;
    }
    if !want("trace") && args.iter().any(|a| a == "hooks") {
        hooks::program_costs()?;
    }
    if want("trace") || args.iter().any(|a| a == "sustained") {
        peer::sustained_rate()?;
    }
    if want("memory") {
        memory_bench();
    }
    if want("sweep") {
        sweep_bench()?;
    }
    // Minutes long: never part of a plain `bench`.
    if args.iter().any(|a| a == "api") {
        api::api_bench()?;
    }
    if args.iter().any(|a| a == "web") {
        web::web_bench()?;
    }
    Ok(())
}

/// fork + child `_exit` + wait, `n` times; returns ns per iteration.
fn fork_exit(n: u32, unshare_flags: i32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: the child makes one raw syscall and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                if unshare_flags != 0 && libc::unshare(unshare_flags) != 0 {
                    libc::_exit(1);
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The comm of this bench's processes as a `created` line shows it.
const OUR_COMM: &[u8] = br#""comm":"listns-bench""#;

/// `listns watch --json --events-only`, its stdout counted by a thread.
struct Watch {
    child: Child,
    created: Arc<AtomicU64>,
    /// `created` lines of this bench's processes (the creators), not of
    /// whatever else runs on the machine.
    ours: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    /// Per `created` line: milliseconds from the kernel's timestamp (its
    /// `time`) to this bench reading the line from the pipe.
    lags: Arc<Mutex<Vec<f64>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start() -> Result<Watch> {
        Watch::start_with(&[])
    }

    /// With more arguments for `listns watch`.
    fn start_with(extra: &[&std::ffi::OsStr]) -> Result<Watch> {
        // LISTNS_BENCH_BIN: another build to compare (an A/B of two
        // versions in one run), instead of this workspace's release build.
        let bin = std::env::var_os("LISTNS_BENCH_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(listns_tests::listns_bin_release);
        let mut child = Command::new(&bin)
            .args(["watch", "--json", "--events-only"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let created = Arc::new(AtomicU64::new(0));
        let ours = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let out = child.stdout.take().unwrap();
        let lags = Arc::new(Mutex::new(Vec::new()));
        let (c, o, l, g) = (created.clone(), ours.clone(), lost.clone(), lags.clone());
        // The reader shares the 2 CPUs with the creators and listns, so it
        // does as little as a reader can: a line is looked at by its first
        // key (listns writes `event` first), and only `created` and `lost`
        // lines are parsed further. Building a JSON value for each of the
        // three lines per namespace cost the creators about ten points of
        // "rate kept" that had nothing to do with listns.
        let reader = std::thread::spawn(move || {
            let mut out = BufReader::with_capacity(1 << 16, out);
            let mut line = Vec::new();
            while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let read_at = SystemTime::now();
                if line.starts_with(br#"{"event":"created","time":""#) {
                    c.fetch_add(1, Ordering::Relaxed);
                    if line.windows(OUR_COMM.len()).any(|w| w == OUR_COMM) {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    let rest = &line[br#"{"event":"created","time":""#.len()..];
                    let t = rest.iter().position(|&b| b == b'"').map(|end| &rest[..end]);
                    if let Some(t) = t
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .and_then(|t| humantime::parse_rfc3339(t).ok())
                    {
                        let lag = read_at
                            .duration_since(t)
                            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
                        g.lock().unwrap().push(lag);
                    }
                } else if line.windows(15).any(|w| w == br#""event":"lost""#)
                    && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line)
                {
                    l.fetch_add(v["count"].as_u64().unwrap_or(1), Ordering::Relaxed);
                }
                line.clear();
            }
        });
        // Attached once it holds all its programs (counted by id).
        let pid = child.id().to_string();
        let ready = listns_tests::wait_for(Duration::from_secs(20), || {
            (listns_tests::kernel::prog_ids_of(&pid).len() >= listns_tests::watch::programs())
                .then_some(())
        });
        if ready.is_none() {
            bail!("listns watch did not attach within 20 s");
        }
        // Let it finish its start-up scan before measuring.
        std::thread::sleep(Duration::from_secs(2));
        Ok(Watch {
            child,
            created,
            ours,
            lost,
            lags,
            reader: Some(reader),
        })
    }

    /// The 50th and 99th percentiles of the lags seen since the last call
    /// (ms), and how many there were; forgets them.
    fn take_lag(&self) -> (f64, f64, usize) {
        let mut v = std::mem::take(&mut *self.lags.lock().unwrap());
        if v.is_empty() {
            return (f64::NAN, f64::NAN, 0);
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99), v.len())
    }

    /// CPU seconds (user, system) the listns process has used so far.
    fn cpu(&self) -> (f64, f64) {
        peer::cpu_of(self.child.id())
    }

    fn stop(mut self) -> Result<()> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait()?;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if !status.success() {
            bail!("listns watch exited with {status}");
        }
        Ok(())
    }
}

fn trace_bench() -> Result<()> {
    println!("## trace: cost of `listns watch --json` on the host (A/B interleaved, same run)");
    let rounds = 11;
    for (name, flags, n) in [
        ("fork+exit", 0, 4000u32),
        ("fork+unshare(UTS)+exit", libc::CLONE_NEWUTS, 2000),
    ] {
        fork_exit(n / 4, flags); // warm-up
        let (mut off, mut on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            // Each "with" run sits between two "without" runs: the ratio to
            // their mean cancels the machine's drift.
            let before = fork_exit(n, flags);
            let w = Watch::start()?;
            let with = fork_exit(n, flags);
            w.stop()?;
            let after = fork_exit(n, flags);
            off.push((before + after) / 2.0);
            on.push(with);
            ratios.push(with / ((before + after) / 2.0));
        }
        let (lo, hi) = (
            ratios.iter().cloned().fold(f64::MAX, f64::min),
            ratios.iter().cloned().fold(f64::MIN, f64::max),
        );
        let ratio = median(&mut ratios);
        println!(
            "{name:<24} without {:>8.1} us/op  with {:>8.1} us/op  ratio {ratio:.3} ({:+.1}%; rounds {lo:.3}..{hi:.3})  [{rounds} sandwiched rounds of {n}, medians]",
            median(&mut off) / 1e3,
            median(&mut on) / 1e3,
            (ratio - 1.0) * 100.0
        );
    }
    hooks::program_costs()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The argument that makes this binary a creator (`creators`).
const CREATE: &str = "__create";

/// `create_flat_out` in a fresh process of this binary: the creators fork
/// from its small image, the same with and without the tracer. Forked from
/// the bench itself, they copied (at each fork) and unmapped (at each
/// exit) the page tables of whatever the bench had grown meanwhile, its
/// reader thread included, and that alone made the run with the tracer
/// look a third slower than the run without it.
fn creators(secs: f64) -> Result<(u64, f64)> {
    let out = Command::new(std::env::current_exe()?)
        .args([CREATE, &secs.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("the creators failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    match (
        it.next().and_then(|m| m.parse().ok()),
        it.next().and_then(|e| e.parse().ok()),
    ) {
        (Some(made), Some(elapsed)) => Ok((made, elapsed)),
        _ => bail!("the creators said {text:?}"),
    }
}

/// Two creator processes fork children that unshare a UTS namespace and
/// exit, flat out for `secs`; returns how many were made and the time taken.
fn create_flat_out(secs: f64) -> Result<(u64, f64)> {
    // SAFETY: an anonymous shared mapping of two counters.
    let counters = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            16,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    } as *mut u64;
    if counters as *mut libc::c_void == libc::MAP_FAILED {
        bail!("mmap: {}", std::io::Error::last_os_error());
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut creators = Vec::new();
    for c in 0..2 {
        // SAFETY: the creator forks, unshares, waits and _exits only.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            while Instant::now() < deadline {
                fork_exit(1, libc::CLONE_NEWUTS);
                unsafe { *counters.add(c) += 1 };
            }
            unsafe { libc::_exit(0) };
        }
        creators.push(pid);
    }
    for pid in creators {
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    let made = unsafe { *counters + *counters.add(1) };
    unsafe { libc::munmap(counters.cast(), 16) };
    Ok((made, start.elapsed().as_secs_f64()))
}

/// Heap bytes per namespace the inventory tracks, from a counting allocator
/// around 10,000 applied `created` events.
fn memory_bench() {
    use listns::inventory::{
        Inventory,
        live::{Slot, TaskEvent, TaskEventKind},
    };
    use listns::ns::NsType;
    let n = 10_000u64;
    let mut inv = Inventory::new();
    let before = HEAP.load(Ordering::Relaxed);
    for i in 0..n {
        let ev = TaskEvent {
            kind: TaskEventKind::Unshare,
            time_ns: i,
            pid: 100_000 + i as u32,
            tid: 100_000 + i as u32,
            ppid: 1,
            uid: 0,
            comm: "unshare".into(),
            cgroup_id: 1,
            cgroup: 0,
            flags: libc::CLONE_NEWUTS as u64,
            fd: -1,
            slots: vec![Slot {
                slot: listns_common::SLOT_UTS,
                ty: NsType::Uts,
                inum: 5_000_000 + i,
                id: Some(1_000_000 + i),
                prev: Some((4026531838, Some(1))),
                changed: true,
                created: true,
            }],
            followed: false,
            group_dead: None,
        };
        inv.apply(&ev);
    }
    let bytes = HEAP.load(Ordering::Relaxed) - before;
    println!(
        "## memory\ninventory                {:.0} heap bytes per tracked namespace ({n} namespaces, one holder and an origin each)",
        bytes as f64 / n as f64
    );
    println!(
        "kernel                   KNOWN map: 8-byte key + 1-byte value per namespace in an LRU hash of {} entries (preallocated)",
        listns_common::KNOWN_MAX
    );
}

/// The lifecycle's sweep over 10,000 live namespaces: one
/// `open_by_handle_at` each. The namespaces are UTS namespaces made by a
/// helper thread (unshare is per thread) and kept alive by fds.
fn sweep_bench() -> Result<()> {
    use listns::inventory::{Holder, Inventory};
    use listns::lifecycle::{Lifecycle, Method, Tuning};
    use listns::ns::NsType;
    use std::os::fd::AsFd;
    const N: usize = 10_000;
    println!("## sweep: liveness of {N} tracked namespaces by nsfs handle");
    let (method, how) = Method::detect();
    if !matches!(method, Method::Handles(_)) {
        println!("skipped: {how}");
        return Ok(());
    }
    let limit = libc::rlimit {
        rlim_cur: (N + 1024) as u64,
        rlim_max: (N + 1024) as u64,
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        bail!("cannot raise RLIMIT_NOFILE to {}", N + 1024);
    }
    let files = std::thread::spawn(|| -> Result<Vec<std::fs::File>> {
        let mut files = Vec::with_capacity(N);
        for _ in 0..N {
            if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
                bail!("unshare: {}", std::io::Error::last_os_error());
            }
            files.push(std::fs::File::open("/proc/thread-self/ns/uts")?);
        }
        Ok(files)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace maker panicked"))??;
    let mut inv = Inventory::new();
    for (i, f) in files.iter().enumerate() {
        let id = listns::ns::get_id(f.as_fd());
        let inum = std::os::unix::fs::MetadataExt::ino(&f.metadata()?);
        inv.entry(NsType::Uts, inum, id)
            .1
            .holders
            .insert(Holder::Fd {
                pid: std::process::id(),
                fd: i as i32,
            });
    }
    let t0 = Instant::now();
    let tuning = Tuning {
        sweep_every: Duration::from_millis(1),
        ..Tuning::default()
    };
    let mut lc = Lifecycle::new(method, tuning, t0);
    let mut times = Vec::new();
    for round in 1..=5u32 {
        let now = t0 + Duration::from_millis(10 * round as u64);
        let start = Instant::now();
        let verdicts = lc.run(&mut inv, now, 0, || None);
        times.push(start.elapsed().as_secs_f64() * 1e3);
        if !verdicts.is_empty() {
            bail!("{} live namespaces reported gone", verdicts.len());
        }
    }
    let med = median(&mut times);
    println!(
        "sweep                    {med:.1} ms for {N} live namespaces ({:.2} us each; median of 5)",
        med * 1e3 / N as f64
    );
    drop(files);
    Ok(())
}
