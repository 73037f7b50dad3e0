//! Overload: `listns watch` with a small ring buffer under processes that
//! create namespaces flat out. Records the kernel cannot deliver are
//! counted and reported (`lost`), a reconciling rescan follows, every
//! namespace made is either reported or covered by the lost count, and the
//! watcher stays up, exits 0 on SIGTERM and leaves nothing loaded. And the
//! flooding attack on eBPF monitors (GHSA-wv52-frfv-mfh4): a namespace made
//! under cover of a flood must still end up in the inventory.

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    time::{Duration, Instant},
};

use listns_skip::require_root;
use listns_tests::{
    kernel, listns_bin,
    watch::{Watch, is},
};
use serde_json::Value;

/// A forked child that unshares new UTS namespaces as fast as it can for a
/// while (each one dies at the next unshare), then reports how many it made.
struct Flooder {
    pid: i32,
    count_fd: i32,
}

impl Flooder {
    fn start(secs: u64) -> Flooder {
        let mut p = [0i32; 2];
        // SAFETY: pipe writes two fds into p.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        // SAFETY: the child makes raw syscalls only (clock_gettime,
        // unshare, write) and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                let now = || {
                    let mut ts: libc::timespec = std::mem::zeroed();
                    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
                    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
                };
                let end = now() + secs * 1_000_000_000;
                let mut made: u64 = 0;
                while now() < end {
                    for _ in 0..64 {
                        if libc::unshare(libc::CLONE_NEWUTS) == 0 {
                            made += 1;
                        }
                    }
                }
                let n = libc::write(p[1], (&raw const made).cast(), 8);
                libc::_exit(if n == 8 { 0 } else { 1 });
            }
        }
        // SAFETY: our copy of the write end.
        unsafe { libc::close(p[1]) };
        Flooder {
            pid,
            count_fd: p[0],
        }
    }

    /// Waits for it to finish; how many namespaces it made.
    fn finish(self) -> u64 {
        let mut made: u64 = 0;
        // SAFETY: reads 8 bytes into made; reaps our own child.
        unsafe {
            let n = libc::read(self.count_fd, (&raw mut made).cast(), 8);
            libc::close(self.count_fd);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
            assert!(n == 8 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        made
    }
}

/// Sum of the `lost` lines' counts, and the index of the last one.
fn lost(seen: &[Value]) -> (u64, Option<usize>) {
    let mut total = 0;
    let mut last = None;
    for (i, v) in seen.iter().enumerate() {
        if v["event"] == "lost" {
            total += v["count"].as_u64().expect("lost count");
            last = Some(i);
        }
    }
    (total, last)
}

/// Waits until a `rescan` line follows the last `lost` line (the
/// reconciling rescan runs shortly after the last loss).
fn wait_for_rescan_after_last_loss(w: &mut Watch) {
    let end = Instant::now() + listns_tests::scaled(Duration::from_secs(20));
    loop {
        w.drain(Duration::from_millis(300));
        let last_lost = lost(&w.seen).1.expect("no lost line");
        if w.seen[last_lost..].iter().any(|v| v["event"] == "rescan") {
            return;
        }
        assert!(
            Instant::now() < end,
            "no rescan followed the last lost line within 20 s"
        );
    }
}

/// A namespace as both sides name it: by id where the kernel has ids.
type Key = (String, u64, bool);

fn key(v: &Value) -> Key {
    let ty = v["type"].as_str().unwrap().to_string();
    match v["id"].as_u64() {
        Some(id) => (ty, id, true),
        None => (ty, v["ns"].as_u64().unwrap(), false),
    }
}

/// What the watcher's stream says is alive now, and which of those it
/// says are hidden (alive where no scan can see).
fn watcher_view(seen: &[Value]) -> (HashSet<Key>, HashSet<Key>) {
    let mut alive = HashMap::new();
    for v in seen {
        match v["event"].as_str().unwrap_or("") {
            "existing" | "created" | "joined" | "discovered" => {
                alive.insert(key(v), v["hidden"] == true);
            }
            "hidden" => {
                alive.insert(key(v), true);
            }
            "gone" => {
                alive.remove(&key(v));
                // A line without the id (a record the kernel wrote before
                // it gave the namespace its id, README "JSON") named the
                // same namespace.
                alive.remove(&(key(v).0, v["ns"].as_u64().unwrap(), false));
            }
            _ => {}
        }
    }
    let hidden = alive.iter().filter(|(_, h)| **h).map(|(k, _)| k.clone());
    (alive.keys().cloned().collect(), hidden.collect())
}

/// A fresh `listns -J`: each namespace's key and inode.
fn fresh_scan() -> HashMap<Key, u64> {
    let out = Command::new(listns_bin()).arg("-J").output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (key(n), n["ns"].as_u64().unwrap()))
        .collect()
}

/// The watcher's inventory, as its stream tells it, matches a fresh scan:
/// nothing alive is unknown to it, and nothing it holds alive (and not
/// hidden) is missing from the scan. Lifecycle checks take a few seconds
/// to settle (netns teardown is asynchronous; without file handles a
/// rescan every 10 s decides), so differences must persist for 30 s.
fn assert_inventory_matches_a_fresh_scan(w: &mut Watch) {
    let end = Instant::now() + listns_tests::scaled(Duration::from_secs(30));
    loop {
        w.drain(Duration::from_millis(500));
        let scan_inodes = fresh_scan();
        w.drain(Duration::from_millis(500));
        let (alive, hidden) = watcher_view(&w.seen);
        let scan: HashSet<Key> = scan_inodes.keys().cloned().collect();
        // A line without the id (a record the kernel wrote before it gave
        // the namespace its id; README "JSON") names the scan's namespace
        // of that type and inode.
        let by_inode: HashSet<(String, u64)> =
            scan_inodes.iter().map(|(k, i)| (k.0.clone(), *i)).collect();
        let unknown: Vec<_> = scan
            .difference(&alive)
            .filter(|k| !alive.contains(&(k.0.clone(), scan_inodes[*k], false)))
            .collect();
        let phantom: Vec<_> = alive
            .difference(&scan)
            .filter(|k| !hidden.contains(*k))
            .filter(|k| k.2 || !by_inode.contains(&(k.0.clone(), k.1)))
            .collect();
        if unknown.is_empty() && phantom.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "after the rescan the inventory differs from a fresh scan: alive but unknown to \
             the watcher {unknown:?}; held alive by the watcher but not found {phantom:?}"
        );
    }
}

/// Whether the watcher still works: a new netns is reported created.
fn assert_still_reporting(w: &mut Watch) {
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "the watcher exited under load"
    );
    let child = Command::new("unshare")
        .args(["-n", "true"])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    w.wait(Duration::from_secs(10), |v| {
        is(v, "created", "net") && v["pid"] == pid
    })
    .expect("after the flood the watcher still reports a new namespace");
}

#[test]
fn lost_records_are_counted_reported_and_reconciled() {
    if !require_root() {
        return;
    }
    let mut w = Watch::start(&["--ring-buffer-size", "16K"]);
    assert_eq!(
        kernel::map_sizes_of(&w.child.id().to_string(), "EVENTS"),
        vec![16384],
        "the kernel's ring buffer has the size asked for"
    );
    let flooders = [Flooder::start(2), Flooder::start(2)];
    // Long-lived namespaces made during the flood: their records are as
    // likely to be lost as any, so only the rescan may know them.
    let mut holders = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(200));
        holders.push(Holder::start());
    }
    let pids: Vec<i32> = flooders.iter().map(|f| f.pid).collect();
    let made: Vec<u64> = flooders.into_iter().map(Flooder::finish).collect();
    wait_for_rescan_after_last_loss(&mut w);
    let (lost_total, _) = lost(&w.seen);
    assert!(
        lost_total > 0,
        "a 16 KiB buffer under two flooders lost nothing?"
    );
    let mut reported_total = 0;
    for (pid, made) in pids.iter().zip(&made) {
        let created: Vec<Key> = w
            .seen
            .iter()
            .filter(|v| is(v, "created", "uts") && v["pid"] == *pid)
            .map(key)
            .collect();
        // Without ids the kernel hands each dead one's inode to the next:
        // count events; with ids each one must be a different namespace.
        let distinct: HashSet<&Key> = created.iter().collect();
        if kernel::kernel_has_ns_ids() {
            assert_eq!(
                distinct.len(),
                created.len(),
                "a namespace reported created twice"
            );
        }
        let reported = created.len() as u64;
        assert!(
            reported <= *made,
            "pid {pid}: {reported} reported, {made} made"
        );
        reported_total += reported;
    }
    let made_total: u64 = made.iter().sum();
    let joined = w
        .seen
        .iter()
        .filter(|v| is(v, "joined", "uts") && pids.iter().any(|p| v["pid"] == *p))
        .count();
    let missed: u64 = w
        .seen
        .iter()
        .filter(|v| v["event"] == "lost")
        .filter_map(|v| v["missed"].as_u64())
        .sum();
    eprintln!(
        "NOTE overload: {made_total} UTS namespaces made, {reported_total} reported created \
         ({joined} joined), {lost_total} records lost ({missed} of them program runs the kernel \
         skipped)"
    );
    // One record per namespace made (its unshare): each one not reported
    // must be a lost record. Without ids, a namespace that got the inode of
    // one that died a moment before, before the tracer forgot it, is
    // reported as joined (README "Kernel matrix"): its record still came.
    let reported_total = if kernel::kernel_has_ns_ids() {
        reported_total
    } else {
        reported_total + joined as u64
    };
    assert!(
        made_total - reported_total <= lost_total,
        "{made_total} made, {reported_total} reported, only {lost_total} records lost"
    );
    assert_still_reporting(&mut w);
    assert_inventory_matches_a_fresh_scan(&mut w);
    let status = w.stop(libc::SIGTERM);
    assert!(status.success(), "exit status {status} after SIGTERM");
    drop(holders);
}

/// A forked child that unshares a network namespace and pauses: the
/// long-lived namespace made under cover of a flood.
struct Holder(i32);

impl Holder {
    fn start() -> Holder {
        // SAFETY: the child makes raw syscalls only.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    libc::_exit(1);
                }
                loop {
                    libc::pause();
                }
            }
        }
        Holder(pid)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

#[test]
fn a_namespace_made_under_cover_of_a_flood_is_still_found() {
    if !require_root() {
        return;
    }
    // The smallest ring buffer there is: one page.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.to_string();
    let mut w = Watch::start(&["--ring-buffer-size", &page]);
    assert_eq!(
        kernel::map_sizes_of(&w.child.id().to_string(), "EVENTS"),
        vec![page.parse::<u32>().unwrap()]
    );
    let flooder = Flooder::start(3);
    // Network namespaces made one by one while the flood runs, each held
    // by a process that stays: every one must end up in the inventory.
    let mine = listns_tests::ns_inode("/proc/self/ns/net");
    let mut holders = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(200));
        let holder = Holder::start();
        let path = format!("/proc/{}/ns/net", holder.0);
        let inode = listns_tests::wait_for(Duration::from_secs(5), || {
            let i = listns_tests::ns_inode(&path);
            (i != 0 && i != mine).then_some(i)
        })
        .expect("the holder's netns");
        targets.push(match kernel::ns_id_of_path(&path) {
            Some(id) => ("net".to_string(), id, true),
            None => ("net".to_string(), inode, false),
        });
        holders.push(holder);
    }
    let made = flooder.finish();
    wait_for_rescan_after_last_loss(&mut w);
    let (lost_total, _) = lost(&w.seen);
    assert!(
        lost_total > 0,
        "the flood did not overflow a one-page buffer"
    );
    let mut how = std::collections::BTreeMap::<String, usize>::new();
    for target in &targets {
        let found = w
            .wait(Duration::from_secs(15), |v| {
                matches!(
                    v["event"].as_str(),
                    Some("created" | "joined" | "discovered")
                ) && key(v) == *target
            })
            .unwrap_or_else(|| {
                panic!("a netns made under cover of the flood ({target:?}) is not in the inventory")
            });
        *how.entry(found["event"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    eprintln!(
        "NOTE flood: {made} UTS namespaces, {lost_total} records lost; the 10 netns made \
         meanwhile came in as {how:?}"
    );
    let (alive, _) = watcher_view(&w.seen);
    for target in &targets {
        assert!(
            alive.contains(target),
            "{target:?} reported gone while alive"
        );
    }
    assert!(w.stop(libc::SIGTERM).success());
    drop(holders);
}
