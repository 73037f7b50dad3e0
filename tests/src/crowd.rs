//! A crowd of processes with namespaces and sockets of their own, held
//! until dropped: `n` processes in groups of 25, each a leader that
//! unshares uts+ipc (every 2nd group also cgroup, every 4th also net),
//! opens a UDP socket and forks the rest of its group, which pause. The
//! state of `listns-user/benches/scan.rs` (which cannot use this crate: it
//! is listns-user's own bench), for the scan's kernel-pass bench and the
//! test that both passes agree on it.

use std::{
    io::Read,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

/// Processes per group: a leader and its children.
pub const GROUP: usize = 25;

/// The held processes: `leaders` and their children. Dropping it kills the
/// leaders (their children die with them, `PR_SET_PDEATHSIG`) and reaps
/// the leaders; a caller that is a child subreaper reaps the orphans too.
pub struct Crowd {
    leaders: Vec<libc::pid_t>,
}

impl Crowd {
    /// Holds `n` processes; `progress(up, seconds)` is called as they come
    /// up (every 2,000). Fails, never hangs, when one dies while starting.
    pub fn hold(n: usize, mut progress: impl FnMut(usize, f64)) -> Crowd {
        let start = Instant::now();
        let (r, w) = nix::unistd::pipe().unwrap();
        let groups = n.div_ceil(GROUP);
        let mut leaders = Vec::with_capacity(groups);
        for g in 0..groups {
            let members = GROUP.min(n - g * GROUP);
            // SAFETY: the child makes raw syscalls only, then pauses.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
            if pid == 0 {
                // SAFETY: raw syscalls in the forked child.
                unsafe { leader(g, members, w.as_raw_fd()) }
            }
            leaders.push(pid);
        }
        drop(w);
        // Leaders first in `Crowd`, so that a panic below still kills them.
        let crowd = Crowd { leaders };
        let mut f = std::fs::File::from(r);
        let mut got = 0;
        let mut next_report = 2000;
        let mut buf = [0u8; 4096];
        while got < n {
            let mut pfd = libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pfd, 1, 1000) };
            if ready <= 0 {
                // Nothing for a second: a group that died (its fork or
                // unshare failed) never reports; say so instead of hanging.
                let dead = crowd.leaders.iter().any(|&p| {
                    // SAFETY: plain syscall on our own child.
                    (unsafe { libc::waitpid(p, std::ptr::null_mut(), libc::WNOHANG) }) > 0
                });
                assert!(
                    !dead,
                    "a group of the crowd died while starting ({got} of {n} up): \
                     out of memory, threads-max or pid_max?"
                );
                assert!(
                    start.elapsed() < Duration::from_secs(1800),
                    "the crowd did not come up in 30 min ({got} of {n} up)"
                );
                continue;
            }
            let k = f.read(&mut buf).unwrap();
            assert!(k > 0, "every group closed the pipe with {got} of {n} up");
            got += k;
            if got >= next_report && got < n {
                progress(got, start.elapsed().as_secs_f64());
                while next_report <= got {
                    next_report += 2000;
                }
            }
        }
        crowd
    }
}

/// Group leader: unshares uts+ipc (every 2nd group also cgroup, every 4th
/// also net), opens a UDP socket, forks `members - 1` children that pause.
/// Each writes one byte to `ready` once up; a failure exits, never hangs.
unsafe fn leader(g: usize, members: usize, ready: i32) -> ! {
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let mut flags = libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
        if g.is_multiple_of(2) {
            flags |= libc::CLONE_NEWCGROUP;
        }
        if g.is_multiple_of(4) {
            flags |= libc::CLONE_NEWNET;
        }
        if libc::unshare(flags) != 0 {
            libc::_exit(1);
        }
        let _sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        for _ in 1..members {
            let pid = libc::fork();
            if pid < 0 {
                libc::_exit(2);
            }
            if pid == 0 {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::write(ready, b"x".as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        libc::write(ready, b"x".as_ptr().cast(), 1);
        loop {
            libc::pause();
        }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        for &p in &self.leaders {
            // SAFETY: plain syscalls on our own children.
            unsafe {
                libc::kill(p, libc::SIGKILL);
                libc::waitpid(p, std::ptr::null_mut(), 0);
            }
        }
        // A child subreaper inherits the orphaned children
        // (PR_SET_PDEATHSIG kills them as their leader dies): reap those.
        let mut subreaper: libc::c_int = 0;
        // SAFETY: the kernel writes one int.
        unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut subreaper) };
        if subreaper != 0 {
            // SAFETY: plain syscall.
            while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
        }
    }
}
