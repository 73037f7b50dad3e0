//! `cargo xtask dist`: the release, in `target/dist/` (or `--out DIR`):
//!
//! - `listns-VERSION-x86_64-linux.tar.gz`: the static binary (no libc or
//!   NSS needed on the host: user names come from /etc/passwd), its man
//!   pages and shell completions, the systemd unit, the Kubernetes
//!   manifests, the Prometheus alert rules, the README, CHANGELOG and
//!   licences; files in a stable order, owned by root, dated by the last
//!   commit, so the same tree gives the same archive;
//! - `listns-VERSION-oci.tar`: the `FROM scratch` image of
//!   `cargo xtask package`, for `podman load` (or `skopeo copy
//!   oci-archive:...` to a registry); left out with `--no-image`;
//! - `listns-VERSION.cdx.json`: the CycloneDX SBOM of the binary's crates
//!   (the eBPF programs' included), made by cargo-cyclonedx from
//!   Cargo.lock; installed with `cargo install` when missing;
//! - `SHA256SUMS` over all of them (`sha256sum -c SHA256SUMS`).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::package::{self, PackageArgs, run};

/// The SBOM tool and the version whose output the release is checked with.
const CYCLONEDX: &str = "cargo-cyclonedx";
const CYCLONEDX_VERSION: &str = "0.5.9";

#[derive(Debug, clap::Args)]
pub struct DistArgs {
    /// Where the release files go.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Leave out the OCI image archive (no podman needed).
    #[arg(long)]
    pub no_image: bool,
    /// The image's name in the local store (tagged NAME:VERSION and NAME:latest).
    #[arg(long, default_value = "localhost/listns")]
    pub image: String,
}

/// Files of the repository that go into the tarball, and where.
const FILES: &[(&str, &str)] = &[
    ("README.md", "README.md"),
    ("CHANGELOG.md", "CHANGELOG.md"),
    ("LICENSE-MIT", "LICENSE-MIT"),
    ("LICENSE-APACHE", "LICENSE-APACHE"),
    ("LICENSE-GPL-2.0", "LICENSE-GPL-2.0"),
    ("packaging/systemd/listns.service", "systemd/listns.service"),
    (
        "packaging/kubernetes/daemonset.yaml",
        "kubernetes/daemonset.yaml",
    ),
    (
        "packaging/kubernetes/servicemonitor.yaml",
        "kubernetes/servicemonitor.yaml",
    ),
    (
        "packaging/prometheus/listns-alerts.yaml",
        "prometheus/listns-alerts.yaml",
    ),
    ("schema/listns.schema.json", "schema/listns.schema.json"),
    ("schema/openapi.json", "schema/openapi.json"),
];

pub fn dist(root: &Path, args: &DistArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| root.join("target/dist"));
    let bin = package::build_static_release(root)?;
    let version = package::version_of(&bin)?;
    let name = format!("listns-{version}-x86_64-linux");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let stage = out.join(&name);
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage)?;

    fs::copy(&bin, stage.join("listns")).context("copying the static binary")?;
    // Without the symbol table (12.7 MB become 10.4). Panics still name
    // their place (that text is data, not symbols).
    run(Command::new("strip")
        .arg("--strip-all")
        .arg(stage.join("listns")))?;
    man_and_completions(root, &stage)?;
    for (from, to) in FILES {
        let to = stage.join(to);
        fs::create_dir_all(to.parent().expect("a file in a directory"))?;
        fs::copy(root.join(from), &to).with_context(|| format!("copying {from}"))?;
    }
    let epoch = last_commit_time(root)?;
    let tarball = format!("{name}.tar.gz");
    let _ = fs::remove_file(out.join(&tarball));
    run(Command::new("tar")
        .current_dir(&out)
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
        .arg(format!("--mtime=@{epoch}"))
        .args([
            "--mode=u+rwX,go+rX,go-w",
            "--use-compress-program=gzip -n -9",
        ])
        .args(["-cf", &tarball, &name]))?;
    fs::remove_dir_all(&stage)?;

    let sbom = format!("listns-{version}.cdx.json");
    make_sbom(root, &out.join(&sbom), &epoch)?;

    let mut files = vec![tarball, sbom];
    if !args.no_image {
        let archive = format!("listns-{version}-oci.tar");
        package::image(
            root,
            &bin,
            &version,
            &PackageArgs {
                image: args.image.clone(),
                archive: Some(out.join(&archive)),
            },
        )?;
        files.push(archive);
    }
    let sums = Command::new("sha256sum")
        .current_dir(&out)
        .args(&files)
        .output()
        .context("running sha256sum")?;
    if !sums.status.success() {
        bail!(
            "sha256sum failed: {}",
            String::from_utf8_lossy(&sums.stderr)
        );
    }
    fs::write(out.join("SHA256SUMS"), &sums.stdout)?;
    files.push("SHA256SUMS".into());
    eprintln!("xtask dist: listns {version} in {}:", out.display());
    for f in &files {
        let size = fs::metadata(out.join(f))?.len();
        eprintln!("  {f:<40} {:>8.1} MiB", size as f64 / 1048576.0);
    }
    Ok(())
}

/// Man pages and completions from the clap definitions (`listns-dist`, a
/// bin of the tests crate: it links the `listns` library, xtask does not).
fn man_and_completions(root: &Path, into: &Path) -> Result<()> {
    crate::cargo(
        root,
        &[
            "run",
            "--quiet",
            "--package",
            "listns-tests",
            "--bin",
            "listns-dist",
            "--",
            into.to_str().context("target path is not UTF-8")?,
        ],
    )
}

/// `git log -1 --format=%ct`: the archive's and the SBOM's date.
fn last_commit_time(root: &Path) -> Result<String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["log", "-1", "--format=%ct"])
        .output()
        .context("running git log")?;
    let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || t.parse::<u64>().is_err() {
        bail!("git log -1 --format=%ct said {t:?}");
    }
    Ok(t)
}

/// The binary's SBOM: cargo-cyclonedx writes one file per workspace
/// member next to its Cargo.toml; the listns one (the binary) is kept,
/// with the eBPF crate's components (embedded in it) merged in, and the
/// others removed.
fn make_sbom(root: &Path, to: &Path, epoch: &str) -> Result<()> {
    let tool = ensure_cyclonedx()?;
    let suffix = "listns-dist-sbom";
    run(Command::new(&tool)
        .current_dir(root)
        .args(["cyclonedx", "--format", "json", "--spec-version", "1.5"])
        .args(["--no-build-deps", "--quiet"])
        .args(["--target", crate::vm::TARGET])
        .args(["--override-filename", suffix])
        .env("SOURCE_DATE_EPOCH", epoch))?;
    // One file per member, <override>.json next to its Cargo.toml; find
    // what this run wrote and take it away again.
    let meta = cargo_metadata::MetadataCommand::new()
        .current_dir(root)
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let written: Vec<(String, PathBuf)> = meta
        .workspace_packages()
        .iter()
        .filter_map(|p| {
            let file = p.manifest_path.parent()?.join(format!("{suffix}.json"));
            file.exists()
                .then(|| (p.name.to_string(), file.into_std_path_buf()))
        })
        .collect();
    let read = |member: &str| -> Result<serde_json::Value> {
        let (_, path) = written
            .iter()
            .find(|(m, _)| m == member)
            .with_context(|| format!("cargo-cyclonedx wrote no SBOM for {member}: {written:?}"))?;
        Ok(serde_json::from_slice(&fs::read(path)?)?)
    };
    let result = (|| -> Result<()> {
        let mut bom = read("listns-user")?;
        let ebpf = read("listns-ebpf")?;
        let comps = bom["components"]
            .as_array_mut()
            .context("an SBOM without components")?;
        for c in ebpf["components"].as_array().into_iter().flatten() {
            if !comps.iter().any(|k| k["bom-ref"] == c["bom-ref"]) {
                comps.push(c.clone());
            }
        }
        // The eBPF crate itself is a component of the binary too.
        comps.push(ebpf["metadata"]["component"].clone());
        fs::write(to, serde_json::to_vec_pretty(&bom)?)?;
        Ok(())
    })();
    for (_, p) in &written {
        let _ = fs::remove_file(p);
    }
    result
}

/// cargo-cyclonedx on PATH or in ~/.cargo/bin, else `cargo install`ed
/// (a debug build: about two minutes; its speed does not matter).
fn ensure_cyclonedx() -> Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or("/root".into())).join(".cargo")
        });
    let installed = home.join("bin").join(CYCLONEDX);
    let version_ok = |p: &Path| {
        Command::new(p)
            .args(["cyclonedx", "--version"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(CYCLONEDX_VERSION))
            .unwrap_or(false)
    };
    if version_ok(&installed) {
        return Ok(installed);
    }
    eprintln!("xtask dist: installing {CYCLONEDX} {CYCLONEDX_VERSION} (cargo install)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args([
        "install",
        "--locked",
        "--debug",
        "--version",
        CYCLONEDX_VERSION,
        CYCLONEDX,
    ]))?;
    if !version_ok(&installed) {
        bail!(
            "{} is not {CYCLONEDX} {CYCLONEDX_VERSION} after cargo install",
            installed.display()
        );
    }
    Ok(installed)
}
