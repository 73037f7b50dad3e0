//! Rows, trees, `-Q`, fitting and nesting on a hand-built inventory, with
//! what lsns prints for the same facts.

use super::{
    Rows, Selection, TreeMode, View,
    columns::{Column, Value},
    json,
    table::{self, Style},
};
use crate::{
    filter,
    inventory::{Holder, Inventory, NsKey, Process},
    ns::NsType,
};

/// user 10, pid 11, net 12: the host's, with pids 2 and 100 (and 200, 201
/// in pid 11 or net 12). `unshare --user --pid --fork` as pid 200 (child
/// of 100) made user 20 (creator uid 1000) and pid 21, where its child 201
/// runs. Net 30, owned by user 20, is held by an fd of 100 only.
fn inv() -> Inventory {
    let mut inv = Inventory::new();
    let link = |inv: &mut Inventory, ty: NsType, inum: u64, pid: u32, link: &'static str| {
        inv.add_holder(ty, inum, None, Holder::Process { pid, link });
    };
    for pid in [2, 100] {
        link(&mut inv, NsType::User, 10, pid, "user");
    }
    for pid in [2, 100, 200] {
        link(&mut inv, NsType::Pid, 11, pid, "pid");
    }
    for pid in [2, 100, 200, 201] {
        link(&mut inv, NsType::Net, 12, pid, "net");
    }
    for pid in [200, 201] {
        link(&mut inv, NsType::User, 20, pid, "user");
    }
    link(&mut inv, NsType::Pid, 21, 201, "pid");
    link(&mut inv, NsType::Pid, 21, 200, "pid_for_children");
    inv.add_holder(NsType::Net, 30, None, Holder::Fd { pid: 100, fd: 5 });
    let key = |inv: &Inventory, ty, inum| inv.by_inode(ty, inum).unwrap();
    let (u10, u20, p11) = (
        key(&inv, NsType::User, 10),
        key(&inv, NsType::User, 20),
        key(&inv, NsType::Pid, 11),
    );
    for (ty, inum, owner, parent) in [
        (NsType::Pid, 11, u10, None),
        (NsType::Net, 12, u10, None),
        (NsType::User, 20, u10, Some(u10)),
        (NsType::Pid, 21, u20, Some(p11)),
        (NsType::Net, 30, u20, None),
    ] {
        let k = key(&inv, ty, inum);
        let ns = inv.get_mut(&k).unwrap();
        ns.owner = Some(owner);
        ns.parent = parent;
    }
    inv.get_mut(&u10).unwrap().creator_uid = Some(0);
    inv.get_mut(&u20).unwrap().creator_uid = Some(1000);
    inv.initial = [(NsType::User, 10), (NsType::Pid, 11), (NsType::Net, 12)].into();
    for (pid, ppid, comm, cmdline) in [
        (2, 0, "kthreadd", ""),
        (100, 1, "bash", "bash"),
        (
            200,
            100,
            "unshare",
            "unshare\0--user\0--pid\0--fork\0sleep\x00600",
        ),
        (201, 200, "sleep", "sleep\x00600"),
    ] {
        inv.processes.insert(
            pid,
            Process {
                pid,
                ppid,
                uid: 0,
                comm: comm.into(),
                cmdline: cmdline.into(),
                container: None,
                kthread: pid == 2,
            },
        );
    }
    inv
}

const COLS: [Column; 3] = [Column::Ns, Column::Type, Column::Command];

fn view<'a>(inv: &'a Inventory, rows: Rows, q: Option<&str>) -> View<'a> {
    let q = q.map(|e| filter::Query::new(e, &Column::filter_columns()).unwrap());
    View::build(inv, &Selection::default(), &COLS, rows, q.as_ref()).unwrap()
}

fn text(v: &View<'_>, style: Style) -> String {
    let mut out = Vec::new();
    table::render(&mut out, v, style).unwrap();
    String::from_utf8(out).unwrap()
}

fn plain() -> Style {
    Style {
        noheadings: true,
        ..Style::default()
    }
}

#[test]
fn the_process_tree_hangs_rows_under_the_parent_process_row() {
    let inv = inv();
    let v = view(&inv, Rows::Namespaces(Some(TreeMode::Process)), None);
    assert_eq!(
        text(&v, plain()),
        "10 user kthreadd\n\
         11 pid  kthreadd\n\
         12 net  kthreadd\n\
         20 user unshare --user --pid --fork sleep 600\n\
         21 pid  └─sleep 600\n\
         30 net\n"
    );
    // -l: the same rows, no tree.
    let flat = view(&inv, Rows::Namespaces(None), None);
    assert!(!text(&flat, plain()).contains('─'));
    assert_eq!(flat.rows.len(), 6);
}

#[test]
fn owner_and_parent_trees_draw_in_ns_as_lsns() {
    let inv = inv();
    let v = view(&inv, Rows::Namespaces(Some(TreeMode::Owner)), None);
    assert_eq!(
        text(&v, plain()),
        "10     user kthreadd\n\
         ├─11   pid  kthreadd\n\
         ├─12   net  kthreadd\n\
         └─20   user unshare --user --pid --fork sleep 600\n\
         \x20 ├─21 pid  sleep 600\n\
         \x20 └─30 net\n"
    );
    let v = view(&inv, Rows::Namespaces(Some(TreeMode::Parent)), None);
    assert_eq!(
        text(&v, plain()),
        "10   user kthreadd\n\
         └─20 user unshare --user --pid --fork sleep 600\n\
         11   pid  kthreadd\n\
         └─21 pid  sleep 600\n\
         12   net  kthreadd\n\
         30   net\n"
    );
}

#[test]
fn rows_whose_tree_parent_the_filter_rejects_become_roots() {
    let inv = inv();
    let v = view(
        &inv,
        Rows::Namespaces(Some(TreeMode::Owner)),
        Some("NPROCS < 2"),
    );
    assert_eq!(text(&v, plain()), "21 pid sleep 600\n30 net\n");
    // A filter on a column that is not shown; lower case works.
    let v = view(&inv, Rows::Namespaces(None), Some("ppid == 200"));
    assert_eq!(text(&v, plain()), "21 pid sleep 600\n");
    // Nothing matches: nothing at all, not even the header.
    let v = view(&inv, Rows::Namespaces(None), Some("false"));
    assert_eq!(text(&v, Style::default()), "");
}

#[test]
fn evaluation_errors_stop_the_listing() {
    let inv = inv();
    let q = filter::Query::new("COMMAND > 3", &Column::filter_columns()).unwrap();
    let err = View::build(
        &inv,
        &Selection::default(),
        &COLS,
        Rows::Namespaces(None),
        Some(&q),
    )
    .err()
    .expect("kthreadd is no number");
    assert_eq!(err.column, "COMMAND");
}

#[test]
fn a_namespace_no_process_is_in_shows_its_owners_creator() {
    let inv = inv();
    let k = inv.by_inode(NsType::Net, 30).unwrap();
    let ns = inv.get(&k).unwrap();
    let v = View::new(&inv, &Selection::default(), &COLS);
    assert_eq!(v.cells.value(&k, ns, Column::Uid), Value::Num(1000));
    assert_eq!(v.cells.value(&k, ns, Column::Pid), Value::Null);
    assert_eq!(v.cells.value(&k, ns, Column::Path), Value::Null);
    assert_eq!(v.cells.value(&k, ns, Column::Pns), Value::Num(0));
    assert_eq!(v.cells.value(&k, ns, Column::Ons), Value::Num(20));
    let p = inv.by_inode(NsType::Pid, 21).unwrap();
    let pns = inv.get(&p).unwrap();
    assert_eq!(
        v.cells.value(&p, pns, Column::Path),
        Value::Text("/proc/201/ns/pid".into())
    );
}

#[test]
fn persistent_and_task_choose_as_lsns() {
    let inv = inv();
    let inodes =
        |f: Selection| -> Vec<u64> { f.select(&inv).iter().map(|(k, _)| k.inum).collect() };
    let p = Selection {
        persistent: true,
        ..Selection::default()
    };
    assert_eq!(inodes(p), [30]);
    let t = Selection {
        pid: Some(201),
        ..Selection::default()
    };
    assert_eq!(inodes(t), [12, 20, 21]);
    // 200 has pid 21 only as pid_for_children: not in it.
    let t = Selection {
        pid: Some(200),
        ..Selection::default()
    };
    assert_eq!(inodes(t), [11, 12, 20]);
}

#[test]
fn a_positional_namespace_lists_its_processes() {
    let inv = inv();
    let key = inv.by_inode(NsType::User, 20).unwrap();
    let cols = [Column::Pid, Column::Ppid, Column::Command];
    let v = View::build(
        &inv,
        &Selection::default(),
        &cols,
        Rows::Processes { key, tree: true },
        None,
    )
    .unwrap();
    assert_eq!(
        text(&v, plain()),
        "200 100 unshare --user --pid --fork sleep 600\n\
         201 200 └─sleep 600\n"
    );
    let q = filter::Query::new("PID > 200", &Column::filter_columns()).unwrap();
    let v = View::build(
        &inv,
        &Selection::default(),
        &cols,
        Rows::Processes { key, tree: false },
        Some(&q),
    )
    .unwrap();
    assert_eq!(text(&v, plain()), "201 200 sleep 600\n");
}

#[test]
fn json_nests_children_only_for_a_tree() {
    let inv = inv();
    let v = view(&inv, Rows::Namespaces(Some(TreeMode::Owner)), None);
    let mut out = Vec::new();
    json::render(&mut out, &v, &crate::stats::ScanStats::default()).unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let top = j["namespaces"].as_array().unwrap();
    assert_eq!(top.len(), 1);
    let kids: Vec<u64> = top[0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ns"].as_u64().unwrap())
        .collect();
    assert_eq!(kids, [11, 12, 20]);
    assert_eq!(top[0]["children"][2]["children"][1]["ns"], 30);
    assert_eq!(
        top[0]["children"][2]["children"][1]["command"],
        serde_json::Value::Null
    );
    let mut flat = v;
    flat.flatten();
    let mut out = Vec::new();
    json::render(&mut out, &flat, &crate::stats::ScanStats::default()).unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(j["namespaces"].as_array().unwrap().len(), 6);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("\"children\""), "{text}");
}

#[test]
fn raw_output_escapes_blanks_and_tree_lines() {
    let inv = inv();
    let v = view(
        &inv,
        Rows::Namespaces(Some(TreeMode::Process)),
        Some("NS == 21"),
    );
    let raw = Style {
        raw: true,
        ..plain()
    };
    assert_eq!(text(&v, raw), "21 pid sleep\\x20600\n");
    let v = view(
        &inv,
        Rows::Namespaces(Some(TreeMode::Process)),
        Some("NS >= 20"),
    );
    assert_eq!(
        text(&v, raw).lines().nth(1),
        Some("21 pid \\xe2\\x94\\x94\\xe2\\x94\\x80sleep\\x20600")
    );
}

#[test]
fn a_narrow_terminal_cuts_command_never_ns() {
    let inv = inv();
    let v = view(&inv, Rows::Namespaces(Some(TreeMode::Process)), None);
    let style = Style {
        width: Some(20),
        ..Style::default()
    };
    let out = text(&v, style);
    for line in out.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 20,
            "{line:?}"
        );
    }
    assert!(out.contains("20 user unshare --u…"), "{out}");
    assert!(out.contains("21 pid  └─sleep 600"), "{out}");
    // Too narrow even for the identifiers: they stay whole.
    let style = Style {
        width: Some(5),
        ..Style::default()
    };
    let out = text(&v, style);
    assert!(out.starts_with("NS TYPE COMMAND\n"), "{out}");
    assert!(out.contains("\n20 user unshar…\n"), "{out}");
}

#[test]
fn nsfs_paths_are_one_per_line_unless_nowrap() {
    let mut inv = inv();
    let k = inv.by_inode(NsType::Net, 30).unwrap();
    for path in ["/run/netns/b", "/tmp/a", "/run/netns/b"] {
        inv.get_mut(&k).unwrap().holders.insert(Holder::BindMount {
            path: path.into(),
            mnt_ns: 1,
        });
    }
    let cols = [Column::Ns, Column::Nsfs, Column::Nprocs];
    let q = filter::Query::new("NS == 30", &Column::filter_columns()).unwrap();
    let v = View::build(
        &inv,
        &Selection::default(),
        &cols,
        Rows::Namespaces(None),
        Some(&q),
    )
    .unwrap();
    assert_eq!(text(&v, plain()), "30 /run/netns/b 0\n   /tmp/a\n");
    let nowrap = Style {
        nowrap: true,
        ..plain()
    };
    assert_eq!(text(&v, nowrap), "30 /run/netns/b,/tmp/a 0\n");
    let _ = NsKey::new(NsType::Net, 30, None);
}

#[test]
fn listns_own_columns_can_be_filtered_on() {
    let mut inv = inv();
    let k = inv.by_inode(NsType::Net, 30).unwrap();
    inv.get_mut(&k).unwrap().netns_names.insert("blue".into());
    // An id arrives with a later sighting.
    inv.add_holder(NsType::Net, 12, Some(77), Holder::Fd { pid: 2, fd: 1 });
    inv.processes.get_mut(&200).unwrap().container =
        Some(crate::inventory::Container::new("podman", "abc"));
    let rows = |q: &str| -> Vec<u64> {
        let q = filter::Query::new(q, &Column::filter_columns()).unwrap();
        View::build(
            &inv,
            &Selection::default(),
            &COLS,
            Rows::Namespaces(None),
            Some(&q),
        )
        .unwrap()
        .rows
        .iter()
        .map(|(k, _)| k.inum)
        .collect()
    };
    assert_eq!(rows(r#"NAME == "blue""#), [30]);
    assert_eq!(rows("ID == 77"), [12]);
    assert_eq!(rows(r#"container =~ "^podman:""#), [20, 21]);
    assert_eq!(rows(r#"HOLDERS =~ "fds:1" && NPROCS == 0"#), [30]);
}
