//! The scan through the kernel's BPF iterators (`--scan=iter`, issue 25)
//! against the /proc scan on one held state: every kind of holder the
//! scan finds (tests/src/held.rs), `pid_for_children` and
//! `time_for_children` that differ from the task's own, and 2,000
//! processes in namespaces of their own. Both must list the same
//! namespaces, each with the same holders. Where iterators are refused
//! (not root, or a kernel that forbids BPF tracing programs), `--scan=iter`
//! is an error that says so and `--scan=auto` says why once and reads /proc.
//!
//! These run on the host and in every guest of the kernel matrix (6.1,
//! 6.12, 7.2): all of them allow iterators to root.

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Output},
};

use listns_skip::require_root;
use listns_tests::{
    crowd::{self, Crowd},
    held::Held,
    listns_bin, passes,
};
use serde_json::Value;

/// Processes of the state: above `ITER_MIN_TASKS`, so that
/// `--scan=auto` tries the iterators.
const PROCESSES: usize = 2000;

/// Children that pause until killed (and die with us).
struct Pausing(Vec<i32>);

impl Drop for Pausing {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill and reap our own children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Forks a child that unshares `flags` and pauses (dying with its parent).
/// Waits until the child has unshared.
fn unshared(flags: i32) -> i32 {
    let mut p = [0i32; 2];
    // SAFETY: pipe into a valid array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: the child makes raw syscalls only.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::unshare(flags) != 0 {
                libc::_exit(1);
            }
            libc::write(p[1], b"x".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let mut b = [0u8; 1];
    // SAFETY: read one byte into a valid buffer, then close our ends.
    unsafe {
        libc::close(p[1]);
        assert_eq!(
            libc::read(p[0], b.as_mut_ptr().cast(), 1),
            1,
            "a child could not unshare {flags:#x}"
        );
        libc::close(p[0]);
    }
    pid
}

/// The state beyond `Held`: a crowd of processes in namespaces of their
/// own, with sockets (`listns_tests::crowd`), and two processes whose
/// children would get other pid and time namespaces (unshare without a
/// fork: only `*_for_children` differ).
fn processes() -> (Crowd, Pausing) {
    let pausing = Pausing(vec![
        unshared(libc::CLONE_NEWPID),
        unshared(libc::CLONE_NEWTIME),
    ]);
    (Crowd::hold(PROCESSES, |_, _| {}), pausing)
}

fn listns(bin: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("runs listns")
}

fn pass(out: &Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["scan"]["pass"].as_str().unwrap_or("").to_string()
}

#[test]
fn the_iterator_scan_and_the_proc_scan_give_the_same_inventory() {
    if !require_root() {
        return;
    }
    let held = Held::build("listns-iter-eq");
    let _pausing = processes();
    let iter = passes::agreeing(&[]);
    let i = passes::holders(&iter);
    for case in &held.cases {
        assert!(
            i.contains_key(&(case.ty.to_string(), case.ns)),
            "--scan=iter misses {} ({}:{})",
            case.what,
            case.ty,
            case.ns
        );
    }
    // The group that unshared CLONE_NEWPID without forking.
    assert!(
        i.iter().any(|(k, h)| passes::unborn_pid_ns(k, h)),
        "--scan=iter misses the pid namespace that has no process yet"
    );
    let groups = i.keys().filter(|(t, _)| t == "uts").count();
    assert!(groups > PROCESSES / crowd::GROUP, "{groups} uts namespaces");
}

#[test]
fn auto_uses_the_iterators_as_root_and_says_once_why_not_without_privileges() {
    if !require_root() {
        return;
    }
    let _pausing = processes();
    let auto = listns(&listns_bin(), &["-J"]);
    assert!(auto.status.success());
    assert_eq!(
        pass(&auto),
        "iter",
        "{}",
        String::from_utf8_lossy(&auto.stderr)
    );
    assert!(!String::from_utf8_lossy(&auto.stderr).contains("iterators"));

    // An unprivileged user may not load BPF programs.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("listns");
    std::fs::copy(listns_bin(), &bin).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .output()
            .expect("runs setpriv")
    };
    let iter = as_nobody(&["--scan=iter", "-J"]);
    let err = String::from_utf8_lossy(&iter.stderr);
    assert!(!iter.status.success(), "--scan=iter as nobody succeeded");
    assert!(
        err.contains("the iterator scan (--scan=iter) cannot run") && err.contains("--scan=proc"),
        "{err}"
    );
    let auto = as_nobody(&["-J"]);
    let err = String::from_utf8_lossy(&auto.stderr);
    assert!(auto.status.success(), "{err}");
    assert_eq!(pass(&auto), "proc");
    assert_eq!(
        err.matches("the kernel's iterators did not run").count(),
        1,
        "{err}"
    );
    let v: Value = serde_json::from_slice(&auto.stdout).expect("JSON");
    assert!(
        !passes::holders(&v).is_empty(),
        "the /proc scan listed nothing"
    );
}
