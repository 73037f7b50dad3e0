//! The process tree `listns watch` follows: a command it runs
//! (`-- COMMAND [ARGS...]`) or a process already running (`--pid PID`).
//!
//! The kernel does the following (trace: a map of followed processes that
//! the fork hook copies to every child). This file puts the first process
//! into that map before it can do anything: the command is forked, waits
//! on a pipe while its pid goes into the map, and only then execs. It also
//! tells when the process exits, through a pidfd, and reaps the command
//! for its exit status.

use std::{
    ffi::{CString, OsString},
    os::{
        fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
};

use anyhow::{Context, bail};
use nix::{
    errno::Errno,
    sys::wait::{WaitPidFlag, WaitStatus, waitpid},
    unistd::Pid,
};
use tokio::io::unix::AsyncFd;

use crate::{scan::sys, text::RawText};

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
    /// kernel's map. An `argv[0]` that cannot be executed is an error
    /// (the child then exits 127 without running anything).
    pub fn spawn(
        argv: &[OsString],
        follow: impl FnOnce(u32) -> anyhow::Result<()>,
    ) -> anyhow::Result<Followee> {
        let Some(program) = argv.first() else {
            bail!("no command given after `--`");
        };
        let cargs: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .context("a command argument contains a NUL byte")?;
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // SAFETY: between fork and exec the child calls only async-signal-safe
        // functions on memory prepared before the fork, then execs or _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error()).context("fork");
        }
        if pid == 0 {
            unsafe {
                drop_fd_raw(go_w.as_raw_fd());
                drop_fd_raw(err_r.as_raw_fd());
                let mut byte = 0u8;
                // EOF (listns gave up or died): run nothing.
                if libc::read(go_r.as_raw_fd(), (&raw mut byte).cast(), 1) != 1 {
                    libc::_exit(127);
                }
                // Rust ignores SIGPIPE; the command gets the default back, and
                // an empty signal mask.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                libc::execvp(ptrs[0], ptrs.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(err_w.as_raw_fd(), (&raw const errno).cast(), 4);
                libc::_exit(127);
            }
        }
        let pid = pid as u32;
        drop(go_r);
        drop(err_w);
        // The child is blocked on the pipe: it cannot exit (and its pid
        // cannot be reused) before the pidfd exists.
        let pidfd = sys::pidfd_open(pid).map_err(std::io::Error::from);
        let followed = pidfd
            .as_ref()
            .map_err(|e| anyhow::anyhow!("pidfd_open({pid}): {e}"))
            .and_then(|_| follow(pid));
        if let Err(e) = followed {
            drop(go_w); // EOF: the child exits 127 without running anything
            let _ = waitpid(Pid::from_raw(pid as i32), None);
            return Err(e);
        }
        write_byte(&go_w).context("releasing the command")?;
        drop(go_w);
        // EOF when exec succeeded (the pipe is close-on-exec); else errno.
        let mut buf = [0u8; 4];
        let n = read_full(&err_r, &mut buf);
        if n == 4 {
            let _ = waitpid(Pid::from_raw(pid as i32), None);
            let err = std::io::Error::from_raw_os_error(i32::from_ne_bytes(buf));
            bail!("cannot run {}: {err}", program.to_string_lossy());
        }
        Ok(Followee {
            pid,
            command: argv.iter().map(|a| RawText::new(a.as_bytes())).collect(),
            pidfd: register(pidfd?)?,
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
            pidfd: register(pidfd)?,
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
        // SAFETY: pidfd_send_signal with a valid pidfd and no siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.get_ref().as_fd().as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
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

/// Registers a pidfd with tokio: it turns readable when the process exits.
fn register(pidfd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the pidfd until it is dropped; the fd never changes.
    unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Closes a raw fd in the forked child (whose OwnedFds are never dropped).
unsafe fn drop_fd_raw(fd: i32) {
    unsafe { libc::close(fd) };
}

fn write_byte(fd: &OwnedFd) -> std::io::Result<()> {
    let byte = 1u8;
    // SAFETY: writes one byte from a local.
    if unsafe { libc::write(fd.as_raw_fd(), (&raw const byte).cast(), 1) } == 1 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: reads into the unfilled tail of `buf`.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        match r {
            0 => break,
            r if r > 0 => n += r as usize,
            _ if Errno::last() == Errno::EINTR => {}
            _ => break,
        }
    }
    n
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
                unsafe { libc::kill(*k as i32, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
            f.exited().await.unwrap();
            assert_eq!(f.reap(), Ended::default(), "not ours to reap");
            assert!(Followee::attach(u32::MAX >> 1, |_| Ok(())).is_err());
        });
    }
}
