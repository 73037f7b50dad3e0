//! The lifecycle's unit tests.

use super::*;
use crate::inventory::Holder;
use crate::ns::NsType;

fn setup() -> (Inventory, NsKey) {
    let mut inv = Inventory::new();
    let key = NsKey::new(NsType::Net, 50, Some(9));
    // A namespace whose last holder has gone.
    inv.entry(NsType::Net, 50, Some(9));
    (inv, key)
}

fn left(key: NsKey) -> Vec<Change> {
    vec![Change {
        kind: ChangeKind::Left,
        key,
        link: "net",
    }]
}

/// With handles, a namespace the tracer saw without its id cannot be
/// opened by handle: the rescan decides, as without handles (it used to
/// be retried, then called hidden, and stayed in the inventory).
#[test]
fn a_key_without_id_is_decided_by_the_rescan_even_with_handles() {
    // Decided by a raw probe, not by the code under test: where handles
    // work, `Handles::probe` must succeed.
    if !listns_skip::require_kernel(
        listns_skip::kernel_has_nsfs_handles(),
        "nsfs file handles",
        (6, 18),
    ) {
        return;
    }
    let h = handle::Handles::probe().expect("nsfs handles work here, Handles::probe says no");
    let mut inv = Inventory::new();
    let key = NsKey::new(NsType::Uts, 50, None);
    inv.entry(NsType::Uts, 50, None);
    let t0 = Instant::now();
    let mut lc = Lifecycle::new(Method::Handles(h), Tuning::default(), t0);
    lc.note(&left(key), &inv, t0);
    let t1 = t0 + Duration::from_millis(250);
    let v = lc.run(&mut inv, t1, 2, || Some(Inventory::new()));
    assert_eq!(v, vec![Verdict::Gone(key)]);
}

#[test]
fn holders_method_reports_gone_when_rescan_finds_nothing() {
    let (mut inv, key) = setup();
    let t0 = Instant::now();
    let mut lc = Lifecycle::new(Method::Holders, Tuning::default(), t0);
    lc.note(&left(key), &inv, t0);
    // Not yet due: debounced.
    assert!(
        lc.run(&mut inv, t0, 1, || panic!("no rescan before the debounce"))
            .is_empty()
    );
    let t1 = t0 + Duration::from_millis(250);
    let v = lc.run(&mut inv, t1, 2, || Some(Inventory::new()));
    assert_eq!(v, vec![Verdict::Gone(key)]);
    assert_eq!(inv.get(&key).unwrap().state, State::Gone { since_ns: 2 });
}

#[test]
fn a_holder_found_by_the_rescan_keeps_it_alive() {
    let (mut inv, key) = setup();
    let t0 = Instant::now();
    let mut lc = Lifecycle::new(Method::Holders, Tuning::default(), t0);
    lc.note(&left(key), &inv, t0);
    let mut scan = Inventory::new();
    scan.add_holder(NsType::Net, 50, Some(9), Holder::Fd { pid: 8, fd: 3 });
    let v = lc.run(&mut inv, t0 + Duration::from_secs(1), 2, || Some(scan));
    assert!(v.is_empty());
    assert_eq!(inv.get(&key).unwrap().state, State::Alive);
}

#[test]
fn what_a_liveness_rescan_finds_unknown_is_reported_discovered() {
    let (mut inv, key) = setup();
    let t0 = Instant::now();
    let mut lc = Lifecycle::new(Method::Holders, Tuning::default(), t0);
    lc.note(&left(key), &inv, t0);
    // A namespace whose records were lost: only the rescan sees it.
    let mut scan = Inventory::new();
    scan.add_holder(NsType::Uts, 60, Some(11), Holder::Fd { pid: 8, fd: 3 });
    let v = lc.run(&mut inv, t0 + Duration::from_secs(1), 2, || Some(scan));
    let new = NsKey::new(NsType::Uts, 60, Some(11));
    assert_eq!(v, vec![Verdict::Discovered(new), Verdict::Gone(key)]);
}

#[test]
fn held_namespaces_are_not_scheduled() {
    let mut inv = Inventory::new();
    let key = NsKey::new(NsType::Net, 50, Some(9));
    inv.add_holder(
        NsType::Net,
        50,
        Some(9),
        Holder::BindMount {
            path: "/x".into(),
            mnt_ns: 1,
        },
    );
    let t0 = Instant::now();
    let mut lc = Lifecycle::new(Method::Holders, Tuning::default(), t0);
    lc.note(&left(key), &inv, t0);
    assert!(lc.pending.is_empty());
}

#[test]
fn gone_namespaces_are_forgotten_after_the_limit() {
    let (mut inv, key) = setup();
    let mut lc = Lifecycle::new(Method::Holders, Tuning::default(), Instant::now());
    lc.mark_gone(&mut inv, &key, 1_000);
    assert!(lc.forget(&mut inv, 2_000).is_empty());
    let later = 1_000 + Tuning::default().forget_after.as_nanos() as u64 + 1;
    assert_eq!(lc.forget(&mut inv, later), vec![key]);
    assert!(inv.get(&key).is_none());
}

#[test]
fn at_most_max_gone_are_remembered() {
    let mut inv = Inventory::new();
    let tuning = Tuning {
        max_gone: 2,
        ..Tuning::default()
    };
    let mut lc = Lifecycle::new(Method::Holders, tuning, Instant::now());
    let keys: Vec<NsKey> = (1..=3)
        .map(|i| NsKey::new(NsType::Uts, i, Some(i)))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        inv.add_holder(
            k.ty,
            k.inum,
            k.id,
            Holder::Fd {
                pid: 1,
                fd: i as i32,
            },
        );
        lc.mark_gone(&mut inv, k, 10 + i as u64);
    }
    assert_eq!(lc.forget(&mut inv, 20), vec![keys[0]]);
    assert_eq!(inv.len(), 2);
}

#[test]
fn sweep_schedules_unheld_namespaces() {
    let (mut inv, key) = setup();
    let t0 = Instant::now();
    let tuning = Tuning {
        sweep_every: Duration::from_secs(1),
        ..Tuning::default()
    };
    let mut lc = Lifecycle::new(Method::Holders, tuning, t0);
    // Holders-only sweeps are rescans: never more often than HOLDERS_SWEEP.
    let early = lc.run(&mut inv, t0 + Duration::from_secs(2), 5, || {
        panic!("rescan too early")
    });
    assert!(early.is_empty());
    let v = lc.run(&mut inv, t0 + HOLDERS_SWEEP, 5, || Some(Inventory::new()));
    assert_eq!(v, vec![Verdict::Gone(key)]);
}

#[test]
fn holders_sweep_rechecks_namespaces_whose_holders_may_be_stale() {
    let mut inv = Inventory::new();
    let key = NsKey::new(NsType::Net, 50, None);
    inv.add_holder(
        NsType::Net,
        50,
        None,
        Holder::BindMount {
            path: "/x".into(),
            mnt_ns: 1,
        },
    );
    let t0 = Instant::now();
    let mut lc = Lifecycle::new(Method::Holders, Tuning::default(), t0);
    // The rescan no longer finds the (unmounted) bind mount: gone.
    let v = lc.run(&mut inv, t0 + HOLDERS_SWEEP, 5, || Some(Inventory::new()));
    assert_eq!(v, vec![Verdict::Gone(key)]);
}

/// The next check is the earliest one scheduled; running the due ones
/// leaves the later ones, whose time then comes next.
#[test]
fn checks_come_due_in_order() {
    let mut inv = Inventory::new();
    let (a, b) = (
        NsKey::new(NsType::Net, 50, Some(9)),
        NsKey::new(NsType::Uts, 60, Some(10)),
    );
    inv.entry(a.ty, a.inum, a.id);
    inv.entry(b.ty, b.inum, b.id);
    let t0 = Instant::now();
    let debounce = Tuning::default().debounce;
    let mut lc = Lifecycle::new(Method::Holders, Tuning::default(), t0);
    lc.note(&left(b), &inv, t0 + Duration::from_millis(50));
    lc.note(&left(a), &inv, t0);
    // Noted again while pending: still the first time.
    lc.note(&left(a), &inv, t0 + Duration::from_millis(70));
    assert_eq!(lc.next_due(), Some(t0 + debounce));
    let v = lc.run(&mut inv, t0 + debounce, 2, || Some(Inventory::new()));
    assert_eq!(v, vec![Verdict::Gone(a)]);
    assert_eq!(
        lc.next_due(),
        Some(t0 + Duration::from_millis(50) + debounce)
    );
    let v = lc.run(&mut inv, t0 + Duration::from_secs(1), 3, || {
        Some(Inventory::new())
    });
    assert_eq!(v, vec![Verdict::Gone(b)]);
    assert!(lc.pending.is_empty() && lc.queue.is_empty());
}
