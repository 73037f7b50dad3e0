//! `cargo xtask dist`, the release, checked as a user installs it: the
//! checksums hold, the tarball has everything it promises, its binary is
//! static and runs with an empty environment (user names without NSS, an
//! unknown uid as its number), the SBOM lists the crates Cargo.lock pins,
//! and the OCI archive loads into podman and runs.

use std::{
    fs,
    process::{Command, Stdio},
};

use listns_skip::require_root;
use listns_tests::packaging::{output, repo_file, require_tools, root};

const IMAGE: &str = "localhost/listns-dist-test";

/// Removes the test's image, whatever happens.
struct ImageCleanup;

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let ids = Command::new("podman")
            .args(["images", "--quiet", "--filter"])
            .arg(format!("reference={IMAGE}"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("podman")
                .args(["rmi", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn text(o: std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The version Cargo.lock pins for `name` (its first entry).
fn locked_version(lock: &str, name: &str) -> String {
    let at = lock
        .find(&format!("name = \"{name}\"\nversion = \""))
        .unwrap_or_else(|| panic!("{name} not in Cargo.lock"));
    let rest = &lock[at..].lines().nth(1).unwrap()["version = \"".len()..];
    rest.trim_end_matches('"').to_string()
}

#[test]
fn the_release_installs_and_runs_without_cargo() {
    if !require_root() || !require_tools(&["podman"]) {
        return;
    }
    let _cleanup = ImageCleanup;
    let out = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["xtask", "dist", "--image", IMAGE, "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "cargo xtask dist failed ({status})");
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("listns-{version}-x86_64-linux");

    // Every file is in SHA256SUMS, and each sum holds.
    let sums = fs::read_to_string(out.path().join("SHA256SUMS")).unwrap();
    for f in [
        format!("{name}.tar.gz"),
        format!("listns-{version}.cdx.json"),
        format!("listns-{version}-oci.tar"),
    ] {
        assert!(sums.contains(&format!("  {f}\n")), "{f} not in\n{sums}");
    }
    output(Command::new("sha256sum").current_dir(out.path()).args([
        "--check",
        "--strict",
        "SHA256SUMS",
    ]));

    // The tarball, unpacked as a user would.
    let unpacked = tempfile::tempdir().unwrap();
    output(
        Command::new("tar")
            .arg("-xzf")
            .arg(out.path().join(format!("{name}.tar.gz")))
            .arg("-C")
            .arg(unpacked.path()),
    );
    let top = unpacked.path().join(&name);
    for f in [
        "listns",
        "man/man1/listns.1",
        "man/man1/listns-watch.1",
        "completions/listns.bash",
        "completions/_listns",
        "completions/listns.fish",
        "systemd/listns.service",
        "kubernetes/daemonset.yaml",
        "prometheus/listns-alerts.yaml",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "LICENSE-GPL-2.0",
        "CHANGELOG.md",
        "README.md",
    ] {
        assert!(top.join(f).is_file(), "{f} missing from the tarball");
    }
    assert_eq!(
        fs::read_to_string(top.join("systemd/listns.service")).unwrap(),
        repo_file("packaging/systemd/listns.service")
    );
    let bin = top.join("listns");
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let said =
        String::from_utf8_lossy(&ldd.stdout).to_string() + &String::from_utf8_lossy(&ldd.stderr);
    // glibc's ldd says one or the other for a static(-pie) executable.
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd: {said}"
    );
    let v = text(output(Command::new(&bin).arg("--version").env_clear()));
    assert_eq!(v.trim(), format!("listns {version}"));

    // User names without NSS: root by name, a uid /etc/passwd lacks as its
    // number. The held process: a user namespace of uid 54321.
    assert!(
        !fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .any(|l| l.split(':').nth(2) == Some("54321")),
        "the test needs uid 54321 to be unknown"
    );
    let mut held = Command::new("setpriv")
        .args(["--reuid", "54321", "--regid", "54321", "--clear-groups"])
        .args(["unshare", "--user", "sleep", "60"])
        .spawn()
        .unwrap();
    let ino = listns_tests::wait_for(std::time::Duration::from_secs(5), || {
        let link = fs::read_link(format!("/proc/{}/ns/user", held.id())).ok()?;
        let own = fs::read_link("/proc/self/ns/user").ok()?;
        (link != own).then(|| link.to_string_lossy().into_owned())
    })
    .expect("the held process's user namespace");
    let ino = ino.trim_start_matches("user:[").trim_end_matches(']');
    let table = text(output(
        Command::new(&bin)
            .args(["-n", "-t", "user", "-o", "NS,USER,PID"])
            .env_clear(),
    ));
    let _ = held.kill();
    let _ = held.wait();
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(ino))
        .unwrap_or_else(|| panic!("user namespace {ino} not in\n{table}"));
    assert_eq!(row.split_whitespace().nth(1), Some("54321"), "{row}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("root")),
        "root's namespaces not shown by name:\n{table}"
    );

    // The SBOM: CycloneDX 1.5 describing listns, with the crates (and
    // versions) Cargo.lock pins for the binary and its eBPF programs.
    let sbom: serde_json::Value = serde_json::from_slice(
        &fs::read(out.path().join(format!("listns-{version}.cdx.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
    assert_eq!(sbom["metadata"]["component"]["name"], "listns-user");
    let lock = repo_file("Cargo.lock");
    let components = sbom["components"].as_array().unwrap();
    for krate in [
        "aya",
        "aya-ebpf",
        "tokio",
        "hyper",
        "clap",
        "nix",
        "listns-ebpf",
    ] {
        let c = components
            .iter()
            .find(|c| c["name"] == krate)
            .unwrap_or_else(|| panic!("{krate} not in the SBOM"));
        assert_eq!(c["version"], locked_version(&lock, krate), "{krate}");
    }
    // Build-only and test-only crates are not in the binary.
    for krate in ["aya-build", "tempfile", "clap_mangen"] {
        assert!(
            !components.iter().any(|c| c["name"] == krate),
            "{krate} is in the SBOM"
        );
    }

    // The image archive loads and runs.
    let loaded = text(output(
        Command::new("podman")
            .args(["load", "--input"])
            .arg(out.path().join(format!("listns-{version}-oci.tar"))),
    ));
    assert!(loaded.contains("Loaded image"), "{loaded}");
    // This machine's podman needs runc and small ulimits (as the container
    // tests run it).
    let ran = text(output(Command::new("podman").args([
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        &format!("{IMAGE}:{version}"),
        "--version",
    ])));
    assert_eq!(ran.trim(), format!("listns {version}"));
}
