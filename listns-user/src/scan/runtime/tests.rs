//! Fixture trees laid out as each engine lays out its files on a host.

use std::{fs, path::Path};

use super::*;

const ID: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
const ID2: &str = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";

/// Writes `rel` (host-absolute or relative) below the fixture root, never
/// outside it.
fn write(root: &Path, rel: &str, text: &str) {
    let rel = rel.trim_start_matches('/');
    assert!(
        !rel.split('/').any(|c| c == ".."),
        "{rel} leaves the fixture"
    );
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn container(runtime: &'static str, id: &str) -> Container {
    Container::new(runtime, id)
}

/// A runc state.json as runc writes it: annotations and the bundle as
/// labels, the init pid with its start time.
fn runc_state(labels: &[(&str, &str)], bundle: &str, pid: u32, start: u64) -> String {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    l.push(format!("bundle={bundle}"));
    serde_json::json!({
        "id": ID, "init_process_pid": pid, "init_process_start": start,
        "config": {"labels": l, "rootfs": "/x"}, "namespace_paths": {}
    })
    .to_string()
}

fn proc_entry(proc_root: &Path, pid: u32, start: u64, mnt: u64, pidns: u64) {
    let dir = proc_root.join(pid.to_string());
    fs::create_dir_all(dir.join("ns")).unwrap();
    let mut stat = format!("{pid} (sleep) S 1 {pid} {pid} 0 -1 4194560");
    for _ in 0..12 {
        stat.push_str(" 0");
    }
    stat.push_str(&format!(" {start} 0 0\n"));
    fs::write(dir.join("stat"), stat).unwrap();
    std::os::unix::fs::symlink(format!("mnt:[{mnt}]"), dir.join("ns/mnt")).unwrap();
    std::os::unix::fs::symlink(format!("pid:[{pidns}]"), dir.join("ns/pid")).unwrap();
}

#[test]
fn podman_name_from_containers_json_beside_the_bundle() {
    let t = tempfile::tempdir().unwrap();
    let bundle = format!("/var/lib/containers/storage/overlay-containers/{ID}/userdata");
    write(
        t.path(),
        &format!("run/runc/{ID}/state.json"),
        &runc_state(&[("io.container.manager", "libpod")], &bundle, 100, 5),
    );
    write(
        t.path(),
        &format!("{bundle}/config.json"),
        r#"{"annotations":{}}"#,
    );
    write(
        t.path(),
        "var/lib/containers/storage/overlay-containers/containers.json",
        &format!(
            r#"[{{"id":"{ID2}","names":["other"]}},{{"id":"{ID}","names":["web"],"metadata":"{{}}"}}]"#
        ),
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    let info = r.resolve(&container("podman", ID), None);
    assert_eq!(info.name.as_deref(), Some("web"));
    assert_eq!(info.pod, None);
    assert_eq!(info.label(), format!("web ({})", &ID[..12]));
    // The other container of the same file is named from the cache.
    let other = r.resolve(&container("podman", ID2), None);
    assert_eq!(other.name.as_deref(), Some("other"));
    assert_eq!(r.storage_names.len(), 1, "containers.json parsed once");
}

#[test]
fn rootless_podman_state_under_run_user() {
    let t = tempfile::tempdir().unwrap();
    let graph = "/home/alice/.local/share/containers/storage";
    let bundle = format!("{graph}/overlay-containers/{ID}/userdata");
    write(
        t.path(),
        &format!("run/user/1000/crun/{ID}/status"),
        &format!(r#"{{"pid":4242,"process-start-time":77,"bundle":"{bundle}","rootfs":"/x"}}"#),
    );
    write(
        t.path(),
        &format!("{bundle}/config.json"),
        r#"{"annotations":{}}"#,
    );
    write(
        t.path(),
        &format!("{graph}/overlay-containers/containers.json"),
        &format!(r#"[{{"id":"{ID}","names":["alices-db"]}}]"#),
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    let info = r.resolve(&container("podman", ID), None);
    assert_eq!(info.name.as_deref(), Some("alices-db"));
}

#[test]
fn containerd_cri_from_the_task_bundle() {
    let t = tempfile::tempdir().unwrap();
    // No runtime state readable (say, another low-level runtime): the
    // bundle is found in containerd's task directory.
    write(
        t.path(),
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        r#"{"ociVersion":"1.1.0","annotations":{
            "io.kubernetes.cri.container-type":"container",
            "io.kubernetes.cri.container-name":"nginx",
            "io.kubernetes.cri.sandbox-name":"web-7d9f",
            "io.kubernetes.cri.sandbox-namespace":"shop",
            "io.kubernetes.cri.sandbox-id":"aaaa"}}"#,
    );
    write(
        t.path(),
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID2}/config.json"),
        r#"{"annotations":{
            "io.kubernetes.cri.container-type":"sandbox",
            "io.kubernetes.cri.sandbox-name":"web-7d9f",
            "io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    let c = r.resolve(&container("kubernetes", ID), None);
    assert_eq!(c.pod.as_deref(), Some("web-7d9f"));
    assert_eq!(c.k8s_namespace.as_deref(), Some("shop"));
    assert_eq!(c.k8s_container.as_deref(), Some("nginx"));
    assert_eq!(c.name.as_deref(), Some("nginx"));
    assert_eq!(c.label(), format!("shop/web-7d9f/nginx ({})", &ID[..12]));
    // The sandbox (pause) is the pod: no container name.
    let s = r.resolve(&container("kubernetes", ID2), None);
    assert_eq!(s.pod.as_deref(), Some("web-7d9f"));
    assert_eq!((s.name, s.k8s_container), (None, None));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["runtime"], "kubernetes");
    assert_eq!(json["k8s_namespace"], "shop");
}

#[test]
fn containerd_runc_state_annotations_and_nerdctl_name() {
    let t = tempfile::tempdir().unwrap();
    let bundle = format!("/run/containerd/io.containerd.runtime.v2.task/default/{ID}");
    write(
        t.path(),
        &format!("run/containerd/runc/default/{ID}/state.json"),
        &runc_state(&[("nerdctl/name", "cache")], &bundle, 10, 1),
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    assert_eq!(
        r.resolve(&container("containerd", ID), None)
            .name
            .as_deref(),
        Some("cache")
    );
}

#[test]
fn crio_annotations_in_the_runroot_bundle() {
    let t = tempfile::tempdir().unwrap();
    let bundle = format!("/run/containers/storage/overlay-containers/{ID}/userdata");
    write(
        t.path(),
        &format!("{bundle}/config.json"),
        r#"{"annotations":{
            "io.container.manager":"cri-o",
            "io.kubernetes.cri-o.ContainerType":"container",
            "io.kubernetes.container.name":"api",
            "io.kubernetes.pod.name":"api-5c4b",
            "io.kubernetes.pod.namespace":"prod"}}"#,
    );
    // CRI-O's storage name is k8s_…; the annotations win over it.
    write(
        t.path(),
        "var/lib/containers/storage/overlay-containers/containers.json",
        &format!(r#"[{{"id":"{ID}","names":["k8s_api_api-5c4b_prod_uid_0"]}}]"#),
    );
    write(
        t.path(),
        &format!("run/runc/{ID}/state.json"),
        &runc_state(&[], &bundle, 10, 1),
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    let c = r.resolve(&container("kubernetes", ID), None);
    assert_eq!(
        (
            c.pod.as_deref(),
            c.k8s_namespace.as_deref(),
            c.name.as_deref()
        ),
        (Some("api-5c4b"), Some("prod"), Some("api"))
    );
}

#[test]
fn docker_config_v2_with_data_root_and_dockershim_labels() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "etc/docker/daemon.json",
        r#"{"data-root":"/srv/docker"}"#,
    );
    write(
        t.path(),
        &format!("srv/docker/containers/{ID}/config.v2.json"),
        r#"{"ID":"x","Name":"/web","Config":{"Labels":{"com.example":"1"}},
            "State":{"Running":true,"Pid":321}}"#,
    );
    write(
        t.path(),
        &format!("srv/docker/containers/{ID2}/config.v2.json"),
        r#"{"Name":"/k8s_app_shop-1_default_uid_0","Config":{"Labels":{
            "io.kubernetes.pod.name":"shop-1","io.kubernetes.pod.namespace":"default",
            "io.kubernetes.container.name":"app","io.kubernetes.docker.type":"container"}}}"#,
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    let d = r.resolve(&container("docker", ID), None);
    assert_eq!(d.name.as_deref(), Some("web"));
    let k = r.resolve(&container("kubernetes", ID2), None);
    assert_eq!(
        (k.pod.as_deref(), k.name.as_deref()),
        (Some("shop-1"), Some("app"))
    );
}

#[test]
fn unsafe_ids_and_unknown_containers_resolve_to_the_cgroup_claim() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "etc/passwd/config.v2.json",
        r#"{"Name":"/gotcha"}"#,
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    for id in ["../../etc/passwd", "web1", "abc", ""] {
        let c = r.resolve(&container("docker", id), None);
        assert_eq!((c.name, c.id.as_str()), (None, id));
    }
    let c = r.resolve(&container("lxc", ID), None);
    assert_eq!(c.name, None);
    assert_eq!(c.label(), format!("lxc:{}", &ID[..12]));
}

#[test]
fn a_pid_outside_the_containers_namespaces_is_not_named() {
    let t = tempfile::tempdir().unwrap();
    let proc_root = t.path().join("proc");
    let bundle = format!("/var/lib/containers/storage/overlay-containers/{ID}/userdata");
    write(
        t.path(),
        &format!("run/runc/{ID}/state.json"),
        &runc_state(&[], &bundle, 100, 555),
    );
    write(
        t.path(),
        "var/lib/containers/storage/overlay-containers/containers.json",
        &format!(r#"[{{"id":"{ID}","names":["web"]}}]"#),
    );
    proc_entry(&proc_root, 100, 555, 1, 11); // the container's init
    proc_entry(&proc_root, 101, 600, 1, 11); // a process inside it
    proc_entry(&proc_root, 102, 601, 2, 11); // inside, own mount ns
    proc_entry(&proc_root, 200, 700, 3, 12); // another container's process
    let mut r = Resolver::new(t.path(), &proc_root);
    let c = container("podman", ID);
    assert_eq!(r.resolve(&c, Some(101)).name.as_deref(), Some("web"));
    assert_eq!(r.resolve(&c, Some(102)).name.as_deref(), Some("web"));
    assert_eq!(r.resolve(&c, Some(200)).name, None);
    assert_eq!(r.mismatches, 1);
    // A gone pid proves nothing: taken at its cgroup's word.
    assert_eq!(r.resolve(&c, Some(999)).name.as_deref(), Some("web"));

    // A replaced init (another start time) proves nothing either.
    let t2 = tempfile::tempdir().unwrap();
    let p2 = t2.path().join("proc");
    write(
        t2.path(),
        &format!("run/runc/{ID}/state.json"),
        &runc_state(&[], &bundle, 100, 1),
    );
    write(
        t2.path(),
        "var/lib/containers/storage/overlay-containers/containers.json",
        &format!(r#"[{{"id":"{ID}","names":["web"]}}]"#),
    );
    proc_entry(&p2, 100, 555, 1, 11);
    proc_entry(&p2, 200, 700, 3, 12);
    let mut r = Resolver::new(t2.path(), &p2);
    assert_eq!(r.resolve(&c, Some(200)).name.as_deref(), Some("web"));
}

#[test]
fn broken_files_are_skipped() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), &format!("run/runc/{ID}/state.json"), "{not json");
    write(
        t.path(),
        "var/lib/containers/storage/overlay-containers/containers.json",
        "[{\"id\": 5}]",
    );
    write(
        t.path(),
        &format!("var/lib/docker/containers/{ID}/config.v2.json"),
        r#"{"Name":"/still-found"}"#,
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    assert_eq!(
        r.resolve(&container("docker", ID), None).name.as_deref(),
        Some("still-found")
    );
}

#[test]
fn start_time_skips_a_command_with_parentheses() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("7");
    fs::create_dir_all(&dir).unwrap();
    let mut stat = "7 (a) b) (c) S 1 7 7 0 -1 4194560".to_string();
    for _ in 0..12 {
        stat.push_str(" 0");
    }
    stat.push_str(" 4321 0\n");
    fs::write(dir.join("stat"), stat).unwrap();
    assert_eq!(stores::start_time(t.path(), 7), Some(4321));
}

#[test]
fn misses_are_retried_and_a_changed_containers_json_is_read_again() {
    let t = tempfile::tempdir().unwrap();
    let file = "var/lib/containers/storage/overlay-containers/containers.json";
    write(
        t.path(),
        file,
        &format!(r#"[{{"id":"{ID}","names":["first"]}}]"#),
    );
    let mut r = Resolver::new(t.path(), t.path().join("proc"));
    assert_eq!(
        r.resolve(&container("podman", ID), None).name.as_deref(),
        Some("first")
    );
    // A container created after the first parse: containers.json changed.
    assert_eq!(r.resolve(&container("podman", ID2), None).name, None);
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(
        t.path(),
        file,
        &format!(r#"[{{"id":"{ID}","names":["first"]}},{{"id":"{ID2}","names":["second"]}}]"#),
    );
    // Within the miss TTL the miss stands...
    assert_eq!(r.resolve(&container("podman", ID2), None).name, None);
    // ...after it the files are read again.
    r.miss_ttl = Duration::ZERO;
    assert_eq!(
        r.resolve(&container("podman", ID2), None).name.as_deref(),
        Some("second")
    );
}
