//! listns outside the host's PID namespace (issue 22): a container
//! without `--pid=host` / `hostPID`. It says so once, with what it loses
//! (/proc shows only the container's processes; since Linux 7.0 the
//! kernel also withholds listns(2), nsfs file handles and NS_MNT_GET_NEXT
//! there), and still lists what it can: its own namespaces. Runs in the
//! kernel matrix's guests too, the newest kernel (which has that
//! restriction) among them.

use std::process::Command;

use listns_skip::require_root;
use listns_tests::listns_bin;
use serde_json::Value;

/// The inode in a `TYPE:[INODE]` link text.
fn link_inode(text: &str) -> u64 {
    text.trim()
        .rsplit_once('[')
        .and_then(|(_, r)| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a namespace link: {text:?}"))
}

#[test]
fn in_a_child_pid_namespace_it_says_so_once_and_lists_its_own() {
    if !require_root() {
        return;
    }
    // A new PID namespace with its own /proc; the shell reads its own
    // namespace links (the oracle: readlink, not listns) and execs listns,
    // which keeps them.
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        // One file per readlink: the guests' busybox readlink takes one.
        .arg(concat!(
            "readlink /proc/self/ns/pid && readlink /proc/self/ns/mnt && ",
            r#"readlink /proc/self/ns/net && exec "$0" -J"#
        ))
        .arg(listns_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{err}", out.status);
    let mut lines = stdout.splitn(4, '\n');
    let own: Vec<(&str, u64)> = ["pid", "mnt", "net"]
        .into_iter()
        .map(|ty| (ty, link_inode(lines.next().unwrap())))
        .collect();
    let v: Value = serde_json::from_str(lines.next().unwrap_or("")).unwrap_or_else(|e| {
        panic!("listns -J printed no JSON ({e}):\n{stdout}\n{err}");
    });
    // Said once, with what it loses.
    assert_eq!(
        err.matches("not in the host's PID namespace").count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("listns(2), nsfs file handles and NS_MNT_GET_NEXT"),
        "the note does not say what the kernel withholds:\n{err}"
    );
    assert_eq!(v["scan"]["host_view"], false);
    // Still lists what it can: its own namespaces, the new PID namespace
    // among them.
    let listed: Vec<(String, u64)> = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["ns"].as_u64().unwrap(),
            )
        })
        .collect();
    for (ty, ino) in own {
        assert!(
            listed.iter().any(|(t, i)| t == ty && *i == ino),
            "its own {ty} namespace {ino} is not listed: {listed:?}"
        );
    }
}
