//! Privileged tests of the live tracer: real eBPF programs, real namespaces.

use std::time::{Duration, Instant};

use listns::inventory::live::{TaskEvent, TaskEventKind};
use listns::ns::NsType;
use listns::trace::{Options, Tracer};
use listns_skip::require_root;
use listns_tests::{NetnsGuard, live_inodes};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Collects events until `done` says enough or the deadline passes.
async fn collect(
    tracer: &mut Tracer,
    timeout: Duration,
    mut done: impl FnMut(&[TaskEvent]) -> bool,
) -> (Vec<TaskEvent>, u64) {
    let end = Instant::now() + timeout;
    let mut events = Vec::new();
    let mut lost = 0;
    while !done(&events) && Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tracer.next_batch()).await {
            Ok(Ok(batch)) => {
                events.extend(batch.events);
                lost += batch.lost;
            }
            Ok(Err(e)) => panic!("tracer: {e}"),
            Err(_) => break,
        }
    }
    (events, lost)
}

#[test]
fn unshare_net_is_reported_as_created() {
    if !require_root() {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        assert!(
            tracer.status.failed.is_empty(),
            "{:?}",
            tracer.status.failed
        );
        let before = listns_tests::ns_inode("/proc/self/ns/net");
        let alive_before = live_inodes("net");
        let (pid, events, lost) = run_traced(
            &mut tracer,
            "unshare",
            &["-n", "true"],
            TaskEventKind::Unshare,
        )
        .await;
        assert_eq!(lost, 0);
        let ev = find(&events, pid, TaskEventKind::Unshare);
        assert_eq!(ev.comm, "unshare");
        let net = ev
            .slots
            .iter()
            .find(|s| s.ty == NsType::Net && s.slot == 3)
            .expect("net slot");
        assert!(net.changed && net.created, "{net:?}");
        assert!(
            !alive_before.contains(&net.inum),
            "new netns {} was alive before",
            net.inum
        );
        assert_eq!(
            net.prev.map(|p| p.0),
            Some(before),
            "prev is the netns before unshare"
        );
    });
}

/// Runs a command to completion and collects events until its `kind`
/// event arrives (5 s at most); returns its pid, the events and the lost count.
async fn run_traced(
    tracer: &mut Tracer,
    cmd: &str,
    args: &[&str],
    kind: TaskEventKind,
) -> (u32, Vec<TaskEvent>, u64) {
    let child = std::process::Command::new(cmd).args(args).spawn().unwrap();
    let pid = child.id();
    assert!(
        child.wait_with_output().unwrap().status.success(),
        "{cmd} {args:?} failed"
    );
    let (events, lost) = collect(tracer, Duration::from_secs(5), |evs| {
        evs.iter().any(|e| e.pid == pid && e.kind == kind)
    })
    .await;
    (pid, events, lost)
}

/// Forks a child that runs `f` (async-signal-safe calls only) and `_exit`s
/// with its result; returns the child's pid after reaping it.
fn fork_child(f: impl FnOnce() -> i32) -> u32 {
    // SAFETY: the child calls only raw syscalls and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = f();
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    pid as u32
}

fn find(events: &[TaskEvent], pid: u32, kind: TaskEventKind) -> &TaskEvent {
    events
        .iter()
        .find(|e| e.pid == pid && e.kind == kind)
        .unwrap_or_else(|| {
            panic!(
                "no {kind:?} event from pid {pid} among {} events",
                events.len()
            )
        })
}

/// Dropping the tracer unloads every program it loaded: counted by the
/// program ids in this process's own fdinfo, not by names other tools'
/// programs can share.
#[test]
fn dropping_the_tracer_unloads_its_programs() {
    if !require_root() {
        return;
    }
    let before = listns_tests::kernel::prog_ids_of("self");
    let ids = rt().block_on(async {
        let tracer = Tracer::start(&Options::default()).expect("tracer starts");
        let now = listns_tests::kernel::prog_ids_of("self");
        let ids: std::collections::BTreeSet<u32> = now.difference(&before).copied().collect();
        assert!(
            tracer.status.failed.is_empty(),
            "{:?}",
            tracer.status.failed
        );
        assert_eq!(
            ids.len(),
            listns_tests::watch::programs(),
            "one program per hook: {ids:?}"
        );
        assert_eq!(listns_tests::kernel::still_loaded(&ids), ids);
        drop(tracer);
        ids
    });
    let left = listns_tests::kernel::wait_unloaded(&ids, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "programs {left:?} still loaded after the tracer was dropped"
    );
}

#[test]
fn burst_of_short_lived_namespaces_is_caught_whole() {
    if !require_root() {
        return;
    }
    const N: usize = 1000;
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        let mut pids = std::collections::HashSet::new();
        let drain = async {
            // Each child lives only for one unshare(CLONE_NEWUTS) and _exit.
            for _ in 0..N {
                pids.insert(fork_child(|| unsafe { libc::unshare(libc::CLONE_NEWUTS) }));
            }
        };
        drain.await;
        let (events, lost) = collect(&mut tracer, Duration::from_secs(20), |evs| {
            evs.iter()
                .filter(|e| e.kind == TaskEventKind::Unshare && pids.contains(&e.pid))
                .count()
                >= N
        })
        .await;
        assert_eq!(lost, 0, "records lost");
        let uts: Vec<_> = events
            .iter()
            .filter(|e| e.kind == TaskEventKind::Unshare && pids.contains(&e.pid))
            .map(|e| {
                let uts = e
                    .slots
                    .iter()
                    .find(|s| s.ty == NsType::Uts)
                    .expect("uts slot");
                assert!(uts.changed, "pid {}: uts did not change: {uts:?}", e.pid);
                uts
            })
            .collect();
        assert_eq!(uts.len(), N, "unshare events from the burst");
        let created = uts.iter().filter(|s| s.created).count();
        assert_eq!(created, N, "uts namespaces reported as created");
        if !listns_tests::kernel_has_ns_ids() {
            // Kernels before 6.18 key namespaces by inode, which the kernel
            // hands to the next namespace at once (the exit hook forgets
            // dying ones): no distinct ids to check.
            let inodes: std::collections::HashSet<u64> = uts.iter().map(|s| s.inum).collect();
            println!(
                "NOTE burst: no namespace ids on this kernel: {N} unshare events, \
                 {created} created, none lost, over {} distinct inodes; ids not checked",
                inodes.len()
            );
            return;
        }
        let ids: std::collections::HashSet<u64> = uts
            .iter()
            .map(|s| {
                assert!(s.created, "uts not reported as created: {s:?}");
                s.id.expect("this kernel has namespace ids")
            })
            .collect();
        assert_eq!(ids.len(), N, "distinct namespace ids");
    });
}

#[test]
fn clone_newpid_newns_child_is_reported() {
    if !require_root() {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        // Raw clone without a new stack behaves like fork: the path that
        // tracers hooking only unshare/setns miss.
        let pid = unsafe {
            let flags = (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_ulong;
            libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize)
        };
        assert!(
            pid >= 0,
            "clone failed: {}",
            std::io::Error::last_os_error()
        );
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        let pid = pid as u32;
        let (events, _) = collect(&mut tracer, Duration::from_secs(5), |evs| {
            evs.iter()
                .any(|e| e.pid == pid && e.kind == TaskEventKind::Fork)
        })
        .await;
        let ev = find(&events, pid, TaskEventKind::Fork);
        let mine = std::process::id();
        assert_eq!(ev.ppid, mine, "ppid is the cloning test process");
        for ty in [NsType::Pid, NsType::Mnt] {
            let s = ev
                .slots
                .iter()
                .find(|s| s.ty == ty && s.changed)
                .unwrap_or_else(|| panic!("{ty} not changed: {ev:?}"));
            assert!(s.created, "{ty} not created: {s:?}");
        }
        assert!(
            ev.slots
                .iter()
                .filter(|s| s.ty == NsType::Net)
                .all(|s| !s.changed)
        );
        assert_eq!(
            ev.flags as i32 & (libc::CLONE_NEWPID | libc::CLONE_NEWNS),
            libc::CLONE_NEWPID | libc::CLONE_NEWNS
        );
    });
}

#[test]
fn unshare_user_is_reported_from_credentials() {
    if !require_root() {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        let before = listns_tests::ns_inode("/proc/self/ns/user");
        let (pid, events, _) = run_traced(
            &mut tracer,
            "unshare",
            &["-U", "true"],
            TaskEventKind::Unshare,
        )
        .await;
        let ev = find(&events, pid, TaskEventKind::Unshare);
        let user = ev
            .slots
            .iter()
            .find(|s| s.ty == NsType::User)
            .expect("user slot");
        assert!(user.changed && user.created, "{user:?}");
        assert_eq!(user.prev.map(|p| p.0), Some(before));
        assert_ne!(user.inum, before);
    });
}

#[test]
fn setns_into_existing_netns_is_a_join() {
    if !require_root() {
        return;
    }
    let _ns = NetnsGuard::new("listns-test-setns");
    let target = listns_tests::ns_inode("/run/netns/listns-test-setns");
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        // The netns existed before the tracer: mark it known, as the scan would.
        let mut inv = listns::inventory::Inventory::new();
        inv.entry(
            NsType::Net,
            target,
            Some(netns_id("/run/netns/listns-test-setns")).filter(|&id| id != 0),
        );
        assert_eq!(tracer.seed(&inv), 0, "every namespace marked as known");
        let (pid, events, _) = run_traced(
            &mut tracer,
            "nsenter",
            &["--net=/run/netns/listns-test-setns", "true"],
            TaskEventKind::Setns,
        )
        .await;
        let ev = find(&events, pid, TaskEventKind::Setns);
        assert_eq!(ev.comm, "nsenter");
        let net = ev
            .slots
            .iter()
            .find(|s| s.ty == NsType::Net)
            .expect("net slot");
        assert_eq!(net.inum, target);
        assert!(
            net.changed && !net.created,
            "a join, not a creation: {net:?}"
        );
        assert!(ev.fd >= 0);
    });
}

fn netns_id(path: &str) -> u64 {
    listns_tests::kernel::ns_id_of_path(path).unwrap_or(0)
}

#[test]
fn thread_that_unshares_its_own_netns_is_reported() {
    if !require_root() {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        let tid = std::thread::spawn(|| {
            // Only this thread moves: unshare(CLONE_NEWNET) is per thread.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            unsafe { libc::gettid() as u32 }
        })
        .join()
        .unwrap();
        let pid = std::process::id();
        let (events, _) = collect(&mut tracer, Duration::from_secs(5), |evs| {
            evs.iter()
                .any(|e| e.tid == tid && e.kind == TaskEventKind::Unshare)
        })
        .await;
        let ev = events
            .iter()
            .find(|e| e.tid == tid && e.kind == TaskEventKind::Unshare)
            .expect("unshare event");
        assert_eq!(ev.pid, pid);
        assert_ne!(ev.tid, ev.pid);
        let net = ev.slots.iter().find(|s| s.ty == NsType::Net).unwrap();
        assert!(net.created);
        assert_ne!(
            net.inum,
            listns_tests::ns_inode("/proc/self/ns/net"),
            "the process's own netns did not move"
        );
    });
}
