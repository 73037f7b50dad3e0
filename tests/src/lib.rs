//! Helpers shared by the privileged integration tests.
//!
//! These tests create real namespaces and load real eBPF programs, so they
//! need root. Where they cannot run they say why; under CI (`CI` set) that
//! is a failure, never a silent skip.

use std::{
    path::Path,
    time::{Duration, Instant},
};

/// Returns false (after printing why) when the test cannot run here; panics
/// instead when running in CI, where every privileged test must run.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let why = format!("{test}: needs root (creates namespaces, loads eBPF)");
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI must run privileged tests as root");
    }
    eprintln!("SKIP {why}");
    false
}

/// Polls `cond` until it returns Some or the deadline passes.
pub fn wait_for<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Inode of an nsfs link such as /proc/self/ns/net.
pub fn ns_inode(path: impl AsRef<Path>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path.as_ref())
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// Runs a command and asserts it succeeded.
pub fn run(cmd: &str, args: &[&str]) {
    let status = std::process::Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd} {args:?} failed: {status}");
}

/// Inodes of every namespace of one type that a process or thread holds now.
pub fn live_inodes(ty: &str) -> std::collections::HashSet<u64> {
    let mut out = std::collections::HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let ino = ns_inode(t.path().join("ns").join(ty));
            if ino != 0 {
                out.insert(ino);
            }
        }
    }
    out
}

/// The `listns` binary of this build. `cargo xtask test` builds it before
/// the tests run; a plain `cargo test` may not have.
pub fn listns_bin() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let bin = target.join(profile).join("listns");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo xtask test` (it builds the binary first)",
        bin.display()
    );
    bin
}

/// Names of the BPF programs loaded in the kernel right now.
pub fn loaded_program_names() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .map(|p| p.name_as_str().unwrap_or("").to_string())
        .collect()
}

/// The release `listns` binary (`cargo xtask bench` builds it).
pub fn listns_bin_release() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/listns")
}

/// Whether this kernel gives namespaces 64-bit ids (NS_GET_ID, 6.18+).
pub fn kernel_has_ns_ids() -> bool {
    use std::os::fd::AsFd;
    std::fs::File::open("/proc/self/ns/net")
        .ok()
        .and_then(|f| listns::ns::get_id(f.as_fd()))
        .is_some()
}

/// Whether nsfs file handles work here (open_by_handle_at, 6.18+).
pub fn kernel_has_nsfs_handles() -> bool {
    listns::lifecycle::Handles::probe().is_ok()
}

/// listns's programs as the kernel names them (names are cut at 15 bytes).
pub const OUR_PROGRAMS: [&str; 6] = [
    "sched_process_f",
    "sched_process_e",
    "sys_enter_unsha",
    "sys_exit_unshar",
    "sys_enter_setns",
    "sys_exit_setns",
];

/// How many of listns's programs are loaded right now.
pub fn ours_loaded() -> usize {
    loaded_program_names()
        .iter()
        .filter(|n| OUR_PROGRAMS.contains(&n.as_str()))
        .count()
}

/// A network namespace made with `ip netns add NAME` (any leftover of that
/// name deleted first); `ip netns delete` on drop, if it still exists.
pub struct NetnsGuard(pub &'static str);

impl NetnsGuard {
    pub fn new(name: &'static str) -> Self {
        delete_netns(name);
        run("ip", &["netns", "add", name]);
        NetnsGuard(name)
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        delete_netns(self.0);
    }
}

/// `ip netns delete NAME`, quietly: it may not exist.
pub fn delete_netns(name: &str) {
    let _ = std::process::Command::new("ip")
        .args(["netns", "delete", name])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Checks one JSON object listns printed against the committed schema
/// (schema/listns.schema.json); panics with every violation.
pub fn assert_valid_json(v: &serde_json::Value) {
    use std::sync::OnceLock;
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/listns.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("schema file"))
                .expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    });
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "output does not match schema/listns.schema.json:\n{}\nin {:.2000}",
        errors.join("\n"),
        v.to_string()
    );
}
