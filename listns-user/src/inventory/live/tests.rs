use super::*;
use listns_common::{SLOT_NET, SLOT_PID, SLOT_PID_FOR_CHILDREN, SLOT_USER, SLOT_UTS};

/// The range removal takes exactly what the walk over every holder
/// (the code it replaced, kept here as the reference) took.
#[test]
fn exits_remove_the_same_holders_as_a_full_walk() {
    use crate::text::RawText;
    let mut all = BTreeSet::new();
    for pid in [41, 42, 43] {
        for link in ["net", "pid_for_children", "uts"] {
            all.insert(Holder::Process { pid, link });
        }
        for tid in [pid, pid + 100, pid + 101] {
            all.insert(Holder::Thread {
                pid,
                tid,
                link: "net",
            });
        }
        for fd in [-1, 0, 3, i32::MAX] {
            all.insert(Holder::Fd { pid, fd });
            all.insert(Holder::Socket { pid, fd });
            all.insert(Holder::Tun { pid, fd });
        }
    }
    all.insert(Holder::BindMount {
        path: RawText::from("/run/netns/x"),
        mnt_ns: 42,
    });
    all.insert(Holder::Child {
        ty: NsType::Net,
        ns: 42,
    });
    for (pid, tid) in [
        (42, None),
        (42, Some(142)),
        (42, Some(42)),
        (44, None),
        (0, None),
    ] {
        let mut walked = all.clone();
        walked.retain(|h| match h {
            Holder::Thread { pid: p, tid: t, .. } => {
                !(*p == pid && tid.is_none_or(|tid| *t == tid))
            }
            other => !(tid.is_none() && other.pid() == Some(pid)),
        });
        let mut ranged = all.clone();
        let removed = remove_task_holders(&mut ranged, pid, tid);
        assert_eq!(ranged, walked, "pid {pid} tid {tid:?}");
        assert_eq!(removed, walked.len() < all.len(), "pid {pid} tid {tid:?}");
    }
}

fn slot(slot: usize, inum: u64, prev: u64, created: bool) -> Slot {
    Slot {
        slot,
        ty: NsType::of_slot(slot),
        inum,
        id: Some(inum + 1000),
        prev: Some((prev, Some(prev + 1000))),
        changed: inum != prev,
        created,
    }
}

fn event(kind: TaskEventKind, pid: u32, tid: u32, slots: Vec<Slot>) -> TaskEvent {
    TaskEvent {
        tid,
        slots,
        ..TaskEvent::test(kind, pid)
    }
}

fn inventory() -> Inventory {
    let mut inv = Inventory::new();
    inv.initial.insert(NsType::Net, 1);
    inv.initial.insert(NsType::Uts, 2);
    inv.add_holder(
        NsType::Net,
        1,
        Some(1001),
        Holder::Process {
            pid: 10,
            link: "net",
        },
    );
    inv.add_holder(
        NsType::Uts,
        2,
        Some(1002),
        Holder::Process {
            pid: 10,
            link: "uts",
        },
    );
    inv
}

#[test]
fn unshare_creates_and_leaves() {
    let mut inv = inventory();
    let ev = event(
        TaskEventKind::Unshare,
        10,
        10,
        vec![slot(SLOT_NET, 50, 1, true), slot(SLOT_UTS, 2, 2, false)],
    );
    let changes = inv.apply(&ev);
    let kinds: Vec<_> = changes.iter().map(|c| (c.kind, c.key.inum)).collect();
    assert_eq!(
        kinds,
        vec![(ChangeKind::Left, 1), (ChangeKind::Created, 50)]
    );
    let new = inv.get(&changes[1].key).unwrap();
    assert_eq!(new.origin.as_ref().unwrap().syscall, "unshare");
    assert_eq!(
        new.holders,
        BTreeSet::from([Holder::Process {
            pid: 10,
            link: "net"
        }])
    );
    assert!(inv.get(&changes[0].key).unwrap().holders.is_empty());
}

#[test]
fn setns_into_known_namespace_is_a_join() {
    let mut inv = inventory();
    inv.add_holder(
        NsType::Net,
        50,
        Some(1050),
        Holder::BindMount {
            path: "/run/netns/x".into(),
            mnt_ns: 9,
        },
    );
    // Even if the kernel's LRU forgot it, the inventory knows it.
    let ev = event(
        TaskEventKind::Setns,
        10,
        10,
        vec![slot(SLOT_NET, 50, 1, true)],
    );
    let changes = inv.apply(&ev);
    assert_eq!(changes[1].kind, ChangeKind::Joined);
    assert!(inv.get(&changes[1].key).unwrap().origin.is_none());
}

#[test]
fn fork_reports_each_namespace_once_and_never_leaves() {
    let mut inv = inventory();
    // clone(CLONE_NEWPID): pid and pid_for_children are the same new namespace.
    let ev = event(
        TaskEventKind::Fork,
        20,
        20,
        vec![
            slot(SLOT_PID_FOR_CHILDREN, 60, 5, true),
            slot(SLOT_PID, 60, 5, false),
        ],
    );
    let changes = inv.apply(&ev);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].kind, ChangeKind::Created);
    assert_eq!(changes[0].key.ty, NsType::Pid);
}

#[test]
fn thread_unshare_is_held_by_the_thread() {
    let mut inv = inventory();
    let ev = event(
        TaskEventKind::Unshare,
        10,
        11,
        vec![slot(SLOT_NET, 70, 1, true)],
    );
    let changes = inv.apply(&ev);
    let ns = inv.get(&changes.last().unwrap().key).unwrap();
    assert!(ns.holders.contains(&Holder::Thread {
        pid: 10,
        tid: 11,
        link: "net"
    }));
    // Thread exit drops only that thread's holders.
    let exit = event(
        TaskEventKind::Exit,
        10,
        11,
        vec![slot(SLOT_NET, 70, 70, false)],
    );
    let left = inv.apply(&exit);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, ChangeKind::Left);
    assert!(inv.get(&left[0].key).unwrap().holders.is_empty());
    assert!(
        !inv.get(&NsKey::new(NsType::Uts, 2, Some(1002)))
            .unwrap()
            .holders
            .is_empty()
    );
}

/// The host's initial namespaces keep the holders the scan found: an exit
/// or a fork there reports nothing and changes nothing; moving into or out
/// of one is still reported.
#[test]
fn initial_namespaces_are_not_kept_per_event() {
    let mut inv = inventory();
    let host_net = NsKey::new(NsType::Net, 1, Some(1001));
    let before = inv.get(&host_net).unwrap().holders.clone();
    let exit = event(
        TaskEventKind::Exit,
        10,
        10,
        vec![slot(SLOT_NET, 1, 1, false)],
    );
    assert!(inv.apply(&exit).is_empty());
    let fork = event(
        TaskEventKind::Fork,
        11,
        11,
        vec![slot(SLOT_NET, 1, 1, false), slot(SLOT_UTS, 60, 2, true)],
    );
    let changes = inv.apply(&fork);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.kind, c.key.inum))
            .collect::<Vec<_>>(),
        vec![(ChangeKind::Created, 60)]
    );
    assert_eq!(inv.get(&host_net).unwrap().holders, before);
    // pid 11 goes back into the host's uts namespace with setns: a join.
    let setns = event(
        TaskEventKind::Setns,
        11,
        11,
        vec![slot(SLOT_UTS, 2, 60, false)],
    );
    let kinds: Vec<_> = inv
        .apply(&setns)
        .iter()
        .map(|c| (c.kind, c.key.inum))
        .collect();
    assert_eq!(kinds, vec![(ChangeKind::Left, 60), (ChangeKind::Joined, 2)]);
}

fn exit(pid: u32, tid: u32, group_dead: Option<bool>, slots: &[(usize, u64)]) -> TaskEvent {
    let mut ev = event(
        TaskEventKind::Exit,
        pid,
        tid,
        slots.iter().map(|&(s, i)| slot(s, i, i, false)).collect(),
    );
    ev.group_dead = group_dead;
    ev
}

#[test]
fn threads_leaving_with_their_process_report_one_left_per_namespace() {
    let mut inv = inventory();
    // Process 20 unshares net and uts (held by the process), then five
    // threads exit: four not last, one last.
    let ev = event(
        TaskEventKind::Unshare,
        20,
        20,
        vec![slot(SLOT_NET, 50, 1, true), slot(SLOT_UTS, 51, 2, true)],
    );
    inv.apply(&ev);
    let slots = [(SLOT_NET, 50), (SLOT_UTS, 51)];
    for tid in [21, 22, 20, 23] {
        let changes = inv.apply(&exit(20, tid, Some(false), &slots));
        assert!(changes.is_empty(), "thread {tid}: {changes:?}");
    }
    let changes = inv.apply(&exit(20, 24, Some(true), &slots));
    let left: Vec<_> = changes.iter().map(|c| (c.kind, c.key.inum)).collect();
    assert_eq!(left, vec![(ChangeKind::Left, 50), (ChangeKind::Left, 51)]);
    // An exit that removed no holder reports nothing.
    assert!(inv.apply(&exit(20, 20, Some(true), &slots)).is_empty());
    assert!(inv.apply(&exit(99, 99, Some(true), &slots)).is_empty());
}

#[test]
fn without_the_kernels_word_the_leaders_exit_is_the_processs() {
    let mut inv = inventory();
    let ev = event(
        TaskEventKind::Unshare,
        20,
        20,
        vec![slot(SLOT_NET, 50, 1, true)],
    );
    inv.apply(&ev);
    assert!(inv.apply(&exit(20, 21, None, &[(SLOT_NET, 50)])).is_empty());
    assert_eq!(inv.apply(&exit(20, 20, None, &[(SLOT_NET, 50)])).len(), 1);
}

#[test]
fn a_thread_that_unshared_alone_reports_its_own_exit() {
    let mut inv = inventory();
    let ev = event(
        TaskEventKind::Unshare,
        20,
        21,
        vec![slot(SLOT_NET, 70, 1, true)],
    );
    inv.apply(&ev);
    let changes = inv.apply(&exit(20, 21, Some(false), &[(SLOT_NET, 70)]));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, ChangeKind::Left);
}

/// A namespace the tracer saw created sits where a scan would put it
/// (lsns ONS and PNS), so that trees of the watcher's inventory (`--from
/// -T`, the web page) nest it instead of listing it at the top.
#[test]
fn created_namespaces_get_their_owner_and_parent() {
    let mut inv = inventory();
    let key = |ty, inum: u64| NsKey::new(ty, inum, Some(inum + 1000));
    // unshare(CLONE_NEWUSER | CLONE_NEWNET) from user namespace 3: the new
    // user namespace's owner and parent is 3; the new netns is owned by
    // the new user namespace.
    let both = event(
        TaskEventKind::Unshare,
        10,
        10,
        vec![slot(SLOT_USER, 70, 3, true), slot(SLOT_NET, 50, 1, true)],
    );
    inv.apply(&both);
    let user = inv.get(&key(NsType::User, 70)).unwrap();
    assert_eq!(user.owner, Some(key(NsType::User, 3)));
    assert_eq!(user.parent, Some(key(NsType::User, 3)));
    let net = inv.get(&key(NsType::Net, 50)).unwrap();
    assert_eq!(net.owner, Some(key(NsType::User, 70)));
    assert_eq!(net.parent, None);
    // clone(CLONE_NEWPID) by a task in user namespace 3 whose children
    // went to pid namespace 4: owner 3, parent 4.
    let fork = event(
        TaskEventKind::Fork,
        11,
        11,
        vec![
            slot(SLOT_USER, 3, 3, false),
            slot(SLOT_PID_FOR_CHILDREN, 80, 4, true),
            slot(SLOT_PID, 80, 4, true),
        ],
    );
    inv.apply(&fork);
    let pid = inv.get(&key(NsType::Pid, 80)).unwrap();
    assert_eq!(pid.owner, Some(key(NsType::User, 3)));
    assert_eq!(pid.parent, Some(key(NsType::Pid, 4)));
}
