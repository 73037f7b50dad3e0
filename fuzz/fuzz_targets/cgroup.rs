//! `/proc/PID/cgroup` (scan/container.rs): any bytes parse without a panic;
//! a container found names a known runtime and a non-empty id taken from the
//! file, the one the first matching line gives; and each runtime's own
//! naming, with any id, is recognised as that runtime and id.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use listns::fuzzing::{from_cgroup_file, from_cgroup_path};

const RUNTIMES: [&str; 6] = [
    "docker",
    "containerd",
    "kubernetes",
    "podman",
    "lxc",
    "systemd-nspawn",
];

#[derive(Arbitrary, Debug)]
struct Named {
    template: u8,
    hierarchy: u8,
    id: String,
}

fuzz_target!(|data: &[u8]| {
    let found = from_cgroup_file(data);
    let text = String::from_utf8_lossy(data);
    if let Some(c) = &found {
        assert!(RUNTIMES.contains(&c.runtime), "{c:?}");
        assert!(!c.id.is_empty(), "{c:?} from {text:?}");
        assert!(!c.id.contains('/') && !c.id.contains('\n'), "{c:?}");
        assert!(text.contains(c.id.as_str()));
    }
    let first = text
        .lines()
        .find_map(|l| from_cgroup_path(l.splitn(3, ':').nth(2)?));
    assert_eq!(found, first);

    let mut u = Unstructured::new(data);
    let Ok(n) = Named::arbitrary(&mut u) else {
        return;
    };
    let id = n.id;
    if id.is_empty() || id.contains(['/', '\n', '\r']) {
        return;
    }
    let (path, runtime) = match n.template % 4 {
        0 => (format!("/system.slice/docker-{id}.scope"), "docker"),
        1 => (
            format!("/system.slice/cri-containerd-{id}.scope"),
            "containerd",
        ),
        2 => (
            format!("/kubepods.slice/kubepods-burstable.slice/cri-containerd-{id}.scope"),
            "kubernetes",
        ),
        _ if id.starts_with("conmon-") => return,
        _ => (format!("/machine.slice/libpod-{id}.scope"), "podman"),
    };
    let file = format!("1:name=systemd:/\n{}:memory:{path}\n0::/\n", n.hierarchy);
    let c = from_cgroup_file(file.as_bytes()).expect("a runtime's own cgroup path");
    assert_eq!((c.runtime, c.id.as_str()), (runtime, id.as_str()));
});
