//! Unit tests of the snapshot, the event ring and the publisher.

use super::*;
use crate::output::contract::Time;

fn lost(n: u64) -> Lost {
    Lost {
        time: Time(0),
        count: n,
        missed: 0,
    }
}

#[test]
fn replay_from_a_cursor_and_what_was_dropped() {
    let shared = Shared::new(Inventory::new(), ScanStats::default(), 10);
    let mut p = Publisher::new(shared.clone());
    for n in 1..=(RING as u64 + 5) {
        p.lost(lost(n));
    }
    // The first five are gone from the ring.
    let r = shared.replay(0, 3);
    assert_eq!(r.dropped, 5);
    assert_eq!(
        r.events.iter().map(|k| k.cursor).collect::<Vec<_>>(),
        [6, 7, 8]
    );
    let r = shared.replay(RING as u64 + 3, 100);
    assert_eq!(r.dropped, 0);
    assert_eq!(r.events.len(), 2);
    assert_eq!(
        r.events[1].raw().get(),
        format!(
            r#"{{"cursor":{c},"event":"lost","time":"1970-01-01T00:00:00.000000Z","count":{c},"missed":0}}"#,
            c = RING + 5
        )
    );
    // Nothing after the last one.
    let r = shared.replay(RING as u64 + 5, 100);
    assert!(r.events.is_empty());
    assert_eq!(r.dropped, 0);
}

#[test]
fn history_is_bounded_per_namespace() {
    let shared = Shared::new(Inventory::new(), ScanStats::default(), 10);
    let mut p = Publisher::new(shared.clone());
    let key = NsKey::new(crate::ns::NsType::Net, 4026532000, Some(5000));
    let other = NsKey::new(crate::ns::NsType::Uts, 4026532001, None);
    for n in 0..(HISTORY as u64 + 2) {
        p.verdict(VerdictKind::Hidden, key, &Namespace::default(), n);
    }
    p.verdict(VerdictKind::Gone, other, &Namespace::default(), 99);
    let (h, dropped) = shared.history(&key);
    assert_eq!(h.len(), HISTORY);
    assert_eq!(dropped, 2);
    assert_eq!(h[0].cursor, 3);
    assert_eq!(shared.history(&other).0.len(), 1);
    // The inventory has neither: both are forgotten.
    p.prune(&Inventory::new());
    assert!(shared.history(&key).0.is_empty());
}

#[tokio::test]
async fn a_request_waits_for_a_fresher_snapshot() {
    let shared = Shared::new(Inventory::new(), ScanStats::default(), 10);
    let mut p = Publisher::new(shared.clone());
    let mut inv = Inventory::new();
    inv.entry(crate::ns::NsType::Net, 4026532000, None);
    p.changed();
    let asker = {
        let shared = shared.clone();
        tokio::spawn(async move { shared.snapshot().await.inv.len() })
    };
    p.wanted().await;
    assert!(p.due().is_some());
    p.publish(&inv, &ScanStats::default());
    assert_eq!(asker.await.unwrap(), 1);
    // Unchanged since: answered at once, no request made.
    let snap = shared.snapshot().await;
    assert_eq!(snap.inv.len(), 1);
    assert!(p.due().is_none());
    // Rendered once per snapshot and request; failures never kept.
    let mut renders = 0;
    for _ in 0..3 {
        let (status, body) = shared.rendered(&snap, "/v1/namespaces", || {
            renders += 1;
            (StatusCode::OK, Bytes::from_static(b"{}"))
        });
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"{}");
    }
    assert_eq!(renders, 1);
    for _ in 0..2 {
        shared.rendered(&snap, "/v1/namespaces?type=x", || {
            renders += 1;
            (StatusCode::BAD_REQUEST, Bytes::new())
        });
    }
    assert_eq!(renders, 3);
    // A new snapshot renders again.
    p.publish(&inv, &ScanStats::default());
    let snap = shared.snapshot().await;
    shared.rendered(&snap, "/v1/namespaces", || {
        renders += 1;
        (StatusCode::OK, Bytes::new())
    });
    assert_eq!(renders, 4);
}
