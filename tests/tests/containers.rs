//! Privileged container-naming test with a real podman container: the
//! resolver must name it by its `--name`, from the pid the scan sees.
//! Root and podman are needed; `tests/install-deps.sh` installs podman,
//! runc and busybox-static when missing. Without root the test says why
//! and passes, except under CI (`CI` set), where it fails. Run with
//! `--test-threads=1`.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use listns::scan::{container::from_cgroup_file, runtime::Resolver};
use listns_skip::require_root;
use listns_tests::{listns_bin, wait_for};
use serde_json::Value;

const IMAGE: &str = "localhost/listns-test-busybox";
const NAME: &str = "listns-test-web";

/// Runs a command, returns its trimmed stdout; panics with its stderr.
fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether a command is on the PATH.
fn have(c: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {c}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The project's installer, when podman, runc or busybox is missing.
fn install_deps() {
    if have("podman") && have("runc") && Path::new("/bin/busybox").exists() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install-deps.sh");
    let st = Command::new("bash")
        .arg(&script)
        .status()
        .expect("install-deps.sh");
    assert!(st.success(), "{} failed: {st}", script.display());
}

/// A FROM scratch image holding only a static busybox: built offline.
fn build_image() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).expect("copy /bin/busybox");
    std::fs::write(
        dir.path().join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .unwrap();
    output(
        "podman",
        &["build", "-q", "-t", IMAGE, dir.path().to_str().unwrap()],
    );
}

/// A running container, removed on drop.
struct Podman(String);

impl Podman {
    fn run(name: &str) -> Podman {
        remove(name);
        let id = output(
            "podman",
            &[
                "run",
                "-d",
                "--name",
                name,
                "--runtime",
                "runc",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=4096:4096",
                // For `unshare` inside it (the watch filter test).
                "--cap-add",
                "SYS_ADMIN",
                IMAGE,
                "sleep",
                "60",
            ],
        );
        Podman(id)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

fn remove(name_or_id: &str) {
    let _ = Command::new("podman")
        .args(["rm", "-f", "-t", "0", name_or_id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[test]
fn podman_container_is_named_from_its_pid() {
    if !require_root() {
        return;
    }
    // The kernel matrix's guests boot a bare initramfs: no podman and no
    // package manager to install it. The host run covers this test.
    if !listns_skip::require_on_host(
        have("podman") || have("apt-get"),
        "no podman and no apt-get to install it (a kernel-matrix guest; the host run covers it)",
    ) {
        return;
    }
    install_deps();
    build_image();
    let c = Podman::run(NAME);
    let pid: u32 = output("podman", &["inspect", "-f", "{{.State.Pid}}", &c.0])
        .parse()
        .expect("container pid");
    assert!(pid > 0, "container {NAME} has no pid");

    // What the scan sees: the pid's cgroup claim...
    let cgroup = std::fs::read(format!("/proc/{pid}/cgroup")).unwrap();
    let claim = from_cgroup_file(&cgroup).expect("podman cgroup not recognised");
    assert_eq!((claim.runtime, claim.id.as_str()), ("podman", c.0.as_str()));

    // ...named by the resolver from the runtime's own files.
    let mut r = Resolver::host();
    let info = r.resolve(&claim, Some(pid));
    assert_eq!(info.name.as_deref(), Some(NAME), "{info:?}");
    assert_eq!(info.label(), format!("{NAME} ({})", &c.0[..12]));
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["name"], NAME);
    assert_eq!(json["runtime"], "podman");

    // A process outside the container (this test) claiming the same cgroup
    // name is not given the container's name.
    let forged = r.resolve(&claim, Some(std::process::id()));
    assert_eq!(forged.name, None);
    assert_eq!(r.mismatches, 1);

    // What a user sees: the table's CONTAINER column and the default -J.
    let short = &c.0[..12];
    let label = format!("{NAME} ({short})");
    let table = output(
        listns_bin().to_str().unwrap(),
        &["-o", "NS,TYPE,PID,CONTAINER", "-p", &pid.to_string()],
    );
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some(&pid.to_string()))
        .collect();
    assert!(!rows.is_empty(), "{table}");
    for row in &rows {
        assert!(row.ends_with(&label), "{table}");
    }
    let list: Value = serde_json::from_str(&output(
        listns_bin().to_str().unwrap(),
        &["-J", "-p", &pid.to_string()],
    ))
    .unwrap();
    listns_tests::assert_valid_json(&list);
    let own: Vec<&Value> = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["pid"] == pid)
        .collect();
    assert!(!own.is_empty(), "{list:#}");
    for n in own {
        assert_eq!(
            n["container"],
            serde_json::json!({"runtime": "podman", "id": c.0, "name": NAME}),
            "{n:#}"
        );
    }

    // `listns watch --container NAME` prints what happens in it, not on the host.
    watch_container_filter(&c.0);
}

/// Starts `listns watch --container NAME`, makes a UTS namespace on the
/// host and one inside the container: only the second shows, and its
/// created and joined lines name the container.
fn watch_container_filter(id: &str) {
    let mut w = Command::new(listns_bin())
        .args(["watch", "--json", "--events-only", "--container", NAME])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_for(Duration::from_secs(30), || {
        (listns_tests::kernel::listns_prog_ids().len() >= listns_tests::watch::programs())
            .then_some(())
    });
    assert!(ready.is_some(), "programs not attached");
    // Give the scan behind the attach a moment to finish.
    std::thread::sleep(Duration::from_secs(2));
    let host = Command::new("unshare")
        .args(["-u", "true"])
        .spawn()
        .unwrap();
    let host_pid = host.id();
    assert!(host.wait_with_output().unwrap().status.success());
    // Inside: a UTS namespace, then another process joining it (setns).
    output(
        "podman",
        &[
            "exec",
            NAME,
            "busybox",
            "sh",
            "-c",
            "busybox unshare -u busybox sleep 3 & busybox sleep 1; \
             busybox nsenter -t $! -u busybox sleep 1",
        ],
    );
    let (tx, rx) = mpsc::channel();
    let stdout = w.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).unwrap();
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let of = |seen: &[Value], event: &str| {
        seen.iter()
            .find(|v| v["event"] == event && v["type"] == "uts")
            .cloned()
    };
    let found = wait_for(Duration::from_secs(15), || {
        while let Ok(v) = rx.try_recv() {
            seen.push(v);
        }
        Some((of(&seen, "created")?, of(&seen, "joined")?))
    });
    let _ = w.kill();
    let _ = w.wait();
    let (ev, joined) =
        found.unwrap_or_else(|| panic!("no created and joined uts inside {id}: {seen:#?}"));
    assert_ne!(ev["pid"], host_pid);
    // The task's container, on the created and the joined line alike.
    let container = serde_json::json!({"runtime": "podman", "id": id, "name": NAME});
    assert_eq!(ev["container"], container, "{ev:#}");
    assert_eq!(joined["container"], container, "{joined:#}");
    assert_eq!(joined["syscall"], "setns", "{joined:#}");
    assert_eq!(joined["ns"], ev["ns"], "joined the namespace made inside");
    assert!(
        seen.iter().all(|v| v["pid"] != host_pid),
        "a host process's event passed the filter: {seen:#?}"
    );
}

/// A process that enters a container's cgroup, makes a namespace, moves
/// out and exits at once is still attributed to the container: the hook
/// records the cgroup it was in, and its file (read afterwards, as the
/// attribution once did) would say it is in none, or be gone. The
/// container is a cgroupfs-style `docker/ID` cgroup made by the test in
/// the hierarchy listns attributes by (in a kernel-matrix guest, which
/// mounts none, a cgroup2 mount the test makes).
#[test]
fn creator_is_attributed_by_the_cgroup_it_was_in() {
    use listns::scan::attribution::Containers;
    if !require_root() {
        return;
    }
    let mut mounted = None;
    if Containers::on_host("/proc".into()).mount_point().is_none() {
        let dir = tempfile::tempdir().unwrap();
        nix::mount::mount(
            Some("cgroup2"),
            dir.path(),
            Some("cgroup2"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount cgroup2");
        mounted = Some(dir);
    }
    let containers = Containers::on_host("/proc".into());
    let top = containers
        .mount_point()
        .expect("a cgroup hierarchy")
        .to_path_buf();
    let id = format!(
        "{:064x}",
        std::process::id() as u128 * 0x9e37_79b9_7f4a_7c15
    );
    let parent = top.join(format!("listns-test-{}", std::process::id()));
    let cgroup = parent.join("docker").join(&id);
    std::fs::create_dir_all(&cgroup).unwrap();
    let mut w = listns_tests::watch::Watch::start(&[]);
    let script = format!(
        "echo $$ > {procs} && exec unshare -u sh -c 'echo $$ > {root}'",
        procs = cgroup.join("cgroup.procs").display(),
        root = top.join("cgroup.procs").display()
    );
    let child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let pid = child.id();
    let status = child.wait_with_output().unwrap().status;
    let created = w.wait(Duration::from_secs(10), |v| {
        listns_tests::watch::is(v, "created", "uts") && v["pid"] == pid
    });
    w.interrupt();
    for d in [&cgroup, &cgroup.parent().unwrap().to_path_buf(), &parent] {
        let _ = std::fs::remove_dir(d);
    }
    if let Some(dir) = mounted {
        let _ = nix::mount::umount(dir.path());
    }
    assert!(status.success(), "the creator failed: {status}");
    let created = created.unwrap_or_else(|| panic!("no created uts by pid {pid}"));
    assert_eq!(created["container"]["runtime"], "docker", "{created:#}");
    assert_eq!(created["container"]["id"], id.as_str(), "{created:#}");
}
