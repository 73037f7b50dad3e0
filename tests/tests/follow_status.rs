//! The exit statuses of `listns watch` following a command, with the real
//! binary: the command's own, 128 + a signal that killed it, and listns's
//! own failures as 125 (listns failed), 126 (found, not runnable) and 127
//! (not found), as env(1) and timeout(1) report them; and a list option
//! given before `watch` is refused. Root is needed for the ones that start
//! the tracer; without it each says why and passes, except under CI.

use std::{
    io::Read,
    os::unix::{fs::PermissionsExt, process::ExitStatusExt},
    process::{Command, Stdio},
    time::Duration,
};

use listns_skip::require_root;
use listns_tests::listns_bin;

/// `listns ARGS` to completion (60 s at most): its exit code and stderr.
fn listns(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(listns_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("listns starts");
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = listns_tests::wait_within(
        &mut child,
        Duration::from_secs(60),
        &format!("listns {args:?}"),
    );
    let stderr = err.join().unwrap();
    let code = status.code().unwrap_or_else(|| {
        panic!(
            "listns {args:?} died of signal {:?}: {stderr}",
            status.signal()
        )
    });
    (code, stderr)
}

#[test]
fn the_command_s_status_or_128_plus_its_signal() {
    if !require_root() {
        return;
    }
    let (code, err) = listns(&["watch", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    let (code, err) = listns(&["watch", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(code, 128 + libc::SIGTERM, "{err}");
}

#[test]
fn a_command_not_found_is_127_and_one_not_runnable_126() {
    if !require_root() {
        return;
    }
    let (code, err) = listns(&["watch", "--", "/nonexistent/listns-no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("cannot run /nonexistent/listns-no-such-command"),
        "{err}"
    );
    let (code, err) = listns(&["watch", "--", "listns-no-such-command-on-any-path"]);
    assert_eq!(code, 127, "{err}");

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = listns(&["watch", "--", script.to_str().unwrap()]);
    assert_eq!(code, 126, "{err}");
    let (code, err) = listns(&["watch", "--", dir.path().to_str().unwrap()]);
    assert_eq!(code, 126, "{err}");
}

#[test]
fn listns_s_own_failure_when_following_is_125() {
    // A bad command line: refused before anything runs (no root needed).
    let (code, err) = listns(&["watch", "--no-such-option", "--", "true"]);
    assert_eq!(code, 125, "{err}");
    let (code, err) = listns(&["watch", "--duration", "soon", "--", "true"]);
    assert_eq!(code, 125, "{err}");
    // Not following: 1, as lsns.
    let (code, err) = listns(&["watch", "--no-such-option"]);
    assert_eq!(code, 1, "{err}");
    if !require_root() {
        return;
    }
    // The tracer cannot start (no BTF there): the command never runs.
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let touch = format!("touch {}", ran.display());
    let (code, err) = listns(&[
        "watch",
        "--btf",
        "/nonexistent/vmlinux",
        "--",
        "sh",
        "-c",
        &touch,
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(!ran.exists(), "the command ran although listns failed");
    // No such process to follow.
    let (code, err) = listns(&["watch", "--follow-pid", &(i32::MAX as u32).to_string()]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("no process"), "{err}");
}

#[test]
fn list_options_before_watch_are_refused_with_where_they_belong() {
    let (code, err) = listns(&["-J", "watch", "--duration", "1s"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("-J/--json goes after `watch`: listns watch -J"),
        "{err}"
    );
    let (code, err) = listns(&["-t", "net", "watch", "--", "true"]);
    assert_eq!(code, 125, "following: listns's own failure\n{err}");
    assert!(err.contains("listns watch -t net"), "{err}");
    // The old spelling still works, with a note.
    let (code, err) = listns(&["watch", "-p", &(i32::MAX as u32).to_string()]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("-p/--pid is deprecated"), "{err}");
}
