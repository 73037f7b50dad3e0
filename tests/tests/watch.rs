//! Privileged tests of `listns watch`: the real binary, real namespaces.

use std::{process::Command, time::Duration};

use listns_skip::require_root;
use listns_tests::{
    NetnsGuard, kernel, listns_bin, run, wait_for,
    watch::{Watch, is, programs},
};
use serde_json::Value;

#[test]
fn ctrl_c_detaches_everything_and_exits_zero() {
    if !require_root() {
        return;
    }
    let mut w = Watch::start(&[]);
    assert_eq!(w.programs.len(), programs());
    assert_eq!(
        kernel::still_loaded(&w.programs),
        w.programs,
        "the kernel lists every program the watcher holds"
    );
    // interrupt() also checks that every one of them is unloaded.
    let status = w.interrupt();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn unshare_net_is_a_created_event_with_every_key() {
    if !require_root() {
        return;
    }
    let mut w = Watch::start(&[]);
    let child = Command::new("unshare")
        .args(["-n", "true"])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    let ev = w
        .wait(Duration::from_secs(10), |v| {
            is(v, "created", "net") && v["pid"] == pid
        })
        .expect("created event for the new netns");
    for key in [
        "event", "type", "ns", "id", "pid", "comm", "time", "syscall", "flags",
    ] {
        assert!(ev.get(key).is_some(), "missing {key}: {ev}");
    }
    assert_eq!(ev["comm"], "unshare");
    assert_eq!(ev["syscall"], "unshare");
    assert!(
        ev["flags"]
            .as_array()
            .unwrap()
            .contains(&"CLONE_NEWNET".into())
    );
    // Every existing line carries the required keys too.
    for v in w.seen.iter().filter(|v| v["event"] == "existing") {
        for key in ["type", "ns", "id", "holders"] {
            assert!(v.get(key).is_some(), "existing line without {key}: {v}");
        }
    }
}

/// A netns kept only by a bind mount: unmounting it kills it.
#[test]
fn netns_gone_after_its_bind_mount_is_unmounted() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("netns");
    std::fs::write(&file, "").unwrap();
    let mut w = Watch::start(&[]);
    let arg = format!("--net={}", file.display());
    run("unshare", &[&arg, "true"]);
    let inode = listns_tests::ns_inode(&file);
    let created = w
        .wait(Duration::from_secs(10), |v| {
            is(v, "created", "net") && v["ns"] == inode
        })
        .expect("created");
    // Alive while mounted: no gone over more than two 2-second sweeps (on
    // 6.19+ a handle to a namespace held only by a bind mount answers
    // ENOENT, "inactive", which is not death).
    assert!(
        w.wait(Duration::from_secs(5), |v| is(v, "gone", "net")
            && v["ns"] == inode)
            .is_none(),
        "reported gone while its bind mount still holds it"
    );
    run("umount", &[file.to_str().unwrap()]);
    let gone = w
        .wait(Duration::from_secs(15), |v| {
            is(v, "gone", "net") && v["id"] == created["id"]
        })
        .expect("gone within a few seconds of the unmount");
    assert_eq!(gone["ns"], inode);
}

/// `ip netns add x`, a process holds an fd on it, `ip netns delete x`:
/// alive with that fd as holder; gone once the process exits.
#[test]
fn deleted_netns_lives_on_through_an_fd_then_goes() {
    if !require_root() {
        return;
    }
    let name = "listns-test-fd";
    let mut w = Watch::start(&[]);
    let _ns = NetnsGuard::new(name);
    let path = format!("/run/netns/{name}");
    let inode = listns_tests::ns_inode(&path);
    let mut holder = Command::new("sh")
        .args(["-c", &format!("exec 7<{path}; exec sleep 600")])
        .spawn()
        .unwrap();
    let hpid = holder.id();
    wait_for(Duration::from_secs(5), || {
        std::fs::read_link(format!("/proc/{hpid}/fd/7")).ok()
    })
    .expect("fd 7 open");
    run("ip", &["netns", "delete", name]);
    // A fresh scan still finds it, held by that fd and nothing else.
    let out = Command::new(listns_bin())
        .args(["-J", "-t", "net"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ns = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ns"] == inode)
        .unwrap_or_else(|| panic!("netns {inode} not listed after ip netns delete"));
    let holders = ns["holders"].as_array().unwrap();
    assert!(
        holders
            .iter()
            .any(|h| h["kind"] == "fd" && h["pid"] == hpid && h["fd"] == 7),
        "holders: {holders:?}"
    );
    assert!(
        holders.iter().all(|h| h["kind"] != "bind-mount"),
        "holders: {holders:?}"
    );
    // Still alive: no gone event yet.
    assert!(
        w.wait(Duration::from_secs(3), |v| is(v, "gone", "net")
            && v["ns"] == inode)
            .is_none()
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    // With handles a sweep every 2 s sees it; without, a rescan every 10 s.
    w.wait(Duration::from_secs(30), |v| {
        is(v, "gone", "net") && v["ns"] == inode
    })
    .expect("gone after the fd holder exited");
}

/// A netns whose only reference is an nsfs fd in flight in a unix socket
/// (sent, never received): no fd table, mount table or task has it. listns
/// reports it hidden, with its creator; lsns does not list it at all.
#[test]
fn namespace_held_by_an_fd_in_flight_is_hidden_not_lost() {
    if !require_root() {
        return;
    }
    let mut w = Watch::start(&[]);
    let (pid, a, b) = kernel::netns_in_flight();
    let created = w
        .wait(Duration::from_secs(10), |v| {
            is(v, "created", "net") && v["pid"] == pid
        })
        .expect("created event");
    let inode = created["ns"].as_u64().unwrap();
    if !kernel::kernel_has_nsfs_handles() {
        // Liveness then comes from holders alone, which cannot see this
        // reference: the documented fallback reports it gone.
        eprintln!("NOTE no nsfs file handles on this kernel: hidden cannot be told from gone");
        w.wait(Duration::from_secs(20), |v| {
            is(v, "gone", "net") && v["ns"] == inode
        })
        .expect("reported gone by the holders fallback");
        unsafe {
            libc::close(a);
            libc::close(b);
        }
        return;
    }
    let hidden = w
        .wait(Duration::from_secs(20), |v| {
            is(v, "hidden", "net") && v["id"] == created["id"]
        })
        .expect("reported hidden");
    assert_eq!(hidden["pid"], pid, "creator pid");
    assert_eq!(hidden["comm"], created["comm"]);
    assert!(hidden["created"].is_string());
    // lsns, which only scans, does not know it.
    let lsns = Command::new("lsns")
        .args(["-J", "-t", "net"])
        .output()
        .unwrap();
    let lsns: Value = serde_json::from_slice(&lsns.stdout).unwrap();
    assert!(
        lsns["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["ns"] != inode),
        "lsns lists {inode}"
    );
    // Receiving and closing the fd releases it: then it is gone.
    drop(kernel::recv_fd(b).expect("the fd in flight"));
    w.wait(Duration::from_secs(15), |v| {
        is(v, "gone", "net") && v["id"] == created["id"]
    })
    .expect("gone once the in-flight fd was received and closed");
    unsafe {
        libc::close(a);
        libc::close(b);
    }
}

/// The kernel hands a dead namespace's inode to the next one. Each child
/// unshares a UTS namespace, tells us its inode and id as the kernel gives
/// them (fstat, NS_GET_ID), and exits; the first pair with the same inode
/// is checked against what listns reported: both sightings are creations
/// (not a join of the dead one), each with the true inode and id (so the
/// ids differ where there are ids), and the first namespace is reported gone.
#[test]
fn reused_inode_is_a_new_namespace_and_the_old_one_is_gone() {
    if !require_root() {
        return;
    }
    let mut w = Watch::start(&[]);
    // inode -> (truth, what listns said)
    let mut by_inode: std::collections::HashMap<u64, ((u64, u64), Value)> = Default::default();
    let mut pair = None;
    for _ in 0..200 {
        // One short-lived UTS namespace at a time: each dies before the next.
        let (pid, truth) = unshare_uts_and_report();
        let ev = w
            .wait(Duration::from_secs(10), |v| {
                (is(v, "created", "uts") || is(v, "joined", "uts")) && v["pid"] == pid
            })
            .unwrap_or_else(|| panic!("no created or joined event for pid {pid}'s uts namespace"));
        if let Some(first) = by_inode.insert(truth.0, (truth, ev.clone())) {
            pair = Some((first, (truth, ev)));
            break;
        }
    }
    let ((t1, first), (t2, second)) =
        pair.expect("the kernel reused no UTS inode in 200 namespaces");
    assert_eq!(t1.0, t2.0, "chosen for the same inode");
    let ids = kernel::kernel_has_ns_ids();
    // Where listns kprobes proc_free_inum (probed here, not asked of
    // listns), every freed inode is forgotten at once: a reuse is always
    // a creation.
    let exact = ids || kernel::kernel_forgets_on_free();
    for (truth, ev) in [(t1, &first), (t2, &second)] {
        if !exact && ev["event"] == "joined" {
            // README "Kernel matrix": without ids or kprobes the namespace
            // is keyed by inode and the exit hook forgets it only when the
            // exiting task held the last reference; one whose last
            // reference went another way (an fd closed later, two tasks
            // exiting at once) is forgotten by the next liveness sweep, and
            // one reusing its inode before that is reported as joined.
            // Bounded, documented, and shown.
            eprintln!("NOTE no namespace ids: the reused inode was reported as joined: {ev}");
        } else {
            assert_eq!(ev["event"], "created", "a new namespace, not a join: {ev}");
        }
        assert_eq!(ev["ns"], truth.0, "the namespace's inode: {ev}");
        if ids {
            assert_eq!(ev["id"], truth.1, "the namespace's id: {ev}");
        } else {
            assert!(ev["id"].is_null(), "no ids on this kernel, yet {ev}");
        }
    }
    if ids {
        assert_ne!(first["id"], second["id"], "two namespaces, two ids");
        w.wait(Duration::from_secs(15), |v| {
            is(v, "gone", "uts") && v["id"] == first["id"]
        })
        .expect("the first namespace is reported gone");
    } else {
        // Keyed by inode: the two cannot be told apart once both are dead,
        // but a gone for that inode must follow the first creation.
        eprintln!(
            "NOTE no namespace ids on this kernel: the reused inode's gone is not told apart"
        );
        let at = w.seen.iter().position(|v| *v == first).unwrap();
        let gone = w.wait(Duration::from_secs(30), |v| {
            is(v, "gone", "uts") && v["ns"] == t1.0
        });
        let gone = gone.expect("the first namespace is reported gone");
        let gone_at = w.seen.iter().position(|v| *v == gone).unwrap();
        assert!(gone_at > at, "gone before it was created?");
    }
}

/// Forks a child that unshares a new UTS namespace, writes its inode and
/// id (0 without ids) to a pipe as the kernel reports them, and exits;
/// returns its pid (reaped) and (inode, id).
fn unshare_uts_and_report() -> (i32, (u64, u64)) {
    let mut p = [0i32; 2];
    // SAFETY: pipe writes two fds into p.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: the child makes raw syscalls only (unshare, open, fstat,
    // ioctl, write) and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            if libc::unshare(libc::CLONE_NEWUTS) != 0 {
                libc::_exit(1);
            }
            let fd = libc::open(c"/proc/self/ns/uts".as_ptr(), libc::O_RDONLY);
            let mut st: libc::stat = std::mem::zeroed();
            if fd < 0 || libc::fstat(fd, &mut st) != 0 {
                libc::_exit(2);
            }
            let mut id: u64 = 0;
            if libc::ioctl(fd, kernel::NS_GET_ID, &mut id) != 0 {
                id = 0;
            }
            let msg = [st.st_ino, id];
            let n = libc::write(p[1], msg.as_ptr().cast(), 16);
            libc::_exit(if n == 16 { 0 } else { 3 });
        }
    }
    // SAFETY: closing our copy of the write end; reading 16 bytes into msg.
    let mut msg = [0u64; 2];
    unsafe {
        libc::close(p[1]);
        let n = libc::read(p[0], msg.as_mut_ptr().cast(), 16);
        libc::close(p[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert!(
            n == 16 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child failed: status {status}"
        );
    }
    (pid, (msg[0], msg[1]))
}

/// Without BTF the tracer cannot run; watch says so and keeps the inventory
/// current by rescanning.
#[test]
fn without_btf_watch_falls_back_to_rescans() {
    if !require_root() {
        return;
    }
    let name = "listns-test-nobtf";
    let mut w = Watch::spawn(&["--btf", "/nonexistent/vmlinux"]);
    w.wait(Duration::from_secs(30), |v| v["event"] == "existing")
        .expect("initial inventory");
    assert_eq!(
        kernel::prog_ids_of(&w.child.id().to_string()),
        Default::default(),
        "nothing loaded without BTF"
    );
    let _ns = NetnsGuard::new(name);
    let inode = listns_tests::ns_inode(format!("/run/netns/{name}"));
    let found = w
        .wait(Duration::from_secs(10), |v| {
            v["event"] == "discovered" && v["ns"] == inode
        })
        .expect("the new netns is discovered by a rescan");
    assert_eq!(found["type"], "net");
    run("ip", &["netns", "delete", name]);
    w.wait(Duration::from_secs(30), |v| {
        is(v, "gone", "net") && v["ns"] == inode
    })
    .expect("gone after ip netns delete");
    let status = w.interrupt();
    assert!(status.success());
}
