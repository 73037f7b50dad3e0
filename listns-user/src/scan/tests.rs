//! The scan on fixture procfs trees: symlinks whose text is what the kernel
//! would show (`net:[123]`), plain files for stat, mountinfo and cgroup.

use std::{fs, os::unix::fs::symlink, path::Path};

use super::*;
use crate::inventory::NsKey;

/// Inodes for the host's namespaces in fixtures, by type.
fn host(ty: &str) -> String {
    let n = match ty {
        "mnt" => 1000,
        "net" => 1001,
        "pid" | "pid_for_children" => 1002,
        "user" => 1003,
        "uts" => 1004,
        "ipc" => 1005,
        "cgroup" => 1006,
        "time" | "time_for_children" => 1007,
        _ => unreachable!(),
    };
    let base = ty.split('_').next().unwrap();
    format!("{base}:[{n}]")
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A process in the host namespaces except for `over` (link -> text).
    fn proc(&self, pid: u32, comm: &str, flags: u64, threads: u32, over: &[(&str, &str)]) {
        let p = self.root().join(pid.to_string());
        fs::create_dir_all(p.join("ns")).unwrap();
        fs::create_dir_all(p.join("fd")).unwrap();
        // Like procfs, task/ has 2 + (one per thread directory) links.
        fs::create_dir_all(p.join("task")).unwrap();
        fs::write(
            p.join("stat"),
            format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 {threads} 0 100 0 0\n"),
        )
        .unwrap();
        self.links(&p.join("ns"), over);
    }

    fn links(&self, dir: &Path, over: &[(&str, &str)]) {
        for (name, _, _) in procs::LINKS {
            let text = over
                .iter()
                .find(|(l, _)| *l == name)
                .map_or_else(|| host(name), |(_, t)| t.to_string());
            symlink(text, dir.join(name)).unwrap();
        }
    }

    fn thread(&self, pid: u32, tid: u32, over: &[(&str, &str)]) {
        let t = self.root().join(format!("{pid}/task/{tid}/ns"));
        fs::create_dir_all(&t).unwrap();
        self.links(&t, over);
    }

    fn fd(&self, pid: u32, fd: i32, target: &str) {
        symlink(target, self.root().join(format!("{pid}/fd/{fd}"))).unwrap();
    }

    fn file(&self, pid: u32, name: &str, content: &[u8]) {
        fs::write(self.root().join(format!("{pid}/{name}")), content).unwrap();
    }

    fn scanner(&self) -> Scanner {
        Scanner {
            netns_dirs: vec![self.root().join("no-netns")],
            workers: 2,
            ..Scanner::new(self.root())
        }
    }

    fn scan(&self) -> (Inventory, ScanStats) {
        self.scanner().scan().unwrap()
    }
}

fn key(inv: &Inventory, ty: NsType, inum: u64) -> NsKey {
    inv.by_inode(ty, inum)
        .unwrap_or_else(|| panic!("{ty}:[{inum}] not found"))
}

fn holders(inv: &Inventory, ty: NsType, inum: u64) -> Vec<Holder> {
    inv.get(&key(inv, ty, inum))
        .unwrap()
        .holders
        .iter()
        .cloned()
        .collect()
}

/// kthreadd, a shell, and processes in their own namespaces.
fn basic() -> Fixture {
    let f = Fixture::new();
    f.proc(2, "kthreadd", 0x0020_8040, 1, &[]);
    f.proc(100, "bash", 0x0040_0100, 1, &[]);
    f.proc(
        200,
        "sleep",
        0x0040_0100,
        1,
        &[("net", "net:[2001]"), ("uts", "uts:[2002]")],
    );
    f.proc(201, "sleep", 0x0040_0100, 1, &[("net", "net:[2001]")]);
    f
}

#[test]
fn processes_and_their_namespaces() {
    let f = basic();
    let (inv, stats) = f.scan();
    assert!(!stats.live);
    assert_eq!(stats.processes, 4);
    assert_eq!(inv.len(), 8 + 2);
    let net = holders(&inv, NsType::Net, 2001);
    assert_eq!(
        net,
        vec![
            Holder::Process {
                pid: 200,
                link: "net"
            },
            Holder::Process {
                pid: 201,
                link: "net"
            }
        ]
    );
    // pid_for_children equal to pid adds nothing.
    assert_eq!(holders(&inv, NsType::Pid, 1002).len(), 4);
    assert_eq!(inv.processes[&200].comm, "sleep");
    assert!(inv.processes[&2].kthread);
    assert_eq!(
        stats.namespaces_unopened,
        inv.len(),
        "fixture links do not open"
    );
    assert_eq!(key(&inv, NsType::Net, 2001).id, None);
}

#[test]
fn initial_namespaces_from_kthreadd_when_pid1_is_unreadable() {
    let f = basic();
    // PID 1 exists but its ns directory is unreadable: model it as missing.
    fs::create_dir_all(f.root().join("1")).unwrap();
    f.file(
        1,
        "stat",
        b"1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0\n",
    );
    let (inv, stats) = f.scan();
    assert_eq!(inv.initial.get(&NsType::Net), Some(&1001));
    assert_eq!(inv.initial.len(), 8);
    assert!(
        stats
            .initial
            .values()
            .all(|s| *s == InitialSource::Kthreadd)
    );
    assert_eq!(
        stats.processes_gone + stats.processes_denied + stats.processes_failed,
        1
    );
    assert!(inv.is_initial(&key(&inv, NsType::Uts, 1004)));
    assert!(!inv.is_initial(&key(&inv, NsType::Uts, 2002)));
}

#[test]
fn for_children_links_and_threads() {
    let f = basic();
    // `unshare -T`: the time namespace shows only in time_for_children.
    f.proc(
        300,
        "unshare",
        0x0040_0100,
        2,
        &[
            ("time_for_children", "time:[3001]"),
            ("pid_for_children", "pid:[3002]"),
        ],
    );
    // A thread that unshared its own netns.
    f.thread(300, 300, &[]);
    f.thread(300, 301, &[("net", "net:[3003]")]);
    let (inv, stats) = f.scan();
    assert_eq!(
        holders(&inv, NsType::Time, 3001),
        vec![Holder::Process {
            pid: 300,
            link: "time_for_children"
        }]
    );
    assert_eq!(
        holders(&inv, NsType::Pid, 3002),
        vec![Holder::Process {
            pid: 300,
            link: "pid_for_children"
        }]
    );
    assert_eq!(
        holders(&inv, NsType::Net, 3003),
        vec![Holder::Thread {
            pid: 300,
            tid: 301,
            link: "net"
        }]
    );
    assert_eq!(stats.threads, 1);
    // The thread's other links equal the leader's: no extra holders.
    assert_eq!(holders(&inv, NsType::Uts, 1004).len(), 4);
}

#[test]
fn fds_hold_namespaces_and_sockets_are_not_probed_offline() {
    let f = basic();
    f.fd(100, 0, "/dev/pts/0");
    f.fd(100, 3, "user:[4001]");
    f.fd(100, 4, "socket:[77]");
    f.fd(100, 5, "anon_inode:[eventfd]");
    f.fd(100, 6, "/tmp/net:[1]");
    let (inv, stats) = f.scan();
    assert_eq!(
        holders(&inv, NsType::User, 4001),
        vec![Holder::Fd { pid: 100, fd: 3 }]
    );
    assert_eq!(stats.fds, 5);
    assert_eq!(
        stats.sockets, 0,
        "pids of a fixture tree are not ours to pidfd_open"
    );
    assert!(inv.by_inode(NsType::Net, 1).is_none());
}

#[test]
fn bind_mounts_in_every_mount_namespace_and_netns_names() {
    let f = basic();
    f.proc(400, "private", 0x0040_0100, 1, &[("mnt", "mnt:[5000]")]);
    symlink("100", f.root().join("self")).unwrap();
    f.file(
        100,
        "mountinfo",
        b"21 26 0:20 / /proc rw - proc proc rw\n\
          412 30 0:4 net:[4026532288] /run/netns/demo rw shared:230 - nsfs nsfs rw\n\
          413 30 0:4 net:[4026532289] /tmp/odd\\040dir/x\\134y rw - nsfs nsfs rw\n\
          garbage line\n",
    );
    f.file(
        400,
        "mountinfo",
        b"500 30 0:4 user:[4026532290] /private/u rw - nsfs nsfs rw\n",
    );
    // Processes of the host mount namespace other than `self` need not be read.
    let (inv, stats) = f.scan();
    assert_eq!(stats.mount_namespaces_read, 2);
    assert_eq!(stats.mountinfo_bad_lines, 1);
    let demo = inv.get(&key(&inv, NsType::Net, 4026532288)).unwrap();
    assert_eq!(demo.netns_names.iter().collect::<Vec<_>>(), vec!["demo"]);
    assert_eq!(
        holders(&inv, NsType::Net, 4026532289),
        vec![Holder::BindMount {
            path: "/tmp/odd dir/x\\y".into(),
            mnt_ns: 1000
        }]
    );
    assert_eq!(
        holders(&inv, NsType::User, 4026532290),
        vec![Holder::BindMount {
            path: "/private/u".into(),
            mnt_ns: 5000
        }]
    );
    assert!(
        inv.get(&key(&inv, NsType::Net, 4026532289))
            .unwrap()
            .netns_names
            .is_empty()
    );
}

#[test]
fn unreadable_mountinfo_is_counted() {
    let f = basic();
    f.proc(400, "private", 0x0040_0100, 1, &[("mnt", "mnt:[5000]")]);
    let (_, stats) = f.scan();
    // Neither mount namespace has a mountinfo file in the fixture.
    assert_eq!(stats.mountinfo_failed, 2);
    assert!(stats.summary().unwrap().contains("2 mountinfo files"));
}

#[test]
fn vanished_and_broken_processes_are_skipped_and_counted() {
    let f = basic();
    fs::create_dir_all(f.root().join("500")).unwrap(); // exited: no stat, no task
    // Low pids (kernel threads live there) have their stat read in the main pass.
    f.proc(501, "zombie", 0x0040_0100, 1, &[]);
    for (name, _, _) in procs::LINKS {
        fs::remove_file(f.root().join(format!("501/ns/{name}"))).unwrap();
    }
    f.proc(202, "weird", 0x0040_0100, 1, &[]);
    f.file(202, "stat", b"202 no parentheses at all");
    f.proc(
        503,
        "bad name",
        0x0040_0100,
        1,
        &[("uts", "uts:[not-a-number]")],
    );
    let (inv, stats) = f.scan();
    assert_eq!(stats.processes, 5);
    assert_eq!(stats.processes_gone, 2);
    assert_eq!(stats.processes_failed, 1);
    assert_eq!(stats.links_failed, 1);
    assert!(inv.processes.contains_key(&503));
    assert!(
        stats
            .summary()
            .unwrap()
            .starts_with("could not read 3 of 8 processes")
    );
}

#[test]
fn non_utf8_comm_is_kept_exactly() {
    let f = basic();
    let p = f.root().join("600");
    fs::create_dir_all(p.join("ns")).unwrap();
    let mut stat =
        b"600 (a\xffb\x1b[2J) S 1 600 600 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0".to_vec();
    stat.push(b'\n');
    fs::write(p.join("stat"), stat).unwrap();
    f.links(&p.join("ns"), &[("ipc", "ipc:[6000]")]);
    let (inv, _) = f.scan();
    // Exactly the kernel's bytes: output decides how to show them.
    assert_eq!(inv.processes[&600].comm.as_bytes(), b"a\xffb\x1b[2J");
}

#[test]
fn containers_from_cgroups() {
    let f = basic();
    let id = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
    f.file(
        200,
        "cgroup",
        format!("0::/system.slice/docker-{id}.scope\n").as_bytes(),
    );
    f.file(201, "cgroup", b"0::/user.slice\n");
    f.file(100, "cgroup", b"0::/machine.slice/libpod-abc.scope\n");
    f.file(200, "cmdline", b"sleep\x00infinity\x00");
    let (inv, _) = f.scan();
    // Representatives only: pid 200 is the first holder of its namespaces.
    let c = inv.processes[&200].container.as_ref().unwrap();
    assert_eq!((c.runtime, c.id.as_str()), ("docker", id));
    assert_eq!(inv.processes[&200].cmdline.as_bytes(), b"sleep\0infinity");
    assert_eq!(
        inv.processes[&100].container, None,
        "only non-initial namespaces are attributed"
    );
    // Details::All reads every process.
    let (inv, _) = f.scanner().details(Details::All).scan().unwrap();
    assert_eq!(
        inv.processes[&100].container.as_ref().unwrap().runtime,
        "podman"
    );
}

#[test]
fn single_worker_gives_the_same_inventory() {
    let f = basic();
    for pid in 1000..1300 {
        f.proc(
            pid,
            "w",
            0x0040_0100,
            1,
            &[("net", &format!("net:[{}]", 9000 + pid % 7))],
        );
    }
    let (a, _) = Scanner {
        workers: 1,
        ..f.scanner()
    }
    .scan()
    .unwrap();
    let (b, _) = Scanner {
        workers: 2,
        ..f.scanner()
    }
    .scan()
    .unwrap();
    let dump = |inv: &Inventory| {
        inv.iter()
            .map(|(k, ns)| (*k, ns.holders.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(dump(&a), dump(&b));
    assert_eq!(a.len(), 8 + 2 + 7);
}

#[test]
fn details_are_the_same_on_any_number_of_workers() {
    // Enough processes that the details are read on several threads.
    let f = basic();
    for pid in 1000..1300 {
        f.proc(
            pid,
            "w",
            0x0040_0100,
            1,
            &[("uts", &format!("uts:[{}]", 9000 + pid))],
        );
        f.file(pid, "cmdline", format!("prog\0--n={pid}\0").as_bytes());
        let id = format!("{pid:0>64}");
        f.file(pid, "cgroup", format!("0::/docker/{id}\n").as_bytes());
    }
    for details in [Details::Representatives, Details::All] {
        let (a, _) = Scanner {
            workers: 1,
            ..f.scanner().details(details)
        }
        .scan()
        .unwrap();
        let (b, _) = Scanner {
            workers: 3,
            ..f.scanner().details(details)
        }
        .scan()
        .unwrap();
        assert_eq!(a.processes, b.processes, "{details:?}");
        let p = &b.processes[&1299];
        assert_eq!(p.comm, "w");
        assert_eq!(p.cmdline.as_bytes(), b"prog\0--n=1299");
        let c = p.container.as_ref().expect("a container");
        assert_eq!(
            (c.runtime, c.id.as_str()),
            ("docker", format!("{:0>64}", 1299).as_str())
        );
    }
}

#[test]
fn loadavg_gives_the_kernels_count_of_tasks() {
    assert_eq!(
        super::parse_loadavg_tasks(b"1.29 1.48 1.78 4/121 2429\n"),
        Some(121)
    );
    assert_eq!(super::parse_loadavg_tasks(b"1.29 1.48 1.78 4 2429\n"), None);
    assert_eq!(super::parse_loadavg_tasks(b""), None);
}
