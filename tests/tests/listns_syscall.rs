//! `listns(2)` (Linux 6.19+) against a real kernel: listns's reply parsing
//! and paging agree with raw calls, and a namespace created before `listns
//! watch` starts and held only where no scan looks (an nsfs fd in flight
//! in a unix socket) is listed as hidden at start-up. Where the syscall is
//! missing these print SKIP with the reason; on a kernel that is 6.19 or
//! newer a missing syscall is a failure, never a skip.

use std::{os::fd::OwnedFd, time::Duration};

use listns::{lifecycle::listns_syscall, ns::NsType};
use listns_skip::require_root;
use listns_tests::{
    kernel::{self, listns_all_raw},
    watch::{Watch, is},
};

/// Whether this kernel has listns(2), by a raw call: any answer but ENOSYS
/// means it does, and the test must run. Without it the test skips (on a
/// kernel older than 6.19; on a newer one ENOSYS is a failure).
fn require_listns() -> bool {
    let mut one = [0u64; 1];
    let missing = kernel::listns_raw(libc::CLONE_NEWNET as u32, 0, &mut one) == Err(libc::ENOSYS);
    let (major, minor) = kernel::kernel_version();
    assert!(
        !missing || (major, minor) < (6, 19),
        "kernel {major}.{minor} answers ENOSYS to listns(2), which it should have"
    );
    listns_skip::require_kernel(!missing, "listns(2)", (6, 19))
}

/// Forks a child that unshares a UTS namespace, sends an fd on it over
/// `sock` and exits: the namespace is then held by that fd in flight only.
/// Returns (inode, id) as the child read them.
fn uts_held_in_flight(sock: i32) -> (u64, u64) {
    in_flight(sock, libc::CLONE_NEWUTS, c"/proc/self/ns/uts")
}

fn in_flight(sock: i32, flag: i32, link: &std::ffi::CStr) -> (u64, u64) {
    let mut p = [0i32; 2];
    // SAFETY: pipe writes two fds into p.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: the child makes raw syscalls only and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            if libc::unshare(flag) != 0 {
                libc::_exit(1);
            }
            let fd = libc::open(link.as_ptr(), libc::O_RDONLY);
            let mut st: libc::stat = std::mem::zeroed();
            let mut id: u64 = 0;
            if fd < 0
                || libc::fstat(fd, &mut st) != 0
                || libc::ioctl(fd, kernel::NS_GET_ID, &mut id) != 0
            {
                libc::_exit(2);
            }
            let msg = [st.st_ino, id];
            if libc::write(p[1], msg.as_ptr().cast(), 16) != 16 || !kernel::send_fd(sock, fd) {
                libc::_exit(3);
            }
            libc::_exit(0);
        }
    }
    let mut msg = [0u64; 2];
    // SAFETY: reads 16 bytes into msg; reaps our own child.
    unsafe {
        libc::close(p[1]);
        let n = libc::read(p[0], msg.as_mut_ptr().cast(), 16);
        libc::close(p[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert!(
            n == 16 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child failed: {status}"
        );
    }
    (msg[0], msg[1])
}

fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut sv = [0i32; 2];
    // SAFETY: socketpair writes two new fds into sv, which we then own.
    unsafe {
        assert_eq!(
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr()
            ),
            0
        );
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1]))
    }
}

/// listns's parser against raw calls: every namespace of ours by type, and
/// paging that ends exactly on a full page (the kernel then answers ENOENT).
#[test]
fn listns_replies_parse_as_the_kernel_gives_them() {
    if !require_root() || !require_listns() {
        return;
    }
    let listed = listns_syscall::list_all().expect("listns's list_all");
    for ty in NsType::ALL {
        let path = format!("/proc/self/ns/{ty}");
        let id = kernel::ns_id_of_path(&path).expect("this kernel has ids");
        assert!(
            listed.contains(&(ty, id)),
            "our {ty} namespace (id {id}) is not among {} listed",
            listed.len()
        );
    }
    // Hold UTS namespaces (fds kept here) until their count is a multiple
    // of listns's page (256), at least two pages.
    let (a, b) = socketpair();
    use std::os::fd::AsRawFd;
    let mut held = Vec::new();
    let uts = libc::CLONE_NEWUTS as u32;
    loop {
        let n = listns_all_raw(uts).expect("raw listns").len();
        if n >= 512 && n.is_multiple_of(256) {
            break;
        }
        assert!(
            held.len() < 2000,
            "the UTS count never settled on a multiple of 256"
        );
        let (_, id) = uts_held_in_flight(a.as_raw_fd());
        held.push((kernel::recv_fd(b.as_raw_fd()).expect("the fd"), id));
    }
    let raw = listns_all_raw(uts).unwrap();
    let ours: Vec<u64> = listns_syscall::list_all()
        .expect("list_all when the last page is full")
        .into_iter()
        .filter(|(t, _)| *t == NsType::Uts)
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        ours, raw,
        "listns's paging against one raw call per 1000 ids"
    );
    for (_, id) in &held {
        assert!(ours.contains(id));
    }
    eprintln!(
        "NOTE listns(2): {} UTS namespaces listed in pages of 256",
        ours.len()
    );
}

/// A netns created before `listns watch` starts, whose only reference is an
/// nsfs fd in flight in a unix socket: no scan can see it, listns(2) can.
/// It is in the initial inventory as hidden, with its inode, and is not
/// reported gone while it lives; gone once the fd is received and closed.
#[test]
fn namespace_held_in_flight_before_start_is_listed_hidden() {
    if !require_root() || !require_listns() {
        return;
    }
    let (a, b) = socketpair();
    use std::os::fd::AsRawFd;
    let (inode, id) = in_flight(a.as_raw_fd(), libc::CLONE_NEWNET, c"/proc/self/ns/net");
    let raw = listns_all_raw(libc::CLONE_NEWNET as u32).unwrap();
    assert!(
        raw.contains(&id),
        "the kernel lists the in-flight netns {id} (active: an open nsfs file)"
    );
    let mut w = Watch::start(&[]);
    let existing = w
        .wait(Duration::from_secs(5), |v| {
            v["event"] == "existing" && v["type"] == "net" && v["id"] == id
        })
        .unwrap_or_else(|| panic!("netns id {id} is not in the initial inventory"));
    assert_eq!(existing["hidden"], true, "{existing}");
    assert_eq!(
        existing["ns"], inode,
        "its inode, found by opening it by id: {existing}"
    );
    assert!(
        w.stderr().iter().any(|l| l.contains("listns() knows")),
        "start-up says what listns(2) added: {:?}",
        w.stderr()
    );
    assert!(
        w.wait(Duration::from_secs(5), |v| is(v, "gone", "net")
            && v["id"] == id)
            .is_none(),
        "reported gone while the fd in flight holds it"
    );
    drop(kernel::recv_fd(b.as_raw_fd()).expect("the fd in flight"));
    w.wait(Duration::from_secs(15), |v| {
        is(v, "gone", "net") && v["id"] == id
    })
    .expect("gone once the fd was received and closed");
    assert!(w.stop(libc::SIGTERM).success());
}
