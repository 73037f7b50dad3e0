//! What the lsns parity tests share: running listns, and the cases they
//! set up for real (namespaces held by an fd, a socket, a user/pid pair,
//! mounts, a pseudo-terminal).

use std::{
    collections::BTreeSet,
    io::Read,
    os::fd::OwnedFd,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use listns_tests::{NetnsGuard, listns_bin, ns_inode, wait_for};
use serde_json::Value;

pub fn listns(args: &[&str]) -> Output {
    Command::new(listns_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run listns")
}

/// stdout of a listns run that must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = listns(args);
    assert!(
        out.status.success(),
        "listns {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// stderr of a listns run that must fail with exit status 1.
pub fn fails(args: &[&str]) -> String {
    let out = listns(args);
    assert_eq!(out.status.code(), Some(1), "listns {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `listns -J ARGS`, checked against the committed JSON Schema.
pub fn json(args: &[&str]) -> Value {
    let mut all = vec!["-J"];
    all.extend_from_slice(args);
    let v = serde_json::from_str(&ok(&all)).expect("JSON");
    listns_tests::assert_valid_json(&v);
    v
}

/// The one object `-J -Q 'NS == inum'` gives.
pub fn row(inum: u64, cols: &str) -> Value {
    let q = format!("NS == {inum}");
    let v = json(&["-o", cols, "-Q", &q]);
    let list = v["namespaces"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one row for {inum}: {v}");
    list[0].clone()
}

/// Every NS of a `-n -r -o NS ...` listing.
pub fn inodes(args: &[&str]) -> BTreeSet<u64> {
    let mut all = vec!["-n", "-r", "-o", "NS"];
    all.extend_from_slice(args);
    ok(&all)
        .lines()
        .map(|l| l.parse().expect("an inode per line"))
        .collect()
}

/// A table's cells, line by line (lsns 2.38 pads short numbers to a width
/// hint where listns does not: the same cells, not the same spaces).
pub fn cells(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// A child killed and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn sh(script: &str) -> Proc {
        Proc(
            Command::new("sh")
                .args(["-c", script])
                .stdin(Stdio::null())
                .spawn()
                .expect("sh"),
        )
    }
    /// PROG ARGS without a shell (busybox's sh, in the kernel-matrix guests,
    /// runs its own `ip` applet, which has no `netns`).
    pub fn cmd(prog: &str, args: &[&str]) -> Proc {
        Proc(
            Command::new(prog)
                .args(args)
                .stdin(Stdio::null())
                .spawn()
                .expect(prog),
        )
    }
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A netns that only an fd of a sleeping process holds (`ip netns add`,
/// `exec 7<`, `ip netns delete`): the process and the netns inode.
pub fn fd_held_netns(name: &'static str) -> (Proc, u64) {
    let guard = NetnsGuard::new(name);
    let path = format!("/run/netns/{name}");
    let inum = ns_inode(&path);
    let p = Proc::sh(&format!("exec 7<{path}; exec sleep 637"));
    let fd7 = format!("/proc/{}/fd/7", p.pid());
    wait_for(Duration::from_secs(5), || std::fs::read_link(&fd7).ok()).expect("fd 7 open");
    drop(guard); // ip netns delete: the fd is all that is left
    (p, inum)
}

/// A netns that only a socket of this process holds: a thread made it,
/// opened a socket there and exited.
pub fn socket_held_netns() -> (OwnedFd, u64) {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let inum = ns_inode("/proc/thread-self/ns/net");
        let s = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        (s, inum)
    })
    .join()
    .unwrap()
}

/// `unshare --user --pid --fork sleep`: (unshare's pid, sleep's pid, the
/// new user namespace, the new pid namespace). Both are killed on drop
/// (an orphan would keep the test's inherited fds, the flock's among them).
pub struct UserPid {
    _p: Proc,
    pub unshare: u32,
    pub sleep: u32,
    pub user: u64,
    pub pid_ns: u64,
}

pub fn user_pid_pair() -> UserPid {
    let p = Proc(
        Command::new("unshare")
            .args(["--user", "--pid", "--fork", "--kill-child", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare"),
    );
    let u = p.pid();
    let children = format!("/proc/{u}/task/{u}/children");
    let sleep = wait_for(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&children).ok()?;
        let pid: u32 = text.split_whitespace().next()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        cmd.starts_with(b"sleep").then_some(pid)
    })
    .expect("unshare forked sleep");
    UserPid {
        unshare: u,
        sleep,
        user: ns_inode(format!("/proc/{u}/ns/user")),
        pid_ns: ns_inode(format!("/proc/{sleep}/ns/pid")),
        _p: p,
    }
}

impl Drop for UserPid {
    fn drop(&mut self) {
        // The init of its pid namespace: only SIGKILL ends it from outside.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.sleep as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Tree depth of each line's first cell (two columns per level) by NS.
pub fn depths(text: &str) -> Vec<(u64, usize)> {
    text.lines()
        .filter_map(|l| {
            let start = l.find(|c: char| c.is_ascii_digit())?;
            let depth = l[..start].chars().count() / 2;
            let ns = l[start..].split_whitespace().next()?.parse().ok()?;
            Some((ns, depth))
        })
        .collect()
}

/// A temporary directory whose mounts are detached on drop.
pub struct Mounts {
    pub _dir: tempfile::TempDir,
    pub mounts: Vec<std::path::PathBuf>,
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Runs listns with its stdout on a pseudo-terminal of `cols` columns;
/// returns what it wrote there.
pub fn on_terminal(cols: u16, args: &[&str]) -> String {
    let ws = nix::pty::Winsize {
        ws_row: 50,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
    let mut child = Command::new(listns_bin())
        .args(args)
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave))
        .stderr(Stdio::null())
        .spawn()
        .expect("listns");
    let mut master = std::fs::File::from(pty.master);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    // Read until the child is gone and the terminal drained (EIO then).
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    assert!(child.wait().unwrap().success());
    String::from_utf8(out).expect("UTF-8").replace("\r\n", "\n")
}
