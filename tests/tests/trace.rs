//! Privileged tests of the live tracer: real eBPF programs, real namespaces.

use std::time::{Duration, Instant};

use listns::inventory::live::{TaskEvent, TaskEventKind};
use listns::ns::NsType;
use listns::trace::{Options, Tracer};
use listns_tests::require_root;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Collects events until `done` says enough or the deadline passes.
async fn collect(
    tracer: &mut Tracer,
    timeout: Duration,
    mut done: impl FnMut(&[TaskEvent]) -> bool,
) -> (Vec<TaskEvent>, u64) {
    let end = Instant::now() + timeout;
    let mut events = Vec::new();
    let mut lost = 0;
    while !done(&events) && Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tracer.next_batch()).await {
            Ok(Ok(batch)) => {
                events.extend(batch.events);
                lost += batch.lost;
            }
            Ok(Err(e)) => panic!("tracer: {e}"),
            Err(_) => break,
        }
    }
    (events, lost)
}

#[test]
fn unshare_net_is_reported_as_created() {
    if !require_root("unshare_net_is_reported_as_created") {
        return;
    }
    rt().block_on(async {
        let mut tracer = Tracer::start(&Options::default()).expect("tracer starts");
        assert!(
            tracer.status.failed.is_empty(),
            "{:?}",
            tracer.status.failed
        );
        let before = listns_tests::ns_inode("/proc/self/ns/net");
        let child = std::process::Command::new("unshare")
            .args(["-n", "true"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let (events, lost) = collect(&mut tracer, Duration::from_secs(5), |evs| {
            evs.iter()
                .any(|e| e.pid == pid && e.kind == TaskEventKind::Unshare)
        })
        .await;
        assert_eq!(lost, 0);
        let ev = events
            .iter()
            .find(|e| e.pid == pid && e.kind == TaskEventKind::Unshare)
            .unwrap_or_else(|| panic!("no unshare event from pid {pid}: {events:?}"));
        assert_eq!(ev.comm, "unshare");
        let net = ev
            .slots
            .iter()
            .find(|s| s.ty == NsType::Net && s.slot == 3)
            .expect("net slot");
        assert!(net.changed && net.created, "{net:?}");
        assert_ne!(net.inum, before);
        assert_eq!(
            net.prev.map(|p| p.0),
            Some(before),
            "prev is the netns before unshare"
        );
    });
}
