use super::*;

impl Inventory {
    /// Test shorthand: adds a holder to the namespace of a sighting;
    /// returns true when it was new.
    pub(crate) fn add_holder(
        &mut self,
        ty: NsType,
        inum: u64,
        id: Option<u64>,
        holder: Holder,
    ) -> bool {
        self.entry(ty, inum, id).1.holders.insert(holder)
    }
}

fn proc_holder(pid: u32) -> Holder {
    Holder::Process { pid, link: "net" }
}

#[test]
fn id_upgrades_inode_only_entry() {
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Net, 10, None, proc_holder(1));
    inv.add_holder(NsType::Net, 10, Some(77), proc_holder(2));
    assert_eq!(inv.len(), 1);
    let (key, ns) = inv.iter().next().unwrap();
    assert_eq!(key.id, Some(77));
    assert_eq!(ns.holders, BTreeSet::from([proc_holder(1), proc_holder(2)]));
    // A later sighting without an id still finds it.
    assert_eq!(inv.resolve(NsType::Net, 10, None), *key);
}

#[test]
fn reused_inode_with_new_id_is_a_new_namespace() {
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Uts, 5, Some(1), proc_holder(1));
    inv.add_holder(NsType::Uts, 5, Some(2), proc_holder(2));
    assert_eq!(inv.len(), 2);
    assert!(inv.get(&NsKey::new(NsType::Uts, 5, Some(1))).is_some());
    assert_eq!(
        inv.by_inode(NsType::Uts, 5),
        Some(NsKey::new(NsType::Uts, 5, Some(2)))
    );
}

#[test]
fn same_inode_other_type_is_distinct() {
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Uts, 5, None, proc_holder(1));
    inv.add_holder(NsType::Ipc, 5, None, proc_holder(1));
    assert_eq!(inv.len(), 2);
}

#[test]
fn rescan_keeps_origins_and_counts_new() {
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Net, 10, Some(1), proc_holder(7));
    let key = NsKey::new(NsType::Net, 10, Some(1));
    inv.get_mut(&key).unwrap().origin = Some(Origin {
        pid: 7,
        tid: 7,
        comm: "unshare".into(),
        syscall: "unshare",
        flags: 0,
        time_ns: 1,
        container: None,
    });
    let mut scan = Inventory::new();
    scan.add_holder(NsType::Net, 10, Some(1), Holder::Fd { pid: 8, fd: 4 });
    scan.add_holder(NsType::Uts, 20, Some(2), proc_holder(8));
    let r = inv.merge_rescan(scan);
    assert_eq!(r.discovered, vec![NsKey::new(NsType::Uts, 20, Some(2))]);
    assert!(r.unheld.is_empty());
    let ns = inv.get(&key).unwrap();
    assert_eq!(ns.origin.as_ref().unwrap().comm, "unshare");
    assert_eq!(
        ns.holders.iter().map(Holder::kind).collect::<Vec<_>>(),
        vec!["fd"]
    );
    assert_eq!(inv.len(), 2);
}

#[test]
fn a_gone_namespace_found_alive_again_is_discovered_without_the_dead_ones_creator() {
    // Without ids: the inode of a gone namespace, reused by a new one
    // whose created record was lost.
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Uts, 30, None, proc_holder(7));
    let key = NsKey::new(NsType::Uts, 30, None);
    let ns = inv.get_mut(&key).unwrap();
    ns.state = State::Gone { since_ns: 5 };
    ns.origin = Some(Origin {
        pid: 7,
        tid: 7,
        comm: "old".into(),
        syscall: "unshare",
        flags: 0,
        time_ns: 1,
        container: None,
    });
    let mut scan = Inventory::new();
    scan.add_holder(NsType::Uts, 30, None, proc_holder(9));
    let r = inv.merge_rescan(scan);
    assert_eq!(r.discovered, vec![key]);
    let ns = inv.get(&key).unwrap();
    assert_eq!(ns.state, State::Alive);
    assert!(ns.origin.is_none(), "{:?}", ns.origin);
}

#[test]
fn hidden_namespace_held_by_an_io_uring_becomes_a_row() {
    // The watcher knows it by id from the tracer and called it hidden; a
    // rescan finds it (by inode only: nothing opens it) in a ring's files.
    let mut inv = Inventory::new();
    let key = inv.entry(NsType::Uts, 70, Some(12)).0;
    inv.get_mut(&key).unwrap().hidden = true;
    let ring = Holder::IoUring { pid: 9, fd: 4 };
    let mut scan = Inventory::new();
    scan.add_holder(NsType::Uts, 70, None, ring.clone());
    let r = inv.merge_rescan(scan);
    assert!(r.discovered.is_empty(), "{:?}", r.discovered);
    let ns = inv.get(&key).unwrap();
    assert!(!ns.hidden);
    assert_eq!(ns.holders.iter().collect::<Vec<_>>(), vec![&ring]);
    assert_eq!(ring.kind(), "io-uring");
    assert_eq!(ring.pid(), Some(9));
}

#[test]
fn listns_ids_no_scan_explains_become_hidden() {
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Net, 10, Some(1), proc_holder(7));
    let added = inv.add_unexplained(
        &[(NsType::Net, 1), (NsType::Net, 2), (NsType::Uts, 1)],
        |id| (id == 2).then_some(4026532999),
    );
    assert_eq!(
        added,
        vec![
            NsKey::new(NsType::Net, 4026532999, Some(2)),
            NsKey::new(NsType::Uts, 0, Some(1))
        ]
    );
    let hidden: Vec<_> = inv
        .iter()
        .filter(|(_, ns)| ns.hidden)
        .map(|(k, _)| (k.ty, k.inum, k.id))
        .collect();
    assert_eq!(
        hidden,
        vec![
            (NsType::Net, 4026532999, Some(2)),
            (NsType::Uts, 0, Some(1))
        ]
    );
}

#[test]
fn rescan_reports_namespaces_that_lost_every_holder() {
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Net, 10, Some(1), proc_holder(7));
    let r = inv.merge_rescan(Inventory::new());
    assert_eq!(r.unheld, vec![NsKey::new(NsType::Net, 10, Some(1))]);
    assert!(inv.get(&r.unheld[0]).unwrap().holders.is_empty());
}

/// Holders sort by pid, then kind, and those without a pid come last:
/// what a process holds is one contiguous run (exits rely on it).
#[test]
fn holders_sort_by_process_then_kind() {
    let sorted: Vec<Holder> = vec![
        Holder::Process {
            pid: 5,
            link: "net",
        },
        Holder::Thread {
            pid: 5,
            tid: 6,
            link: "net",
        },
        Holder::Fd { pid: 5, fd: 3 },
        Holder::Socket { pid: 5, fd: 1 },
        Holder::Tun { pid: 5, fd: 0 },
        Holder::Process {
            pid: 6,
            link: "ipc",
        },
        Holder::Fd {
            pid: u32::MAX,
            fd: 0,
        },
        Holder::BindMount {
            path: "/a".into(),
            mnt_ns: 1,
        },
        Holder::BindMount {
            path: "/b".into(),
            mnt_ns: 0,
        },
        Holder::Child {
            ty: NsType::Net,
            ns: 1,
        },
    ];
    let mut shuffled = sorted.clone();
    shuffled.reverse();
    shuffled.swap(2, 7);
    let set: BTreeSet<Holder> = shuffled.into_iter().collect();
    assert_eq!(set.into_iter().collect::<Vec<_>>(), sorted);
}

#[test]
fn the_alive_copy_leaves_out_the_gone_and_still_resolves_inodes() {
    let mut inv = Inventory::new();
    inv.add_holder(NsType::Net, 10, Some(1), Holder::Fd { pid: 8, fd: 4 });
    let (gone, ns) = inv.entry(NsType::Net, 11, Some(2));
    ns.state = State::Gone { since_ns: 5 };
    // Inode 10 reused by a new namespace after the first one died.
    inv.get_mut(&NsKey::new(NsType::Net, 10, Some(1)))
        .unwrap()
        .state = State::Gone { since_ns: 6 };
    inv.add_holder(NsType::Net, 10, Some(3), Holder::Fd { pid: 9, fd: 5 });
    let copy = inv.alive_copy();
    assert_eq!(copy.len(), 1);
    assert!(copy.get(&gone).is_none());
    assert_eq!(
        copy.resolve(NsType::Net, 10, None),
        NsKey::new(NsType::Net, 10, Some(3))
    );
    assert_eq!(inv.len(), 3, "the original keeps every namespace");
}
