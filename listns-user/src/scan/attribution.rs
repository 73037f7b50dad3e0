//! The container of the task behind a tracer event: from its cgroup
//! (`container`), named by the runtime's files (`runtime`).
//!
//! Every record carries the task's cgroup, read by the hooks in one
//! hierarchy (`CgroupHierarchy`: cgroup2, or a v1 controller on a host that
//! has them): its kernfs id, which is never reused. What that cgroup claims
//! is a fact of the cgroup, so it is looked up once per cgroup (by file
//! handle: the directory's path, even after the task has gone) and kept;
//! a task that moves to another cgroup carries the new id in its next
//! record. Where records carry no cgroup (BTF without the offsets), the
//! task's `/proc/PID/cgroup` is read instead, as the scan does.

use std::{
    collections::HashMap,
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

use super::{container, mounts, runtime::Resolver};
use crate::inventory::{CgroupHierarchy, Container, live::TaskEvent};

/// The containers of the tasks behind events.
pub struct Containers {
    /// The procfs directory, open (files are read relative to it).
    proc: Option<OwnedFd>,
    buf: Vec<u8>,
    resolver: Resolver,
    /// The hierarchy the hooks read, and where it is mounted here.
    hierarchy: Option<Mounted>,
    /// What each cgroup claims (before naming), by kernfs id.
    by_cgroup: HashMap<u64, Option<Container>>,
    /// Named containers, per pid with the cgroup they were found for: a
    /// process is asked again when it moves, and while it is in no container (runtimes move their
    /// processes into the container's cgroup after making its namespaces).
    by_pid: HashMap<u32, (u64, Container)>,
}

/// A cgroup hierarchy as mounted in listns's mount namespace.
struct Mounted {
    hierarchy: CgroupHierarchy,
    /// The mount point, open: file handles are opened on it.
    dir: OwnedFd,
    mount_point: PathBuf,
    /// The cgroup at the mount point (`/` unless a sub-tree is mounted).
    root: PathBuf,
}

/// Pids and cgroups remembered at most (each map is cleared beyond that).
const MAX_ENTRIES: usize = 4096;

/// The v1 controllers to attribute by on a host that has them, in order of
/// preference: the ones runtimes always use.
const CONTROLLERS: [&str; 6] = ["memory", "pids", "cpu", "cpuset", "blkio", "devices"];

impl Containers {
    /// Attribution from `/proc/PID/cgroup` under `proc_root` only.
    pub fn new(proc_root: PathBuf) -> Self {
        let proc = std::fs::File::open(&proc_root).ok().map(OwnedFd::from);
        Containers {
            resolver: Resolver::new("/", &proc_root),
            proc,
            buf: Vec::new(),
            hierarchy: None,
            by_cgroup: HashMap::new(),
            by_pid: HashMap::new(),
        }
    }

    /// Attribution by the cgroup that records carry, in the hierarchy
    /// `hierarchy_of` chose; what to tell the tracer.
    pub fn on_host(proc_root: PathBuf) -> Self {
        let mut c = Containers::new(proc_root);
        let mountinfo = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
        c.hierarchy = hierarchy_of(&mountinfo).and_then(|(hierarchy, point, root)| {
            let dir = std::fs::File::open(&point).ok()?.into();
            Some(Mounted {
                hierarchy,
                dir,
                mount_point: point,
                root,
            })
        });
        c
    }

    /// The hierarchy records should carry the cgroup of, if any.
    pub fn hierarchy(&self) -> Option<&CgroupHierarchy> {
        self.hierarchy.as_ref().map(|m| &m.hierarchy)
    }

    /// Where that hierarchy is mounted.
    pub fn mount_point(&self) -> Option<&Path> {
        self.hierarchy.as_ref().map(|m| m.mount_point.as_path())
    }

    /// The tracer could not read cgroups: back to the files.
    pub fn without_hierarchy(&mut self) {
        self.hierarchy = None;
    }

    /// The container of the task behind `ev`, if any.
    pub fn of(&mut self, ev: &TaskEvent) -> Option<Container> {
        let pid = ev.pid;
        let by_id = self.hierarchy.is_some() && ev.cgroup != 0;
        let cgroup = if by_id { ev.cgroup } else { 0 };
        if let Some((cg, c)) = self.by_pid.get(&pid)
            && *cg == cgroup
        {
            return Some(c.clone());
        }
        let (claim, exact) = if by_id {
            match self.by_cgroup.get(&cgroup) {
                Some(claim) => (claim.clone(), true),
                None => {
                    let (claim, exact) = self.claim_of_cgroup(cgroup, pid);
                    if exact {
                        if self.by_cgroup.len() >= MAX_ENTRIES {
                            self.by_cgroup.clear();
                        }
                        self.by_cgroup.insert(cgroup, claim.clone());
                    }
                    (claim, exact)
                }
            }
        } else {
            let proc = self.proc.as_ref()?;
            (container::of_pid(proc.as_fd(), pid, &mut self.buf), true)
        };
        let c = self.resolver.resolve(&claim?, Some(pid));
        if exact {
            if self.by_pid.len() >= MAX_ENTRIES {
                self.by_pid.clear();
            }
            self.by_pid.insert(pid, (cgroup, c.clone()));
        }
        Some(c)
    }

    /// What cgroup `id` claims, and whether that is certain. By file
    /// handle: the cgroup's own path, whoever is in it now. Failing that
    /// (no CAP_DAC_READ_SEARCH, the cgroup removed already), the task's
    /// cgroup file, certain only if its line for the hierarchy names the
    /// directory with that id (the task has not moved since).
    fn claim_of_cgroup(&mut self, id: u64, pid: u32) -> (Option<Container>, bool) {
        let Some(m) = &self.hierarchy else {
            return (None, false);
        };
        if let Ok(fd) = crate::sys::nsfs::open_cgroup_by_id(m.dir.as_fd(), id)
            && let Some(path) = m.cgroup_path(&fd)
        {
            return (
                container::from_cgroup_path(&String::from_utf8_lossy(path.as_os_str().as_bytes())),
                true,
            );
        }
        let Some(proc) = &self.proc else {
            return (None, false);
        };
        self.buf.clear();
        let name = crate::sys::NumName::with_suffix(pid.into(), "/cgroup");
        if crate::sys::read_at(proc.as_fd(), name.as_cstr(), &mut self.buf).is_err() {
            return (None, false);
        }
        let Some(path) = line_for(&self.buf, &m.hierarchy) else {
            return (None, false);
        };
        let exact = m.id_of(&path) == Some(id);
        (
            container::from_cgroup_path(&String::from_utf8_lossy(&path)),
            exact,
        )
    }

    /// The process exited.
    pub fn forget(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }
}

impl Mounted {
    /// The cgroup path of an open cgroup directory: where it is under the
    /// mount point, below the mount's root.
    fn cgroup_path(&self, dir: &OwnedFd) -> Option<PathBuf> {
        use std::os::fd::AsRawFd;
        let at = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
        let rel = at.strip_prefix(&self.mount_point).ok()?;
        Some(self.root.join(rel))
    }

    /// The kernfs id (inode number) of the cgroup at `path`.
    fn id_of(&self, path: &[u8]) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(path));
        let rel = path.strip_prefix(&self.root).ok()?;
        std::fs::metadata(self.mount_point.join(rel))
            .ok()
            .map(|m| m.ino())
    }
}

/// The path that a cgroup file gives for `h`: the `0::` line for cgroup2,
/// the line whose controllers include the controller for v1.
fn line_for(file: &[u8], h: &CgroupHierarchy) -> Option<Vec<u8>> {
    file.split(|&b| b == b'\n').find_map(|line| {
        let mut f = line.splitn(3, |&b| b == b':');
        let (id, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let ours = match h {
            CgroupHierarchy::Unified => id == b"0" && controllers.is_empty(),
            CgroupHierarchy::Controller(c) => controllers
                .split(|&b| b == b',')
                .any(|name| name == c.as_bytes()),
        };
        ours.then(|| path.to_vec())
    })
}

/// The hierarchy to attribute by, from a mountinfo file: cgroup2 where it
/// is the only one (a pure cgroup2 host), else the first of `CONTROLLERS`
/// mounted as v1 (a hybrid or v1 host, whose cgroup2 mount, if any, holds
/// no controller and rarely any container), else cgroup2 wherever it is.
/// With its mount point and the cgroup mounted there.
fn hierarchy_of(mountinfo: &[u8]) -> Option<(CgroupHierarchy, PathBuf, PathBuf)> {
    let mut unified = None;
    let mut v1: Vec<(usize, PathBuf, PathBuf)> = Vec::new();
    for m in mounts::cgroup_mounts(mountinfo) {
        match m.controllers {
            None => {
                unified.get_or_insert((m.mount_point, m.root));
            }
            Some(list) => {
                if let Some(rank) = CONTROLLERS.iter().position(|c| list.iter().any(|l| l == c)) {
                    v1.push((rank, m.mount_point, m.root));
                }
            }
        }
    }
    v1.sort_by_key(|(rank, _, _)| *rank);
    if let Some((rank, point, root)) = v1.into_iter().next() {
        return Some((
            CgroupHierarchy::Controller(CONTROLLERS[rank].to_string()),
            point,
            root,
        ));
    }
    unified.map(|(point, root)| (CgroupHierarchy::Unified, point, root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::live::TaskEventKind;

    const ID: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    /// The task behind an unshare by `pid` whose record carries `cgroup`.
    fn by(pid: u32, cgroup: u64) -> TaskEvent {
        TaskEvent {
            cgroup,
            ..TaskEvent::test(TaskEventKind::Unshare, pid)
        }
    }

    fn write_cgroup_file(proc: &Path, pid: u32, text: &str) {
        std::fs::create_dir_all(proc.join(pid.to_string())).unwrap();
        std::fs::write(proc.join(format!("{pid}/cgroup")), text).unwrap();
    }

    /// Without a hierarchy (records without cgroups) the creator's
    /// container comes from `PID/cgroup` under the procfs root; a process
    /// that is gone has none, and a found one is remembered until it exits.
    #[test]
    fn containers_are_read_from_the_cgroup_file_of_the_pid() {
        let root = tempfile::tempdir().unwrap();
        write_cgroup_file(
            root.path(),
            4242,
            &format!("12:pids:/\n4:memory:/docker/{ID}\n0::/\n"),
        );
        write_cgroup_file(root.path(), 7, "0::/init.scope\n");
        let mut c = Containers::new(root.path().to_path_buf());
        let got = c.of(&by(4242, 0)).expect("a docker container");
        assert_eq!((got.runtime, got.id.as_str()), ("docker", ID));
        assert_eq!(c.of(&by(7, 0)), None);
        assert_eq!(c.of(&by(99, 0)), None, "no such process");
        // Remembered while the process lives, even if its file goes.
        std::fs::remove_dir_all(root.path().join("4242")).unwrap();
        assert!(c.of(&by(4242, 0)).is_some());
        c.forget(4242);
        assert_eq!(c.of(&by(4242, 0)), None);
    }

    /// A hierarchy whose "mount" is a plain directory: file handles do not
    /// open cgroups there, so claims come from the cgroup file, and are
    /// kept per cgroup only where the file's line for the hierarchy names
    /// the directory with the record's id (the inode, as `stat` says).
    fn fixture(hierarchy: CgroupHierarchy) -> (tempfile::TempDir, tempfile::TempDir, Containers) {
        let proc = tempfile::tempdir().unwrap();
        let cg = tempfile::tempdir().unwrap();
        let mut c = Containers::new(proc.path().to_path_buf());
        c.hierarchy = Some(Mounted {
            hierarchy,
            dir: std::fs::File::open(cg.path()).unwrap().into(),
            mount_point: cg.path().to_path_buf(),
            root: PathBuf::from("/"),
        });
        (proc, cg, c)
    }

    fn ino(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().ino()
    }

    #[test]
    fn a_cgroup_is_looked_up_once_and_kept_by_id() {
        let (proc, cg, mut c) = fixture(CgroupHierarchy::Controller("memory".into()));
        let scope = format!("machine/docker-{ID}.scope");
        std::fs::create_dir_all(cg.path().join(&scope)).unwrap();
        std::fs::create_dir_all(cg.path().join("user")).unwrap();
        let (docker, user) = (ino(&cg.path().join(&scope)), ino(&cg.path().join("user")));
        // The memory line decides, not the first line that claims something.
        write_cgroup_file(
            proc.path(),
            10,
            &format!("5:pids:/podman/libpod-{ID}\n4:memory:/{scope}\n0::/\n"),
        );
        assert_eq!(c.of(&by(10, docker)).map(|c| c.runtime), Some("docker"));
        // Known by cgroup now: pid 20 has no file at all.
        assert_eq!(c.of(&by(20, docker)).map(|c| c.id), Some(ID.to_string()));
        // A record from user.slice while the file says docker (the task
        // moved in between): the file's answer, not kept for either id.
        write_cgroup_file(proc.path(), 11, &format!("4:memory:/{scope}\n"));
        assert!(c.of(&by(11, user)).is_some());
        assert!(
            !c.by_cgroup.contains_key(&user),
            "a moved task's claim was kept"
        );
        write_cgroup_file(proc.path(), 12, "4:memory:/user\n");
        assert_eq!(c.of(&by(12, user)), None);
        assert_eq!(c.by_cgroup.get(&user), Some(&None));
        // Pid 11 again, in user (its record says so): no container. The
        // answer follows the record's cgroup, not what pid 11 had.
        assert_eq!(c.of(&by(11, user)), None);
    }

    #[test]
    fn the_hierarchys_line_of_a_cgroup_file() {
        let file = b"12:pids:/p\n4:cpu,cpuacct:/c\n1:name=systemd:/s\n0::/u\n";
        let line = |h: CgroupHierarchy| line_for(file, &h);
        assert_eq!(line(CgroupHierarchy::Unified).as_deref(), Some(&b"/u"[..]));
        assert_eq!(
            line(CgroupHierarchy::Controller("cpuacct".into())).as_deref(),
            Some(&b"/c"[..])
        );
        assert_eq!(line(CgroupHierarchy::Controller("memory".into())), None);
        // A path with colons is kept whole.
        assert_eq!(
            line_for(b"0::/a:b\n", &CgroupHierarchy::Unified).as_deref(),
            Some(&b"/a:b"[..])
        );
    }

    #[test]
    fn the_hierarchy_chosen_on_each_kind_of_host() {
        let pure = b"30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let hybrid = b"\
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
";
        let named_only =
            b"34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        let pick = |info: &[u8]| {
            hierarchy_of(info).map(|(h, point, _)| (h, point.to_string_lossy().into_owned()))
        };
        assert_eq!(
            pick(pure),
            Some((CgroupHierarchy::Unified, "/sys/fs/cgroup".into()))
        );
        assert_eq!(
            pick(hybrid),
            Some((
                CgroupHierarchy::Controller("memory".into()),
                "/sys/fs/cgroup/memory".into()
            ))
        );
        assert_eq!(pick(named_only), None);
    }

    /// On this host's own cgroup mount: a cgroup named like a docker
    /// container is attributed by its id alone, through its file handle,
    /// for a process that does not exist (so no file could have said it).
    #[test]
    fn a_real_cgroup_is_attributed_by_its_handle() {
        if !listns_skip::require_root() {
            return;
        }
        let mut c = Containers::on_host("/proc".into());
        let Some(m) = &c.hierarchy else {
            listns_skip::skip("no cgroup hierarchy mounted here");
            return;
        };
        let dir = m
            .mount_point
            .join(format!("listns-unit-{}", std::process::id()));
        let leaf = dir.join(format!("docker-{ID}.scope"));
        std::fs::create_dir_all(&leaf).unwrap();
        let id = ino(&leaf);
        let got = c.of(&by(u32::MAX - 1, id));
        let _ = std::fs::remove_dir(&leaf);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(
            got.map(|c| (c.runtime, c.id)),
            Some(("docker", ID.to_string()))
        );
        assert!(c.by_cgroup.contains_key(&id), "not kept as exact");
    }
}
