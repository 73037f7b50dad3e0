//! Privileged scan tests for the places beyond processes, fds, sockets and
//! bind mounts of entered mount namespaces (docs/scan-coverage.md): bind
//! mounts inside a mount namespace no process is in, and tun/tap devices.
//! Root is needed; without it each test says why and passes, except under
//! CI (`CI` set), where it fails. Run with `--test-threads=1`.

use std::{
    fs,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::Path,
    process::Command,
};

use listns_skip::require_root;
use listns_tests::{NetnsGuard, listns_bin};
use serde_json::Value;

fn listns_json(args: &[&str]) -> Value {
    let out = Command::new(listns_bin())
        .arg("-J")
        .args(args)
        .output()
        .expect("listns runs");
    assert!(
        out.status.success(),
        "listns -J {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).expect("valid JSON");
    listns_tests::assert_valid_json(&v);
    v
}

fn find(list: &Value, ty: &str, inode: u64) -> Option<Value> {
    list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == ty && n["ns"] == inode)
        .cloned()
}

/// Unmounts (lazily, so a busy mount still goes) on drop.
struct Mounted(std::ffi::CString);

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: umount2(2) on a path we mounted.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A mount namespace held only by a bind mount, with a netns bound inside
/// it: no process is in that mount namespace, so only a scan that enters it
/// can see the netns.
#[test]
fn netns_bound_inside_a_mount_namespace_that_no_process_is_in() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("pin");
    fs::create_dir(&pin).unwrap();
    // A private mount, so that the inner bind mounts stay inside.
    let cpin = std::ffi::CString::new(pin.to_str().unwrap()).unwrap();
    // SAFETY: mount(2) on paths we own.
    unsafe {
        assert_eq!(
            libc::mount(
                cpin.as_ptr(),
                cpin.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null()
            ),
            0,
            "bind {}",
            std::io::Error::last_os_error()
        );
    }
    let _pin = Mounted(cpin.clone());
    unsafe {
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                cpin.as_ptr(),
                std::ptr::null(),
                libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "make-private {}",
            std::io::Error::last_os_error()
        );
    }
    let mnt_file = pin.join("mnt");
    fs::write(&mnt_file, b"").unwrap();
    let inner = pin.join("inner-net");
    fs::write(&inner, b"").unwrap();
    // The mount namespace is bound at pin/mnt; the netns at pin/inner-net,
    // inside that namespace only. Both creators exit.
    let out = Command::new("unshare")
        .arg(format!("--mount={}", mnt_file.display()))
        .args(["--propagation", "private", "unshare"])
        .arg(format!("--net={}", inner.display()))
        // The netns's inode by stat (following the link), in the kernel's
        // words rather than by listns's parsing of the link text.
        .args(["stat", "-L", "-c", "%i", "/proc/self/ns/net"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _mnt = Mounted(std::ffi::CString::new(mnt_file.to_str().unwrap()).unwrap());
    let net_inode: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("stat printed an inode number");
    let mnt_inode = fs::metadata(&mnt_file).unwrap().ino();
    // From here the inner file is a plain file, not the netns.
    assert_ne!(fs::metadata(&inner).unwrap().ino(), net_inode);

    let list = listns_json(&[]);
    let mnt = find(&list, "mnt", mnt_inode).expect("the bound mount namespace is listed");
    assert_eq!(mnt["nprocs"], 0);
    let net = find(&list, "net", net_inode).unwrap_or_else(|| {
        panic!("the netns bound inside mount namespace {mnt_inode} is not listed")
    });
    let holders = net["holders"].as_array().unwrap();
    assert!(
        holders.iter().any(|h| h["kind"] == "bind-mount"
            && h["mnt_ns"] == mnt_inode
            && h["path"] == inner.to_str().unwrap()),
        "{holders:?}"
    );
    // Opened through the child's root, so its id is known where ids exist.
    assert_eq!(
        net["id"].is_u64(),
        listns_tests::kernel_has_ns_ids(),
        "{net}"
    );
}

/// A tun/tap device keeps the network namespace it was created in alive
/// through its fd, even when that fd's owner lives elsewhere and the
/// namespace has no other holder left.
#[test]
fn netns_held_only_by_a_tap_device_fd() {
    if !require_root() {
        return;
    }
    // A kernel without the tun driver (the kernel matrix's guests load no
    // modules) has no tun device to hold anything: nothing to find there.
    let tun = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(|e| e.to_string());
    if !listns_skip::require_on_host(
        tun.is_ok(),
        format_args!(
            "no tun driver in this kernel ({}; a kernel-matrix guest loads no modules)",
            tun.clone().err().unwrap_or_default()
        ),
    ) {
        return;
    }
    let name = "listns-test-tun";
    let guard = NetnsGuard::new(name);
    let path = format!("/run/netns/{name}");
    let inode = fs::metadata(&path).unwrap().ino();
    let target = fs::File::open(&path).unwrap();
    let home = fs::File::open("/proc/self/ns/net").unwrap();
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (rd, wr) = (fds[0], fds[1]);
    // The child makes a tap device inside the netns, goes home, and holds
    // only the tun fd; it reports the fd number, then waits to be killed.
    // SAFETY: the child makes raw syscalls only, then pauses or _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe {
            libc::close(rd);
            let fail = |step: i32| {
                libc::write(wr, (&raw const step).cast(), 4);
                libc::_exit(1)
            };
            if libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                fail(-1);
            }
            let tun = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR);
            if tun < 0 {
                fail(-2);
            }
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"ltap0".iter().enumerate() {
                ifr.ifr_name[i] = *b as libc::c_char;
            }
            ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
            if libc::ioctl(tun, libc::TUNSETIFF, &ifr) != 0 {
                fail(-3);
            }
            if libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                fail(-4);
            }
            libc::close(target.as_raw_fd());
            libc::close(home.as_raw_fd());
            libc::write(wr, (&raw const tun).cast(), 4);
            loop {
                libc::pause();
            }
        }
    }
    unsafe { libc::close(wr) };
    let mut fd = 0i32;
    assert_eq!(unsafe { libc::read(rd, (&raw mut fd).cast(), 4) }, 4);
    unsafe { libc::close(rd) };
    let kill = KillOnDrop(pid);
    assert!(fd >= 0, "child failed at step {fd}");
    drop(target);
    drop(home);
    // Now only the tap device (through the child's fd) keeps it.
    drop(guard);
    assert!(!Path::new(&path).exists());

    let list = listns_json(&["-t", "net"]);
    let net = find(&list, "net", inode).expect("the netns held by the tap fd is listed");
    let holders = net["holders"].as_array().unwrap();
    assert_eq!(
        holders,
        &vec![serde_json::json!({"kind": "tun", "pid": pid, "fd": fd})],
        "{net}"
    );
    // lsns, which does not look at tun fds, does not list it.
    let lsns = Command::new("lsns")
        .args(["-J", "-t", "net"])
        .output()
        .unwrap();
    let lsns: Value = serde_json::from_slice(&lsns.stdout).unwrap();
    assert!(find(&lsns, "net", inode).is_none(), "lsns lists {inode}");
    drop(kill);
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}
