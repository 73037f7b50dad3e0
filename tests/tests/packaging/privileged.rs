//! The packaging tests that run listns for real (root): with exactly the
//! systemd unit's credentials, and under strace against the unit's system
//! call filter.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::PermissionsExt,
    process::Command,
    time::Duration,
};

use listns_skip::require_root;
use listns_tests::{
    NetnsGuard, listns_bin,
    packaging::{
        WatchLines, json_inodes, output, repo_file, require_tools, unit_capabilities, unit_values,
        unshare_uts,
    },
};

/// Capability numbers (linux/capability.h) of the names the unit uses.
pub(crate) fn cap_number(name: &str) -> u32 {
    match name {
        "dac_read_search" => 2,
        "sys_chroot" => 18,
        "net_admin" => 12,
        "sys_ptrace" => 19,
        "sys_admin" => 21,
        "perfmon" => 38,
        "bpf" => 39,
        other => panic!("the test does not know capability {other}: add its number"),
    }
}

/// This build's listns copied where any user may run it.
pub(crate) fn world_executable_listns(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("listns");
    fs::copy(listns_bin(), &bin).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `setpriv` with the credentials the unit gives the service: an
/// unprivileged user (as DynamicUser=), no new privileges, and the unit's
/// capabilities as the bounding, inheritable and ambient sets.
pub(crate) fn as_the_unit(bin: &std::path::Path, caps: &[String]) -> Command {
    let set = format!(
        "-all,{}",
        caps.iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--no-new-privs",
    ])
    .arg(format!("--inh-caps={set}"))
    .arg(format!("--ambient-caps={set}"))
    .arg(format!("--bounding-set={set}"))
    .arg("--")
    .arg(bin);
    cmd
}

/// Keeps a network namespace alive through one socket only: a thread
/// enters a new netns, opens a socket there and exits. Returns the socket
/// (close it to let the netns die) and the netns inode.
fn netns_held_by_a_socket() -> (std::os::fd::OwnedFd, u64) {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        let ino = listns_tests::ns_inode("/proc/thread-self/ns/net");
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("a socket in the new netns");
        (sock, ino)
    })
    .join()
    .unwrap()
}

#[test]
fn the_units_capabilities_are_enough_for_scan_and_tracer() {
    if !require_root() {
        return;
    }
    let caps = unit_capabilities(&repo_file("packaging/systemd/listns.service"));
    let tmp = tempfile::tempdir().unwrap();
    let bin = world_executable_listns(tmp.path());

    // What the unit's user can only see with its capabilities: a named
    // netns (bind mount), a netns held by a root-owned socket (pidfd_getfd,
    // SIOCGSKNS), a UTS namespace of another user's process (/proc/PID/ns).
    let named = NetnsGuard::new("listns-pkg-caps");
    let named_ino = listns_tests::ns_inode("/run/netns/listns-pkg-caps");
    let (sock, sock_ino) = netns_held_by_a_socket();
    let mut other_user = Command::new("unshare")
        .args([
            "-u",
            "setpriv",
            "--reuid=4321",
            "--regid=4321",
            "--clear-groups",
            "sleep",
            "60",
        ])
        .spawn()
        .unwrap();
    let uts_ino = listns_tests::wait_for(Duration::from_secs(5), || {
        let ino = listns_tests::ns_inode(format!("/proc/{}/ns/uts", other_user.id()));
        (ino != 0 && ino != listns_tests::ns_inode("/proc/self/ns/uts")).then_some(ino)
    })
    .expect("the other user's process entered its UTS namespace");

    let root_scan = || json_inodes(&output(Command::new(&bin).arg("-J")).stdout);
    let before = root_scan();
    let capped = output(as_the_unit(&bin, &caps).arg("-J"));
    let after = root_scan();
    let seen = json_inodes(&capped.stdout);
    for (what, ino) in [
        ("named netns", named_ino),
        ("socket-held netns", sock_ino),
        ("other user's uts", uts_ino),
    ] {
        assert!(
            seen.contains(&ino),
            "with the unit's capabilities listns misses the {what} {ino}"
        );
    }
    // Each of these three is needed: without it that netns is missed
    // (/proc/PID/fd of a root process, pidfd_getfd, SIOCGSKNS).
    for needed in ["sys_ptrace", "dac_read_search", "net_admin"] {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != needed).cloned().collect();
        assert!(fewer.len() < caps.len(), "the unit lacks {needed}");
        let without = json_inodes(&output(as_the_unit(&bin, &fewer).arg("-J")).stdout);
        assert!(
            !without.contains(&sock_ino),
            "without {needed} listns still finds the socket-held netns: is it needed?"
        );
    }
    // Everything root saw both before and after, the unit's user sees too.
    let stable: BTreeSet<u64> = before.intersection(&after).copied().collect();
    let missed: Vec<&u64> = stable.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "with the unit's capabilities listns misses {missed:?}"
    );

    // The tracer loads, attaches every hook and reports a creation.
    let mut watch = WatchLines::spawn(as_the_unit(&bin, &caps).args(["watch", "--json"]));
    watch
        .wait(Duration::from_secs(60), |v| v["event"] == "existing")
        .expect("the initial inventory");
    let status =
        fs::read_to_string(format!("/proc/{}/status", watch.child.id())).unwrap_or_default();
    assert!(
        listns_tests::wait_for(Duration::from_secs(10), || {
            (listns_tests::kernel::listns_prog_ids().len() == listns_tests::watch::programs())
                .then_some(())
        })
        .is_some(),
        "not every program attached: {:?}",
        listns_tests::loaded_program_names()
    );
    let ino = unshare_uts();
    let ev = watch.wait(Duration::from_secs(10), |v| {
        v["event"] == "created" && v["type"] == "uts" && v["ns"] == ino
    });
    let (exit, stderr) = watch.stop();
    assert!(
        ev.is_some(),
        "no created event for uts {ino}; stderr:\n{stderr}"
    );
    assert!(
        exit.success(),
        "listns watch exited {exit}; stderr:\n{stderr}"
    );
    // Liveness by file handle works with these capabilities (its fallback
    // would also pass the checks above).
    if listns_tests::kernel_has_nsfs_handles() {
        assert!(
            stderr.contains("liveness by nsfs file handle"),
            "with the unit's capabilities listns does not use nsfs handles:\n{stderr}"
        );
    }
    // The harness really limited it: nothing outside the unit's set.
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .expect("CapBnd in /proc/PID/status");
    let allowed = caps.iter().fold(0u64, |m, c| m | 1 << cap_number(c));
    assert_eq!(
        bounding & !allowed,
        0,
        "listns ran with capabilities beyond the unit's: {bounding:#x}"
    );
    // Attached, it keeps only what the loop uses (README "Least privilege"),
    // as the unprivileged user the unit runs it as: no CAP_PERFMON.
    let permitted = status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .expect("CapPrm in /proc/PID/status");
    if caps.iter().any(|c| c == "perfmon") {
        assert_eq!(
            permitted & 1 << cap_number("perfmon"),
            0,
            "listns kept CAP_PERFMON after attaching: CapPrm {permitted:#x}"
        );
    }

    drop(sock);
    let _ = other_user.kill();
    let _ = other_user.wait();
    drop(named);
}

/// Every system call that the unit's SystemCallFilter= allows, its groups
/// expanded with systemd's own tables (`systemd-analyze syscall-filter`).
fn allowed_syscalls(filter: &[String]) -> BTreeSet<String> {
    let table = output(Command::new("systemd-analyze").arg("syscall-filter"));
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in String::from_utf8_lossy(&table.stdout).lines() {
        if line.starts_with('@') {
            current = Some(line.trim().to_string());
            groups.entry(line.trim().to_string()).or_default();
        } else if line.trim().is_empty() || !line.starts_with(' ') {
            current = None;
        } else if let Some(g) = &current {
            let entry = line.trim();
            if !entry.starts_with('#') {
                groups.get_mut(g).unwrap().push(entry.to_string());
            }
        }
    }
    fn expand(name: &str, groups: &BTreeMap<String, Vec<String>>, out: &mut BTreeSet<String>) {
        match groups.get(name) {
            Some(entries) => entries.iter().for_each(|e| expand(e, groups, out)),
            None if name.starts_with('@') => panic!("systemd knows no group {name}"),
            None => {
                out.insert(name.to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    for entry in filter {
        assert!(
            !entry.starts_with('~'),
            "the test reads allow lists only: {entry}"
        );
        expand(entry, &groups, &mut out);
    }
    out
}

/// The names of the system calls strace counted (`-c -U name`).
fn strace_names(summary: &str) -> BTreeSet<String> {
    summary
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('-') && *l != "syscall" && *l != "total")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_system_call_listns_makes_passes_the_units_filter() {
    if !require_root() || !require_tools(&["strace", "systemd-analyze"]) {
        return;
    }
    let unit = repo_file("packaging/systemd/listns.service");
    let allowed = allowed_syscalls(&unit_values(&unit, "SystemCallFilter"));
    assert!(
        allowed.contains("bpf") && allowed.contains("read"),
        "{allowed:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let traced = |name: &str, args: &[&str]| -> (Command, std::path::PathBuf) {
        let out = tmp.path().join(name);
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-c", "-U", "name", "-o"])
            .arg(&out)
            .arg("--")
            .arg(listns_bin())
            .args(args);
        (cmd, out)
    };
    // A scan, and a tracer that sees a namespace made and gone (the liveness
    // check by handle), serves a scrape, lives through a sweep (every 2 s),
    // and gets SIGTERM.
    let (mut scan, scan_out) = traced("scan", &["-J"]);
    output(&mut scan);
    let port = listns_tests::packaging::free_port().to_string();
    let socket = tmp.path().join("api.sock");
    let (mut cmd, watch_out) = traced(
        "watch",
        &[
            "watch",
            "--json",
            "--duration",
            "120",
            "--metrics",
            &port,
            "--api-socket",
            socket.to_str().unwrap(),
        ],
    );
    let mut watch = WatchLines::spawn(&mut cmd);
    watch
        .wait(Duration::from_secs(60), |v| v["event"] == "existing")
        .expect("the initial inventory");
    let ino = unshare_uts();
    for event in ["created", "gone"] {
        assert!(
            watch
                .wait(Duration::from_secs(10), |v| v["event"] == event
                    && v["ns"] == ino)
                .is_some(),
            "no {event} event under strace"
        );
    }
    // The metrics listener answers a scrape (its system calls count too).
    let port: u16 = port.parse().unwrap();
    let scraped = listns_tests::wait_for(Duration::from_secs(10), || {
        listns_tests::packaging::http_get(port, "/metrics")
    });
    assert!(
        scraped.is_some_and(|(code, _)| code == 200),
        "no /metrics under strace"
    );
    // The API socket answers (its system calls count too), and names the
    // namespace made above among the gone.
    for path in ["/v1/namespaces", "/v1/gone"] {
        let answer = listns_tests::api::get(&listns_tests::api::At::Unix(&socket), path, &[])
            .unwrap_or_else(|e| panic!("{path} under strace: {e}"));
        assert_eq!(answer.status, 200, "{path} under strace: {}", answer.body);
        if path == "/v1/gone" {
            let gone = answer.json();
            assert!(
                gone["gone"]
                    .as_array()
                    .is_some_and(|g| g.iter().any(|n| n["ns"] == ino)),
                "uts {ino} not in /v1/gone under strace: {gone}"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(2500));
    // SIGTERM to listns itself (strace's child), as systemctl stop sends it.
    let strace_pid = watch.child.id();
    let children = fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children"))
        .unwrap_or_default();
    let listns_pid: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("strace's child");
    // SAFETY: kill on the pid of our grandchild, which we wait for below.
    unsafe { libc::kill(listns_pid, libc::SIGTERM) };
    let status = watch.child.wait().unwrap();
    assert!(
        status.success(),
        "listns watch under strace exited {status}"
    );

    let mut used = strace_names(&fs::read_to_string(scan_out).unwrap());
    let watch_calls = strace_names(&fs::read_to_string(watch_out).unwrap());
    assert!(
        watch_calls.contains("bpf") && watch_calls.contains("perf_event_open"),
        "{watch_calls:?}"
    );
    used.extend(watch_calls);
    // execve is made by systemd's child after the filter is in place, so it
    // must be allowed too; strace counts it as listns's.
    let denied: Vec<&String> = used.difference(&allowed).collect();
    eprintln!(
        "{} distinct system calls, all checked against SystemCallFilter=",
        used.len()
    );
    assert!(denied.is_empty(), "SystemCallFilter= would deny {denied:?}");
}
