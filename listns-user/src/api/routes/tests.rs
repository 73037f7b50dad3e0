//! The endpoints on a hand-made inventory: what a bad request is told, and
//! what a good one gets (expected JSON written out by hand).

use serde_json::{Value, json};

use super::*;
use crate::{
    inventory::{Holder, Origin},
    stats::ScanStats,
};

fn params(q: &str, known: &[&str]) -> Params {
    Params::parse(Some(q), known).unwrap_or_else(|r| panic!("{}", body(&r)))
}

fn body(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

fn origin(pid: u32, time_ns: u64) -> Origin {
    Origin {
        pid,
        tid: pid,
        comm: "unshare".into(),
        syscall: "unshare",
        flags: libc::CLONE_NEWNET as u64,
        time_ns,
        container: None,
    }
}

/// A bind-mounted net namespace (id 7), a uts namespace whose inode is 7,
/// and two gone net namespaces.
fn inventory() -> Inventory {
    let mut inv = Inventory::new();
    let (_, ns) = inv.entry(NsType::Net, 4026532100, Some(7));
    ns.holders.insert(Holder::BindMount {
        path: "/run/netns/blue".into(),
        mnt_ns: 4026531841,
    });
    ns.origin = Some(origin(42, 1_000_000_000));
    inv.entry(NsType::Uts, 7, Some(8));
    let (_, ns) = inv.entry(NsType::Net, 4026532200, Some(9));
    ns.state = State::Gone {
        since_ns: 3_000_000_000,
    };
    ns.origin = Some(origin(43, 2_500_000_000));
    let (_, ns) = inv.entry(NsType::Net, 4026532300, Some(10));
    ns.state = State::Gone {
        since_ns: 4_000_000_000,
    };
    inv
}

#[test]
fn unknown_and_repeated_parameters_are_refused() {
    let r = Params::parse(Some("type=net&colour=red"), &["type"])
        .err()
        .unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body(&r),
        json!({"error": "unknown parameter \"colour\" (known: type)", "param": "colour"})
    );
    let r = Params::parse(Some("type=net&type=uts"), &["type"])
        .err()
        .unwrap();
    assert_eq!(body(&r)["error"], "parameter \"type\" given twice");
    let r = Params::parse(Some("x=1"), &[]).err().unwrap();
    assert_eq!(
        body(&r)["error"],
        "unknown parameter \"x\" (this endpoint takes no parameters)"
    );
}

#[test]
fn namespaces_say_what_is_wrong_and_where() {
    let inv = inventory();
    let stats = ScanStats::default();
    let known = ["type", "filter", "tree", "pid", "columns"];
    let ask = |q: &str| namespaces(&inv, &stats, &params(q, &known));
    let r = ask("type=nett");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(body(&r)["param"], "type");
    assert!(
        body(&r)["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown namespace type \"nett\" (known: ")
    );
    // `NS ==` ends where a value should be: character 6.
    let r = ask("filter=NS%20%3D%3D");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(body(&r)["param"], "filter");
    assert_eq!(body(&r)["position"], 6);
    let r = ask("tree=sideways");
    assert_eq!(
        body(&r),
        json!({"error": "tree=\"sideways\": one of process, parent, owner", "param": "tree"})
    );
    let r = ask("columns=NS,COLOUR");
    assert_eq!(
        body(&r),
        json!({"error": "unknown column: COLOUR (see --list-columns)", "param": "columns"})
    );
    let r = ask("pid=abc");
    assert_eq!(body(&r)["error"], "pid=\"abc\" is not a number");
}

#[test]
fn namespaces_of_a_type_with_chosen_columns() {
    let inv = inventory();
    let r = namespaces(
        &inv,
        &ScanStats::default(),
        &params(
            "type=net&columns=NS,NSFS&filter=NS%20%3D%3D%204026532100",
            &["type", "filter", "columns"],
        ),
    );
    assert_eq!(r.status, StatusCode::OK);
    let doc = body(&r);
    assert_eq!(
        doc["namespaces"],
        json!([{
            "ns": 4026532100u64, "type": "net", "id": 7,
            "netnsid": null, "nsfs": "/run/netns/blue", "name": null,
            "holders": [{"kind": "bind-mount", "path": "/run/netns/blue", "mnt_ns": 4026531841u64}],
            "hidden": false,
            "created": {
                "pid": 42, "tid": 42, "comm": "unshare", "syscall": "unshare",
                "flags": ["CLONE_NEWNET"], "time": "1970-01-01T00:00:01.000000Z",
                "container": null
            }
        }])
    );
    assert!(doc["scan"].is_object());
    // Without a filter: the live net namespace only, not the gone ones.
    let r = namespaces(&inv, &ScanStats::default(), &params("type=net", &["type"]));
    let ns: Vec<Value> = body(&r)["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ns"].clone())
        .collect();
    assert_eq!(ns, [json!(4026532100u64)]);
}

#[test]
fn a_namespace_by_id_inode_or_type_and_inode() {
    let inv = inventory();
    let key = |s: &str| find(&inv, s).map(|k| (k.ty, k.inum));
    assert_eq!(key("net:4026532100").ok(), Some((NsType::Net, 4026532100)));
    assert_eq!(key("8").ok(), Some((NsType::Uts, 7)));
    assert_eq!(key("4026532100").ok(), Some((NsType::Net, 4026532100)));
    // 7 is the id of the net namespace and the inode of the uts one.
    let r = key("7").err().unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body(&r)["error"],
        "7 is both the id of net:[4026532100] and the inode of uts:[7]; ask for uts:7"
    );
    assert_eq!(key("net:1").err().unwrap().status, StatusCode::NOT_FOUND);
    assert_eq!(key("12345").err().unwrap().status, StatusCode::NOT_FOUND);
    for bad in ["web:1", "net:x", "blue"] {
        let r = key(bad).err().unwrap();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body(&r)["param"], "id");
    }
}

#[test]
fn gone_newest_first_with_lifetimes() {
    let inv = inventory();
    let shared = Shared::new(Inventory::new(), ScanStats::default(), 10);
    // The loop hands each namespace over as it is found gone.
    let mut loop_side = crate::api::Publisher::new(shared.clone());
    for (k, ns) in inv.iter().filter(|(_, ns)| ns.state != State::Alive) {
        let State::Gone { since_ns } = ns.state else {
            unreachable!()
        };
        loop_side.verdict(crate::output::contract::VerdictKind::Gone, *k, ns, since_ns);
    }
    let r = gone(&shared, &params("", &["since"]));
    let doc = body(&r);
    let list = doc["gone"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["ns"], 4026532300u64);
    assert_eq!(list[0]["lifetime_ms"], Value::Null);
    assert_eq!(list[1]["ns"], 4026532200u64);
    assert_eq!(list[1]["time"], "1970-01-01T00:00:03.000000Z");
    assert_eq!(list[1]["created"], "1970-01-01T00:00:02.500000Z");
    assert_eq!(list[1]["lifetime_ms"], 500.0);
    assert_eq!(list[1]["cursor"], 1);
    // Since a time: only the later one.
    let r = gone(&shared, &params("since=1970-01-01T00:00:03.5Z", &["since"]));
    let doc = body(&r);
    assert_eq!(doc["gone"].as_array().unwrap().len(), 1);
    assert_eq!(doc["gone"][0]["ns"], 4026532300u64);
    let r = gone(&shared, &params("since=yesterday", &["since"]));
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Forgotten by the lifecycle (not in the inventory): forgotten here.
    loop_side.prune(&Inventory::new());
    assert_eq!(
        body(&gone(&shared, &params("", &["since"])))["gone"],
        json!([])
    );
}

#[test]
fn events_refuse_a_cursor_this_watcher_never_gave() {
    let shared = Shared::new(Inventory::new(), ScanStats::default(), 10);
    let r = events(&shared, &params("since=5", &["since", "limit"]));
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        body(&r)["error"]
            .as_str()
            .unwrap()
            .starts_with("cursor 5 is ahead of this watcher's last event (0)")
    );
    let r = events(&shared, &params("since=0", &["since", "limit"]));
    assert_eq!(body(&r), json!({"events": [], "next": 0, "dropped": 0}));
}

/// A change event keeps the container the loop knew (created lines always
/// have one when the creator is in a container), as the CLI prints it.
#[test]
fn change_events_carry_the_container() {
    use crate::inventory::{
        Container, NsKey,
        live::{Change, ChangeKind, TaskEvent, TaskEventKind},
    };
    let shared = Shared::new(Inventory::new(), ScanStats::default(), 10);
    let mut publisher = super::super::state::Publisher::new(shared.clone());
    let web = Container {
        runtime: "podman",
        id: "0123456789abcdef".into(),
        name: Some("web".into()),
        pod: None,
        k8s_namespace: None,
        k8s_container: None,
    };
    let created = Change {
        kind: ChangeKind::Created,
        key: NsKey::new(NsType::Uts, 4026532500, Some(70)),
        link: "uts",
    };
    let joined = Change {
        kind: ChangeKind::Joined,
        key: NsKey::new(NsType::Net, 4026532501, Some(71)),
        link: "net",
    };
    publisher.task(
        TaskEvent::test(TaskEventKind::Unshare, 50),
        &[created],
        Some(&web),
    );
    publisher.task(TaskEvent::test(TaskEventKind::Setns, 51), &[joined], None);
    let events = body(&events(&shared, &params("since=0", &["since", "limit"])));
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["event"], "created");
    assert_eq!(events[0]["container"]["name"], "web");
    assert_eq!(events[0]["container"]["id"], "0123456789abcdef");
    assert_eq!(events[0]["container"]["runtime"], "podman");
    assert_eq!(events[1]["event"], "joined");
    assert_eq!(events[1]["container"], Value::Null);
}
