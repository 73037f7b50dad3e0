//! Scan benchmark: builds host states of N processes spread over hundreds of
//! namespaces, then times `listns -J` against `lsns -J` in the same run,
//! with peak memory (GNU time's maximum RSS of each run) and a correctness check
//! (every (type, inode) lsns lists, listns lists too).
//!
//! Run as root: `cargo bench -p listns-user --bench scan` (sizes and runs:
//! `-- --sizes 1000,4000,10000 --runs 3`). With `LISTNS_BENCH_BASELINE=PATH`
//! another listns binary (an earlier build) is timed in the same runs too.
//!
//! Each group is a leader that unshares uts+ipc (every 2nd also cgroup, every
//! 4th also net), opens a UDP socket, and forks 24 children; everything is
//! killed by PR_SET_PDEATHSIG when its parent dies, and the bench is a child
//! subreaper so that it reaps the orphans itself.

use std::{
    collections::HashSet,
    io::Read,
    os::fd::AsRawFd,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const GROUP: usize = 25;

struct Host {
    leaders: Vec<libc::pid_t>,
}

impl Host {
    fn build(n: usize) -> Host {
        let (r, w) = nix::unistd::pipe().unwrap();
        let groups = n.div_ceil(GROUP);
        let mut leaders = Vec::with_capacity(groups);
        for g in 0..groups {
            let members = GROUP.min(n - g * GROUP);
            // SAFETY: the child makes raw syscalls only, then pauses.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
            if pid == 0 {
                // SAFETY: raw syscalls in the forked child.
                unsafe { leader(g, members, w.as_raw_fd()) }
            }
            leaders.push(pid);
        }
        drop(w);
        let mut f = std::fs::File::from(r);
        let mut got = 0;
        let mut buf = [0u8; 4096];
        while got < n {
            let k = f.read(&mut buf).unwrap();
            assert!(k > 0, "a group died while starting");
            got += k;
        }
        Host { leaders }
    }
}

/// Group leader: new namespaces, a socket, `members - 1` children.
unsafe fn leader(g: usize, members: usize, ready: i32) -> ! {
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let mut flags = libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
        if g.is_multiple_of(2) {
            flags |= libc::CLONE_NEWCGROUP;
        }
        if g.is_multiple_of(4) {
            flags |= libc::CLONE_NEWNET;
        }
        if libc::unshare(flags) != 0 {
            libc::_exit(1);
        }
        let _sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        for _ in 1..members {
            let pid = libc::fork();
            if pid == 0 {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::write(ready, b"x".as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        libc::write(ready, b"x".as_ptr().cast(), 1);
        loop {
            libc::pause();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for &p in &self.leaders {
            // SAFETY: plain syscalls.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        // Reap leaders and, as subreaper, their orphaned children.
        loop {
            // SAFETY: plain syscall.
            let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
            if r < 0 {
                break;
            }
        }
    }
}

struct Run {
    secs: f64,
    maxrss_kib: i64,
    stdout: Vec<u8>,
}

/// Runs a command with stdout captured: wall time, and its peak RSS as
/// GNU time reports it (wait4's ru_maxrss would include the pages of this
/// bench process that the child had before exec).
fn run(cmd: &str, args: &[&str]) -> Run {
    let rss_file = std::env::temp_dir().join(format!("listns-bench-rss-{}", std::process::id()));
    let mut full = vec!["-f", "%M", "-o", rss_file.to_str().unwrap(), cmd];
    full.extend_from_slice(args);
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(&full)
        .stderr(Stdio::null())
        .output()
        .expect("/usr/bin/time");
    let secs = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{cmd} failed");
    let maxrss_kib = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    let _ = std::fs::remove_file(&rss_file);
    Run {
        secs,
        maxrss_kib,
        stdout: out.stdout,
    }
}

fn keys(json: &[u8]) -> HashSet<(String, u64)> {
    let v: serde_json::Value = serde_json::from_slice(json).expect("JSON");
    v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["ns"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut sizes = vec![1000, 4000, 10000];
    let mut runs = 3;
    // Keep each host state this many seconds before timing (to look at it by hand).
    let mut hold = 0u64;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--sizes" => {
                sizes = args[i + 1].split(',').map(|s| s.parse().unwrap()).collect();
                i += 1;
            }
            "--hold" => {
                hold = args[i + 1].parse().unwrap();
                i += 1;
            }
            "--runs" => {
                runs = args[i + 1].parse().unwrap();
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("scan bench: needs root (creates namespaces); skipped");
        return;
    }
    let listns = env!("CARGO_BIN_EXE_listns");
    // Another listns build (an earlier commit, say) timed in the same runs,
    // to show what a change did to the scan.
    let baseline = std::env::var("LISTNS_BENCH_BASELINE").ok();
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let base = std::fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .count();
    println!(
        "listns scan bench: {} cpus, {base} processes before, {runs} runs each (median)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| processes | namespaces | listns -J | lsns -J | ratio | listns µs/proc | listns maxrss | lsns maxrss | lsns ⊆ listns |{}",
        if baseline.is_some() {
            " baseline -J | baseline / listns |"
        } else {
            ""
        }
    );
    println!(
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---|{}",
        if baseline.is_some() { "---:|---:|" } else { "" }
    );
    for &n in &sizes {
        let t = Instant::now();
        let host = Host::build(n);
        let built = t.elapsed();
        if hold > 0 {
            eprintln!("  holding {n} processes for {hold} s");
            std::thread::sleep(Duration::from_secs(hold));
        }
        let total = base + n;
        let (mut ltimes, mut stimes) = (Vec::new(), Vec::new());
        let (mut lrss, mut srss) = (0, 0);
        let (mut lout, mut sout) = (Vec::new(), Vec::new());
        let mut btimes = Vec::new();
        for _ in 0..runs {
            if let Some(b) = &baseline {
                btimes.push(run(b, &["-J"]).secs);
            }
            let l = run(listns, &["-J"]);
            let s = run("lsns", &["-J"]);
            ltimes.push(l.secs);
            stimes.push(s.secs);
            lrss = lrss.max(l.maxrss_kib);
            srss = srss.max(s.maxrss_kib);
            lout = l.stdout;
            sout = s.stdout;
        }
        let (lk, sk) = (keys(&lout), keys(&sout));
        let missing: Vec<_> = sk.difference(&lk).collect();
        let (lt, st) = (median(ltimes), median(stimes));
        let extra = if btimes.is_empty() {
            String::new()
        } else {
            let bt = median(btimes);
            format!(" {bt:.3} s | {:.2}x |", bt / lt)
        };
        println!(
            "| {total} | {} | {:.3} s | {:.3} s | {:.1}x | {:.1} | {} MiB | {} MiB | {} |{extra}",
            lk.len(),
            lt,
            st,
            st / lt,
            lt * 1e6 / total as f64,
            lrss / 1024,
            srss / 1024,
            if missing.is_empty() {
                "yes".to_string()
            } else {
                format!("NO: {missing:?}")
            }
        );
        eprintln!("  ({n} processes built in {:.1} s)", built.as_secs_f64());
        drop(host);
        std::thread::sleep(Duration::from_millis(500));
        assert!(missing.is_empty(), "listns missed namespaces lsns lists");
    }
}
