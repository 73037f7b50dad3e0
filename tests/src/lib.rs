//! Helpers shared by the privileged integration tests.
//!
//! These tests create real namespaces and load real eBPF programs, so they
//! need root. Where they cannot run they say why; under CI (`CI` set) that
//! is a failure, never a silent skip.

use std::{
    path::Path,
    time::{Duration, Instant},
};

/// Returns false (after printing why) when the test cannot run here; panics
/// instead when running in CI, where every privileged test must run.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let why = format!("{test}: needs root (creates namespaces, loads eBPF)");
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI must run privileged tests as root");
    }
    eprintln!("SKIP {why}");
    false
}

/// Polls `cond` until it returns Some or the deadline passes.
pub fn wait_for<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Inode of an nsfs link such as /proc/self/ns/net.
pub fn ns_inode(path: impl AsRef<Path>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path.as_ref())
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// Runs a command and asserts it succeeded.
pub fn run(cmd: &str, args: &[&str]) {
    let status = std::process::Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd} {args:?} failed: {status}");
}
