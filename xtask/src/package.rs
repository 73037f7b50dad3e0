//! `cargo xtask package`: the `FROM scratch` container image of
//! packaging/Containerfile, holding a static `listns` (the static build is
//! also the release tarball's, `dist.rs`).
//!
//! The static binary is built in release mode into `target/vm-build` (the
//! kernel matrix's static target directory: the same RUSTFLAGS, so the host
//! build is not invalidated) and staged as the only file of the build
//! context. It is meant for the image only: a static glibc binary that
//! looks up a user through a host's NSS modules (`passwd: files systemd`)
//! crashes, and the image has no NSS configuration to load any.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::vm::{STATIC_RUSTFLAGS, TARGET, elf_is_static};

#[derive(Debug, clap::Args)]
pub struct PackageArgs {
    /// Image name; tagged `NAME:VERSION` and `NAME:latest`.
    #[arg(long, default_value = "localhost/listns")]
    pub image: String,
    /// Also save the image as an OCI archive here (for `ctr import`,
    /// `podman load`, a registry push from another machine).
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
}

/// `cargo xtask package`.
pub fn package(root: &Path, args: &PackageArgs) -> Result<()> {
    let t = Instant::now();
    let bin = build_static_release(root)?;
    let version = version_of(&bin)?;
    eprintln!(
        "xtask package: static listns {version} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    image(root, &bin, &version, args)
}

/// The image of an already built static `bin`.
pub(crate) fn image(root: &Path, bin: &Path, version: &str, args: &PackageArgs) -> Result<()> {
    ensure_podman(root)?;
    // The build context holds the binary and nothing else.
    let context = root.join("target/package-context");
    let _ = fs::remove_dir_all(&context);
    fs::create_dir_all(&context).with_context(|| format!("creating {}", context.display()))?;
    fs::copy(bin, context.join("listns"))?;
    let t = Instant::now();
    let tags = [
        format!("{}:{version}", args.image),
        format!("{}:latest", args.image),
    ];
    let mut build = Command::new("podman");
    build
        .arg("build")
        .arg("--file")
        .arg(root.join("packaging/Containerfile"))
        // FROM scratch: nothing to pull, no registry needed.
        .arg("--pull=never");
    for tag in &tags {
        build.args(["--tag", tag]);
    }
    run(build.arg(&context))?;
    eprintln!(
        "xtask package: image {} in {:.1} s",
        tags.join(", "),
        t.elapsed().as_secs_f64()
    );
    if let Some(archive) = &args.archive {
        let _ = fs::remove_file(archive);
        run(Command::new("podman")
            .args(["save", "--format", "oci-archive", "--output"])
            .arg(archive)
            .arg(&tags[0]))?;
        eprintln!("xtask package: saved {}", archive.display());
    }
    Ok(())
}

/// Builds `listns` in release mode, statically linked; returns its path.
pub(crate) fn build_static_release(root: &Path) -> Result<PathBuf> {
    let target_dir = root.join("target/vm-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--package",
            "listns-user",
            "--bin",
            "listns",
        ])
        .args(["--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", STATIC_RUSTFLAGS))?;
    let bin = target_dir.join(TARGET).join("release/listns");
    if !elf_is_static(&bin)? {
        bail!(
            "{} is dynamically linked: a FROM scratch image has no libc",
            bin.display()
        );
    }
    Ok(bin)
}

/// `listns --version` says `listns X.Y.Z`.
pub(crate) fn version_of(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .filter(|v| {
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
        })
        .map(str::to_string)
        .with_context(|| format!("unexpected `listns --version` output: {:?}", text.trim()))
}

/// podman (and runc) from the project's install script when missing.
fn ensure_podman(root: &Path) -> Result<()> {
    if crate::vm::on_path("podman") && crate::vm::on_path("runc") {
        return Ok(());
    }
    eprintln!(
        "xtask package: podman or runc missing; running packaging/install-test-deps.sh podman"
    );
    run(Command::new(root.join("packaging/install-test-deps.sh")).arg("podman"))
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}
