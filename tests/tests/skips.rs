//! A privileged test run without root skips, says so, and logs it under
//! its own name for `cargo xtask test`'s closing line; under CI it fails
//! instead. Checked for real: this test binary runs itself as `nobody`
//! (setpriv).

use std::{os::unix::fs::PermissionsExt, process::Command};

use listns_skip::{SKIP_LOG_ENV, require_root};

/// A privileged test in miniature: it runs only as root.
#[test]
fn privileged_probe() {
    if !require_root() {
        return;
    }
    assert!(nix::unistd::geteuid().is_root());
}

mod nested {
    /// The same, one module down: logged under its whole path.
    #[test]
    fn privileged_probe_in_a_module() {
        if !listns_skip::require_root() {
            return;
        }
        assert!(nix::unistd::geteuid().is_root());
    }
}

/// Runs the tests whose names contain `filter` from this very executable
/// as uid/gid 65534 (nobody/nogroup; numeric, so no passwd file is
/// needed), with the skip log at `log` and CI set or not.
fn run_as_nobody(filter: &str, log: &std::path::Path, ci: bool) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args([filter, "--test-threads=1", "--nocapture"])
        .env(SKIP_LOG_ENV, log)
        .current_dir("/");
    if ci {
        cmd.env("CI", "true");
    } else {
        cmd.env_remove("CI");
    }
    cmd.output().expect("setpriv (util-linux) runs")
}

#[test]
fn without_root_a_privileged_test_skips_logs_why_and_fails_under_ci() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = dir.path().join("skipped.log");

    let out = run_as_nobody("privileged_probe", &log, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a skip passes outside CI: {}\n{stderr}",
        out.status
    );
    for name in ["privileged_probe", "nested::privileged_probe_in_a_module"] {
        assert!(
            stderr.contains(&format!("SKIP {name}: needs root")),
            "the skip of {name} is said on stderr: {stderr}"
        );
    }
    // Each under the name `cargo test` runs it by (libtest's, not one the
    // test typed), in the order they ran.
    let logged = std::fs::read_to_string(&log).expect("the skip log was written");
    assert_eq!(
        logged,
        "nested::privileged_probe_in_a_module\tneeds root (creates namespaces, loads eBPF)\n\
         privileged_probe\tneeds root (creates namespaces, loads eBPF)\n"
    );

    let out = run_as_nobody("privileged_probe", &log, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "under CI a privileged test that cannot run fails: {stderr}"
    );
    assert!(
        stderr.contains("privileged_probe: needs root")
            && stderr.contains("CI is set, and under CI every test must run"),
        "the failure says why: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        logged,
        "a failure is not logged as a skip"
    );
}

/// What a kernel-matrix guest lacks by design (a module, podman) in
/// miniature: missing only when the test below asks.
#[test]
fn guest_only_probe() {
    let missing = std::env::var_os("LISTNS_TEST_PROBE_MISSING").is_some();
    // What the test would do once it may run: nothing to check here.
    let _ = listns_skip::require_on_host(!missing, "no such thing here (a guest lacks it)");
}

/// `require_on_host` skips under CI in a guest only: on the host, CI
/// still fails the test.
#[test]
fn a_skip_for_what_guests_lack_still_fails_under_ci_on_the_host() {
    let run = |guest: bool| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "guest_only_probe",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("CI", "true")
        .env("LISTNS_TEST_PROBE_MISSING", "1")
        .env_remove(SKIP_LOG_ENV)
        .env_remove(listns_skip::GUEST_ENV);
        if guest {
            cmd.env(listns_skip::GUEST_ENV, "1");
        }
        cmd.output().unwrap()
    };
    let host = run(false);
    let stderr = String::from_utf8_lossy(&host.stderr) + String::from_utf8_lossy(&host.stdout);
    assert!(!host.status.success(), "CI on the host fails it: {stderr}");
    assert!(stderr.contains("under CI every test must run"), "{stderr}");
    let guest = run(true);
    let stderr = String::from_utf8_lossy(&guest.stderr);
    assert!(guest.status.success(), "a guest may skip it: {stderr}");
    assert!(
        stderr.contains("SKIP guest_only_probe: no such thing here"),
        "{stderr}"
    );
}
