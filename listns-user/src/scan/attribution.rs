//! The container of the task behind a tracer event: from its cgroup
//! (`container`), named by the runtime's files (`runtime`), remembered per
//! pid while the process lives.

use std::{
    collections::HashMap,
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::PathBuf,
};

use super::{container, runtime::Resolver};
use crate::inventory::{
    Container,
    live::{TaskEvent, TaskEventKind},
};

/// The containers of the tasks behind events: from their cgroup, named by
/// the runtime's files, remembered per pid while the process lives.
pub struct Containers {
    /// The procfs directory, open (files are read relative to it).
    proc: Option<OwnedFd>,
    buf: Vec<u8>,
    resolver: Resolver,
    /// Only containers found: a process not (yet) in one is asked again,
    /// since runtimes move their processes into the container's cgroup
    /// after creating its namespaces.
    by_pid: HashMap<u32, Container>,
    /// `/sys/fs/cgroup`, where it is a cgroup2 mount.
    cgroup2: Option<PathBuf>,
    /// What the cgroup file says (the claim, before naming), per cgroup2
    /// id: see `of`.
    by_cgroup: HashMap<u64, Option<Container>>,
}

/// Pids (and cgroups) remembered at most (the map is cleared beyond that).
const MAX_PIDS: usize = 4096;

impl Containers {
    pub fn new(proc_root: PathBuf) -> Self {
        let proc = std::fs::File::open(&proc_root).ok().map(OwnedFd::from);
        // Only a pure cgroup2 host's claims are cached, and there the
        // hierarchy is at /sys/fs/cgroup (a hybrid host's `unified` mount
        // would not do: its cgroup files have v1 lines too).
        let cgroup2 = PathBuf::from("/sys/fs/cgroup");
        let cgroup2 = nix::sys::statfs::statfs(&cgroup2)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .then_some(cgroup2);
        Containers {
            resolver: Resolver::new("/", &proc_root),
            proc,
            buf: Vec::new(),
            by_pid: HashMap::new(),
            cgroup2,
            by_cgroup: HashMap::new(),
        }
    }

    /// The container of the task behind `ev`, if any.
    ///
    /// One read of `/proc/PID/cgroup` per process, except where the file
    /// is a pure cgroup2 one (`0::PATH`, no v1 hierarchy): there the path,
    /// and so the claim, is a function of the cgroup, whose id the kernel
    /// put in the record, so the claim is kept per cgroup id and a
    /// process in a known cgroup costs no system call. It is kept only when
    /// the record's id is the id of the directory the file names (the task
    /// was not moved in between), and never for a fork, whose record
    /// carries the parent's cgroup (clone3 can place the child elsewhere).
    pub fn of(&mut self, ev: &TaskEvent) -> Option<Container> {
        let pid = ev.pid;
        if let Some(c) = self.by_pid.get(&pid) {
            return Some(c.clone());
        }
        let cacheable = ev.kind != TaskEventKind::Fork && ev.cgroup_id != 0;
        let claim = match self.by_cgroup.get(&ev.cgroup_id) {
            Some(claim) if cacheable => claim.clone(),
            _ => {
                let proc = self.proc.as_ref()?;
                let claim = container::of_pid(proc.as_fd(), pid, &mut self.buf);
                if cacheable && self.cgroup_is(ev.cgroup_id) {
                    if self.by_cgroup.len() >= MAX_PIDS {
                        self.by_cgroup.clear();
                    }
                    self.by_cgroup.insert(ev.cgroup_id, claim.clone());
                }
                claim
            }
        }?;
        let c = self.resolver.resolve(&claim, Some(pid));
        if self.by_pid.len() >= MAX_PIDS {
            self.by_pid.clear();
        }
        self.by_pid.insert(pid, c.clone());
        Some(c)
    }

    /// Whether the cgroup file just read (`buf`) is a pure cgroup2 one
    /// whose directory has the id `id`.
    fn cgroup_is(&self, id: u64) -> bool {
        use std::os::unix::fs::MetadataExt;
        let (Some(root), Some(path)) = (&self.cgroup2, self.buf.strip_prefix(b"0::")) else {
            return false;
        };
        let Some(path) = path.strip_suffix(b"\n") else {
            return false;
        };
        // One line only, and a plain absolute path (not "/.." from another
        // cgroup namespace).
        if path.contains(&b'\n') || !path.starts_with(b"/") || path.windows(3).any(|w| w == b"/..")
        {
            return false;
        }
        let path = std::ffi::OsStr::from_bytes(&path[1..]);
        std::fs::metadata(root.join(path)).is_ok_and(|m| m.ino() == id)
    }

    /// The process exited.
    pub fn forget(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task behind an unshare by `pid` in cgroup `cgroup_id`.
    fn by(pid: u32, cgroup_id: u64) -> TaskEvent {
        TaskEvent {
            cgroup_id,
            ..TaskEvent::test(TaskEventKind::Unshare, pid)
        }
    }

    /// The creator's container comes from `PID/cgroup` under the procfs
    /// root, read relative to it; a process that is gone has none, and a
    /// found one is remembered until the process exits.
    #[test]
    fn containers_are_read_from_the_cgroup_file_of_the_pid() {
        let root = tempfile::tempdir().unwrap();
        let id = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
        std::fs::create_dir(root.path().join("4242")).unwrap();
        std::fs::write(
            root.path().join("4242/cgroup"),
            format!("12:pids:/\n4:memory:/docker/{id}\n0::/\n"),
        )
        .unwrap();
        std::fs::create_dir(root.path().join("7")).unwrap();
        std::fs::write(root.path().join("7/cgroup"), "0::/init.scope\n").unwrap();
        let mut c = Containers::new(root.path().to_path_buf());
        c.cgroup2 = None;
        let got = c.of(&by(4242, 0)).expect("a docker container");
        assert_eq!((got.runtime, got.id.as_str()), ("docker", id));
        assert_eq!(c.of(&by(7, 0)), None);
        assert_eq!(c.of(&by(99, 0)), None, "no such process");
        // Remembered while the process lives, even if its file goes.
        std::fs::remove_dir_all(root.path().join("4242")).unwrap();
        assert!(c.of(&by(4242, 0)).is_some());
        c.forget(4242);
        assert_eq!(c.of(&by(4242, 0)), None);
    }

    /// On a pure cgroup2 host the claim is kept per cgroup id, and only
    /// where that is exact: the file has no v1 line, the record's id is the
    /// id of the directory it names, and the record is not a fork's.
    #[test]
    fn pure_cgroup2_claims_are_kept_per_cgroup_id() {
        use std::os::unix::fs::MetadataExt;
        let proc = tempfile::tempdir().unwrap();
        let cg = tempfile::tempdir().unwrap();
        let id = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
        let scope = format!("system.slice/docker-{id}.scope");
        std::fs::create_dir_all(cg.path().join(&scope)).unwrap();
        std::fs::create_dir_all(cg.path().join("user.slice")).unwrap();
        let ino = |p: &str| std::fs::metadata(cg.path().join(p)).unwrap().ino();
        let (docker, user) = (ino(&scope), ino("user.slice"));
        let file = |pid: u32, text: &str| {
            std::fs::create_dir_all(proc.path().join(pid.to_string())).unwrap();
            std::fs::write(proc.path().join(format!("{pid}/cgroup")), text).unwrap();
        };
        file(10, &format!("0::/{scope}\n"));
        file(11, "0::/user.slice\n");
        file(12, "4:memory:/x\n0::/user.slice\n");
        let mut c = Containers::new(proc.path().to_path_buf());
        c.cgroup2 = Some(cg.path().to_path_buf());
        // Read once, then known by cgroup: pid 20 has no file at all.
        assert_eq!(c.of(&by(10, docker)).unwrap().id, id);
        assert_eq!(c.of(&by(20, docker)).map(|c| c.id), Some(id.to_string()));
        assert_eq!(c.of(&by(11, user)), None);
        file(21, &format!("0::/{scope}\n"));
        assert_eq!(
            c.of(&by(21, user)),
            None,
            "kept: user.slice has no container"
        );
        // Not kept: a v1 line (hybrid host) ...
        let mut c = Containers::new(proc.path().to_path_buf());
        c.cgroup2 = Some(cg.path().to_path_buf());
        assert_eq!(c.of(&by(12, user)), None);
        assert!(c.by_cgroup.is_empty(), "hybrid file kept");
        // ... a record whose cgroup is not the file's (moved since) ...
        assert_eq!(c.of(&by(10, user)).unwrap().id, id);
        assert!(c.by_cgroup.is_empty(), "moved task kept");
        // ... a fork, and a process gone before its file was read.
        let fork = TaskEvent {
            kind: TaskEventKind::Fork,
            ..by(11, user)
        };
        assert_eq!(c.of(&fork), None);
        assert_eq!(c.of(&by(99, user)), None);
        assert!(c.by_cgroup.is_empty(), "fork or gone process kept");
        assert_eq!(c.of(&by(11, user)), None);
        assert_eq!(c.by_cgroup.get(&user), Some(&None));
    }
}
