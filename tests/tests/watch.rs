//! Privileged tests of `listns watch`: the real binary, real namespaces.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use listns_tests::{NetnsGuard, listns_bin, loaded_program_names, require_root, run, wait_for};
use serde_json::Value;

/// `listns watch --json`, its lines parsed by a thread.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Watch {
    /// `listns watch --json EXTRA` with its lines read by a thread; does
    /// not wait for anything.
    fn spawn(extra: &[&str]) -> Watch {
        wait_until_unloaded();
        let mut child = Command::new(listns_bin())
            .args(["watch", "--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("listns watch starts");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("invalid JSON {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Spawns and waits until the programs are attached and the initial
    /// inventory is out.
    fn start(extra: &[&str]) -> Watch {
        let mut w = Watch::spawn(extra);
        // Ready once the initial inventory is out (its last "existing" line
        // comes after the programs are attached) and the programs are loaded.
        assert!(
            wait_for(Duration::from_secs(30), || (listns_tests::ours_loaded()
                == listns_tests::OUR_PROGRAMS.len())
            .then_some(()))
            .is_some(),
            "programs not attached"
        );
        w.wait(Duration::from_secs(30), |v| v["event"] == "existing")
            .expect("initial inventory");
        w
    }

    /// Reads lines until one matches, keeping them all.
    fn wait(&mut self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return Some(v.clone());
        }
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    listns_tests::assert_valid_json(&v);
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(_) => break,
            }
        }
        None
    }

    fn interrupt(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the programs of an earlier tracer (this test binary's or the
/// trace tests') to be freed: the kernel does that asynchronously.
fn wait_until_unloaded() {
    let none = wait_for(Duration::from_secs(10), || {
        (listns_tests::ours_loaded() == 0).then_some(())
    });
    assert!(
        none.is_some(),
        "listns programs still loaded (another tracer running?): {:?}",
        loaded_program_names()
    );
}

fn is(v: &Value, event: &str, ty: &str) -> bool {
    v["event"] == event && v["type"] == ty
}

#[test]
fn ctrl_c_detaches_everything_and_exits_zero() {
    if !require_root("ctrl_c_detaches_everything_and_exits_zero") {
        return;
    }
    wait_until_unloaded();
    let w = Watch::start(&[]);
    assert_eq!(
        listns_tests::ours_loaded(),
        listns_tests::OUR_PROGRAMS.len()
    );
    let status = w.interrupt();
    assert!(status.success(), "exit status {status}");
    // The kernel frees a program asynchronously (after an RCU grace
    // period) once its last fd and link are gone: allow it a moment.
    let gone = wait_for(Duration::from_secs(5), || {
        (listns_tests::ours_loaded() == 0).then_some(())
    });
    assert!(
        gone.is_some(),
        "programs left behind: {:?}",
        loaded_program_names()
    );
}

#[test]
fn unshare_net_is_a_created_event_with_every_key() {
    if !require_root("unshare_net_is_a_created_event_with_every_key") {
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
    if !require_root("netns_gone_after_its_bind_mount_is_unmounted") {
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
    if !require_root("deleted_netns_lives_on_through_an_fd_then_goes") {
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
    if !require_root("namespace_held_by_an_fd_in_flight_is_hidden_not_lost") {
        return;
    }
    let mut w = Watch::start(&[]);
    let mut sv = [0i32; 2];
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) },
        0
    );
    let (a, b) = (sv[0], sv[1]);
    // SAFETY: the child makes syscalls (nix's sendmsg allocates its control
    // buffer, which glibc's malloc allows after fork), then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                libc::_exit(1);
            }
            let fd = libc::open(c"/proc/self/ns/net".as_ptr(), libc::O_RDONLY);
            libc::_exit(if send_fd(a, fd) { 0 } else { 2 });
        }
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    let created = w
        .wait(Duration::from_secs(10), |v| {
            is(v, "created", "net") && v["pid"] == pid
        })
        .expect("created event");
    let inode = created["ns"].as_u64().unwrap();
    if !listns_tests::kernel_has_nsfs_handles() {
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
    let fd = recv_fd(b);
    assert!(fd >= 0);
    unsafe { libc::close(fd) };
    w.wait(Duration::from_secs(15), |v| {
        is(v, "gone", "net") && v["id"] == created["id"]
    })
    .expect("gone once the in-flight fd was received and closed");
    unsafe {
        libc::close(a);
        libc::close(b);
    }
}

/// Sends `fd` over the unix socket `sock` (SCM_RIGHTS, with one data byte).
/// Called in a forked child: nix's sendmsg allocates its control buffer,
/// which glibc's malloc allows after fork.
fn send_fd(sock: i32, fd: i32) -> bool {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(&[0])];
    sendmsg::<UnixAddr>(sock, &iov, &cmsg, MsgFlags::empty(), None) == Ok(1)
}

/// Receives one fd sent by `send_fd` on `sock`; -1 when none came.
fn recv_fd(sock: i32) -> i32 {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut cbuf = nix::cmsg_space!(std::os::fd::RawFd);
    let Ok(msg) = recvmsg::<UnixAddr>(sock, &mut iov, Some(&mut cbuf), MsgFlags::empty()) else {
        return -1;
    };
    let fd = msg
        .cmsgs()
        .ok()
        .into_iter()
        .flatten()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
    fd.unwrap_or(-1)
}

/// The kernel hands a dead namespace's inode to the next one: listns keeps
/// them apart by id, and the first is reported gone.
#[test]
fn reused_inode_is_a_new_namespace_and_the_old_one_is_gone() {
    if !require_root("reused_inode_is_a_new_namespace_and_the_old_one_is_gone") {
        return;
    }
    let mut w = Watch::start(&[]);
    let mut by_inode: std::collections::HashMap<u64, Value> = std::collections::HashMap::new();
    let mut pair = None;
    for _ in 0..200 {
        // One short-lived UTS namespace at a time: each dies before the next.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::_exit(if libc::unshare(libc::CLONE_NEWUTS) == 0 {
                    0
                } else {
                    1
                })
            };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let Some(ev) = w.wait(Duration::from_secs(10), |v| {
            is(v, "created", "uts") && v["pid"] == pid
        }) else {
            panic!("no created event for pid {pid}");
        };
        let inode = ev["ns"].as_u64().unwrap();
        if let Some(first) = by_inode.insert(inode, ev.clone()) {
            pair = Some((first, ev));
            break;
        }
    }
    let (first, second) = pair.expect("the kernel reused no UTS inode in 200 namespaces");
    if !listns_tests::kernel_has_ns_ids() {
        // Keyed by inode: the reuse is still a creation (the tracer forgets
        // namespaces as they die), but the two cannot be kept apart.
        eprintln!(
            "NOTE no namespace ids on this kernel: a reused inode is reported created again, not kept apart"
        );
        assert_eq!(first["ns"], second["ns"]);
        return;
    }
    assert_ne!(
        first["id"], second["id"],
        "same inode, different namespaces, different ids"
    );
    w.wait(Duration::from_secs(15), |v| {
        is(v, "gone", "uts") && v["id"] == first["id"]
    })
    .expect("the first namespace is reported gone");
}

/// Without BTF the tracer cannot run; watch says so and keeps the inventory
/// current by rescanning.
#[test]
fn without_btf_watch_falls_back_to_rescans() {
    if !require_root("without_btf_watch_falls_back_to_rescans") {
        return;
    }
    let name = "listns-test-nobtf";
    let mut w = Watch::spawn(&["--btf", "/nonexistent/vmlinux"]);
    w.wait(Duration::from_secs(30), |v| v["event"] == "existing")
        .expect("initial inventory");
    assert_eq!(listns_tests::ours_loaded(), 0, "nothing loaded without BTF");
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
