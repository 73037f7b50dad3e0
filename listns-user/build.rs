//! Builds listns-ebpf for the BPF target with aya-build (nightly,
//! `-Z build-std=core`, bpf-linker) and leaves the object in OUT_DIR, where
//! `trace` embeds it with `include_bytes_aligned!`.
//!
//! `AYA_BUILD_SKIP=1` skips it (for `cargo check`/`clippy` without the eBPF
//! toolchain); the binary then carries an empty object and `listns watch`
//! says so. `cargo xtask setup` installs what this needs.

use std::{env, fs, path::PathBuf, process::Command};

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out.join("listns");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!(
            "cargo:warning=AYA_BUILD_SKIP is set: the eBPF programs are not built; `listns watch` will not run"
        );
        if !object.exists() {
            fs::write(&object, [])?;
        }
        return Ok(());
    }
    if let Some(missing) = missing_toolchain() {
        anyhow::bail!(
            "cannot build the eBPF programs: {missing}.\n\
             Run `cargo xtask setup` (installs nightly's rust-src and a bpf-linker built against \
             nightly's LLVM), or set AYA_BUILD_SKIP=1 to build userspace only."
        );
    }
    quiet_inner_cargo();
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "listns-ebpf",
            root_dir: "../listns-ebpf",
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}

/// Keeps the eBPF build's progress lines out of the outer build's output.
///
/// aya-build 0.2.0 runs `cargo build --message-format=json` for the eBPF
/// crate and forwards every line it writes to stderr as a `cargo:warning`:
/// on a fresh build that is one `warning: ... Compiling core ...` line per
/// crate, about forty lines that warn of nothing. The compiler's own
/// diagnostics come through the JSON on stdout, which aya-build forwards
/// separately, so a quiet inner cargo still shows every warning and error of
/// the eBPF crate (and cargo's own errors, which quiet mode keeps). The
/// inner cargo inherits this process's environment; aya-build takes no
/// options for it.
///
/// Left alone when the caller set `CARGO_TERM_QUIET` or `CARGO_TERM_VERBOSE`
/// (`CARGO_TERM_QUIET=false cargo build` shows the whole inner log again;
/// cargo refuses both set to true).
fn quiet_inner_cargo() {
    if env::var_os("CARGO_TERM_QUIET").is_none() && env::var_os("CARGO_TERM_VERBOSE").is_none() {
        // SAFETY: a build script's main thread, before any other thread is
        // started (aya-build starts its stderr reader later).
        unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
    }
}

/// A plain-words reason when the eBPF toolchain is absent, instead of the
/// linker error that would follow.
fn missing_toolchain() -> Option<String> {
    let nightly = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .output();
    let sysroot = match nightly {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => return Some("no nightly toolchain (`rustup toolchain install nightly`)".into()),
    };
    if !sysroot.join("lib/rustlib/src/rust/library/core").exists() {
        return Some(
            "nightly has no rust-src (`rustup component add rust-src --toolchain nightly`)".into(),
        );
    }
    which::which("bpf-linker")
        .is_err()
        .then(|| "bpf-linker is not on PATH".into())
}
