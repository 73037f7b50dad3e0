//! The one way a test in this workspace skips.
//!
//! A test that cannot run here (not root, a kernel without the feature it
//! checks, a tool the machine lacks) calls [`skip`], [`require`] or one of
//! the `require_*` below. That:
//! - takes the test's name from the thread libtest runs it on (named after
//!   the test's path, e.g. `lifecycle::tests::some_test`; also with
//!   `--test-threads=1` and under `cargo nextest`), never from a string
//!   the caller types, so the name is one `cargo test` finds;
//! - fails the test when `CI` is set (every test must run there), else
//! - prints `SKIP name: reason` on stderr and appends `name<TAB>reason` to
//!   the file named by `LISTNS_SKIP_LOG`, which `cargo xtask test` empties
//!   before the tests and summarises after them.
//!
//! The probes here ([`is_root`], [`kernel_has_nsfs_handles`],
//! [`kernel_version`]) use raw
//! system calls, never listns's code: whether a test runs must not be
//! decided by the code it tests. This crate is a dev-dependency of
//! listns-user (whose unit tests cannot use the listns-tests crate, which
//! depends on listns-user) and a dependency of listns-tests.

use std::{fmt::Display, io::Write, path::Path};

/// The environment variable naming the skip log.
pub const SKIP_LOG_ENV: &str = "LISTNS_SKIP_LOG";

/// Why a privileged test skips without root.
pub const ROOT_REASON: &str = "needs root (creates namespaces, loads eBPF)";

/// Skips the running test: panics when `CI` is set, else prints
/// `SKIP name: reason` and logs it. The test returns after it.
pub fn skip(reason: impl Display) {
    skip_as(&reason.to_string(), true);
}

/// True when `ok`; otherwise [`skip`]s the running test with `reason` and
/// returns false (the test then returns).
pub fn require(ok: bool, reason: impl Display) -> bool {
    ok || {
        skip(reason);
        false
    }
}

/// The variable a kernel-matrix guest's `/init` sets (xtask's vm
/// initramfs): the one CI machine that lacks things by design.
pub const GUEST_ENV: &str = "LISTNS_VM_GUEST";

/// As [`require`], but in a kernel-matrix guest (which boots a bare
/// initramfs: no podman, no package manager, no kernel modules) the skip is
/// allowed under CI too, since the host run covers the test. On the host,
/// CI still fails it. The reason must say what is missing.
pub fn require_on_host(ok: bool, reason: impl Display) -> bool {
    ok || {
        let in_guest = std::env::var_os(GUEST_ENV).is_some();
        skip_as(&reason.to_string(), !in_guest);
        false
    }
}

/// [`require`] that the test runs as root.
pub fn require_root() -> bool {
    require(is_root(), ROOT_REASON)
}

/// [`require`] a kernel feature that arrived in Linux `since` (major,
/// minor), found by the caller's own probe (`has`). On an older kernel the
/// skip is allowed under CI too (the kernel matrix boots old kernels on
/// purpose); on a kernel that should have the feature it is not.
pub fn require_kernel(has: bool, feature: &str, since: (u32, u32)) -> bool {
    if has {
        return true;
    }
    let (major, minor) = kernel_version();
    if (major, minor) < since {
        skip_as(
            &format!(
                "no {feature} on this kernel ({major}.{minor}; it arrived in {}.{})",
                since.0, since.1
            ),
            false,
        );
    } else {
        skip(format_args!(
            "no {feature} here, although this kernel ({major}.{minor}) is new enough (since {}.{}): \
             not root, or not in the initial namespaces?",
            since.0, since.1
        ));
    }
    false
}

/// The skip itself; `fail_in_ci`: panic instead when `CI` is set.
fn skip_as(reason: &str, fail_in_ci: bool) {
    let test = test_name();
    // One line per skip in the log, whatever the reason's text holds.
    let reason = reason.replace(['\t', '\n', '\r'], " ");
    if fail_in_ci && std::env::var_os("CI").is_some() {
        panic!("{test}: {reason}; CI is set, and under CI every test must run");
    }
    eprintln!("SKIP {test}: {reason}");
    log(&test, &reason);
}

/// The running test's name: libtest runs each test on a thread named
/// after the test's path. Panics off such a thread (the main thread, one
/// the test spawned), where no test name can be known.
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        other => panic!(
            "listns-skip: a skip must be decided on the test's own thread (this one is {other:?})"
        ),
    }
}

/// Appends `test<TAB>reason` to the skip log, if one is set. A log that
/// cannot be written is said so on stderr (the SKIP line is out already).
fn log(test: &str, reason: &str) {
    let Some(path) = std::env::var_os(SKIP_LOG_ENV) else {
        return;
    };
    let line = format!("{test}\t{reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "listns-skip: cannot log the skip to {}: {e}",
            Path::new(&path).display()
        );
    }
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

mod probe;
pub use probe::{kernel_has_nsfs_handles, kernel_version, ns_id};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_running_tests_path() {
        assert_eq!(test_name(), "tests::the_name_is_the_running_tests_path");
    }

    #[test]
    fn off_the_tests_thread_no_name_is_made_up() {
        let err = std::thread::spawn(test_name).join().unwrap_err();
        let text = err.downcast_ref::<String>().unwrap();
        assert!(text.contains("on the test's own thread"), "{text}");
        // A thread named after the test is taken at its word.
        let named = std::thread::Builder::new()
            .name("a::b".into())
            .spawn(test_name)
            .unwrap();
        assert_eq!(named.join().unwrap(), "a::b");
    }

    #[test]
    fn what_holds_needs_no_skip() {
        assert!(require(true, "unused"));
        assert!(require_on_host(true, "unused"));
        assert!(require_kernel(true, "anything", (99, 0)));
    }

    #[test]
    fn the_kernel_version_is_unames() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let (major, minor) = kernel_version();
        assert!(
            release.starts_with(&format!("{major}.{minor}."))
                || release.trim() == format!("{major}.{minor}"),
            "{release} against {major}.{minor}"
        );
        assert!(major >= 3);
    }

    /// Namespace ids (6.18+): one per namespace, the same through every
    /// path to it, different between namespaces; none on older kernels.
    #[test]
    fn namespace_ids_name_one_namespace() {
        let pid = std::process::id();
        let net = ns_id("/proc/self/ns/net");
        if kernel_version() < (6, 18) {
            assert_eq!(net, None);
            return;
        }
        let net = net.expect("NS_GET_ID on 6.18+");
        assert_ne!(net, 0);
        assert_eq!(ns_id(&format!("/proc/{pid}/ns/net")), Some(net));
        assert_ne!(ns_id("/proc/self/ns/uts"), Some(net));
        assert_eq!(ns_id("/proc/self/status"), None, "not a namespace");
    }
}
