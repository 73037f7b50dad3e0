//! Privileged scan tests: each builds a way of holding a namespace for real
//! and asserts that the scan reports it with the right holder. Root is
//! needed; without it each test says why and passes, except under CI (`CI`
//! set), where it fails. Run with `--test-threads=1`.

use std::{
    fs,
    io::Read,
    os::fd::{AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use listns_skip::require_root;
use listns_tests::{
    kernel_has_ns_ids, listns_bin, live_inodes, lsns::lsns, ns_inode, run, wait_for,
};

use listns::{
    inventory::{Holder, Inventory, NsKey},
    ns::NsType,
    scan::Scanner,
};

fn scan() -> Inventory {
    let (inv, stats) = Scanner::new("/proc").scan().expect("scan");
    assert!(stats.live);
    inv
}

/// The inode of the namespace at an nsfs path (a /proc/PID/ns link, a
/// bind mount) by stat: the kernel's answer, not listns's parsing.
fn link_inode(path: impl AsRef<Path>) -> u64 {
    let ino = ns_inode(path.as_ref());
    assert_ne!(ino, 0, "stat {}", path.as_ref().display());
    ino
}

fn holders(inv: &Inventory, ty: NsType, inum: u64) -> Vec<Holder> {
    let key = inv
        .by_inode(ty, inum)
        .unwrap_or_else(|| panic!("{ty}:[{inum}] not in the scan"));
    inv.get(&key).unwrap().holders.iter().cloned().collect()
}

/// A child process killed and reaped on drop.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &str, args: &[&str]) -> Proc {
        Proc(
            Command::new(cmd)
                .args(args)
                .stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{cmd}: {e}")),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A forked child that runs `setup` (async-signal-safe calls only), reports
/// readiness through a pipe, then pauses until killed on drop.
struct Forked(nix::unistd::Pid);

impl Forked {
    fn new(setup: impl FnOnce() -> bool) -> Forked {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only makes raw syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = setup();
                let _ = nix::unistd::write(&w, &[ok as u8]);
                loop {
                    // SAFETY: pause is async-signal-safe.
                    unsafe { libc::pause() };
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(w);
                let mut b = [0u8];
                let mut f = fs::File::from(r);
                f.read_exact(&mut b).unwrap();
                assert_eq!(b[0], 1, "setup in the forked child failed");
                Forked(child)
            }
        }
    }
    fn pid(&self) -> u32 {
        self.0.as_raw() as u32
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.0, None);
    }
}

/// A temporary directory removed on drop (after unmounting what is in it).
struct TempDirGuard(#[allow(dead_code)] tempfile::TempDir, Vec<PathBuf>);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        for m in &self.1 {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn ip_netns_add_is_named_and_bind_held() {
    if !require_root() {
        return;
    }
    let _g = listns_tests::NetnsGuard::new("listns-t1");
    let inum = fs::metadata("/run/netns/listns-t1")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let inv = scan();
    let key = inv.by_inode(NsType::Net, inum).expect("netns found");
    let ns = inv.get(&key).unwrap();
    assert!(ns.netns_names.contains(&"listns-t1".into()));
    assert!(
        ns.holders
            .iter()
            .any(|h| matches!(h, Holder::BindMount { path, .. } if path == "/run/netns/listns-t1")),
        "{:?}",
        ns.holders
    );
    assert_eq!(
        key.id.is_some(),
        kernel_has_ns_ids(),
        "ids exactly where the kernel has them"
    );
    // Owned by the user namespace of `ip`'s, which is this process's.
    assert_eq!(
        ns.owner.map(|o| o.inum),
        Some(link_inode("/proc/self/ns/user"))
    );
}

#[test]
fn netns_bind_mounted_at_an_arbitrary_path() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held here");
    fs::write(&file, b"").unwrap();
    let _g = TempDirGuard(dir, vec![file.clone()]);
    run("unshare", &[&format!("--net={}", file.display()), "true"]);
    let inum = link_inode(&file);
    let inv = scan();
    let h = holders(&inv, NsType::Net, inum);
    assert_eq!(
        h,
        vec![Holder::BindMount {
            path: file.display().to_string().into(),
            mnt_ns: link_inode("/proc/self/ns/mnt")
        }]
    );
}

#[test]
fn bind_mount_only_inside_a_private_mount_namespace() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inner");
    fs::write(&file, b"").unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "unshare --net={f} true && touch {r} && exec sleep 60",
        f = file.display(),
        r = ready.display()
    );
    let p = Proc::spawn(
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &script],
    );
    wait_for(Duration::from_secs(10), || ready.exists().then_some(()))
        .expect("the private bind mount");
    // unshare execs the shell: that process is in the private namespace.
    let inner_mnt = link_inode(format!("/proc/{}/ns/mnt", p.pid()));
    assert_ne!(inner_mnt, link_inode("/proc/self/ns/mnt"));
    // Not visible from here.
    assert!(
        !fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&file.display().to_string())
    );
    let inv = scan();
    let found: Vec<_> = inv
        .iter()
        .filter(|(k, ns)| {
            k.ty == NsType::Net
                && ns.holders.iter().any(|h| matches!(h, Holder::BindMount { path, mnt_ns } if *path == *file.display().to_string() && *mnt_ns == inner_mnt))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "the bind mount inside pid {}'s mount namespace",
        p.pid()
    );
    assert_eq!(
        found[0].0.id.is_some(),
        kernel_has_ns_ids(),
        "opened through /proc/PID/root"
    );
}

#[test]
fn user_namespace_held_only_by_an_fd_after_its_creator_exits() {
    if !require_root() {
        return;
    }
    let creator = Proc::spawn("unshare", &["-U", "sleep", "60"]);
    let path = format!("/proc/{}/ns/user", creator.pid());
    wait_for(Duration::from_secs(10), || {
        fs::read_link(&path)
            .is_ok_and(|l| l != fs::read_link("/proc/self/ns/user").unwrap())
            .then_some(())
    })
    .expect("the new user namespace");
    let inum = link_inode(&path);
    let held: OwnedFd = fs::File::open(&path).unwrap().into();
    drop(creator);
    let inv = scan();
    let me = std::process::id();
    assert_eq!(
        holders(&inv, NsType::User, inum),
        vec![Holder::Fd {
            pid: me,
            fd: held.as_raw_fd()
        }]
    );
}

#[test]
fn netns_held_only_by_a_socket() {
    if !require_root() {
        return;
    }
    // A thread enters a new netns, opens a socket there, and exits: only
    // the socket keeps that netns alive.
    let (sock, inum, tid) = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let inum = link_inode("/proc/thread-self/ns/net");
        let s = std::net::UdpSocket::bind("127.0.0.1:0").ok();
        let s = s.map(OwnedFd::from).unwrap_or_else(|| {
            // lo is down in a fresh netns: an unbound socket is enough.
            nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                nix::sys::socket::SockType::Datagram,
                nix::sys::socket::SockFlag::empty(),
                None,
            )
            .unwrap()
        });
        (s, inum, nix::unistd::gettid())
    })
    .join()
    .unwrap();
    // join() returns when the thread's code is done, a moment before the
    // kernel drops its task (and its namespaces); a slow kernel shows the gap.
    let reaped = wait_for(Duration::from_secs(10), || {
        (!std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()).then_some(())
    });
    assert!(reaped.is_some(), "thread {tid} still in /proc/self/task");
    let inv = scan();
    let me = std::process::id();
    assert_eq!(
        holders(&inv, NsType::Net, inum),
        vec![Holder::Socket {
            pid: me,
            fd: sock.as_raw_fd()
        }]
    );
}

#[test]
fn thread_that_unshared_its_own_netns() {
    if !require_root() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        tx.send((
            nix::unistd::gettid().as_raw() as u32,
            link_inode("/proc/thread-self/ns/net"),
        ))
        .unwrap();
        let _ = done_rx.recv();
    });
    let (tid, inum) = rx.recv().unwrap();
    let inv = scan();
    drop(done_tx);
    t.join().unwrap();
    let me = std::process::id();
    assert_eq!(
        holders(&inv, NsType::Net, inum),
        vec![Holder::Thread {
            pid: me,
            tid,
            link: "net"
        }]
    );
}

#[test]
fn time_namespace_held_through_time_for_children() {
    if !require_root() {
        return;
    }
    // unshare(CLONE_NEWTIME) without exec: the process's own time link is
    // unchanged; only time_for_children shows the new namespace.
    // SAFETY (in the child): a raw syscall.
    let child = Forked::new(|| unsafe { libc::unshare(libc::CLONE_NEWTIME) } == 0);
    let pid = child.pid();
    let own = link_inode(format!("/proc/{pid}/ns/time"));
    let inum = link_inode(format!("/proc/{pid}/ns/time_for_children"));
    assert_ne!(own, inum);
    let inv = scan();
    assert_eq!(
        holders(&inv, NsType::Time, inum),
        vec![Holder::Process {
            pid,
            link: "time_for_children"
        }]
    );
}

#[test]
fn intermediate_user_namespace_without_a_process() {
    if !require_root() {
        return;
    }
    // The first unshare creates U1 and execs the second, which creates U2
    // and execs sleep: no process is left in U1; U2 keeps it alive.
    let p = Proc::spawn("unshare", &["-U", "-r", "unshare", "-U", "sleep", "60"]);
    let path = format!("/proc/{}/ns/user", p.pid());
    let init_user = link_inode("/proc/self/ns/user");
    // Wait until the sleep runs (two levels below ours).
    wait_for(Duration::from_secs(10), || {
        fs::read_to_string(format!("/proc/{}/comm", p.pid()))
            .is_ok_and(|c| c.trim() == "sleep")
            .then_some(())
    })
    .expect("the nested user namespaces");
    let u2 = link_inode(&path);
    let inv = scan();
    let k2 = inv.by_inode(NsType::User, u2).unwrap();
    let u1: NsKey = inv.get(&k2).unwrap().parent.expect("U2's parent is known");
    // U1 by the kernel's NS_GET_PARENT on U2.
    let u1_inum = listns_tests::kernel::ns_parent_inode(&path).expect("NS_GET_PARENT of U2");
    assert_ne!(u1_inum, init_user);
    assert_eq!(u1.inum, u1_inum);
    assert_eq!(
        holders(&inv, NsType::User, u1.inum),
        vec![Holder::Child {
            ty: NsType::User,
            ns: u2
        }]
    );
    let ns1 = inv.get(&u1).unwrap();
    assert_eq!(ns1.parent.map(|k| k.inum), Some(init_user));
    assert_eq!(u1.id.is_some(), kernel_has_ns_ids());
}

/// Every namespace lsns lists, listns lists too: with or without a PID
/// (newer lsns also lists bind-mounted namespaces and ghost user
/// namespaces without one). One that lsns saw and listns did not is
/// excused only if it is really gone by then: no task holds it, its nsfs
/// path no longer leads to it and a second lsns run no longer lists it.
#[test]
fn every_namespace_lsns_lists_listns_lists_too() {
    if !require_root() {
        return;
    }
    let before = lsns();
    let mine = listns_json();
    let after = lsns();
    let have: std::collections::HashSet<(String, u64)> = mine["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["ns"].as_u64().unwrap(),
            )
        })
        .collect();
    let still_listed: std::collections::HashSet<(String, u64)> =
        after.iter().map(|n| n.key()).collect();
    let mut missing = Vec::new();
    let mut excused = Vec::new();
    for n in &before {
        let k = n.key();
        if have.contains(&k) {
            continue;
        }
        let held_by_a_task = live_inodes(&k.0).contains(&k.1);
        let path_leads_to_it = n
            .nsfs
            .iter()
            .any(|p| fs::metadata(p).is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == k.1));
        if held_by_a_task || path_leads_to_it || still_listed.contains(&k) {
            missing.push(n.clone());
        } else {
            excused.push(k);
        }
    }
    assert!(
        missing.is_empty(),
        "lsns lists live namespaces listns does not: {missing:?}"
    );
    if !excused.is_empty() {
        eprintln!("NOTE lsns listed {excused:?}, gone before listns scanned");
    }
    let pidless = before.iter().filter(|n| n.pid.is_none()).count();
    eprintln!(
        "NOTE lsns listed {} namespaces, {pidless} of them without a PID",
        before.len()
    );
}

/// Runs the built `listns -J` binary.
fn listns_json() -> serde_json::Value {
    let out = Command::new(listns_bin())
        .arg("-J")
        .output()
        .expect("run listns");
    assert!(
        out.status.success(),
        "listns -J failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("listns -J prints JSON")
}

#[test]
fn binary_reports_a_fresh_netns_process_with_the_right_holder() {
    if !require_root() {
        return;
    }
    let p = Proc::spawn("unshare", &["-n", "sleep", "60"]);
    let path = format!("/proc/{}/ns/net", p.pid());
    let mine = link_inode("/proc/self/ns/net");
    wait_for(Duration::from_secs(10), || {
        fs::read_link(&path)
            .is_ok_and(|_| link_inode(&path) != mine)
            .then_some(())
    })
    .expect("the new netns");
    let inum = link_inode(&path);
    let v = listns_json();
    let ns = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "net" && n["ns"] == inum)
        .expect("the netns is listed");
    assert_eq!(ns["nprocs"], 1);
    assert_eq!(ns["pid"], p.pid());
    assert_eq!(ns["id"].is_u64(), kernel_has_ns_ids());
    assert_eq!(
        ns["holders"],
        serde_json::json!([{"kind": "process", "pid": p.pid(), "link": "net"}])
    );
    assert!(ns["command"].as_str().unwrap().starts_with("sleep 60"));
    assert_eq!(v["scan"]["initial"]["net"], "kthreadd");
}
