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
        println!("cargo:warning=AYA_BUILD_SKIP is set: the eBPF programs are not built; `listns watch` will not run");
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
    aya_build::build_ebpf(
        [aya_build::Package { name: "listns-ebpf", root_dir: "../listns-ebpf", ..Default::default() }],
        aya_build::Toolchain::default(),
    )
}

/// A plain-words reason when the eBPF toolchain is absent, instead of the
/// linker error that would follow.
fn missing_toolchain() -> Option<String> {
    let nightly = Command::new("rustc").args(["+nightly", "--print", "sysroot"]).output();
    let sysroot = match nightly {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => return Some("no nightly toolchain (`rustup toolchain install nightly`)".into()),
    };
    if !sysroot.join("lib/rustlib/src/rust/library/core").exists() {
        return Some("nightly has no rust-src (`rustup component add rust-src --toolchain nightly`)".into());
    }
    let found = env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("bpf-linker").is_file());
    (!found).then(|| "bpf-linker is not on PATH".into())
}
