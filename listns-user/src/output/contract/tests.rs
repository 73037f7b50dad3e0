//! The contract's JSON, against objects written out by hand: what a
//! consumer receives for a given set of facts.

use serde_json::{Value, json};

use super::*;
use crate::{
    filter::Kind,
    inventory::{
        self, Inventory, NsKey,
        live::{self, ChangeKind, TaskEvent, TaskEventKind},
    },
    output::stream::event_filter,
    text::RawText,
};

/// 2023-11-14T22:13:20.123456789Z.
const T: u64 = 1_700_000_000_123_456_789;

fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn every_holder_kind_has_its_shape() {
    let cases = [
        (
            inventory::Holder::Process {
                pid: 3,
                link: "net",
            },
            json!({"kind": "process", "pid": 3, "link": "net"}),
        ),
        (
            inventory::Holder::Thread {
                pid: 3,
                tid: 4,
                link: "uts",
            },
            json!({"kind": "thread", "pid": 3, "tid": 4, "link": "uts"}),
        ),
        (
            inventory::Holder::Fd { pid: 3, fd: 9 },
            json!({"kind": "fd", "pid": 3, "fd": 9}),
        ),
        (
            inventory::Holder::Socket { pid: 3, fd: 10 },
            json!({"kind": "socket", "pid": 3, "fd": 10}),
        ),
        (
            inventory::Holder::Tun { pid: 3, fd: 11 },
            json!({"kind": "tun", "pid": 3, "fd": 11}),
        ),
        (
            inventory::Holder::BindMount {
                path: RawText::new(b"/run/netns/a"),
                mnt_ns: 7,
            },
            json!({"kind": "bind-mount", "path": "/run/netns/a", "mnt_ns": 7}),
        ),
        (
            inventory::Holder::BindMount {
                path: RawText::new(b"/x\xff"),
                mnt_ns: 7,
            },
            json!({"kind": "bind-mount", "path": "/x\u{fffd}", "path_hex": "2f78ff", "mnt_ns": 7}),
        ),
        (
            inventory::Holder::Child {
                ty: NsType::User,
                ns: 4,
            },
            json!({"kind": "child", "type": "user", "ns": 4}),
        ),
    ];
    for (h, want) in cases {
        assert_eq!(to_json(&Holder::from(&h)), want, "{h:?}");
    }
}

#[test]
fn text_is_exact_and_bytes_that_are_not_utf8_get_hex() {
    // Real characters, control characters included: JSON escapes them.
    let (t, hex) = exact(&b"a\x1bb\\x1b"[..]);
    assert_eq!(hex, None);
    assert_eq!(serde_json::to_string(&t).unwrap(), r#""a\u001bb\\x1b""#);
    let (t, hex) = exact(&b"ok\xff!"[..]);
    assert_eq!(to_json(&t), "ok\u{fffd}!");
    assert_eq!(to_json(&hex), "6f6bff21");
}

fn setns(comm: &[u8]) -> TaskEvent {
    TaskEvent {
        time_ns: T,
        tid: 8,
        comm: comm.to_vec().into(),
        cgroup_id: 9,
        flags: libc::CLONE_NEWNET as u64,
        fd: 3,
        ..TaskEvent::test(TaskEventKind::Setns, 7)
    }
}

fn joined_net() -> live::Change {
    live::Change {
        kind: ChangeKind::Joined,
        key: NsKey::new(NsType::Net, 4026532000, Some(77)),
        link: "net",
    }
}

#[test]
fn change_lines_carry_the_event() {
    let ev = setns(b"a\xffb\x1b[2J");
    let line = to_json(&WatchLine::change(&ev, &joined_net()));
    assert_eq!(
        line,
        json!({
            "event": "joined", "time": "2023-11-14T22:13:20.123456Z", "type": "net",
            "ns": 4026532000u64, "id": 77, "link": "net", "pid": 7, "tid": 8, "ppid": 1,
            "uid": 0, "comm": "a\u{fffd}b\u{1b}[2J", "comm_hex": "61ff621b5b324a",
            "syscall": "setns", "flags": ["CLONE_NEWNET"], "fd": 3, "cgroup_id": 9, "container": null,
        })
    );
    // A hostile comm stays one valid line.
    let ev = setns("x\u{1b}]0;pwned\u{7}\n\"{".as_bytes());
    let text = serde_json::to_string(&WatchLine::change(&ev, &joined_net())).unwrap();
    assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["comm"], "x\u{1b}]0;pwned\u{7}\n\"{");
    assert!(back.get("comm_hex").is_none());
}

#[test]
fn verdict_lines_name_the_creator_where_known() {
    let mut inv = Inventory::new();
    let (made, ns) = inv.entry(NsType::Uts, 4026532001, Some(5));
    ns.hidden = true;
    ns.origin = Some(inventory::Origin {
        pid: 12,
        tid: 12,
        comm: b"sh\xff".to_vec().into(),
        syscall: "unshare",
        flags: 0x0400_0000,
        time_ns: 1_700_000_000_000_000_001,
        container: Some(inventory::Container {
            runtime: "podman",
            id: "abc".into(),
            name: Some("web".into()),
            ..Default::default()
        }),
    });
    let (unknown, _) = inv.entry(NsType::Net, 4026532002, None);
    let line = WatchLine::verdict(VerdictKind::Hidden, &made, inv.get(&made).unwrap(), T);
    assert_eq!(
        to_json(&line),
        json!({
            "event": "hidden", "time": "2023-11-14T22:13:20.123456Z", "type": "uts",
            "ns": 4026532001u64, "id": 5, "pid": 12, "comm": "sh\u{fffd}",
            "comm_hex": "7368ff", "syscall": "unshare",
            "created": "2023-11-14T22:13:20.000000Z",
            "container": {"runtime": "podman", "id": "abc", "name": "web"},
            "hidden": true,
        })
    );
    let line = WatchLine::verdict(VerdictKind::Gone, &unknown, inv.get(&unknown).unwrap(), T);
    assert_eq!(
        to_json(&line),
        json!({
            "event": "gone", "time": "2023-11-14T22:13:20.123456Z", "type": "net",
            "ns": 4026532002u64, "id": null, "pid": null, "comm": null, "syscall": null,
            "created": null, "container": null, "hidden": false,
        })
    );
}

#[test]
fn lost_and_rescan_lines() {
    let lost = WatchLine::Lost(Lost {
        time: Time(T),
        count: 7,
        missed: 2,
    });
    assert_eq!(
        to_json(&lost),
        json!({"event": "lost", "time": "2023-11-14T22:13:20.123456Z", "count": 7, "missed": 2})
    );
    let rescan = WatchLine::Rescan(Rescan {
        time: Time(T),
        namespaces: 40,
        discovered: 1,
    });
    assert_eq!(
        to_json(&rescan),
        json!({"event": "rescan", "time": "2023-11-14T22:13:20.123456Z", "namespaces": 40, "discovered": 1})
    );
}

/// `watch -Q` knows every key a line can have, each compared as its JSON
/// type: the key list is read from the schema, so a key the serializer
/// writes but the schema lacks would be refused here.
#[test]
fn watch_filter_keys_cover_every_line_and_have_their_types() {
    let keys = watch_keys();
    let kind = |name: &str| keys.iter().find(|c| c.name == name).map(|c| c.kind);
    for (name, want) in [
        ("event", Kind::String),
        ("ns", Kind::Number),
        ("id", Kind::Number),
        ("pid", Kind::Number),
        ("fd", Kind::Number),
        ("count", Kind::Number),
        ("netnsid", Kind::Number),
        ("hidden", Kind::Boolean),
        ("running", Kind::Boolean),
        ("comm", Kind::String),
        ("time", Kind::String),
        // A time in verdicts, an object in `existing` lines: JSON text.
        ("created", Kind::String),
        ("container", Kind::String),
        ("flags", Kind::String),
        ("holders", Kind::String),
    ] {
        assert_eq!(kind(name), Some(want), "{name}");
    }
    let ev = setns(b"sh");
    let mut inv = Inventory::new();
    let (k, _) = inv.entry(NsType::Uts, 4026532001, Some(5));
    let lines = [
        WatchLine::change(&ev, &joined_net()),
        WatchLine::verdict(VerdictKind::Gone, &k, inv.get(&k).unwrap(), T),
        WatchLine::Lost(Lost {
            time: Time(T),
            count: 1,
            missed: 0,
        }),
    ];
    for line in &lines {
        for key in to_json(line).as_object().unwrap().keys() {
            assert!(
                kind(key).is_some(),
                "{key} is written but -Q cannot name it"
            );
        }
    }
    // And the filter built from them evaluates on a line's JSON.
    let f = event_filter(r#"event == "joined" && ns == 4026532000 && comm =~ "^s""#).unwrap();
    let obj = to_json(&lines[0]);
    assert!(f.matches(obj.as_object().unwrap()).unwrap());
    let f = event_filter("fd > 3").unwrap();
    assert!(!f.matches(obj.as_object().unwrap()).unwrap());
    assert!(event_filter("bogus == 1").is_err());
}

/// The committed schema is what the types generate. To update it after
/// changing them: `cargo xtask schema`.
#[test]
fn committed_schema_matches_the_types() {
    let text = format!("{:#}\n", schema());
    // Embedded at build time: the kernel-matrix guests run this test
    // without the source tree.
    let committed = include_str!("../../../../schema/listns.schema.json");
    assert!(
        committed == text,
        "schema/listns.schema.json is out of date: run cargo xtask schema"
    );
}
