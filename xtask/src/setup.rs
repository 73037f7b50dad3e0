//! Toolchain bootstrap for the eBPF build, run before `run` and `test`.
//!
//! The eBPF crate needs the nightly toolchain with rust-src (it builds
//! `core` for the BPF target) and a bpf-linker that uses the same LLVM major
//! as nightly's rustc. No packaged LLVM of that version exists on these
//! machines, but nightly ships its own libLLVM; bpf-linker is built against
//! it through a small folder of symlinks that must outlive the build (the
//! binary's rpath points there).
//!
//! Every step checks first and does nothing when things are in place.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

const BPF_LINKER_VERSION: &str = "0.13.0";

fn step(msg: &str) {
    eprintln!("xtask setup: {msg}");
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// What was found about the nightly toolchain.
struct Nightly {
    sysroot: PathBuf,
    /// LLVM major version of nightly's rustc, e.g. "22".
    llvm_major: String,
    /// File name of nightly's libLLVM, e.g. libLLVM.so.22.1-rust-1.97.0-nightly.
    libllvm: String,
}

fn nightly() -> Result<Nightly> {
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"])).map_err(|e| {
        anyhow::anyhow!(
            "no usable nightly toolchain ({e}).\n  fix: rustup toolchain install nightly --component rust-src"
        )
    })?;
    let sysroot = PathBuf::from(sysroot);
    let version = output(Command::new("rustc").args(["+nightly", "-vV"]))?;
    let llvm = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("nightly rustc does not say which LLVM it uses")?;
    let llvm_major = llvm.split('.').next().unwrap_or(llvm).to_string();
    let libllvm = std::fs::read_dir(sysroot.join("lib"))
        .with_context(|| format!("reading {}/lib", sysroot.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.starts_with(&format!("libLLVM.so.{llvm_major}")))
        .with_context(|| {
            format!(
                "nightly ships no libLLVM.so.{llvm_major}* in {}/lib to build bpf-linker against",
                sysroot.display()
            )
        })?;
    Ok(Nightly {
        sysroot,
        llvm_major,
        libllvm,
    })
}

fn ensure_rust_src(n: &Nightly) -> Result<()> {
    if n.sysroot
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .exists()
    {
        return Ok(());
    }
    step("nightly has no rust-src (needed to build `core` for BPF); adding it");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"])).map_err(|e| {
        anyhow::anyhow!("{e}\n  fix: rustup component add rust-src --toolchain nightly (needs the Rust dist server)")
    })
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cargo"))
}

fn home() -> PathBuf {
    env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// The lasting folder whose lib/ holds the symlinks bpf-linker links to.
fn llvm_prefix(n: &Nightly) -> PathBuf {
    let data = env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".local/share"));
    let suffix = n.libllvm.trim_start_matches("libLLVM.so.");
    data.join("listns").join(format!("llvm-{suffix}"))
}

/// Why the installed bpf-linker is unusable, or None when it is fine.
fn bpf_linker_problem(n: &Nightly) -> Option<String> {
    let path = cargo_home().join("bin/bpf-linker");
    if !path.exists() {
        return Some(format!("{} is missing", path.display()));
    }
    let ldd = match output(Command::new("ldd").arg(&path)) {
        Ok(o) => o,
        Err(e) => return Some(format!("cannot inspect it: {e}")),
    };
    let Some(line) = ldd.lines().find(|l| l.contains("libLLVM")) else {
        // Statically linked against some LLVM: ask it.
        return match output(Command::new(&path).arg("--version")) {
            Ok(_) => None,
            Err(e) => Some(format!("it does not run: {e}")),
        };
    };
    if line.contains("not found") {
        return Some(format!("its libLLVM is gone ({})", line.trim()));
    }
    let wanted = format!("libLLVM.so.{}", n.llvm_major);
    let soname = line.split_whitespace().next().unwrap_or("");
    if !soname.starts_with(&wanted) {
        return Some(format!(
            "it uses {soname}, nightly uses LLVM {}",
            n.llvm_major
        ));
    }
    None
}

fn install_bpf_linker(n: &Nightly) -> Result<()> {
    let prefix = llvm_prefix(n);
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    let target = n.sysroot.join("lib").join(&n.libllvm);
    for name in ["libLLVM.so".to_string(), n.libllvm.clone()] {
        let link = lib.join(&name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("linking {} -> {}", link.display(), target.display()))?;
    }
    step(&format!(
        "building bpf-linker {BPF_LINKER_VERSION} against nightly's LLVM {} (LLVM_PREFIX={}; about a minute)",
        n.llvm_major,
        prefix.display()
    ));
    run(Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--force",
            "--version",
            BPF_LINKER_VERSION,
        ])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{}", n.llvm_major),
        ])
        .env("LLVM_PREFIX", &prefix))
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\n  fix: LLVM_PREFIX={} cargo install bpf-linker --version {BPF_LINKER_VERSION} \
             --no-default-features --features llvm-{} (needs crates.io)",
            prefix.display(),
            n.llvm_major
        )
    })
}

/// Makes sure the eBPF toolchain is in place; idempotent.
pub fn setup() -> Result<()> {
    let n = nightly()?;
    ensure_rust_src(&n)?;
    if let Some(problem) = bpf_linker_problem(&n) {
        step(&format!("bpf-linker needs (re)installing: {problem}"));
        install_bpf_linker(&n)?;
        if let Some(problem) = bpf_linker_problem(&n) {
            bail!("bpf-linker still unusable after installing: {problem}");
        }
    }
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_path_buf()
}
