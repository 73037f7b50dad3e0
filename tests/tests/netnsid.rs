//! Privileged NETNSID tests: real network namespaces from `ip netns add`,
//! ids set with `ip netns set`, asked through rtnetlink as lsns does.
//! Root is needed; without it each test says why and passes, except under
//! CI (`CI` set), where it fails. Run with `--test-threads=1`.

use std::{
    fs::File,
    os::fd::AsFd,
    process::{Command, Stdio},
    time::Instant,
};

use listns::scan::netnsid::{NetnsIds, Peer};
use listns_skip::require_root;
use listns_tests::NetnsGuard;

/// `ip netns set NAME ID` with the first id from `candidates` that this
/// host's netns does not already use (other namespaces may hold 7). Returns
/// the id set.
fn set_free_id(name: &str, candidates: impl IntoIterator<Item = u32>) -> u32 {
    for id in candidates {
        let ok = Command::new("ip")
            .args(["netns", "set", name, &id.to_string()])
            .stderr(Stdio::null())
            .status()
            .expect("ip netns set")
            .success();
        if ok {
            return id;
        }
    }
    panic!("ip netns set {name}: no free id among the candidates");
}

fn open_netns(name: &str) -> File {
    File::open(format!("/run/netns/{name}")).unwrap_or_else(|e| panic!("/run/netns/{name}: {e}"))
}

#[test]
fn assigned_and_unassigned_ids_by_fd_and_pid() {
    if !require_root() {
        return;
    }
    let a = NetnsGuard::new("listns-nsid-a");
    let _b = NetnsGuard::new("listns-nsid-b");
    let id = set_free_id(a.0, [7].into_iter().chain(7000..7100));

    let fa = open_netns("listns-nsid-a");
    let fb = open_netns("listns-nsid-b");
    let mut ids = NetnsIds::open().expect("rtnetlink socket");
    assert_eq!(ids.get(Peer::Fd(fa.as_fd())).unwrap(), Some(id));
    assert_eq!(ids.get(Peer::Fd(fb.as_fd())).unwrap(), None);

    // By pid: a process inside netns a answers the same id.
    let mut child = Command::new("ip")
        .args(["netns", "exec", "listns-nsid-a", "sleep", "30"])
        .spawn()
        .expect("ip netns exec");
    let pid = child.id();
    let inside = listns_tests::wait_for(std::time::Duration::from_secs(5), || {
        let ino = listns_tests::ns_inode(format!("/proc/{pid}/ns/net"));
        (ino == listns_tests::ns_inode("/run/netns/listns-nsid-a")).then_some(())
    });
    let by_pid = ids.get(Peer::Pid(pid));
    // lsns, the reference, shows the same id for that process's netns.
    let lsns = Command::new("lsns")
        .args([
            "-t",
            "net",
            "-n",
            "-o",
            "NS,NETNSID",
            "-p",
            &pid.to_string(),
        ])
        .output()
        .expect("lsns");
    let _ = child.kill();
    let _ = child.wait();
    assert!(inside.is_some(), "pid {pid} never entered listns-nsid-a");
    assert_eq!(by_pid.unwrap(), Some(id));
    let lsns = String::from_utf8_lossy(&lsns.stdout);
    let ino = listns_tests::ns_inode("/run/netns/listns-nsid-a");
    let want: Vec<String> = vec![ino.to_string(), id.to_string()];
    assert!(
        lsns.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == want),
        "lsns shows {lsns:?}, expected {want:?}"
    );

    // After `ip netns set` on b, the same socket sees its new id.
    let id_b = set_free_id("listns-nsid-b", (id + 1..id + 100).filter(|&i| i != id));
    let got = ids
        .query(&[Peer::Fd(fb.as_fd()), Peer::Fd(fa.as_fd())])
        .unwrap();
    assert_eq!(got[0].as_ref().unwrap(), &Some(id_b));
    assert_eq!(got[1].as_ref().unwrap(), &Some(id));

    // Cost of a scan-sized batch: 500 peers on one socket.
    let peers: Vec<Peer> = (0..500)
        .map(|i| Peer::Fd(if i % 2 == 0 { fa.as_fd() } else { fb.as_fd() }))
        .collect();
    let t = Instant::now();
    let got = ids.query(&peers).unwrap();
    let took = t.elapsed();
    assert_eq!(got.len(), 500);
    for (i, r) in got.iter().enumerate() {
        let want = if i % 2 == 0 { id } else { id_b };
        assert_eq!(r.as_ref().unwrap(), &Some(want), "peer {i}");
    }
    eprintln!("NOTE netnsid: 500 peers in {took:?}");
}

#[test]
fn a_deleted_netns_held_by_fd_still_answers_and_bad_pids_fail_alone() {
    if !require_root() {
        return;
    }
    let g = NetnsGuard::new("listns-nsid-c");
    let id = set_free_id(g.0, 7100..7200);
    let f = open_netns("listns-nsid-c");
    // `ip netns delete` removes the bind mount; our fd keeps the namespace,
    // and its id stays assigned while the namespace lives.
    drop(g);
    assert!(!std::path::Path::new("/run/netns/listns-nsid-c").exists());
    let mut ids = NetnsIds::open().unwrap();
    // A pid that cannot exist fails on its own; the other answers stand.
    let got = ids
        .query(&[Peer::Pid(u32::MAX >> 1), Peer::Fd(f.as_fd())])
        .unwrap();
    assert_eq!(
        got[0].as_ref().unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );
    assert_eq!(got[1].as_ref().unwrap(), &Some(id));
}

/// What a user sees: `ip netns add x; ip netns set x 7`, then `listns -J -t
/// net` carries netnsid 7 and the name, and null for a netns without id.
#[test]
fn listns_json_shows_the_netnsid_and_the_name() {
    if !require_root() {
        return;
    }
    let x = NetnsGuard::new("listns-nsid-x");
    let _y = NetnsGuard::new("listns-nsid-y");
    let id = set_free_id(x.0, [7].into_iter().chain(7200..7300));
    let out = Command::new(listns_tests::listns_bin())
        .args(["-J", "-t", "net"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    listns_tests::assert_valid_json(&list);
    let by_inode = |name: &str| {
        let ino = listns_tests::ns_inode(format!("/run/netns/{name}"));
        list["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["ns"] == ino)
            .cloned()
            .unwrap_or_else(|| panic!("netns {name} ({ino}) not listed"))
    };
    let x = by_inode("listns-nsid-x");
    assert_eq!(x["netnsid"], id, "{x}");
    assert_eq!(x["name"], "listns-nsid-x", "{x}");
    // Each mount namespace that sees the bind mount lists its path.
    assert!(
        x["nsfs"]
            .as_str()
            .unwrap()
            .split(',')
            .any(|p| p == "/run/netns/listns-nsid-x"),
        "{x}"
    );
    let y = by_inode("listns-nsid-y");
    assert_eq!(y["netnsid"], serde_json::Value::Null, "unassigned: {y}");
    assert_eq!(y["name"], "listns-nsid-y");
    // The table's NETNSID column agrees with lsns's.
    let table = Command::new(listns_tests::listns_bin())
        .args(["-t", "net", "-n", "-o", "NS,NETNSID"])
        .output()
        .unwrap();
    let ino = listns_tests::ns_inode("/run/netns/listns-nsid-x");
    let want = vec![ino.to_string(), id.to_string()];
    assert!(
        String::from_utf8_lossy(&table.stdout)
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == want),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );
}
