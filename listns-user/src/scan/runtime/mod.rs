//! Containers by name: from the `runtime:id` that a cgroup path gives
//! (`scan::container`), find what users call the container — its name and,
//! under Kubernetes, the pod, the pod's namespace and the container's name
//! in the pod.
//!
//! # Where the names come from, and why there
//!
//! Only local files, read once per container id and cached; no sockets and
//! no network, so a resolve never waits on a daemon. In order:
//!
//! 1. The OCI runtime's state for the id (`oci`): runc's
//!    `<root>/<id>/state.json` and crun's `<root>/<id>/status`, under the
//!    roots that the engines use (/run/runc for podman and CRI-O,
//!    /run/docker/runtime-runc/moby, /run/containerd/runc/<namespace>,
//!    /run/crun, and /run/user/<uid>/{runc,crun} for rootless podman). It
//!    gives the bundle directory, the container's init pid with its start
//!    time, and (runc copies them into `config.labels`) the annotations.
//! 2. The bundle's `config.json` annotations, from the state's bundle or,
//!    when no state was found (another low-level runtime), from the
//!    engines' fixed bundle places: containerd's
//!    /run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/ and
//!    containers/storage's `<root>/<driver>-containers/<id>/userdata/`.
//!    Kubernetes facts are annotations: containerd's
//!    `io.kubernetes.cri.{sandbox-name,sandbox-namespace,container-name,
//!    container-type}`, CRI-O's (and dockershim's labels)
//!    `io.kubernetes.{pod.name,pod.namespace,container.name}` with
//!    `io.kubernetes.cri-o.ContainerType`; nerdctl's `nerdctl/name`.
//! 3. The engines' own records of names (`stores`): podman keeps the name
//!    only in its database and in containers/storage's `containers.json`
//!    (`names`), which sits beside the bundle (`<root>/<driver>-containers/`);
//!    Docker in `<data-root>/containers/<id>/config.v2.json` (`Name`, with
//!    `data-root` from /etc/docker/daemon.json).
//!
//! Considered and not used:
//! - `/proc/PID/environ` `container=`: podman and systemd-nspawn set it,
//!   Docker and Kubernetes do not; it names a runtime, never a container,
//!   and the process can rewrite it.
//! - The bundle through `/proc/PID/root`: the root is the container's
//!   rootfs; the bundle and its config.json are outside it.
//! - The engines' sockets (Docker's and podman's HTTP APIs, the CRI gRPC
//!   API): authoritative, but a daemon may be down or slow (every call would
//!   need a timeout), CRI needs a gRPC stack, and every one of them writes
//!   the files above on the same host. lxkns talks to the sockets because it
//!   also watches containers come and go; a scan needs only a lookup.
//!
//! What broke for others, and what this module does about it:
//! - Falco's and sysdig's socket lookups raced container creation: CRI
//!   answered "not yet created" for a fresh container and the metadata
//!   stayed `<NA>`/"incomplete" (sysdig added a 500 ms delay for CRI-O,
//!   falcosecurity/libs#402 added retries); a second engine on the host
//!   whose socket was not configured was never asked (falco#1913). The
//!   files here are written before the container's first process runs and
//!   exist for every engine on the host. A lookup that finds nothing is
//!   cached for [`MISS_TTL`] only, and containers.json is re-read when it
//!   changes, so a container named a moment late is named on the next ask.
//! - Cgroup paths are only a hint: their layout changes with distribution
//!   and cgroup driver (lxkns docs/cgroup.md), and a process with a
//!   writable cgroup can make a sub-cgroup named like another container.
//!   With a pid, the resolver compares the pid's mount namespace with that
//!   of the runtime's recorded init process (checked by its start time, so
//!   a reused pid does not count); on a mismatch it names nothing, and the
//!   caller keeps the cgroup's `runtime:id`.
//! - CRI-O's annotations are not containerd's (Inspektor Gadget carries a
//!   resolver for each; Tetragon lost pod names on CRI-O 1.29 when its
//!   cgroup layout changed): both schemes are read, whichever is present.
//! - Pause/sandbox containers are pods, not containers: a sandbox gets the
//!   pod and namespace and no container name.
//! - Rootless podman keeps state under /run/user/<uid>: searched too, and
//!   its containers.json is found from the bundle path, wherever the
//!   user's graph root is.
//!
//! Ids are used in paths only when they are plain hex (12 to 64 digits);
//! anything else from a cgroup path resolves to nothing. The strings found
//! are chosen by whoever started the container: the output escapes them.

mod oci;
mod stores;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use crate::inventory::Container;

/// Largest JSON file read (config.v2.json, config.json and state.json are a
/// few KiB; containers.json grows with the number of containers).
const MAX_JSON: u64 = 32 << 20;

/// How long a lookup that named nothing is remembered before the files are
/// read again (a container being created may not have them all yet).
pub const MISS_TTL: Duration = Duration::from_secs(2);

/// A container and what users call it (the inventory's `Container`).
pub use crate::inventory::Container as ContainerInfo;

/// Facts found for one id, before checking them against a pid.
#[derive(Clone, Debug, Default)]
struct Found {
    info: ContainerInfo,
    /// The runtime's init process: (pid, start time in clock ticks).
    init: Option<(u32, Option<u64>)>,
    /// When a lookup that named nothing was made (None once named).
    missed: Option<Instant>,
}

impl Found {
    fn named(&self) -> bool {
        self.info.name.is_some() || self.info.pod.is_some()
    }
}

/// Resolves containers to names, caching by id. Paths are read below
/// `root` ("/" on a live host, a fixture tree in tests); processes below
/// `proc_root`.
pub struct Resolver {
    root: PathBuf,
    proc_root: PathBuf,
    cache: HashMap<(&'static str, String), Found>,
    /// Directories holding `<id>/state.json` or `<id>/status`, listed once.
    state_roots: Option<Vec<(PathBuf, oci::StateKind)>>,
    /// containers.json files with their mtime when parsed: id -> first name.
    storage_names: HashMap<PathBuf, (Option<SystemTime>, HashMap<String, String>)>,
    docker_root: Option<PathBuf>,
    /// How long a lookup that named nothing is remembered ([`MISS_TTL`]).
    miss_ttl: Duration,
    /// Resolves that were refused because the pid was not in the container.
    pub mismatches: usize,
}

impl Resolver {
    pub fn new(root: impl Into<PathBuf>, proc_root: impl Into<PathBuf>) -> Self {
        Resolver {
            root: root.into(),
            proc_root: proc_root.into(),
            cache: HashMap::new(),
            state_roots: None,
            storage_names: HashMap::new(),
            docker_root: None,
            miss_ttl: MISS_TTL,
            mismatches: 0,
        }
    }

    /// The live host.
    pub fn host() -> Self {
        Resolver::new("/", "/proc")
    }

    /// Names the container that a cgroup path attributed to a process. With
    /// `pid`, the answer counts only if that process shares the mount
    /// namespace of the container's init process (when the runtime recorded
    /// one); otherwise only the cgroup's runtime and id come back.
    pub fn resolve(&mut self, c: &Container, pid: Option<u32>) -> ContainerInfo {
        let bare = ContainerInfo {
            runtime: c.runtime,
            id: c.id.clone(),
            ..Default::default()
        };
        if !is_hex_id(&c.id) {
            return bare;
        }
        let key = (c.runtime, c.id.clone());
        let ttl = self.miss_ttl;
        let fresh = |f: &Found| f.missed.is_none_or(|t| t.elapsed() < ttl);
        let found = match self.cache.get(&key) {
            Some(f) if fresh(f) => f.clone(),
            _ => {
                let mut f = self.lookup(c.runtime, &c.id);
                f.missed = (!f.named()).then(Instant::now);
                if f.missed.is_some() {
                    // New state directories (a user's first rootless
                    // container) appear over time: list them again.
                    self.state_roots = None;
                }
                self.cache.insert(key, f.clone());
                f
            }
        };
        if let (Some(pid), Some(init)) = (pid, found.init)
            && !self.same_container(pid, init)
        {
            self.mismatches += 1;
            return bare;
        }
        found.info
    }

    fn lookup(&mut self, runtime: &'static str, id: &str) -> Found {
        let mut found = Found {
            info: ContainerInfo {
                runtime,
                id: id.to_string(),
                ..Default::default()
            },
            init: None,
            missed: None,
        };
        let state = self.find_state(id);
        let mut bundle = state.as_ref().and_then(|s| s.bundle.clone());
        let mut annotations = state
            .as_ref()
            .map(|s| s.annotations.clone())
            .unwrap_or_default();
        if let Some(s) = &state {
            found.init = s.init;
        }
        if bundle.is_none() {
            bundle = oci::find_bundle(&self.root, id);
        }
        if let Some(b) = &bundle
            && let Some(more) = oci::bundle_annotations(&self.host_path(b))
        {
            for (k, v) in more {
                annotations.entry(k).or_insert(v);
            }
        }
        oci::apply_annotations(&annotations, &mut found.info);

        if found.info.name.is_none() {
            let storage = bundle.as_deref().and_then(stores::storage_dir_of_bundle);
            found.info.name = self.storage_name(storage.as_deref(), id);
        }
        if found.info.name.is_none() && found.info.pod.is_none() {
            let root = self.docker_root();
            if let Some(d) = stores::docker(&root, id) {
                found.info.name = d.name;
                let mut k8s = ContainerInfo::default();
                oci::apply_annotations(&d.labels, &mut k8s);
                found.info.pod = k8s.pod;
                found.info.k8s_namespace = k8s.k8s_namespace;
                if k8s.k8s_container.is_some() {
                    found.info.name = k8s.k8s_container.clone();
                    found.info.k8s_container = k8s.k8s_container;
                }
                if found.init.is_none() {
                    found.init = d.pid.map(|p| (p, None));
                }
            }
        }
        found
    }

    fn find_state(&mut self, id: &str) -> Option<oci::State> {
        let roots = self
            .state_roots
            .get_or_insert_with(|| oci::state_roots(&self.root));
        roots
            .iter()
            .find_map(|(dir, kind)| oci::read_state(&dir.join(id), *kind))
    }

    /// A path the runtime recorded (absolute on the host) below our root.
    fn host_path(&self, p: &Path) -> PathBuf {
        self.root.join(p.strip_prefix("/").unwrap_or(p))
    }

    fn storage_name(&mut self, from_bundle: Option<&Path>, id: &str) -> Option<String> {
        let mut dirs: Vec<PathBuf> = from_bundle.map(|d| self.host_path(d)).into_iter().collect();
        dirs.extend(stores::default_storage_dirs(&self.root));
        for dir in dirs {
            let file = dir.join("containers.json");
            let mtime = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
            let cached = self.storage_names.get(&file);
            if cached.is_none_or(|(t, _)| *t != mtime) {
                let names = stores::storage_names(&file);
                self.storage_names.insert(file.clone(), (mtime, names));
            }
            if let Some(n) = self.storage_names[&file].1.get(id) {
                return Some(n.clone());
            }
        }
        None
    }

    fn docker_root(&mut self) -> PathBuf {
        let root = &self.root;
        self.docker_root
            .get_or_insert_with(|| stores::docker_root(root))
            .clone()
    }

    /// Whether `pid` is inside the container whose init process the
    /// runtime recorded: it shares the init's mount namespace, or (a process
    /// that made a mount namespace of its own) the init's pid namespace when
    /// that is not the scanner's (`--pid=host` containers share the host's).
    /// An init that is gone or was replaced (another start time) proves
    /// nothing either way: the pid is taken at its cgroup's word.
    fn same_container(&self, pid: u32, (init, start): (u32, Option<u64>)) -> bool {
        let p = &self.proc_root;
        if let Some(start) = start
            && stores::start_time(p, init) != Some(start)
        {
            return true;
        }
        let link = |pid: &str, ty: &str| std::fs::read_link(p.join(pid).join("ns").join(ty)).ok();
        let (pid, init) = (pid.to_string(), init.to_string());
        let (Some(mnt), Some(init_mnt)) = (link(&pid, "mnt"), link(&init, "mnt")) else {
            return true;
        };
        if mnt == init_mnt {
            return true;
        }
        match (link(&pid, "pid"), link(&init, "pid"), link("self", "pid")) {
            (Some(a), Some(b), own) => a == b && Some(b) != own,
            _ => false,
        }
    }
}

/// Container ids that may go into a path: 12 to 64 hex digits.
fn is_hex_id(id: &str) -> bool {
    (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads a JSON file of at most [`MAX_JSON`] bytes into `T`.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_JSON).read_to_end(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}
