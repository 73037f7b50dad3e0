//! The packaging tests that run containers (root, podman): the image the
//! way the DaemonSet runs it, and the systemd unit under a real systemd.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use listns_tests::{
    NetnsGuard,
    packaging::{
        WatchLines, json_inodes, output, repo_file, require_tools, root, unit_capabilities,
        unshare_uts,
    },
    require_root,
};

/// Removes the test's container and image, whatever happens.
struct PodmanCleanup {
    container: &'static str,
    image: &'static str,
}

impl Drop for PodmanCleanup {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("podman")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["rm", "--force", "--time", "0", self.container]);
        quiet(&["rmi", "--force", self.image]);
    }
}

/// `podman run` as the DaemonSet runs the image: the host's PID namespace,
/// every capability dropped but the unit's (the same list; the test above
/// checks they agree), not privileged, the host's tracefs and BTF mounted,
/// a read-only root. `--network none`: these runs serve no metrics.
/// This machine's podman needs runc (crun refuses its hybrid cgroup
/// layout) and small ulimits.
fn podman_run(name: &str, image: &str, caps: &[String], args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args([
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--name",
        name,
        "--pid=host",
        "--network=none",
    ])
    .args(["--cap-drop=all", "--read-only"])
    .arg(format!(
        "--cap-add={}",
        caps.iter()
            .map(|c| format!("CAP_{}", c.to_ascii_uppercase()))
            .collect::<Vec<_>>()
            .join(",")
    ))
    .args(["-v", "/sys/kernel/tracing:/sys/kernel/tracing"])
    .args(["-v", "/sys/kernel/btf:/sys/kernel/btf:ro"])
    .args([
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
    ])
    .arg(image)
    .args(args);
    cmd
}

#[test]
fn the_image_runs_like_the_daemonset_and_sees_the_host() {
    let test = "the_image_runs_like_the_daemonset_and_sees_the_host";
    if !require_root(test) || !require_tools(test, &["podman"]) {
        return;
    }
    let cleanup = PodmanCleanup {
        container: "listns-pkg-test",
        image: "localhost/listns-pkg-test:latest",
    };
    // The real build: `cargo xtask package` (static release binary, podman
    // build of packaging/Containerfile).
    let t = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["xtask", "package", "--image", "localhost/listns-pkg-test"])
        .status()
        .unwrap();
    assert!(status.success(), "cargo xtask package failed ({status})");
    eprintln!("cargo xtask package: {:.1} s", t.elapsed().as_secs_f64());
    let caps = unit_capabilities(&repo_file("packaging/systemd/listns.service"));

    // The host's namespaces: a netns made here, and the initial ones.
    let _netns = NetnsGuard::new("listns-pkg-podman");
    let netns = listns_tests::ns_inode("/run/netns/listns-pkg-podman");
    let t = Instant::now();
    let out = output(&mut podman_run(
        cleanup.container,
        cleanup.image,
        &caps,
        &["-J"],
    ));
    eprintln!("podman run listns -J: {:.1} s", t.elapsed().as_secs_f64());
    let seen = json_inodes(&out.stdout);
    assert!(
        seen.contains(&netns),
        "the container's listns -J misses the host's netns {netns}"
    );
    let host_net = listns_tests::ns_inode("/proc/2/ns/net");
    assert!(
        seen.contains(&host_net),
        "the container's listns -J misses the host's initial netns"
    );

    // The tracer in the container reports a namespace made on the host.
    let t = Instant::now();
    let mut watch = WatchLines::spawn(&mut podman_run(
        cleanup.container,
        cleanup.image,
        &caps,
        &["watch", "--json"],
    ));
    watch
        .wait(Duration::from_secs(90), |v| v["event"] == "existing")
        .expect("the container's initial inventory");
    assert!(
        listns_tests::wait_for(Duration::from_secs(10), || (listns_tests::ours_loaded()
            == listns_tests::OUR_PROGRAMS.len())
        .then_some(()))
        .is_some(),
        "the container did not attach every program: {:?}",
        listns_tests::loaded_program_names()
    );
    eprintln!(
        "podman run listns watch: ready in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ino = unshare_uts();
    let ev = watch.wait(Duration::from_secs(10), |v| {
        v["event"] == "created" && v["type"] == "uts" && v["ns"] == ino
    });
    let (exit, stderr) = watch.stop();
    let ev = ev
        .unwrap_or_else(|| panic!("no created event for the host's uts {ino}; stderr:\n{stderr}"));
    assert_eq!(ev["comm"], "unshare");
    // podman passes SIGTERM on; listns detaches and exits 0.
    assert!(
        exit.success(),
        "podman run exited {exit}; stderr:\n{stderr}"
    );
    drop(cleanup);
}
