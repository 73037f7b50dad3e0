//! Helpers shared by the privileged integration tests.
//!
//! These tests create real namespaces and load real eBPF programs, so they
//! need root. Where they cannot run they skip through the listns-skip
//! crate: it says why, under the test's own name, in the skip log that
//! `cargo xtask test` summarises; under CI (`CI` set) that is a failure,
//! never a silent skip.

pub mod api;
pub mod crowd;
pub mod docs;
pub mod held;
pub mod kernel;
pub mod lsns;
pub mod passes;
pub mod watch;
pub mod web;

pub use kernel::{kernel_has_ns_ids, kernel_has_nsfs_handles};

pub mod packaging;

use std::{
    path::Path,
    time::{Duration, Instant},
};

/// `d` stretched by `LISTNS_TEST_TIME_SCALE` (a number, 1 when unset): the
/// kernel matrix's emulated guests run several times slower than a host,
/// and set it. Only for timeouts, which bound waits and never pass a test.
pub fn scaled(d: Duration) -> Duration {
    let scale = std::env::var("LISTNS_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 1.0)
        .unwrap_or(1.0);
    d.mul_f64(scale)
}

/// Polls `cond` until it returns Some or the deadline (stretched by
/// [`scaled`]) passes.
pub fn wait_for<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + scaled(timeout);
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
        // Embedded at build time: the kernel-matrix guests have no source tree.
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/listns.schema.json"))
                .expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    });
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| {
            // The error's text quotes the whole instance: keep it short.
            let text: String = e.to_string().chars().take(300).collect();
            format!("{text} at {}", e.instance_path())
        })
        .collect();
    assert!(
        errors.is_empty(),
        "output does not match schema/listns.schema.json:\n{}\nin {:.2000}",
        errors.join("\n"),
        v.to_string()
    );
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// GET http://127.0.0.1:PORT/PATH: (status, body), None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut resp = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.body_mut().read_to_string().ok()?))
}

/// Waits for `child` to exit within `limit` (stretched by [`scaled`]); kills
/// it and fails the test, naming `what`, when it does not.
pub fn wait_within(
    child: &mut std::process::Child,
    limit: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let limit = scaled(limit);
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
