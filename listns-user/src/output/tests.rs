//! The renderers on hand-built inventories: what a terminal or a JSON
//! consumer receives for a given set of facts.

use super::{
    Selection, View, classic,
    columns::{Cells, Column, Value},
    contract::NamespaceRow,
    json,
};
use crate::{
    inventory::{Container, Holder, Inventory, NsKey, Process},
    ns::NsType,
    stats::ScanStats,
    text::RawText,
};

/// Host namespaces 1000.. (mnt 1000, net 1001, ..., as NsType::ALL orders
/// them), PID 2 (kthreadd) and PID 100 (bash) in them; PIDs 200 and 201
/// in net 2001, 200 also in uts 2002.
fn basic() -> Inventory {
    let mut inv = Inventory::new();
    let hold = |inv: &mut Inventory, ty: NsType, inum: u64, pid: u32| {
        inv.add_holder(
            ty,
            inum,
            None,
            Holder::Process {
                pid,
                link: ty.name(),
            },
        );
    };
    for (i, ty) in NsType::ALL.into_iter().enumerate() {
        let host = 1000 + i as u64;
        inv.initial.insert(ty, host);
        for pid in [2, 100, 200, 201] {
            let inum = match (ty, pid) {
                (NsType::Net, 200 | 201) => 2001,
                (NsType::Uts, 200) => 2002,
                _ => host,
            };
            hold(&mut inv, ty, inum, pid);
        }
    }
    for (pid, comm, cmdline, kthread) in [
        (2, "kthreadd", "", true),
        (100, "bash", "bash", false),
        (200, "sleep", "sleep\x00100", false),
        (201, "sleep", "", false),
    ] {
        inv.processes.insert(
            pid,
            Process {
                pid,
                ppid: 1,
                uid: 0,
                comm: comm.into(),
                cmdline: cmdline.into(),
                container: None,
                kthread,
            },
        );
    }
    inv
}

fn net(inv: &Inventory, inum: u64) -> NsKey {
    inv.by_inode(NsType::Net, inum).unwrap()
}

#[test]
fn classic_view_matches_listns_py_layout() {
    let mut inv = basic();
    let k = net(&inv, 2001);
    inv.get_mut(&k).unwrap().netns_names.insert("blue".into());
    let id = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
    inv.processes.get_mut(&201).unwrap().container = Some(Container::new("docker", id));
    let mut out = Vec::new();
    classic::render(&mut out, &inv).unwrap();
    let text = String::from_utf8(out).unwrap();
    let expected = [
        "       PID  Namespace             Thread/Command",
        "        --  net:[2001]            created by ip netns add blue",
        "       200  net:[2001]**          sleep 100",
        "       200  uts:[2002]            sleep 100",
        "       201  net:[2001]**          [docker] sleep",
        "",
    ]
    .join("\n");
    assert_eq!(text, expected);
}

#[test]
fn json_lists_every_namespace_with_holders() {
    let mut inv = basic();
    inv.add_holder(NsType::User, 4001, None, Holder::Fd { pid: 100, fd: 3 });
    let view = View::new(&inv, &Selection::default(), &Column::DEFAULT);
    let mut out = Vec::new();
    json::render(&mut out, &view, &ScanStats::default()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let list = v["namespaces"].as_array().unwrap();
    assert_eq!(list.len(), inv.len());
    let user = list.iter().find(|n| n["ns"] == 4001).unwrap();
    assert_eq!(user["type"], "user");
    assert_eq!(user["id"], serde_json::Value::Null);
    assert_eq!(user["nprocs"], 0);
    // No process is in it: the fd's process is not its PID, as in lsns.
    assert_eq!(user["pid"], serde_json::Value::Null);
    assert_eq!(user["command"], serde_json::Value::Null);
    assert_eq!(
        user["holders"],
        serde_json::json!([{"kind": "fd", "pid": 100, "fd": 3}])
    );
    assert!(v["scan"].is_object());
    // Keys in lsns order in the text.
    let text = String::from_utf8(out).unwrap();
    let first = &text[..text.find('}').unwrap()];
    let pos: Vec<usize> = [
        "\"ns\"",
        "\"type\"",
        "\"id\"",
        "\"nprocs\"",
        "\"pid\"",
        "\"user\"",
        "\"command\"",
        "\"holders\"",
    ]
    .iter()
    .map(|k| first.find(k).unwrap_or_else(|| panic!("{k} missing")))
    .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{first}");
}

#[test]
fn filters_by_type_pid_and_persistence() {
    let mut inv = basic();
    // 100 holds net 2001 by an fd, and net 3001 is held by nothing but an fd.
    inv.add_holder(NsType::Net, 2001, None, Holder::Fd { pid: 100, fd: 3 });
    inv.add_holder(NsType::Net, 3001, None, Holder::Fd { pid: 100, fd: 4 });
    let inodes = |f: Selection| {
        f.select(&inv)
            .iter()
            .map(|(k, _)| k.inum)
            .collect::<Vec<_>>()
    };
    let by_type = Selection {
        types: vec![NsType::Uts],
        ..Selection::default()
    };
    assert_eq!(inodes(by_type), vec![1004, 2002]);
    let by_pid = Selection {
        pid: Some(201),
        ..Selection::default()
    };
    assert_eq!(inodes(by_pid).len(), 8, "all of 201's namespaces");
    // lsns -p: the namespaces the process is in, not those it holds by fds.
    let by_fd = Selection {
        types: vec![NsType::Net],
        pid: Some(100),
        ..Selection::default()
    };
    assert_eq!(inodes(by_fd), vec![1001], "its own only");
    let persistent = Selection {
        persistent: true,
        ..Selection::default()
    };
    assert_eq!(inodes(persistent), vec![3001]);
}

#[test]
fn hostile_text_is_escaped_in_tables_and_exact_in_json() {
    let mut inv = basic();
    let p = inv.processes.get_mut(&200).unwrap();
    p.cmdline = RawText::new(b"a\xffb\x1b[2J\xe2\x80\xaeevil\x00x");
    let k = net(&inv, 2001);
    inv.get_mut(&k).unwrap().holders.insert(Holder::BindMount {
        path: RawText::new(b"/run/netns/\x1b]0;x\x07"),
        mnt_ns: 1000,
    });
    let cells = Cells::new(&inv);
    let ns = inv.get(&k).unwrap();
    assert_eq!(
        cells.value(&k, ns, Column::Command).display(),
        "a\\xffb\\x1b[2J\\u{202e}evil x",
        "no raw escape byte or bidi override reaches a terminal"
    );
    assert_eq!(
        cells.value(&k, ns, Column::Nsfs).display(),
        "/run/netns/\\x1b]0;x\\x07"
    );
    let row = NamespaceRow::new(
        &cells,
        &k,
        ns,
        cells.pid(ns),
        &[Column::Command, Column::Nsfs],
    );
    let obj = serde_json::to_value(row).unwrap();
    assert_eq!(obj["command"], "a\u{fffd}b\u{1b}[2J\u{202e}evil x");
    assert_eq!(obj["command_hex"], "61ff621b5b324ae280ae6576696c2078");
    assert_eq!(obj["nsfs"], "/run/netns/\u{1b}]0;x\u{7}");
    assert!(obj.get("nsfs_hex").is_none());
    assert!(matches!(cells.value(&k, ns, Column::Type), Value::Text(_)));
}

#[test]
fn creator_is_comm_pid_and_call_escaped_and_a_json_object() {
    let mut inv = basic();
    let k = net(&inv, 2001);
    assert_eq!(
        Cells::new(&inv).value(&k, inv.get(&k).unwrap(), Column::Creator),
        Value::Null,
        "no creator where the tracer did not see one"
    );
    inv.get_mut(&k).unwrap().origin = Some(crate::inventory::Origin {
        pid: 4242,
        tid: 4243,
        comm: RawText::new(b"ev\x1bil"),
        syscall: "clone",
        flags: 0,
        time_ns: 0,
        container: None,
    });
    let cells = Cells::new(&inv);
    let ns = inv.get(&k).unwrap();
    assert_eq!(
        cells.value(&k, ns, Column::Creator).display(),
        "ev\\x1bil[4242] clone"
    );
    let row = NamespaceRow::new(&cells, &k, ns, cells.pid(ns), &[Column::Creator]);
    let obj = serde_json::to_value(row).unwrap();
    assert!(
        obj.get("creator").is_none(),
        "the column is the `created` object"
    );
    assert_eq!(obj["created"]["pid"], 4242);
    assert_eq!(obj["created"]["tid"], 4243);
}

#[test]
fn kernel_threads_show_their_bare_comm_as_lsns() {
    let inv = basic();
    let k = inv.by_inode(NsType::Mnt, 1000).unwrap();
    let cells = Cells::new(&inv);
    assert_eq!(
        cells
            .value(&k, inv.get(&k).unwrap(), Column::Command)
            .display(),
        "kthreadd"
    );
}

/// `-J` writes each row as it goes: every kind of holder, bytes that are
/// not UTF-8 included, as a consumer receives them.
#[test]
fn json_rows_carry_every_holder_kind() {
    let mut inv = basic();
    for h in [
        Holder::Fd { pid: 100, fd: 3 },
        Holder::Thread {
            pid: 100,
            tid: 101,
            link: "net",
        },
        Holder::Socket { pid: 200, fd: 4 },
        Holder::Tun { pid: 200, fd: 5 },
        Holder::BindMount {
            path: RawText::new(b"/run/netns/x\xff"),
            mnt_ns: 1000,
        },
        Holder::Child {
            ty: NsType::User,
            ns: 4002,
        },
    ] {
        inv.add_holder(NsType::Net, 2001, None, h);
    }
    let view = View::new(&inv, &Selection::default(), &Column::DEFAULT);
    let mut out = Vec::new();
    json::render(&mut out, &view, &ScanStats::default()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = v["namespaces"].as_array().unwrap();
    assert_eq!(rows.len(), view.rows.len());
    let mut net = rows.iter().find(|r| r["ns"] == 2001).unwrap().clone();
    // The user name of uid 0 is whatever this machine's passwd says.
    assert!(
        net.as_object_mut()
            .unwrap()
            .remove("user")
            .unwrap()
            .is_string()
    );
    assert_eq!(
        net,
        serde_json::json!({
            "ns": 2001, "type": "net", "id": null, "nprocs": 2, "pid": 200,
            "netnsid": null, "nsfs": "/run/netns/x\u{fffd}", "nsfs_hex": "2f72756e2f6e65746e732f78ff",
            "command": "sleep 100", "name": null,
            "holders": [
                {"kind": "thread", "pid": 100, "tid": 101, "link": "net"},
                {"kind": "fd", "pid": 100, "fd": 3},
                {"kind": "process", "pid": 200, "link": "net"},
                {"kind": "socket", "pid": 200, "fd": 4},
                {"kind": "tun", "pid": 200, "fd": 5},
                {"kind": "process", "pid": 201, "link": "net"},
                {"kind": "bind-mount", "path": "/run/netns/x\u{fffd}",
                 "path_hex": "2f72756e2f6e65746e732f78ff", "mnt_ns": 1000},
                {"kind": "child", "type": "user", "ns": 4002},
            ],
            "hidden": false,
        })
    );
}
