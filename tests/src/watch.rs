//! `listns watch --json` as a child process, its stdout parsed line by line
//! and its stderr kept, and the BPF programs it loaded counted by their
//! ids (from its own fdinfo), so that "nothing left loaded" is checked
//! against exactly what this watcher loaded.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{kernel, listns_bin, wait_for};

/// How many programs `listns watch` loads when every hook attaches: one
/// per hook, and on kernels without namespace ids that can kprobe
/// `proc_free_inum` (decided by probing the kernel, not by asking listns)
/// the kprobe that forgets dead namespaces.
/// (Probed once per test process.)
pub fn programs() -> usize {
    static ALL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ALL.get_or_init(|| 6 + usize::from(kernel::kernel_forgets_on_free()))
}

pub struct Watch {
    pub child: Child,
    lines: mpsc::Receiver<Value>,
    /// Every stdout line read so far, in order.
    pub seen: Vec<Value>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The BPF program ids this watcher holds (filled by `start`).
    pub programs: BTreeSet<u32>,
}

impl Watch {
    /// `listns watch --json EXTRA` with its lines read by threads; does not
    /// wait for anything.
    pub fn spawn(extra: &[&str]) -> Watch {
        let mut child = Command::new(listns_bin())
            .args(["watch", "--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("listns watch starts");
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
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (err, keep) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[listns watch] {line}");
                keep.lock().unwrap().push(line);
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
            stderr,
            programs: BTreeSet::new(),
        }
    }

    /// Spawns and waits until every program is loaded (counted in the
    /// watcher's own fdinfo) and the initial inventory is out.
    pub fn start(extra: &[&str]) -> Watch {
        let mut w = Watch::spawn(extra);
        let pid = w.child.id().to_string();
        let all = programs();
        let ids = wait_for(Duration::from_secs(30), || {
            let ids = kernel::prog_ids_of(&pid);
            (ids.len() >= all).then_some(ids)
        });
        w.programs = ids.unwrap_or_else(|| {
            panic!(
                "listns watch holds {:?} programs, not {all}",
                kernel::prog_ids_of(&pid)
            )
        });
        assert_eq!(w.programs.len(), all, "{:?}", w.programs);
        w.wait(Duration::from_secs(30), |v| v["event"] == "existing")
            .expect("initial inventory");
        w
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
        let end = Instant::now() + crate::scaled(timeout);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    crate::assert_valid_json(&v);
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

    /// Reads whatever lines arrive within `quiet` of each other.
    pub fn drain(&mut self, quiet: Duration) {
        while let Ok(v) = self.lines.recv_timeout(quiet) {
            crate::assert_valid_json(&v);
            self.seen.push(v);
        }
    }

    /// What the watcher printed on stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal`, reads the rest of its output and waits for it to
    /// exit; then checks that every program it loaded is gone from the
    /// kernel (within 5 s: the kernel frees them after an RCU grace
    /// period). Returns the exit status.
    pub fn stop(&mut self, signal: libc::c_int) -> ExitStatus {
        // SAFETY: kill with a valid signal number on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let status = self.child.wait().unwrap();
        // The pipe closed at exit: every line is in the channel now.
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(5)) {
            crate::assert_valid_json(&v);
            self.seen.push(v);
        }
        let left = kernel::wait_unloaded(&self.programs, Duration::from_secs(5));
        assert!(
            left.is_empty(),
            "programs {left:?} of the {} this watcher loaded are still loaded after it exited",
            self.programs.len()
        );
        status
    }

    pub fn interrupt(&mut self) -> ExitStatus {
        self.stop(libc::SIGINT)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `v` is an `event` line about a namespace of type `ty`.
pub fn is(v: &Value, event: &str, ty: &str) -> bool {
    v["event"] == event && v["type"] == ty
}
