//! Privileged tests of the hooks' fast paths and the tracer's kernel-side
//! bookkeeping (the map of syscalls in flight, the forgetting of dead
//! namespaces). Real eBPF, real namespaces.

use std::time::{Duration, Instant};

use listns::inventory::live::{TaskEvent, TaskEventKind};
use listns::ns::NsType;
use listns::trace::{Options, Tracer};
use listns_skip::require_root;
use listns_tests::kernel::kernel_has_ns_ids;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Reads batches until `pred` matches an event or `timeout` passes.
async fn wait_event(
    tracer: &mut Tracer,
    timeout: Duration,
    pred: impl Fn(&TaskEvent) -> bool,
) -> Option<TaskEvent> {
    let end = Instant::now() + listns_tests::scaled(timeout);
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tracer.next_batch()).await {
            Ok(Ok(batch)) => {
                if let Some(ev) = batch.events.into_iter().find(|e| pred(e)) {
                    return Some(ev);
                }
            }
            Ok(Err(e)) => panic!("tracer: {e}"),
            Err(_) => break,
        }
    }
    None
}

/// A thread that unshares a UTS namespace, opens it if asked, and exits.
/// Returns its tid, the namespace's inode and the open namespace file.
fn unshare_uts_in_thread(keep_open: bool) -> (u32, u64, Option<std::fs::File>) {
    std::thread::spawn(move || {
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWUTS) }, 0, "unshare");
        let tid = unsafe { libc::gettid() } as u32;
        let file = std::fs::File::open("/proc/thread-self/ns/uts").expect("open uts ns");
        let inode = std::os::unix::fs::MetadataExt::ino(&file.metadata().unwrap());
        (tid, inode, keep_open.then_some(file))
    })
    .join()
    .expect("namespace thread")
}

fn uts_slot(ev: &TaskEvent) -> Option<&listns::inventory::live::Slot> {
    ev.slots.iter().find(|s| s.ty == NsType::Uts && s.changed)
}

/// Forks a child that runs `then` (its exit status is what `then` returns)
/// and waits for it; returns its pid.
fn fork_and_wait(then: fn() -> i32) -> u32 {
    // SAFETY: the child makes raw syscalls only and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe { libc::_exit(then()) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child {pid}: status {status:#x}"
    );
    pid as u32
}

/// A task in the initial namespaces exits unreported (the exit hook's fast
/// path, on the initial nsproxy learnt from the boot task), one outside
/// them is reported.
#[test]
fn exits_in_the_initial_namespaces_are_filtered_and_others_reported() {
    if !require_root() {
        return;
    }
    // The plain children inherit this process's namespaces.
    let differ: Vec<_> = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
        .into_iter()
        .filter(|ty| {
            let theirs = listns_tests::ns_inode(format!("/proc/2/ns/{ty}"));
            theirs != 0 && listns_tests::ns_inode(format!("/proc/self/ns/{ty}")) != theirs
        })
        .collect();
    if !listns_skip::require(
        differ.is_empty(),
        format_args!(
            "this test runs outside the initial namespaces ({differ:?} differ from kthreadd's)"
        ),
    ) {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        let mut plain = Vec::new();
        for _ in 0..20 {
            plain.push(fork_and_wait(|| 0));
        }
        let outside = fork_and_wait(|| unsafe { libc::unshare(libc::CLONE_NEWUTS) });
        let mut seen = Vec::new();
        let end = Instant::now() + listns_tests::scaled(Duration::from_secs(10));
        while !seen
            .iter()
            .any(|e: &TaskEvent| e.kind == TaskEventKind::Exit && e.pid == outside)
            && Instant::now() < end
        {
            let left = end.saturating_duration_since(Instant::now());
            if let Ok(Ok(batch)) = tokio::time::timeout(left, tracer.next_batch()).await {
                seen.extend(batch.events);
            }
        }
        let exit = seen
            .iter()
            .find(|e| e.kind == TaskEventKind::Exit && e.pid == outside)
            .expect("the exit of a task in its own UTS namespace is reported");
        assert!(exit.slots.iter().any(|s| s.ty == NsType::Uts));
        let leaked: Vec<_> = seen.iter().filter(|e| plain.contains(&e.pid)).collect();
        assert!(
            leaked.is_empty(),
            "tasks in the initial namespaces were reported: {leaked:?}"
        );
    });
}

/// `unshare(CLONE_NEWUSER)` alone keeps the initial nsproxy: the exit
/// hook's fast path must still see the user namespace (from the task's
/// credentials) and report the exit.
#[test]
fn exit_of_a_task_whose_only_own_namespace_is_a_user_namespace_is_reported() {
    if !require_root() {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        // The first exit the hook sees learns the initial pointers and
        // takes the slow path: make it another one.
        fork_and_wait(|| 0);
        let pid = fork_and_wait(|| unsafe { libc::unshare(libc::CLONE_NEWUSER) });
        let exit = wait_event(&mut tracer, Duration::from_secs(10), |e| {
            e.kind == TaskEventKind::Exit && e.pid == pid
        })
        .await
        .expect("the exit is reported");
        let initial = listns_tests::ns_inode("/proc/self/ns/user");
        let user = exit
            .slots
            .iter()
            .find(|s| s.ty == NsType::User)
            .expect("user slot");
        assert_ne!(user.inum, initial, "the child's own user namespace");
    });
}

/// The map that carries an unshare's arguments from its enter hook to its
/// exit hook is an LRU map: full of entries whose exit never came, it
/// still takes a new call (a plain hash map refuses it, and the call is
/// missed).
#[test]
fn unshare_is_reported_with_the_in_flight_map_full_of_stale_entries() {
    if !require_root() {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        let (mut pending, capacity) = pending_map();
        // Stale calls of threads that do not exist (tids above pid_max).
        for i in 0..capacity as u64 {
            let _ = pending.insert((i + 1) << 32 | 0xffff_ffff, [0u8; PENDING_VALUE], 0);
        }
        let stale = pending.keys().filter_map(Result::ok).count();
        assert_eq!(stale as u32, capacity, "the map is full of stale entries");
        let (tid, inode, _) = unshare_uts_in_thread(false);
        let ev = wait_event(&mut tracer, Duration::from_secs(10), |e| {
            e.kind == TaskEventKind::Unshare && e.tid == tid
        })
        .await
        .expect("the unshare is reported despite the full map");
        assert_eq!(uts_slot(&ev).map(|s| s.inum), Some(inode));
    });
}

/// Size of the PENDING map's value (listns-ebpf/src/syscalls.rs `Pending`:
/// flags, fd and the ten namespace references before the call).
const PENDING_VALUE: usize = 16 + listns_common::NS_SLOTS * 16;

type Pending = aya::maps::HashMap<aya::maps::MapData, u64, [u8; PENDING_VALUE]>;

/// The running tracer's PENDING map, found through its sys_enter_unshare
/// program (one this process holds: other tracers' programs may have the
/// same name), and its capacity.
fn pending_map() -> (Pending, u32) {
    let ours = listns_tests::kernel::prog_ids_of("self");
    let program = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| ours.contains(&p.id()))
        .find(|p| p.name_as_str() == Some("sys_enter_unsha"))
        .expect("sys_enter_unshare is loaded");
    let ids = program.map_ids().ok().flatten().expect("its map ids");
    let id = ids
        .into_iter()
        .find(|&id| {
            aya::maps::MapInfo::from_id(id).is_ok_and(|m| m.name_as_str() == Some("PENDING"))
        })
        .expect("sys_enter_unshare uses PENDING");
    let capacity = aya::maps::MapInfo::from_id(id).unwrap().max_entries();
    let map = aya::maps::MapData::from_id(id).expect("open PENDING");
    let map = aya::maps::HashMap::try_from(aya::maps::Map::LruHashMap(map))
        .expect("PENDING has the expected key and value sizes");
    (map, capacity)
}

/// Namespaces made (and held) while waiting for an inode to be reused.
const MAX_TRIES: usize = 500;

/// On kernels without namespace ids the known map is keyed by inode, which
/// the kernel hands to the next namespace as soon as it is freed. A
/// namespace that outlives its last task (here through an fd) dies with
/// no task exiting; the next namespace with its inode must still be
/// reported as created, not joined. (With ids, the new namespace has a
/// new id and this holds trivially.)
#[test]
fn a_reused_inode_is_created_after_its_namespace_dies_with_no_task_exiting() {
    if !require_root() {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        let (tid, inode, file) = unshare_uts_in_thread(true);
        let first = wait_event(&mut tracer, Duration::from_secs(10), |e| {
            e.kind == TaskEventKind::Unshare && e.tid == tid
        })
        .await
        .expect("the first namespace is reported");
        assert!(uts_slot(&first).is_some_and(|s| s.created && s.inum == inode));
        // Its thread is gone; closing the fd frees it and its inode.
        drop(file);
        // The kernel hands out the lowest free inode: keep every new
        // namespace alive until one gets ours, or each would free (and the
        // next take) the same lower one.
        let mut held = Vec::new();
        let mut reuse = None;
        for _ in 0..MAX_TRIES {
            let (tid, ino, file) = unshare_uts_in_thread(true);
            held.push(file);
            let ev = wait_event(&mut tracer, Duration::from_secs(10), |e| {
                e.kind == TaskEventKind::Unshare && e.tid == tid
            })
            .await
            .expect("each namespace is reported");
            if ino == inode {
                reuse = Some(ev);
                break;
            }
        }
        let Some(ev) = reuse else {
            panic!("the kernel did not reuse inode {inode} in {MAX_TRIES} namespaces");
        };
        let slot = uts_slot(&ev).expect("uts slot");
        eprintln!(
            "NOTE namespace ids: {}; inode {inode} reused, reported created: {}",
            kernel_has_ns_ids(),
            slot.created
        );
        assert!(
            slot.created,
            "a new namespace on a reused inode must be reported created: {ev:?}"
        );
    });
}
