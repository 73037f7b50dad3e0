//! The committed JSON Schema against real output: `listns -J` with every
//! column, and `listns watch --json` lines of every kind a short scenario
//! makes (existing, created, joined, left, gone, discovered). The watch
//! tests validate every line they read too (hidden among them), and the
//! overload tests the lost and rescan lines.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use listns_skip::require_root;
use listns_tests::{NetnsGuard, assert_valid_json, listns_bin, run};
use serde_json::Value;

#[test]
fn list_output_matches_the_schema() {
    if !require_root() {
        return;
    }
    let _ns = NetnsGuard::new("listns-test-schema");
    for args in [
        &["-J"][..],
        &["-J", "--output-all"],
        &["-J", "-t", "net", "-o", "ns,name,nsfs"],
    ] {
        let out = Command::new(listns_bin()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!v["namespaces"].as_array().unwrap().is_empty());
        assert_valid_json(&v);
    }
}

/// `-H -J`, the column list, is in the schema too: every column of `-H`.
#[test]
fn column_list_matches_the_schema() {
    let out = Command::new(listns_bin())
        .args(["-H", "-J"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid_json(&v);
    let names: Vec<&str> = v["lsns-columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["holder"].as_str().unwrap())
        .collect();
    // lsns 2.38's thirteen, in its order, then listns's five.
    let want = "NS TYPE PATH NPROCS PID PPID COMMAND UID USER NETNSID NSFS PNS ONS ID HOLDERS CONTAINER NAME CREATOR";
    assert_eq!(names.join(" "), want);
}

#[test]
fn a_wrong_object_fails_validation() {
    // The check can fail: an unknown key and a missing one are caught.
    let bad = serde_json::json!({"event": "created", "type": "net", "ns": 1, "bogus": true});
    let caught = std::panic::catch_unwind(|| assert_valid_json(&bad));
    assert!(caught.is_err());
}

/// Runs `listns watch --json EXTRA` while `scenario` runs; returns every
/// line, each validated, once `done` has seen what it waits for.
fn watch_lines(
    extra: &[&str],
    scenario: impl FnOnce(),
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut child = Command::new(listns_bin())
        .args(["watch", "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let mut read = |until: &dyn Fn(&[Value]) -> bool, secs| {
        let end = Instant::now() + listns_tests::scaled(Duration::from_secs(secs));
        while !until(&lines) && Instant::now() < end {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                let v: Value = serde_json::from_str(&l).expect("NDJSON");
                assert_valid_json(&v);
                lines.push(v);
            }
        }
    };
    read(
        &|l: &[Value]| l.iter().any(|v| v["event"] == "existing"),
        30,
    );
    std::thread::sleep(Duration::from_millis(300));
    scenario();
    read(&done, 30);
    let _ = child.kill();
    let _ = child.wait();
    lines
}

fn kinds(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|v| v["event"].as_str().map(String::from))
        .collect()
}

#[test]
fn watch_events_match_the_schema() {
    if !require_root() {
        return;
    }
    let name = "listns-test-schema-w";
    let _ns = NetnsGuard::new(name);
    let want = ["existing", "created", "joined", "left", "gone"];
    let lines = watch_lines(
        &[],
        || {
            run("unshare", &["-u", "true"]);
            run("ip", &["netns", "exec", name, "true"]);
        },
        |l| {
            let k = kinds(l);
            want.iter().all(|w| k.contains(*w))
        },
    );
    let k = kinds(&lines);
    assert!(want.iter().all(|w| k.contains(*w)), "saw only {k:?}");
}

#[test]
fn rescan_events_match_the_schema() {
    if !require_root() {
        return;
    }
    let name = "listns-test-schema-d";
    listns_tests::delete_netns(name);
    let lines = watch_lines(
        &["--btf", "/nonexistent/vmlinux"],
        || run("ip", &["netns", "add", name]),
        |l| l.iter().any(|v| v["event"] == "discovered"),
    );
    listns_tests::delete_netns(name);
    assert!(kinds(&lines).contains("discovered"), "{:?}", kinds(&lines));
}
