//! Helpers of the packaging tests (tests/tests/packaging.rs): the files in
//! packaging/, the tools that check them, and a line reader for
//! `listns watch --json` wherever it runs (here, under setpriv, in podman).

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// Reads a file of the repository (panics with its path when missing).
pub fn repo_file(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Installs the named components with packaging/install-test-deps.sh when
/// missing (the script checks first); when that fails the running test
/// skips (`listns_skip::require`: a failure under CI).
pub fn require_tools(components: &[&str]) -> bool {
    let out = Command::new(root().join("packaging/install-test-deps.sh"))
        .args(components)
        .stdout(Stdio::inherit())
        .output()
        .expect("running packaging/install-test-deps.sh");
    listns_skip::require(
        out.status.success(),
        format_args!(
            "installing {} failed: {}",
            components.join(", "),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    )
}

/// kubernetes-validate in the venv the install script made.
pub fn kubernetes_validate() -> PathBuf {
    let venv = std::env::var_os("LISTNS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let data = std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or("/root".into()))
                        .join(".local/share")
                });
            data.join("listns/venv")
        });
    venv.join("bin/kubernetes-validate")
}

/// The values of every `KEY=` line of a systemd unit, split on whitespace.
pub fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

/// The unit's capabilities without the `CAP_` prefix, in lower case
/// (`bpf`, `sys_admin`, ...), sorted.
pub fn unit_capabilities(unit: &str) -> Vec<String> {
    let mut caps: Vec<String> = unit_values(unit, "CapabilityBoundingSet")
        .iter()
        .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect();
    caps.sort();
    caps
}

/// Output of a command that must succeed.
pub fn output(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Inodes of every namespace object in `listns -J` output.
pub fn json_inodes(json: &[u8]) -> std::collections::BTreeSet<u64> {
    let v: Value = serde_json::from_slice(json).expect("listns -J prints JSON");
    v["namespaces"]
        .as_array()
        .expect("a namespaces array")
        .iter()
        .filter_map(|n| n["ns"].as_u64())
        .collect()
}

/// A running `listns watch --json` (under any wrapper: setpriv, podman):
/// its stdout parsed line by line on a thread, its stderr kept.
pub struct WatchLines {
    pub child: Child,
    lines: mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
    stderr: mpsc::Receiver<String>,
}

impl WatchLines {
    pub fn spawn(cmd: &mut Command) -> WatchLines {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("invalid JSON {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let (etx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        WatchLines {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Reads lines until one matches, keeping them all.
    pub fn wait(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return Some(v.clone());
        }
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(_) => break,
            }
        }
        None
    }

    /// Sends SIGTERM, waits, and returns the exit status and stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait");
        let err = self
            .stderr
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        (status, err)
    }
}

impl Drop for WatchLines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `unshare -u` on the host and returns the inode of the UTS namespace
/// it made (the child prints its own `/proc/self/ns/uts` inode).
pub fn unshare_uts() -> u64 {
    let out =
        output(Command::new("unshare").args(["-u", "stat", "-L", "-c", "%i", "/proc/self/ns/uts"]));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("stat printed an inode")
}

pub use crate::{free_port, http_get};
