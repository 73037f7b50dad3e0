//! Kernel struct offsets from BTF (trace/offsets.rs), on malformed BTF: any
//! bytes give offsets or an error, without a panic, a hang or a stack
//! overflow; the same bytes give the same answer; and every offset the
//! tracer needs is either found or named as missing, never both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use listns::fuzzing::resolve_btf;
use listns_common::{
    OFF_MISSING, SLOT_CGROUP, SLOT_IPC, SLOT_MNT, SLOT_NET, SLOT_PID, SLOT_PID_FOR_CHILDREN,
    SLOT_TIME, SLOT_TIME_FOR_CHILDREN, SLOT_USER, SLOT_UTS,
};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = resolve_btf(data) else {
        return;
    };
    let again = resolve_btf(data).expect("same bytes, same answer");
    assert_eq!(format!("{:?}", r), format!("{:?}", again));

    let o = &r.offsets;
    let required = [
        ("task_struct.nsproxy", o.task_nsproxy),
        ("task_struct.real_cred", o.task_real_cred),
        ("task_struct.thread_pid", o.task_thread_pid),
        ("task_struct.pid", o.task_pid),
        ("task_struct.tgid", o.task_tgid),
        ("task_struct.real_parent", o.task_real_parent),
        ("cred.user_ns", o.cred_user_ns),
        ("cred.uid", o.cred_uid),
        ("pid.level", o.pid_level),
        ("pid.numbers", o.pid_numbers),
        ("upid.ns", o.upid_ns),
        ("upid (size)", o.upid_size),
        ("ns_common.inum", o.ns_common_inum),
        ("nsproxy.uts_ns", o.nsproxy[SLOT_UTS]),
        ("nsproxy.ipc_ns", o.nsproxy[SLOT_IPC]),
        ("nsproxy.mnt_ns", o.nsproxy[SLOT_MNT]),
        ("nsproxy.net_ns", o.nsproxy[SLOT_NET]),
        ("nsproxy.cgroup_ns", o.nsproxy[SLOT_CGROUP]),
        ("nsproxy.time_ns", o.nsproxy[SLOT_TIME]),
        (
            "nsproxy.time_ns_for_children",
            o.nsproxy[SLOT_TIME_FOR_CHILDREN],
        ),
        (
            "nsproxy.pid_ns_for_children",
            o.nsproxy[SLOT_PID_FOR_CHILDREN],
        ),
        ("uts_namespace.ns", o.ns_common[SLOT_UTS]),
        ("ipc_namespace.ns", o.ns_common[SLOT_IPC]),
        ("mnt_namespace.ns", o.ns_common[SLOT_MNT]),
        ("net.ns", o.ns_common[SLOT_NET]),
        ("cgroup_namespace.ns", o.ns_common[SLOT_CGROUP]),
        ("time_namespace.ns", o.ns_common[SLOT_TIME]),
        ("time_namespace.ns", o.ns_common[SLOT_TIME_FOR_CHILDREN]),
        ("pid_namespace.ns", o.ns_common[SLOT_PID]),
        ("pid_namespace.ns", o.ns_common[SLOT_PID_FOR_CHILDREN]),
        ("user_namespace.ns", o.ns_common[SLOT_USER]),
    ];
    for (name, off) in required {
        let listed = r.missing.iter().any(|m| m == name);
        assert_eq!(
            off == OFF_MISSING,
            listed,
            "{name}: {off} vs missing {:?}",
            r.missing
        );
    }
    assert_eq!(r.missing.len(), {
        let mut names: Vec<_> = required.iter().map(|(n, _)| *n).collect();
        names.dedup();
        names
            .iter()
            .filter(|n| r.missing.iter().any(|m| m == *n))
            .count()
    });
    // Pid and user do not live in nsproxy.
    assert_eq!(
        (o.nsproxy[SLOT_PID], o.nsproxy[SLOT_USER]),
        (OFF_MISSING, OFF_MISSING)
    );
    assert!(
        r.missing.windows(2).all(|w| w[0] < w[1]),
        "sorted, no repeats"
    );
});
