//! The static build: the test executables and `listns`, statically
//! linked (the guests have no libc).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};
use cargo_metadata::Message;

use super::{HOST_ONLY, STATIC_RUSTFLAGS, TARGET, host::elf_is_static};

pub(super) struct StaticBuild {
    /// (short name, executable) of every test executable.
    pub(super) tests: Vec<(String, PathBuf)>,
    /// The static `listns` binary (some tests run it).
    pub(super) listns: PathBuf,
    /// A static release `listns` too, when asked for (benches).
    pub(super) listns_release: Option<PathBuf>,
    /// What `CARGO_TARGET_DIR` must be for `listns_tests::listns_bin()` to find `listns`.
    pub(super) target_dir_for_tests: PathBuf,
}

/// Builds the test executables and `listns` statically linked, into
/// `target/vm-build` (a target dir of their own: other RUSTFLAGS would
/// otherwise rebuild the host's artifacts every time).
pub(super) fn build_static(root: &Path) -> Result<StaticBuild> {
    let target_dir = root.join("target/vm-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&cargo);
        c.current_dir(root)
            .args(args)
            .args(["--target", TARGET])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", STATIC_RUSTFLAGS)
            // Smaller executables, a smaller initramfs, a faster build.
            .env("CARGO_PROFILE_DEV_DEBUG", "0");
        c
    };
    let out = cmd(&[
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
        "--package",
        "listns-tests",
        "--package",
        "listns-user",
        "--tests",
    ])
    .stderr(Stdio::inherit())
    .output()
    .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!(
            "building the static test executables failed ({})",
            out.status
        );
    }
    let mut tests = Vec::new();
    for msg in Message::parse_stream(out.stdout.as_slice()) {
        let Message::CompilerArtifact(art) = msg.context("reading cargo's JSON messages")? else {
            continue;
        };
        let Some(exe) = art.executable.filter(|_| art.profile.test) else {
            continue;
        };
        let target = &art.target.name;
        // Integration tests by their file name; the library's unit tests
        // (which resolve offsets from the running kernel's BTF) as `unit`.
        let name = if art.target.is_test() {
            // Suites that check userspace only (files, containers, systemd,
            // HTTP, escaping, skips) run once, on the host, in `cargo xtask
            // test`; under emulation they would only cost minutes.
            if HOST_ONLY.contains(&target.as_str()) {
                continue;
            }
            target.clone()
        } else if art.target.is_lib() && art.manifest_path.ends_with("listns-user/Cargo.toml") {
            format!("{target}-unit")
        } else {
            continue; // other unit tests: nothing kernel-specific
        };
        tests.push((name, exe.into_std_path_buf()));
    }
    tests.sort();
    tests.dedup();
    if tests.is_empty() {
        bail!("cargo built no test executables");
    }
    let status = cmd(&["build", "--package", "listns-user", "--bin", "listns"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the static listns failed ({status})");
    }
    let arch_dir = target_dir.join(TARGET);
    let listns = arch_dir.join("debug/listns");
    for exe in tests.iter().map(|(_, p)| p).chain([&listns]) {
        if !elf_is_static(exe)? {
            bail!(
                "{} is dynamically linked: the guests have no libc",
                exe.display()
            );
        }
    }
    Ok(StaticBuild {
        tests,
        listns,
        listns_release: None,
        target_dir_for_tests: arch_dir,
    })
}
