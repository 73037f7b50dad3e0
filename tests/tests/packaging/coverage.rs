//! Coverage under the shipped privileges (issue 22): one held state with
//! every case the scan covers, listed by root, by listns with exactly the
//! unit's credentials (a non-root uid with ambient capabilities, as
//! DynamicUser= runs it) and by the image run the way the DaemonSet's
//! securityContext runs it (podman): all list the same namespaces. Taking
//! each capability away in turn shows what it is for (the table in the
//! unit's comments).

use std::{collections::BTreeSet, process::Command};

use listns_skip::require_root;
use listns_tests::{
    held::{Held, json_keys, lost},
    listns_bin,
    packaging::{output, repo_file, require_tools, root, unit_capabilities},
};
use serde_json::Value;

use super::privileged::{as_the_unit, world_executable_listns};

/// What happens to the tracer with only `caps`: a short `watch` (its API
/// socket in `dir`, which the unprivileged user may write), "attaches" or
/// the start of the line that says why it cannot start.
fn tracer_line(bin: &std::path::Path, caps: &[String], dir: &std::path::Path) -> String {
    let out = as_the_unit(bin, caps)
        .args(["watch", "--json", "--duration", "2", "--api-socket"])
        .arg(dir.join("t.sock"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "listns watch failed:\n{err}");
    err.lines()
        .find(|l| l.contains("cannot start the tracer") || l.contains("not attached"))
        .map_or_else(
            || "attaches".to_string(),
            |l| {
                let l = l.trim_start_matches("listns: ");
                let cut: String = l.chars().take(60).collect();
                format!("{cut}...")
            },
        )
}

#[test]
fn the_units_capabilities_list_what_root_lists() {
    if !require_root() {
        return;
    }
    let caps = unit_capabilities(&repo_file("packaging/systemd/listns.service"));
    let tmp = tempfile::tempdir().unwrap();
    let bin = world_executable_listns(tmp.path());
    let held = Held::build("listns-cov-unit");
    let root_scan = || json_keys(&output(Command::new(&bin).arg("-J")).stdout);

    let before = root_scan();
    let missing_for_root = lost(&held.cases, &before);
    assert!(
        missing_for_root.is_empty(),
        "root's listns misses {missing_for_root:?}: the held state is wrong"
    );
    let capped = output(as_the_unit(&bin, &caps).arg("-J"));
    let seen = json_keys(&capped.stdout);
    let after = root_scan();
    let stable: BTreeSet<_> = before.intersection(&after).cloned().collect();
    let missed: Vec<_> = stable.difference(&seen).collect();
    assert!(
        missed.is_empty() && lost(&held.cases, &seen).is_empty(),
        "with the unit's capabilities listns misses {missed:?} (held cases: {:?}); stderr:\n{}",
        lost(&held.cases, &seen),
        String::from_utf8_lossy(&capped.stderr)
    );
    // Nothing made up: what it lists, root listed before or after.
    let all: BTreeSet<_> = before.union(&after).cloned().collect();
    let extra: Vec<_> = seen.difference(&all).collect();
    assert!(
        extra.len() <= 2,
        "listed by the unit's user only: {extra:?}"
    );

    // Each capability taken away in turn: what the scan and the tracer
    // lose (the table in the unit's comments).
    let sock_dir = tmp.path().join("sock");
    std::fs::create_dir(&sock_dir).unwrap();
    std::fs::set_permissions(
        &sock_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let without = |gone: &[&str]| -> Vec<String> {
        caps.iter()
            .filter(|c| !gone.contains(&c.as_str()))
            .cloned()
            .collect()
    };
    eprintln!("| without | the scan misses | the tracer |\n|---|---|---|");
    let mut useless = Vec::new();
    for cap in &caps {
        let fewer = without(&[cap]);
        let seen = json_keys(&as_the_unit(&bin, &fewer).arg("-J").output().unwrap().stdout);
        let scan_lost = lost(&held.cases, &seen);
        let tracer = tracer_line(&bin, &fewer, &sock_dir);
        eprintln!(
            "| CAP_{} | {} | {tracer} |",
            cap.to_ascii_uppercase(),
            if scan_lost.is_empty() {
                "nothing".to_string()
            } else {
                scan_lost.join("; ")
            }
        );
        if scan_lost.is_empty() && tracer == "attaches" {
            useless.push(cap.as_str());
        }
    }
    // The kernel accepts CAP_SYS_ADMIN in place of CAP_BPF and CAP_PERFMON
    // (bpf_capable(), perfmon_capable()): each of those two is shown needed
    // once CAP_SYS_ADMIN is gone too.
    for cap in ["bpf", "perfmon"] {
        let tracer = tracer_line(&bin, &without(&[cap, "sys_admin"]), &sock_dir);
        eprintln!(
            "| CAP_{} and CAP_SYS_ADMIN | | {tracer} |",
            cap.to_ascii_uppercase()
        );
        assert_ne!(
            tracer, "attaches",
            "without {cap} and sys_admin the tracer still attaches"
        );
    }
    useless.retain(|c| !["bpf", "perfmon"].contains(c));
    assert!(
        useless.is_empty(),
        "the unit grants capabilities nothing needs: {useless:?}"
    );
    drop(held);
}

/// Removes the test's image (every tag of the repository), whatever
/// happens.
struct ImageCleanup(&'static str);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let ids = Command::new("podman")
            .args(["images", "--quiet", "--filter"])
            .arg(format!("reference={}", self.0))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("podman").args(["rmi", "--force", id]).output();
        }
    }
}

/// `podman run` of `image` with the DaemonSet's pod and container
/// settings: hostPID, the securityContext (each field it sets mapped to
/// podman's flag; a field this test does not know fails it), the hostPath
/// volumes at their mountPaths. This machine's podman needs runc and small
/// ulimits (see container.rs).
fn as_the_daemonset(ds: &Value, image: &str, api: &std::path::Path) -> Command {
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "run", "--rm", "--network=none"]);
    cmd.args([
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
    ]);
    assert_eq!(pod["hostPID"], true, "the DaemonSet lost hostPID");
    cmd.arg("--pid=host");
    let sc = c["securityContext"].as_object().expect("a securityContext");
    for (key, v) in sc {
        match (key.as_str(), v) {
            ("privileged", Value::Bool(false)) => {}
            ("allowPrivilegeEscalation", Value::Bool(false)) => {
                cmd.args(["--security-opt", "no-new-privileges"]);
            }
            ("readOnlyRootFilesystem", Value::Bool(true)) => {
                cmd.arg("--read-only");
            }
            ("runAsUser", v) => {
                cmd.arg(format!("--user={v}"));
            }
            ("runAsNonRoot", Value::Bool(false)) => {}
            ("capabilities", v) => {
                assert_eq!(v["drop"], serde_json::json!(["ALL"]));
                let add: Vec<&str> = v["add"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                cmd.arg("--cap-drop=all")
                    .arg(format!("--cap-add={}", add.join(",")));
            }
            // podman's default seccomp profile is the runtime's default.
            ("seccompProfile", v) if v["type"] == "RuntimeDefault" => {}
            ("appArmorProfile", v) if v["type"] == "Unconfined" => {
                cmd.args(["--security-opt", "apparmor=unconfined"]);
            }
            (key, v) => panic!("the test does not map securityContext.{key}: {v}"),
        }
    }
    for m in c["volumeMounts"].as_array().unwrap() {
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == m["name"])
            .expect("the mount's volume");
        let host = volume["hostPath"]["path"]
            .as_str()
            .expect("a hostPath volume");
        let host = if host == "/run/listns" {
            api.to_str().unwrap()
        } else {
            host
        };
        let ro = if m["readOnly"] == true { ":ro" } else { "" };
        cmd.arg("-v")
            .arg(format!("{host}:{}{ro}", m["mountPath"].as_str().unwrap()));
    }
    cmd.arg(image);
    cmd
}

#[test]
fn the_image_under_the_daemonsets_security_context_lists_what_root_lists() {
    if !require_root() || !require_tools(&["podman", "kubernetes-validate"]) {
        return;
    }
    let repo = "localhost/listns-cov-test";
    let _cleanup = ImageCleanup(repo);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["xtask", "package", "--image", repo])
        .status()
        .unwrap();
    assert!(status.success(), "cargo xtask package failed ({status})");
    let ds = super::daemonset();
    let held = Held::build("listns-cov-ds");
    let api = tempfile::tempdir().unwrap();
    let before = json_keys(&output(Command::new(listns_bin()).arg("-J")).stdout);
    assert!(
        lost(&held.cases, &before).is_empty(),
        "root misses {:?}",
        lost(&held.cases, &before)
    );
    let run = output(as_the_daemonset(&ds, &format!("{repo}:latest"), api.path()).arg("-J"));
    let after = json_keys(&output(Command::new(listns_bin()).arg("-J")).stdout);
    let seen = json_keys(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stable: BTreeSet<_> = before.intersection(&after).cloned().collect();
    let missed: Vec<_> = stable.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "in the image under the DaemonSet's securityContext listns misses {missed:?} (held cases: {:?}); stderr:\n{stderr}",
        lost(&held.cases, &seen)
    );
    // What root did not list is the container's own (its mount, UTS, IPC,
    // network and cgroup namespaces, held by listns alone).
    let v: Value = serde_json::from_slice(&run.stdout).unwrap();
    let all: BTreeSet<_> = before.union(&after).cloned().collect();
    for n in v["namespaces"].as_array().unwrap() {
        let key = (
            n["type"].as_str().unwrap().to_string(),
            n["ns"].as_u64().unwrap(),
        );
        if !all.contains(&key) {
            assert!(
                n["command"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("/usr/bin/listns")),
                "listed in the container only, and not the container's own: {n}"
            );
        }
    }
    drop(held);
}
