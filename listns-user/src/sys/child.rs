//! Child processes that must stop at a point of our choosing: a command
//! held before exec until the tracer follows it, and a forked child that
//! sits inside a mount namespace while the scanner reads its mounts.
//!
//! Between fork and exec (or `_exit`) a child of a multithreaded process
//! may only make async-signal-safe calls: the code here makes raw system
//! calls on fds opened before the fork, and allocates nothing.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    os::unix::process::CommandExt,
    process::{Child, Command},
};

use rustix::pipe::PipeFlags;

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?)
}

/// Reads until `buf` is full or EOF (or an error); returns the bytes read.
fn read_full(fd: BorrowedFd<'_>, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match rustix::io::read(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(r) => n += r,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    n
}

/// Joins a scoped thread, passing a panic on.
fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// How [`spawn_held`] failed.
#[derive(Debug)]
pub enum SpawnError<E> {
    /// `hold` failed: the child exited without running anything.
    Hold(E),
    /// The command could not be started (fork, or exec: the errno of
    /// `execvp`, as `Command::spawn` reports it).
    Spawn(io::Error),
}

impl<E> From<io::Error> for SpawnError<E> {
    fn from(e: io::Error) -> Self {
        SpawnError::Spawn(e)
    }
}

/// Spawns `cmd`, holding the child before exec while `hold(pid)` runs.
///
/// Contract: while `hold` runs, the child exists (its pid cannot be
/// reused) and has run nothing of the command: it is a copy of this
/// process blocked on a pipe, with the signal mask and SIGPIPE already
/// reset by `Command`. When `hold` returns `Ok`, the child is released and
/// execs; the result is `Command::spawn`'s. When `hold` fails, or this
/// process dies first, the child exits (status 1) without running
/// anything, and is reaped. The child's pid is `Child::id()`.
pub fn spawn_held<E>(
    mut cmd: Command,
    hold: impl FnOnce(u32) -> Result<(), E>,
) -> Result<Child, SpawnError<E>> {
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let go_w_raw = go_w.as_raw_fd();
    // Runs in the child between fork and exec (see the SAFETY note below).
    let held = move || {
        // The child's copy of our end: closed, so that EOF on `go_r` means
        // this process gave up or died.
        // SAFETY: `go_w_raw` was open at the fork (the parent holds `go_w`
        // until the child is released) and nothing else in the child uses
        // it.
        unsafe { rustix::io::close(go_w_raw) };
        let pid = rustix::process::getpid().as_raw_pid();
        rustix::io::write(&ready_w, &pid.to_ne_bytes())?;
        let mut go = [0u8];
        match rustix::io::read(&go_r, &mut go)? {
            1 => Ok(()),
            _ => Err(io::Error::from_raw_os_error(libc::ECANCELED)),
        }
    };
    // SAFETY: `held` runs once (`cmd` is spawned once, below) in the child
    // between fork and exec, where the parent's other threads may hold
    // locks: it makes only raw system calls (close, getpid, write, read)
    // on fds opened before the fork and on stack buffers, and allocates
    // nothing.
    unsafe { cmd.pre_exec(held) };
    std::thread::scope(|s| {
        // Command::spawn returns only once the child has exec'd (or failed
        // to): it runs on a thread of its own while this one holds it. It
        // drops `cmd` (our copies of the child's pipe ends) as it returns,
        // so that `ready_r` sees EOF if the child never wrote.
        let spawner = s.spawn(move || {
            let child = cmd.spawn();
            drop(cmd);
            child
        });
        let mut pid = [0u8; 4];
        if read_full(ready_r.as_fd(), &mut pid) != 4 {
            // The child failed before it was held (or was never forked).
            drop(go_w);
            return match join(spawner) {
                Ok(mut child) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(SpawnError::Spawn(io::Error::other(
                        "the child ran without being held",
                    )))
                }
                Err(e) => Err(SpawnError::Spawn(e)),
            };
        }
        let pid = u32::from_ne_bytes(pid);
        if let Err(e) = hold(pid) {
            drop(go_w); // EOF: the child exits without running anything
            let _ = join(spawner);
            return Err(SpawnError::Hold(e));
        }
        let released = rustix::io::write(&go_w, &[1]);
        drop(go_w);
        let child = join(spawner);
        released.map_err(io::Error::from)?;
        Ok(child?)
    })
}

/// A forked child inside a mount namespace, until dropped: its
/// `/proc/PID/mountinfo` lists that namespace's mounts and its
/// `/proc/PID/root` reaches them. Dropping it ends and reaps the child.
#[derive(Debug)]
pub struct InMountNs {
    pid: u32,
    /// Closing it ends the child.
    go: Option<OwnedFd>,
}

impl InMountNs {
    /// Forks a child that joins the mount namespace `ns` (an nsfs fd) and
    /// waits. `setns(CLONE_NEWNS)` is refused to a multithreaded process,
    /// hence the fork. The error is `setns`'s (EPERM without
    /// CAP_SYS_ADMIN and CAP_SYS_CHROOT), or the fork's.
    pub fn enter(ns: BorrowedFd<'_>) -> io::Result<InMountNs> {
        let (ready_r, ready_w) = pipe()?;
        let (go_r, go_w) = pipe()?;
        // SAFETY: the child makes only raw system calls (close, setns,
        // write, read, _exit) on fds opened before the fork and on stack
        // buffers; it touches no lock, allocates nothing and never returns
        // from this block.
        match unsafe { nix::unistd::fork() }? {
            nix::unistd::ForkResult::Child => {
                drop(ready_r);
                drop(go_w);
                let errno: i32 = match nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS) {
                    Ok(()) => 0,
                    Err(e) => e as i32,
                };
                let _ = rustix::io::write(&ready_w, &errno.to_ne_bytes());
                if errno == 0 {
                    // Returns at EOF: the scanner closed its end (or died).
                    let _ = rustix::io::read(&go_r, &mut [0u8]);
                }
                // SAFETY: _exit ends the child at once (no atexit handlers,
                // no destructors), which is what a forked child must do.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(ready_w);
                drop(go_r);
                let child = InMountNs {
                    pid: child.as_raw() as u32,
                    go: Some(go_w),
                };
                let mut errno = [0u8; 4];
                if read_full(ready_r.as_fd(), &mut errno) != 4 {
                    return Err(io::Error::other("the child ended before joining"));
                }
                match i32::from_ne_bytes(errno) {
                    0 => Ok(child),
                    e => Err(io::Error::from_raw_os_error(e)),
                }
            }
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for InMountNs {
    fn drop(&mut self) {
        self.go.take();
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid as i32), None);
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_child_joins_a_mount_namespace_and_ends_with_the_guard() {
        // Our own mount namespace: allowed for root; otherwise setns fails
        // and says so (EPERM), which is what callers count.
        let own = std::fs::File::open("/proc/self/ns/mnt").unwrap();
        match InMountNs::enter(own.as_fd()) {
            Ok(child) => {
                let pid = child.pid();
                let link = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
                assert_eq!(link, std::fs::read_link("/proc/self/ns/mnt").unwrap());
                drop(child);
                assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
            }
            Err(e) => {
                assert!(
                    !nix::unistd::geteuid().is_root(),
                    "root could not join: {e}"
                );
                assert_eq!(e.raw_os_error(), Some(libc::EPERM));
            }
        }
    }

    #[test]
    fn a_held_command_runs_only_when_released() {
        // Held: its command line is still ours, not `sh`'s.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 5"]);
        let own = std::fs::read("/proc/self/cmdline").unwrap();
        let mut held = None;
        let mut child = spawn_held(cmd, |pid| {
            held = Some(std::fs::read(format!("/proc/{pid}/cmdline")).unwrap());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(held, Some(own));
        assert_eq!(child.wait().unwrap().code(), Some(5));
        // Refused: nothing runs, and the child is reaped.
        let marker = tempfile::tempdir().unwrap();
        let path = marker.path().join("ran");
        let mut cmd = Command::new("touch");
        cmd.arg(&path);
        let mut pid = 0;
        let err = spawn_held(cmd, |p| {
            pid = p;
            Err("refused")
        });
        assert!(matches!(err, Err(SpawnError::Hold("refused"))));
        assert!(!path.exists());
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        // No such program: exec's own errno.
        let cmd = Command::new("/nonexistent/listns-no-such-command");
        match spawn_held(cmd, |_| Ok::<(), ()>(())) {
            Err(SpawnError::Spawn(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT)),
            other => panic!("{other:?}"),
        }
    }
}
