//! The inventory document: a hand-built inventory comes back equal, and a
//! document that is not one is refused with what is wrong.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::{
    inventory::{Container as InvContainer, Holder as H, Origin as InvOrigin},
    stats::InitialSource,
};

/// 2023-11-14T22:13:20.123456Z: whole microseconds, as the contract writes times.
const T: u64 = 1_700_000_000_123_456_000;

fn net(inum: u64, id: u64) -> NsKey {
    NsKey::new(NsType::Net, inum, Some(id))
}

/// An inventory with every holder kind, a gone namespace whose inode a
/// live one reuses, a hidden one, one listns(2) named without an inode, a
/// creator in a container, and text that is not UTF-8.
fn hand_built() -> (Inventory, ScanStats) {
    let mut inv = Inventory::new();
    let user = NsKey::new(NsType::User, 4026531837, Some(1));
    let child_user = NsKey::new(NsType::User, 4026532500, Some(40));
    let with_all = net(4026532100, 30);
    let holders = [
        H::Process {
            pid: 10,
            link: "net",
        },
        H::Thread {
            pid: 10,
            tid: 11,
            link: "net",
        },
        H::Fd { pid: 12, fd: 3 },
        H::BindMount {
            path: b"/run/netns/caf\xe9"[..].to_vec().into(),
            mnt_ns: 4026531841,
        },
        H::Socket { pid: 12, fd: 4 },
        H::Tun { pid: 12, fd: 5 },
    ];
    let ns = Namespace {
        holders: holders.into_iter().collect(),
        owner: Some(child_user),
        netns_names: [RawText::from(b"caf\xe9".to_vec()), "plain".into()]
            .into_iter()
            .collect(),
        netnsid: Some(NetnsId::Id(7)),
        origin: Some(InvOrigin {
            pid: 12,
            tid: 13,
            comm: b"ip\xff\x1b[2J".to_vec().into(),
            syscall: "unshare",
            flags: (libc::CLONE_NEWNET | libc::CLONE_NEWUTS) as u64,
            time_ns: T,
            container: Some(InvContainer {
                runtime: "podman",
                id: "0123456789abcdef".into(),
                name: Some("web \"1\"\n".into()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    inv.insert(with_all, ns);
    inv.insert(
        child_user,
        Namespace {
            holders: [H::Process {
                pid: 12,
                link: "user",
            }]
            .into_iter()
            .collect(),
            parent: Some(user),
            owner: Some(user),
            creator_uid: Some(1000),
            ..Default::default()
        },
    );
    inv.insert(
        user,
        Namespace {
            holders: [
                H::Process {
                    pid: 1,
                    link: "user",
                },
                H::Child {
                    ty: NsType::User,
                    ns: 4026532500,
                },
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        },
    );
    // A gone namespace and the live one that took its inode.
    inv.insert(
        net(4026532200, 31),
        Namespace {
            state: State::Gone { since_ns: T + 1000 },
            netnsid: Some(NetnsId::Unassigned),
            origin: Some(InvOrigin {
                pid: 20,
                tid: 20,
                comm: "sandbox".into(),
                syscall: "clone",
                flags: libc::CLONE_NEWNET as u64,
                time_ns: T - 5000,
                container: Some(InvContainer {
                    runtime: "future-runtime",
                    id: "abcd".into(),
                    pod: Some("pod".into()),
                    k8s_namespace: Some("default".into()),
                    k8s_container: Some("c".into()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        },
    );
    inv.insert(
        net(4026532200, 35),
        Namespace {
            hidden: true,
            ..Default::default()
        },
    );
    // listns(2) named it; no inode known.
    inv.insert(
        NsKey::new(NsType::Uts, 0, Some(36)),
        Namespace {
            hidden: true,
            ..Default::default()
        },
    );
    for p in [
        Process {
            pid: 1,
            ppid: 0,
            uid: 0,
            comm: "init".into(),
            cmdline: "/sbin/init\0splash".into(),
            ..Default::default()
        },
        Process {
            pid: 2,
            comm: "kthreadd".into(),
            kthread: true,
            ..Default::default()
        },
        Process {
            pid: 12,
            ppid: 1,
            uid: 1000,
            comm: b"ip\xff".to_vec().into(),
            cmdline: b"ip\0netns\0add\0caf\xe9".to_vec().into(),
            container: Some(InvContainer::new("docker", "feedface")),
            kthread: false,
        },
    ] {
        inv.processes.insert(p.pid, p);
    }
    inv.initial = BTreeMap::from([(NsType::User, 4026531837), (NsType::Net, 4026531840)]);
    let stats = ScanStats {
        host_view: true,
        live: true,
        processes: 3,
        processes_denied: 1,
        denied_pids: vec![1],
        fds: 9,
        initial: BTreeMap::from([
            (NsType::User, InitialSource::Kthreadd),
            (NsType::Net, InitialSource::KernelThread(5)),
            (NsType::Time, InitialSource::FixedInode),
        ]),
        elapsed_ms: 12.5,
        ..Default::default()
    };
    (inv, stats)
}

fn round_trip(inv: &Inventory, stats: &ScanStats) -> (Inventory, ScanStats) {
    let bytes = serde_json::to_vec(&InventoryDocument::new(inv, stats)).unwrap();
    let doc: InventoryDocument = serde_json::from_slice(&bytes).unwrap();
    doc.into_inventory().unwrap()
}

#[test]
fn an_inventory_comes_back_equal() {
    let (inv, stats) = hand_built();
    let (back, back_stats) = round_trip(&inv, &stats);
    let namespaces = |i: &Inventory| i.iter().map(|(k, ns)| (*k, ns.clone())).collect::<Vec<_>>();
    assert_eq!(namespaces(&back), namespaces(&inv));
    assert_eq!(back.processes, inv.processes);
    assert_eq!(back.initial, inv.initial);
    // The inode index names the live one of two that share an inode, and
    // leaves the inode-less one out.
    assert_eq!(
        back.by_inode(NsType::Net, 4026532200),
        Some(net(4026532200, 35))
    );
    assert_eq!(back.by_inode(NsType::Uts, 0), None);
    assert_eq!(
        back.resolve(NsType::Net, 4026532100, None),
        net(4026532100, 30)
    );
    assert_eq!(back_stats.processes, 3);
    assert_eq!(back_stats.denied_pids, vec![1]);
    assert_eq!(back_stats.elapsed_ms, 12.5);
    assert_eq!(
        back_stats.initial.get(&NsType::Net),
        Some(&InitialSource::KernelThread(5))
    );
    assert_eq!(
        serde_json::to_value(&back_stats).unwrap(),
        serde_json::to_value(&stats).unwrap()
    );
    // A container runtime listns does not know comes back as its name.
    let gone = back.get(&net(4026532200, 31)).unwrap();
    let runtime = gone
        .origin
        .as_ref()
        .unwrap()
        .container
        .as_ref()
        .unwrap()
        .runtime;
    assert_eq!(runtime, "future-runtime");
}

#[test]
fn text_that_is_not_utf8_travels_as_hex() {
    let (inv, stats) = hand_built();
    let doc = serde_json::to_value(InventoryDocument::new(&inv, &stats)).unwrap();
    let p12 = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == 12)
        .unwrap();
    assert_eq!(p12["comm"], "ip\u{fffd}");
    assert_eq!(p12["comm_hex"], "6970ff");
    assert_eq!(p12["cmdline"], "ip\0netns\0add\0caf\u{fffd}");
    assert_eq!(p12["cmdline_hex"], "6970006e65746e730061646400636166e9");
    let p1 = &doc["processes"][0];
    assert_eq!(p1["cmdline"], "/sbin/init\0splash");
    assert!(p1.get("cmdline_hex").is_none(), "{p1}");
    let first = &doc["namespaces"][0];
    assert_eq!(first["type"], "net");
    assert_eq!(first["ns"], 4026532100u64);
    assert_eq!(
        first["netns_names"],
        json!([{"name": "caf\u{fffd}", "name_hex": "636166e9"}, {"name": "plain"}])
    );
    assert_eq!(first["netnsid"], 7);
    assert_eq!(
        first["holders"][5],
        json!({"kind": "bind-mount", "path": "/run/netns/caf\u{fffd}",
               "path_hex": "2f72756e2f6e65746e732f636166e9", "mnt_ns": 4026531841u64})
    );
    assert_eq!(first["created"]["comm_hex"], "6970ff1b5b324a");
    assert_eq!(first["created"]["time"], "2023-11-14T22:13:20.123456Z");
    assert_eq!(
        first["created"]["flags"],
        json!(["CLONE_NEWNET", "CLONE_NEWUTS"])
    );
}

/// The document with one change made to its JSON.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let (inv, stats) = hand_built();
    let mut doc = serde_json::to_value(InventoryDocument::new(&inv, &stats)).unwrap();
    edit(&mut doc);
    doc.to_string()
}

fn error_of(text: &str) -> String {
    match serde_json::from_str::<InventoryDocument>(text) {
        Err(e) => e.to_string(),
        Ok(doc) => match doc.into_inventory() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {text}"),
        },
    }
}

#[test]
fn a_malformed_document_says_what_is_wrong() {
    let e = error_of(&edited(|d| {
        d["namespaces"][0]["holders"][0]["link"] = "nett".into()
    }));
    assert!(e.contains("unknown namespace link \"nett\""), "{e}");
    let e = error_of(&edited(|d| {
        d["namespaces"][0]["created"]["syscall"] = "fork".into()
    }));
    assert!(e.contains("unknown syscall \"fork\""), "{e}");
    let e = error_of(&edited(|d| d["processes"][2]["comm_hex"] = "6g".into()));
    assert!(e.contains("not bytes in lower-case hex"), "{e}");
    let e = error_of(&edited(|d| {
        d["namespaces"][0]["created"]["flags"] = json!(["CLONE_VM"])
    }));
    assert!(e.contains("unknown flag \"CLONE_VM\""), "{e}");
    let e = error_of(&edited(|d| d["namespaces"][0]["gone"] = "yesterday".into()));
    assert!(e.contains("time \"yesterday\""), "{e}");
    let e = error_of(&edited(|d| d["namespaces"][0]["netnsid"] = (-2).into()));
    assert!(e.contains("netnsid -2 is neither -1 nor a NETNSID"), "{e}");
    let e = error_of(&edited(|d| {
        let first = d["namespaces"][0].clone();
        d["namespaces"].as_array_mut().unwrap().push(first);
    }));
    assert!(
        e.contains("namespace net:[4026532100] is listed twice"),
        "{e}"
    );
    let e = error_of(&edited(|d| {
        d.as_object_mut().unwrap().remove("initial");
    }));
    assert!(e.contains("missing field `initial`"), "{e}");
    let e = error_of(r#"{"error": "not found"}"#);
    assert!(e.contains("missing field"), "{e}");
}
