//! Privileged scan tests for what pins a namespace that the scan cannot
//! open (docs/scan-coverage.md, "Seen but not opened"): network namespaces
//! named only by a netns id, namespaces held in an io_uring's file table,
//! and pins of exited processes. Each builds the case for real and takes
//! its expected values from the kernel (stat, iproute2, /sys), never from
//! listns. Root is needed; without it each test says why and passes,
//! except under CI (`CI` set), where it fails. Run with `--test-threads=1`.

use std::{fs, os::unix::fs::MetadataExt, process::Command, time::Duration};

use listns_skip::require_root;
use listns_tests::{NetnsGuard, delete_netns, kernel, listns_bin, run, wait_for};
use serde_json::Value;

fn listns_json() -> Value {
    let out = Command::new(listns_bin())
        .arg("-J")
        .output()
        .expect("listns runs");
    assert!(
        out.status.success(),
        "listns -J: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).expect("valid JSON");
    listns_tests::assert_valid_json(&v);
    v
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
/// lsns (util-linux 2.38.1) on the same state (recorded 2026-12-06; the
/// hidden netns was net:[4026532174], host nsid 1, found netns's nsid 0)
/// does not show the hidden netns at all, only the others:
///
/// ```text
///         NS TYPE NPROCS   PID USER    NETNSID NSFS      COMMAND
/// 4026531833 net     111     2 root unassigned           kthreadd
/// ```
///
/// while `ip netns list-id` prints `nsid 1` in the host and `nsid 0` in the
/// found netns, and listns -J's `scan.unfound_netns` has
/// `{"seen_from": 4026531833, "nsid": 1, "links": [{"ifindex": 30, "name": "lsv0"}]}`
/// and `{"seen_from": 4026532240, "nsid": 0, "links": [{"ifindex": 2, "name": "lsb0"}]}`.
#[test]
fn netns_named_only_by_a_netns_id() {
    if !require_root() {
        return;
    }
    let hidden = NetnsGuard::new("lscov-hidden");
    let _found = NetnsGuard::new("lscov-found");
    run(
        "ip",
        &[
            "link", "add", "lscov0", "type", "veth", "peer", "name", "lscov1", "netns", hidden.0,
        ],
    );
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
