//! The packaging tests that run containers (root, podman): the image the
//! way the DaemonSet runs it, and the systemd unit under a real systemd.

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use listns_skip::require_root;
use listns_tests::{
    NetnsGuard,
    api::At,
    packaging::{
        WatchLines, free_port, http_get, json_inodes, output, repo_file, require_tools, root,
        unit_capabilities, unshare_uts,
    },
};
use serde_json::Value;

/// Removes the test's container and image, whatever happens.
struct PodmanCleanup {
    container: &'static str,
    /// The image repository: every tag of it goes.
    repo: &'static str,
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
        let ids = Command::new("podman")
            .args(["images", "--quiet", "--filter"])
            .arg(format!("reference={}", self.repo))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            quiet(&["rmi", "--force", id]);
        }
    }
}

/// `podman run` as the DaemonSet runs the image: the host's PID namespace,
/// every capability dropped but the unit's (the same list:
/// `unit_daemonset_and_image_agree` checks), not privileged, the host's tracefs and BTF mounted,
/// a read-only root. `publish`: the metrics port on this loopback port,
/// else `--network none`. `api`: a host directory mounted at /run/listns
/// (the DaemonSet's hostPath). This machine's podman needs runc (crun refuses
/// its hybrid cgroup layout) and small ulimits.
fn podman_run(
    name: &str,
    image: &str,
    caps: &[String],
    publish: Option<u16>,
    api: Option<&std::path::Path>,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args([
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--name",
        name,
        "--pid=host",
    ])
    .arg(match publish {
        Some(port) => format!("--publish=127.0.0.1:{port}:9433"),
        None => "--network=none".into(),
    })
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
    .args(
        api.map(|dir| ["-v".to_string(), format!("{}:/run/listns", dir.display())])
            .into_iter()
            .flatten(),
    )
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
    if !require_root() || !require_tools(&["podman"]) {
        return;
    }
    let cleanup = PodmanCleanup {
        container: "listns-pkg-test",
        repo: "localhost/listns-pkg-test",
    };
    // The real build: `cargo xtask package` (static release binary, podman
    // build of packaging/Containerfile).
    let t = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["xtask", "package", "--image", cleanup.repo])
        .status()
        .unwrap();
    assert!(status.success(), "cargo xtask package failed ({status})");
    eprintln!("cargo xtask package: {:.1} s", t.elapsed().as_secs_f64());
    let caps = unit_capabilities(&repo_file("packaging/systemd/listns.service"));
    let image = format!("{}:latest", cleanup.repo);

    // The host's namespaces: a netns made here, and the initial ones.
    let _netns = NetnsGuard::new("listns-pkg-podman");
    let netns = listns_tests::ns_inode("/run/netns/listns-pkg-podman");
    let t = Instant::now();
    let out = output(&mut podman_run(
        cleanup.container,
        &image,
        &caps,
        None,
        None,
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
        &image,
        &caps,
        None,
        None,
        &["watch", "--json"],
    ));
    watch
        .wait(Duration::from_secs(90), |v| v["event"] == "existing")
        .expect("the container's initial inventory");
    assert!(
        listns_tests::wait_for(Duration::from_secs(10), || {
            (listns_tests::kernel::listns_prog_ids().len() == listns_tests::watch::programs())
                .then_some(())
        })
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

    // As shipped: the image's own command (`watch --json --metrics
    // 0.0.0.0:9433 --api-socket /run/listns/api.sock`), its port published
    // on loopback, scraped from here, and its API socket in a host
    // directory, asked from here.
    let port = free_port();
    let api_dir = tempfile::tempdir().unwrap();
    let served = WatchLines::spawn(&mut podman_run(
        cleanup.container,
        &image,
        &caps,
        Some(port),
        Some(api_dir.path()),
        &[],
    ));
    // /healthz says 503 "starting" until the tracer is attached and the
    // initial inventory is out; then 200.
    let names = [
        "listns_build_info",
        "listns_namespaces_created_total",
        "listns_hook_attached",
    ];
    let metrics = listns_tests::wait_for(Duration::from_secs(60), || {
        http_get(port, "/metrics")
            .filter(|(code, body)| *code == 200 && names.iter().all(|n| body.contains(n)))
    });
    let health = listns_tests::wait_for(Duration::from_secs(60), || {
        let (code, body) = http_get(port, "/healthz")?;
        if body.starts_with("starting") {
            assert_eq!(code, 503, "still starting, yet {code}");
            return None;
        }
        Some((code, body))
    });
    let socket = api_dir.path().join("api.sock");
    let listed = listns_tests::wait_for(Duration::from_secs(30), || {
        let a = listns_tests::api::get(&At::Unix(&socket), "/v1/namespaces", &[]).ok()?;
        (a.status == 200).then(|| json_inodes(a.body.as_bytes()))
    });
    let mode = std::fs::metadata(&socket).map(|m| m.permissions().mode() & 0o777);
    let (exit, stderr) = served.stop();
    let listed =
        listed.unwrap_or_else(|| panic!("GET /v1/namespaces on {socket:?} failed:\n{stderr}"));
    assert!(
        listed.contains(&netns),
        "the image's API misses the host's netns {netns}"
    );
    assert_eq!(mode.ok(), Some(0o600), "the API socket's mode");
    assert!(
        metrics.is_some(),
        "/metrics never showed {names:?}; stderr:\n{stderr}"
    );
    let (code, body) = health.expect("/healthz answers");
    assert_eq!(code, 200, "/healthz: {body}");
    assert!(
        exit.success(),
        "podman run exited {exit}; stderr:\n{stderr}"
    );
    drop(cleanup);
}

/// A container running systemd 252 (the host's own, on an overlay of the
/// host's root file system) as PID 1; removed on drop.
struct SystemdContainer {
    name: &'static str,
}

impl SystemdContainer {
    /// The name, with any leftover of an earlier run removed.
    fn fresh(name: &'static str) -> Self {
        drop(SystemdContainer { name });
        SystemdContainer { name }
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("podman")
            .args(["exec", self.name])
            .args(args)
            .output()
            .expect("podman exec")
    }

    fn exec_text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(args).stdout)
            .trim()
            .to_string()
    }
}

impl Drop for SystemdContainer {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--time", "0", self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_systemd_unit_runs_under_systemd() {
    if !require_root() || !require_tools(&["podman", "systemd-analyze"]) {
        return;
    }
    let systemd = std::path::Path::new("/lib/systemd/systemd");
    if !listns_skip::require(
        systemd.exists(),
        "no /lib/systemd/systemd to run the unit under",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = tmp.path().join("listns.service");
    std::fs::write(&unit, repo_file("packaging/systemd/listns.service")).unwrap();
    // The harness is privileged (systemd as PID 1 builds the service's
    // namespaces and cgroups); the service in it is sandboxed by systemd
    // alone. Its own PID namespace: systemd must be PID 1. The dynamically
    // linked build, as the README installs it.
    let c = SystemdContainer::fresh("listns-pkg-systemd");
    let t = Instant::now();
    output(
        Command::new("podman")
            .args(["--runtime", "runc", "run", "--detach", "--name", c.name])
            .args(["--privileged", "--network=none", "--systemd=always"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=4096:4096",
            ])
            // The host's /run holds podman's own storage: no copy-up.
            .args([
                "--tmpfs",
                "/run:rw,notmpcopyup",
                "--tmpfs",
                "/tmp:rw,notmpcopyup",
            ])
            .arg("-v")
            .arg(format!(
                "{}:/etc/systemd/system/listns.service:ro",
                unit.display()
            ))
            .arg("-v")
            .arg(format!(
                "{}:/usr/local/bin/listns:ro",
                listns_tests::listns_bin().display()
            ))
            .args(["--rootfs", "/:O"])
            .arg(systemd)
            .arg("--unit=listns.service"),
    );
    let journal = || -> Vec<Value> {
        c.exec_text(&["journalctl", "-u", "listns", "-o", "cat", "--no-pager"])
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let ready = listns_tests::wait_for(Duration::from_secs(90), || {
        journal()
            .iter()
            .any(|v| v["event"] == "existing")
            .then_some(())
    });
    let status = c.exec_text(&["systemctl", "status", "--no-pager", "-n", "20", "listns"]);
    assert!(
        ready.is_some(),
        "the service printed no inventory:\n{status}"
    );
    assert!(
        listns_tests::wait_for(Duration::from_secs(10), || {
            (listns_tests::kernel::listns_prog_ids().len() == listns_tests::watch::programs())
                .then_some(())
        })
        .is_some(),
        "the service did not attach every program:\n{status}"
    );
    eprintln!(
        "listns.service under systemd: ready in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The sandbox is in force: an unprivileged user, no new privileges, a
    // seccomp filter, nothing beyond the unit's capabilities.
    let pid = c.exec_text(&[
        "systemctl",
        "show",
        "--property=MainPID",
        "--value",
        "listns",
    ]);
    let proc_status = c.exec_text(&["cat", &format!("/proc/{pid}/status")]);
    let field = |name: &str| {
        proc_status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in:\n{proc_status}"))
            .to_string()
    };
    assert_ne!(
        field("Uid:").split_whitespace().next(),
        Some("0"),
        "runs as root"
    );
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    let bounding = u64::from_str_radix(&field("CapBnd:"), 16).unwrap();
    let caps = unit_capabilities(&repo_file("packaging/systemd/listns.service"));
    let allowed = caps
        .iter()
        .fold(0u64, |m, c| m | 1 << super::privileged::cap_number(c));
    assert_eq!(
        bounding & !allowed,
        0,
        "capabilities beyond the unit's: {bounding:#x}"
    );

    // A namespace made in the container reaches the journal as an event.
    let ino: u64 = c
        .exec_text(&[
            "unshare",
            "-u",
            "stat",
            "-L",
            "-c",
            "%i",
            "/proc/self/ns/uts",
        ])
        .parse()
        .expect("an inode");
    let created = listns_tests::wait_for(Duration::from_secs(15), || {
        journal()
            .into_iter()
            .find(|v| v["event"] == "created" && v["type"] == "uts" && v["ns"] == ino)
    });
    let status = c.exec_text(&["systemctl", "status", "--no-pager", "-n", "20", "listns"]);
    assert!(
        created.is_some(),
        "no created event for uts {ino} in the journal:\n{status}"
    );

    // The metrics listener the unit names, on the service's loopback.
    let curl = |path: &str| {
        c.exec_text(&[
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            &format!("http://127.0.0.1:9433{path}"),
        ])
    };
    let health = listns_tests::wait_for(Duration::from_secs(30), || {
        let answer = curl("/healthz");
        answer.ends_with("\n200").then_some(answer)
    });
    assert!(health.is_some(), "/healthz: {}", curl("/healthz"));
    let metrics = curl("/metrics");
    assert!(
        metrics.ends_with("\n200") && metrics.contains("listns_build_info"),
        "/metrics:\n{metrics}"
    );

    // The API socket in the unit's RuntimeDirectory=: 0600 and the
    // service's (dynamic) user's, answered for root with what the tracer
    // knows (the namespace made above, gone, with its creator), refused to
    // any other user.
    let socket = listns::api::DEFAULT_SOCKET;
    let stat = c.exec_text(&["stat", "-c", "%a %u", socket]);
    let uid = field("Uid:").split_whitespace().next().unwrap().to_string();
    assert_eq!(stat, format!("600 {uid}"), "{socket}: mode and owner");
    let api = |path: &str| {
        let url = format!("http://localhost{path}");
        c.exec_text(&[
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            socket,
            &url,
        ])
    };
    let gone = listns_tests::wait_for(Duration::from_secs(15), || {
        let answer = api("/v1/gone");
        let (body, code) = answer.rsplit_once('\n')?;
        assert_eq!(code, "200", "/v1/gone: {answer}");
        let v: Value = serde_json::from_str(body).unwrap();
        v["gone"]
            .as_array()?
            .iter()
            .find(|g| g["type"] == "uts" && g["ns"] == ino)
            .cloned()
    });
    let gone = gone.unwrap_or_else(|| panic!("uts {ino} not in /v1/gone: {}", api("/v1/gone")));
    assert_eq!(gone["comm"], "unshare", "{gone}");
    let answer = api("/v1/namespaces");
    let (body, code) = answer.rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "/v1/namespaces: {answer}");
    // The service's own UTS namespace (its sandbox's), as the kernel says.
    let own_uts: u64 = c
        .exec_text(&["stat", "-L", "-c", "%i", &format!("/proc/{pid}/ns/uts")])
        .parse()
        .expect("an inode");
    assert!(
        json_inodes(body.as_bytes()).contains(&own_uts),
        "/v1/namespaces lacks the service's uts {own_uts}"
    );
    // curl's 7: it could not connect (EACCES on the socket).
    let refused = c.exec(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "curl",
        "-s",
        "--unix-socket",
        socket,
        "http://localhost/v1/namespaces",
    ]);
    assert_eq!(
        refused.status.code(),
        Some(7),
        "another user reached the API socket: {}",
        String::from_utf8_lossy(&refused.stdout)
    );

    // systemctl stop: SIGTERM, a clean exit, no restart.
    let stop = c.exec(&["systemctl", "stop", "listns"]);
    assert!(stop.status.success(), "systemctl stop failed");
    let result = c.exec_text(&[
        "systemctl",
        "show",
        "--property=Result",
        "--property=ExecMainStatus",
        "--property=NRestarts",
        "listns",
    ]);
    for want in ["Result=success", "ExecMainStatus=0", "NRestarts=0"] {
        assert!(result.lines().any(|l| l == want), "after stop: {result}");
    }
    // RuntimeDirectory= goes with the service, and the socket with it.
    assert!(
        !c.exec(&["test", "-e", "/run/listns"]).status.success(),
        "/run/listns outlived the service"
    );
}
