//! Privileged scan tests for what pins a namespace that the scan cannot
//! open (docs/scan-coverage.md, "Seen but not opened"): network namespaces
//! named only by a netns id, namespaces held in an io_uring's file table,
//! and pins of exited processes. Each builds the case for real and takes
//! its expected values from the kernel (stat, iproute2, /sys), never from
//! listns. Root is needed; without it each test says why and passes,
//! except under CI (`CI` set), where it fails. Run with `--test-threads=1`.

use std::{fs, os::unix::fs::MetadataExt, process::Command, time::Duration};

use listns_skip::require_root;
use listns_tests::{NetnsGuard, delete_netns, kernel, run, wait_for};
use serde_json::Value;

/// `listns -J` through both passes of the scan, which must agree
/// (`listns_tests::passes`): the kernel pass's document.
fn listns_json() -> Value {
    listns_tests::passes::agreeing(&[])
}

fn rows<'a>(list: &'a Value, ty: &str, inode: u64) -> Vec<&'a Value> {
    list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == ty && n["ns"] == inode)
        .collect()
}

/// `ip [-n NETNS] -j link show DEV`: (ifindex, link_netnsid) as iproute2
/// reads them from the kernel.
fn link_of(netns: Option<&str>, dev: &str) -> (u64, u64) {
    let mut cmd = Command::new("ip");
    if let Some(n) = netns {
        cmd.args(["-n", n]);
    }
    let out = cmd.args(["-j", "link", "show", dev]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let l = &v[0];
    (
        l["ifindex"].as_u64().expect("ifindex"),
        l["link_netnsid"].as_u64().expect("link_netnsid"),
    )
}

fn has_unfound(list: &Value, seen_from: u64, nsid: u64, ifindex: u64, name: &str) -> bool {
    list["scan"]["unfound_netns"]
        .as_array()
        .expect("scan.unfound_netns")
        .iter()
        .any(|u| {
            u["seen_from"] == seen_from
                && u["nsid"] == nsid
                && u["links"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["ifindex"] == ifindex && l["name"] == name)
        })
}

/// A netns whose only reference is an nsfs fd in flight, with a veth end in
/// it whose peer is in the host netns and another whose peer is in a netns
/// the scan finds (`ip netns add`): both tables name it by id, and no
/// namespace found has that id.
///
/// lsns (util-linux 2.38.1) on the same state (recorded 2026-12-06, built
/// by hand with devices lsv0/lsb0 in place of lscov0/lscovb0; the
/// hidden netns was net:[4026532174], its host nsid 1, the found netns
/// net:[4026532240] with nsid 0 for it) lists neither the hidden netns nor
/// the found one (no process is in it); `lsns -t net` printed only the host
/// netns and another test's netns that had a process:
///
/// ```text
///         NS TYPE NPROCS   PID USER    NETNSID NSFS                    COMMAND
/// 4026531833 net     111     2 root unassigned                         kthreadd
/// 4026532637 net       1 20051 root          0 /run/netns/netns-9f9... /bin/busybox sleep 600
/// ```
///
/// while `ip netns list-id` printed `nsid 1` (and that other test's
/// `nsid 0`) in the host and `nsid 0` in the found netns, and listns -J's
/// `scan.unfound_netns` had
/// `{"seen_from": 4026531833, "nsid": 1, "links": [{"ifindex": 30, "name": "lsv0"}]}`
/// and `{"seen_from": 4026532240, "nsid": 0, "links": [{"ifindex": 2, "name": "lsb0"}]}`.
#[test]
fn netns_named_only_by_a_netns_id() {
    if !require_root() {
        return;
    }
    let hidden = NetnsGuard::new("lscov-hidden");
    let _found = NetnsGuard::new("lscov-found");
    // The veth driver is a module: the kernel matrix's guests load none
    // (the host run covers the test there; on the host CI fails the skip).
    let added = std::process::Command::new("ip")
        .args([
            "link", "add", "lscov0", "type", "veth", "peer", "name", "lscov1",
        ])
        .args(["netns", hidden.0])
        .output()
        .expect("ip");
    if !listns_skip::require_on_host(
        added.status.success(),
        format_args!(
            "no veth pair can be made (ip: {}): the veth driver is a module this kernel has not loaded",
            String::from_utf8_lossy(&added.stderr).trim()
        ),
    ) {
        return;
    }
    run(
        "ip",
        &[
            "-n",
            "lscov-found",
            "link",
            "add",
            "lscovb0",
            "type",
            "veth",
            "peer",
            "name",
            "lscovb1",
            "netns",
            hidden.0,
        ],
    );
    let host_inode = fs::metadata("/proc/self/ns/net").unwrap().ino();
    let found_inode = fs::metadata("/run/netns/lscov-found").unwrap().ino();
    let hidden_inode = fs::metadata("/run/netns/lscov-hidden").unwrap().ino();
    let (host_ifindex, host_nsid) = link_of(None, "lscov0");
    let (found_ifindex, found_nsid) = link_of(Some("lscov-found"), "lscovb0");
    // From here only an fd in flight holds it.
    let held = kernel::in_flight("/run/netns/lscov-hidden");
    delete_netns(hidden.0);

    let list = listns_json();
    assert!(
        rows(&list, "net", hidden_inode).is_empty(),
        "the hidden netns has a row: the case is not hidden"
    );
    let unfound = &list["scan"]["unfound_netns"];
    assert!(
        has_unfound(&list, host_inode, host_nsid, host_ifindex, "lscov0"),
        "host table: nsid {host_nsid} (lscov0 {host_ifindex}) not in {unfound}"
    );
    assert!(
        has_unfound(&list, found_inode, found_nsid, found_ifindex, "lscovb0"),
        "table of net:[{found_inode}]: nsid {found_nsid} (lscovb0 {found_ifindex}) not in {unfound}"
    );

    // Once the fd in flight goes, the netns dies and its ids with it.
    drop(held);
    let gone = wait_for(Duration::from_secs(20), || {
        let list = listns_json();
        (!has_unfound(&list, host_inode, host_nsid, host_ifindex, "lscov0")).then_some(())
    });
    assert!(
        gone.is_some(),
        "nsid {host_nsid} still reported after the netns died"
    );
}

/// A forked child in new namespaces of `flags` that waits until the
/// returned pipe end is closed (or written), then exits.
fn child_in(flags: libc::c_int) -> (i32, std::os::fd::OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child makes raw syscalls only, then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            let mut b = [0u8; 1];
            libc::close(std::os::fd::AsRawFd::as_raw_fd(&w));
            if flags != 0 && libc::unshare(flags) != 0 {
                libc::_exit(1);
            }
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&ready_w),
                b.as_ptr().cast(),
                1,
            );
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&r),
                b.as_mut_ptr().cast(),
                1,
            );
            libc::_exit(0);
        }
    }
    drop((r, ready_w));
    let mut b = [0u8; 1];
    assert_eq!(
        nix::unistd::read(&ready_r, &mut b).unwrap(),
        1,
        "child failed to unshare"
    );
    (pid, w)
}

/// Lets a [`child_in`] child exit and reaps it.
fn end_child(pid: i32, w: std::os::fd::OwnedFd) {
    drop(w);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}

/// A uts namespace whose only reference is an nsfs file registered in an
/// io_uring (`IORING_REGISTER_FILES`), its own fd closed and its creator
/// gone: the ring's fdinfo names it, so it gets a row held by the ring.
///
/// lsns (util-linux 2.38.1) on the same state (recorded 2026-12-06, the
/// namespace uts:[4026532174]) lists only the host's uts namespace:
///
/// ```text
///         NS TYPE NPROCS PID USER COMMAND
/// 4026531838 uts     114   2 root kthreadd
/// ```
#[test]
fn namespace_held_only_by_an_io_uring_file_table() {
    if !require_root() {
        return;
    }
    let mut params = [0u8; 120]; // struct io_uring_params, zeroed
    // SAFETY: io_uring_setup(2) with a valid params buffer.
    let ring = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
    if !listns_skip::require(
        ring >= 0,
        format_args!("io_uring_setup: {}", std::io::Error::last_os_error()),
    ) {
        return;
    }
    // SAFETY: the ring fd is ours from here.
    let ring =
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ring as i32) };
    let (pid, w) = child_in(libc::CLONE_NEWUTS);
    let file = fs::File::open(format!("/proc/{pid}/ns/uts")).unwrap();
    let inode = file.metadata().unwrap().ino();
    let fds = [std::os::fd::AsRawFd::as_raw_fd(&file)];
    // SAFETY: IORING_REGISTER_FILES (2) with an array of one open fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            std::os::fd::AsRawFd::as_raw_fd(&ring),
            2,
            fds.as_ptr(),
            1,
        )
    };
    assert_eq!(
        r,
        0,
        "IORING_REGISTER_FILES: {}",
        std::io::Error::last_os_error()
    );
    drop(file);
    end_child(pid, w);
    // The oracle: the kernel's own fdinfo of the ring. Kernels before the
    // one that prints each registered file's path (older ones print the
    // dentry's short name, empty for nsfs files) cannot name it, so no scan
    // can: the guests' older kernels skip, the host must not.
    let fdinfo = fs::read_to_string(format!(
        "/proc/self/fdinfo/{}",
        std::os::fd::AsRawFd::as_raw_fd(&ring)
    ))
    .unwrap();
    if !listns_skip::require_on_host(
        fdinfo.contains(&format!("uts:[{inode}]")),
        format_args!(
            "this kernel's io_uring fdinfo does not name the registered nsfs file: {:?}",
            fdinfo
                .lines()
                .skip_while(|l| !l.starts_with("UserFiles"))
                .take(3)
                .collect::<Vec<_>>()
        ),
    ) {
        return;
    }

    let list = listns_json();
    let found = rows(&list, "uts", inode);
    assert_eq!(found.len(), 1, "uts:[{inode}] rows: {found:?}");
    let holders = found[0]["holders"].as_array().unwrap();
    let me = std::process::id();
    let ring_fd = std::os::fd::AsRawFd::as_raw_fd(&ring);
    assert_eq!(
        holders,
        &vec![serde_json::json!({"kind": "io-uring", "pid": me, "fd": ring_fd})],
        "holders of uts:[{inode}]"
    );
    drop(ring);
}

/// Unmounts lazily on drop.
struct Mounted(std::ffi::CString);

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: umount2(2) on a path we mounted.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

/// What pins a namespace that nothing can open: a pidfd, a `/proc/PID`
/// directory fd and a `/proc/PID/net/dev` fd of an exited process, and a
/// `proc` mount made by a pid namespace that has no task left. Each is
/// listed in `scan.pins` with the process and fd that hold it.
///
/// lsns (util-linux 2.38.1) shows none of them: `lsns` run before and after
/// making them (recorded 2026-12-06) differed only in NPROCS, one fewer
/// once the child had exited; the empty pid namespace has no row.
#[test]
fn pins_that_cannot_be_opened() {
    if !require_root() {
        return;
    }
    let (pid, w) = child_in(0);
    // SAFETY: pidfd_open(2) on our own child.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the pidfd is ours from here.
    let pidfd =
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd as i32) };
    let dir = fs::File::open(format!("/proc/{pid}")).unwrap();
    let net = fs::File::open(format!("/proc/{pid}/net/dev")).unwrap();
    end_child(pid, w);

    let mnt_dir = tempfile::tempdir().unwrap();
    let mnt_path = mnt_dir.path().to_str().unwrap().to_string();
    run(
        "unshare",
        &["--pid", "--fork", "mount", "-t", "proc", "proc", &mnt_path],
    );
    let _mounted = Mounted(std::ffi::CString::new(mnt_path.clone()).unwrap());
    let own_mnt = fs::metadata("/proc/self/ns/mnt").unwrap().ino();

    let list = listns_json();
    let pins = list["scan"]["pins"].as_array().expect("scan.pins");
    let me = std::process::id();
    let fd = |f: &dyn std::os::fd::AsRawFd| f.as_raw_fd();
    let has = |kind: &str, fd: Option<i32>, path: &str| {
        pins.iter().any(|p| {
            p["kind"] == kind
                && p["path"] == path
                && match fd {
                    Some(fd) => p["pid"] == me && p["fd"] == fd,
                    None => p["fd"].is_null() && p["mnt_ns"] == own_mnt,
                }
        })
    };
    let all = serde_json::to_string(pins).unwrap();
    assert!(
        has("dead-pidfd", Some(fd(&pidfd)), "anon_inode:[pidfd]"),
        "{all}"
    );
    assert!(
        has(
            "dead-proc-dir",
            Some(fd(&dir)),
            &format!("/proc/{pid} (deleted)")
        ),
        "{all}"
    );
    assert!(
        has("proc-net", Some(fd(&net)), &format!("/proc/{pid}/net/dev")),
        "{all}"
    );
    assert!(has("empty-pidns-proc", None, &mnt_path), "{all}");
}

/// A `proc` mount of an empty pid namespace inside a mount namespace that
/// no process is in (held by a bind mount): read through the child that
/// enters it, and listed with that mount namespace and no process.
#[test]
fn empty_pidns_proc_mount_in_a_mount_namespace_no_process_is_in() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("pin");
    fs::create_dir(&pin).unwrap();
    let pin_s = pin.to_str().unwrap().to_string();
    // A private mount, so that what is mounted inside stays inside.
    run("mount", &["--bind", &pin_s, &pin_s]);
    let _pin = Mounted(std::ffi::CString::new(pin_s.clone()).unwrap());
    run("mount", &["--make-private", &pin_s]);
    let mnt_file = pin.join("mnt");
    fs::write(&mnt_file, b"").unwrap();
    let proc_dir = pin.join("proc");
    fs::create_dir(&proc_dir).unwrap();
    let proc_s = proc_dir.to_str().unwrap().to_string();
    run(
        "unshare",
        &[
            &format!("--mount={}", mnt_file.display()),
            "--propagation",
            "private",
            "unshare",
            "--pid",
            "--fork",
            "mount",
            "-t",
            "proc",
            "proc",
            &proc_s,
        ],
    );
    let mnt_s = mnt_file.to_str().unwrap().to_string();
    let _mnt = Mounted(std::ffi::CString::new(mnt_s).unwrap());
    let mnt_inode = fs::metadata(&mnt_file).unwrap().ino();

    let list = listns_json();
    let pins = list["scan"]["pins"].as_array().expect("scan.pins");
    assert!(
        pins.iter().any(|p| p["kind"] == "empty-pidns-proc"
            && p["mnt_ns"] == mnt_inode
            && p["pid"] == 0
            && p["fd"].is_null()
            && p["path"] == proc_s.as_str()),
        "no empty-pidns-proc pin for {proc_s} in mnt:[{mnt_inode}]: {pins:?}"
    );
}
