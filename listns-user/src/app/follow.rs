//! The process tree `listns watch` follows: a command it runs
//! (`-- COMMAND [ARGS...]`) or a process already running (`--follow-pid PID`).
//!
//! The kernel does the following (trace: a map of followed processes that
//! the fork hook copies to every child). This file puts the first process
//! into that map before it can do anything: the command is spawned held
//! before exec (`sys::child::spawn_held`) while its pid goes into the map,
//! and only then execs. It also tells when the process exits, through a
//! pidfd, and reaps the command for its exit status.

use std::{
    ffi::OsString,
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
};

use anyhow::bail;
use nix::{
    errno::Errno,
    sys::wait::{WaitPidFlag, WaitStatus, waitpid},
    unistd::Pid,
};
use tokio::io::unix::AsyncFd;

use crate::{
    cli::manual::{EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_NOT_FOUND},
    sys::{self, child::SpawnError},
    text::RawText,
};

/// The command could not be run: not found, or found but not runnable.
#[derive(Debug)]
pub struct CannotRun {
    pub program: String,
    pub error: std::io::Error,
}

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot run {}: {}", self.program, self.error)
    }
}

impl std::error::Error for CannotRun {}

/// The exit status of listns's own failure: 1, but when following, 127
/// for a command not found, 126 for one that could not be run and 125 for
/// anything else, as env(1) and timeout(1) report them, so that they
/// cannot be taken for the command's own status.
pub fn failure_status(err: &anyhow::Error, following: bool) -> u8 {
    if !following {
        return 1;
    }
    match err.chain().find_map(|e| e.downcast_ref::<CannotRun>()) {
        Some(c) if c.error.raw_os_error() == Some(libc::ENOENT) => EXIT_NOT_FOUND,
        Some(_) => EXIT_CANNOT_RUN,
        None => EXIT_FAILED,
    }
}

/// The followed process.
pub struct Followee {
    pub pid: u32,
    /// Its command line, as given or as /proc says.
    pub command: Vec<RawText>,
    /// Readable once the process has exited.
    pidfd: AsyncFd<OwnedFd>,
    /// Our child (a command we ran): reaped for its exit status.
    ours: bool,
}

/// How the command ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ended {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Ended {
    /// The exit status listns passes on: the command's, or 128 + the
    /// signal that killed it, as shells report it.
    pub fn status(&self) -> u8 {
        match (self.code, self.signal) {
            (Some(c), _) => c as u8,
            (_, Some(s)) => (128 + s) as u8,
            _ => 0,
        }
    }
}

impl Followee {
    /// Runs `argv`, held before exec until `follow(pid)` has put it in the
    /// kernel's map. An `argv[0]` that cannot be executed is an error, and
    /// so is a failed `follow`: the child then exits without running
    /// anything.
    pub fn spawn(
        argv: &[OsString],
        follow: impl FnOnce(u32) -> anyhow::Result<()>,
    ) -> anyhow::Result<Followee> {
        let Some(program) = argv.first() else {
            bail!("no command given after `--`");
        };
        if argv.iter().any(|a| a.as_bytes().contains(&0)) {
            bail!("a command argument contains a NUL byte");
        }
        let mut cmd = std::process::Command::new(program);
        cmd.args(&argv[1..]);
        // The child is held: it cannot exit (and its pid cannot be reused)
        // before the pidfd exists.
        let mut pidfd = None;
        let child = sys::child::spawn_held(cmd, |pid| {
            let fd = sys::pidfd_open(pid).map_err(|e| anyhow::anyhow!("pidfd_open({pid}): {e}"))?;
            pidfd = Some(fd);
            follow(pid)
        });
        let child = match child {
            Ok(child) => child,
            Err(SpawnError::Hold(e)) => return Err(e),
            Err(SpawnError::Spawn(error)) => {
                return Err(CannotRun {
                    program: program.to_string_lossy().into_owned(),
                    error,
                }
                .into());
            }
        };
        let pidfd = pidfd.expect("held, so the pidfd was opened");
        Ok(Followee {
            pid: child.id(),
            command: argv.iter().map(|a| RawText::new(a.as_bytes())).collect(),
            pidfd: sys::async_readable(pidfd)?,
            ours: true,
        })
    }

    /// Follows a running process, and those of its descendants that
    /// already exist: `follow` is called with `pid` first (so that every
    /// child it forks from then on is followed by the kernel), then with
    /// each descendant found in /proc.
    pub fn attach(
        pid: u32,
        mut follow: impl FnMut(u32) -> anyhow::Result<()>,
    ) -> anyhow::Result<Followee> {
        let pidfd = sys::pidfd_open(pid).map_err(|e| match e {
            Errno::ESRCH => anyhow::anyhow!("no process {pid}"),
            e => anyhow::anyhow!("pidfd_open({pid}): {e}"),
        })?;
        follow(pid)?;
        for child in descendants(pid) {
            follow(child)?;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let command = cmdline
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .map(RawText::new)
            .collect();
        Ok(Followee {
            pid,
            command,
            pidfd: sys::async_readable(pidfd)?,
            ours: false,
        })
    }

    /// Waits until the process has exited.
    pub async fn exited(&self) -> std::io::Result<()> {
        let mut guard = self.pidfd.readable().await?;
        guard.retain_ready();
        Ok(())
    }

    /// Reaps our command for its exit status (a process we did not start
    /// tells nothing).
    pub fn reap(&self) -> Ended {
        if !self.ours {
            return Ended::default();
        }
        match waitpid(Pid::from_raw(self.pid as i32), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ended {
                code: Some(code),
                signal: None,
            },
            Ok(WaitStatus::Signaled(_, sig, _)) => Ended {
                code: None,
                signal: Some(sig as i32),
            },
            _ => Ended::default(),
        }
    }

    /// Sends a signal to the followed process (through its pidfd: never
    /// to a reused pid).
    pub fn signal(&self, sig: i32) {
        let _ = sys::pidfd_send_signal(self.pidfd.get_ref().as_fd(), sig);
    }
}

/// The running descendants of `pid`, from every process's parent in
/// /proc/PID/stat.
fn descendants(pid: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read(e.path().join("stat")).unwrap_or_default();
            if let Some(st) = crate::scan::procs::parse_stat(&stat) {
                children.entry(st.ppid).or_default().push(p);
            }
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            out.push(c);
            stack.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn command_waits_for_follow_then_passes_its_status_on() {
        rt().block_on(async {
            let mut seen = None;
            let argv: Vec<OsString> = ["sh", "-c", "exit 3"].map(Into::into).to_vec();
            let f = Followee::spawn(&argv, |pid| {
                // Still held before exec: its command line is listns's own.
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
                let own = std::fs::read("/proc/self/cmdline").unwrap();
                assert_eq!(cmd, own, "the child ran before it was followed");
                seen = Some(pid);
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, Some(f.pid));
            f.exited().await.unwrap();
            let ended = f.reap();
            assert_eq!(ended.code, Some(3));
            assert_eq!(ended.status(), 3);
        });
    }

    #[test]
    fn unknown_command_and_refused_follow_run_nothing() {
        rt().block_on(async {
            let argv: Vec<OsString> = vec!["/nonexistent/listns-no-such-command".into()];
            let err = Followee::spawn(&argv, |_| Ok(())).err().unwrap();
            assert!(err.to_string().contains("cannot run"), "{err}");
            let argv: Vec<OsString> = ["sh", "-c", "touch /tmp/listns-must-not-exist"]
                .map(Into::into)
                .to_vec();
            let err = Followee::spawn(&argv, |_| bail!("map full")).err().unwrap();
            assert!(err.to_string().contains("map full"), "{err}");
            assert!(!std::path::Path::new("/tmp/listns-must-not-exist").exists());
        });
    }

    #[test]
    fn listns_failures_when_following_are_125_to_127() {
        rt().block_on(async {
            let spawn = |argv: &[&str]| {
                let argv: Vec<OsString> = argv.iter().map(Into::into).collect();
                Followee::spawn(&argv, |_| Ok(())).err().expect("refused")
            };
            let missing = spawn(&["/nonexistent/listns-no-such-command"]);
            assert_eq!(failure_status(&missing, true), 127, "{missing}");
            let missing = spawn(&["listns-no-such-command-on-path"]);
            assert_eq!(failure_status(&missing, true), 127, "{missing}");
            // A directory, and a file without the execute bit: found, not runnable.
            let dir = tempfile::tempdir().unwrap();
            assert_eq!(
                failure_status(&spawn(&[dir.path().to_str().unwrap()]), true),
                126
            );
            let file = dir.path().join("not-executable");
            std::fs::write(&file, "#!/bin/sh\n").unwrap();
            let noexec = spawn(&[file.to_str().unwrap()]);
            assert_eq!(failure_status(&noexec, true), 126, "{noexec}");
            // Anything else listns fails at is 125; not following, 1.
            let other = anyhow::anyhow!("the tracer cannot start");
            assert_eq!(failure_status(&other, true), 125);
            assert_eq!(failure_status(&other, false), 1);
            assert_eq!(failure_status(&missing, false), 1);
            let wrapped = missing.context("following");
            assert_eq!(failure_status(&wrapped, true), 127);
        });
    }

    #[test]
    fn killed_by_a_signal_is_128_plus_the_signal() {
        let e = Ended {
            code: None,
            signal: Some(9),
        };
        assert_eq!(e.status(), 137);
    }

    #[test]
    fn attach_follows_the_process_then_its_descendants() {
        rt().block_on(async {
            let mut child = std::process::Command::new("sh")
                .args(["-c", "sleep 30 & wait"])
                .spawn()
                .unwrap();
            let pid = child.id();
            // Wait for the sleep to exist.
            let mut kids = Vec::new();
            for _ in 0..200 {
                kids = descendants(pid);
                if !kids.is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let mut followed = Vec::new();
            let f = Followee::attach(pid, |p| {
                followed.push(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(followed[0], pid);
            assert_eq!(&followed[1..], &kids[..], "descendants after the process");
            assert_eq!(f.command[0], "sh");
            for k in &kids {
                let _ = nix::sys::signal::kill(
                    Pid::from_raw(*k as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
            f.exited().await.unwrap();
            assert_eq!(f.reap(), Ended::default(), "not ours to reap");
            assert!(Followee::attach(u32::MAX >> 1, |_| Ok(())).is_err());
        });
    }
}
