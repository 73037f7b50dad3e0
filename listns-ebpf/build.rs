//! Rebuilds the eBPF programs when bpf-linker changes.
//!
//! bpf-linker links the programs, yet cargo does not know it is an input:
//! upgrading or rebuilding it (say, against another LLVM) would leave the old
//! object in place. Naming its file with `rerun-if-changed` makes its mtime
//! part of this crate's fingerprint. That also reaches the userspace crate,
//! which build-depends on this one and embeds the object.
//!
//! Like aya-template, this tracks the bpf-linker found on PATH now; one put
//! earlier on PATH later goes unnoticed (watching PATH and all its folders
//! would rebuild the programs far too often). When none is found the build
//! goes on (`AYA_BUILD_SKIP=1` builds need no linker, and listns-user's
//! build script explains what is missing) and watches PATH and its folders
//! instead, so that installing bpf-linker brings the rebuild.

use std::env;

fn main() {
    match which::which("bpf-linker") {
        Ok(linker) => println!("cargo:rerun-if-changed={}", linker.display()),
        Err(_) => {
            println!("cargo:rerun-if-env-changed=PATH");
            for dir in env::split_paths(&env::var_os("PATH").unwrap_or_default()) {
                if dir.is_dir() {
                    println!("cargo:rerun-if-changed={}", dir.display());
                }
            }
        }
    }
}
