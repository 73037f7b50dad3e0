//! OCI runtime state (runc's state.json, crun's status), bundles and their
//! `config.json` annotations.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::{ContainerInfo, read_json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    /// `<root>/<id>/state.json`
    Runc,
    /// `<root>/<id>/status`
    Crun,
}

/// What a runtime's state says about one container.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub bundle: Option<PathBuf>,
    pub annotations: HashMap<String, String>,
    /// (init pid, its start time in clock ticks when recorded)
    pub init: Option<(u32, Option<u64>)>,
}

/// The directories where runtimes keep per-container state, below `root`:
/// fixed ones, each engine's namespace directories, and every user's
/// /run/user/<uid> (rootless podman).
pub fn state_roots(root: &Path) -> Vec<(PathBuf, StateKind)> {
    let mut out = vec![
        (root.join("run/runc"), StateKind::Runc),
        (root.join("run/crun"), StateKind::Crun),
    ];
    // /run/docker/runtime-runc/<ns> (moby), /run/containerd/runc/<ns>
    // (k8s.io, moby, default, ...).
    for parent in ["run/docker/runtime-runc", "run/containerd/runc"] {
        for d in subdirs(&root.join(parent)) {
            out.push((d, StateKind::Runc));
        }
    }
    for user in subdirs(&root.join("run/user")) {
        out.push((user.join("runc"), StateKind::Runc));
        out.push((user.join("crun"), StateKind::Crun));
    }
    out.retain(|(d, _)| d.is_dir());
    out
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[derive(Deserialize)]
struct RuncState {
    init_process_pid: Option<u32>,
    init_process_start: Option<u64>,
    config: Option<RuncConfig>,
}

#[derive(Deserialize)]
struct RuncConfig {
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct CrunStatus {
    pid: Option<u32>,
    #[serde(rename = "process-start-time")]
    process_start_time: Option<u64>,
    bundle: Option<PathBuf>,
}

/// Reads one container's state directory.
pub fn read_state(dir: &Path, kind: StateKind) -> Option<State> {
    match kind {
        StateKind::Runc => {
            let s: RuncState = read_json(&dir.join("state.json"))?;
            let mut state = State {
                init: s.init_process_pid.map(|p| (p, s.init_process_start)),
                ..Default::default()
            };
            // runc stores the spec's annotations as "key=value" labels, and
            // the bundle directory as the label "bundle".
            for label in s.config.map(|c| c.labels).unwrap_or_default() {
                let Some((k, v)) = label.split_once('=') else {
                    continue;
                };
                if k == "bundle" {
                    state.bundle = Some(PathBuf::from(v));
                } else {
                    state.annotations.insert(k.to_string(), v.to_string());
                }
            }
            Some(state)
        }
        StateKind::Crun => {
            let s: CrunStatus = read_json(&dir.join("status"))?;
            Some(State {
                bundle: s.bundle,
                init: s.pid.map(|p| (p, s.process_start_time)),
                annotations: HashMap::new(),
            })
        }
    }
}

/// A bundle in an engine's fixed place, for runtimes whose state we cannot
/// read: containerd's task directories (one per containerd namespace), and
/// containers/storage's `userdata` (CRI-O, podman) under the run and graph
/// roots. Returned as a host path (below `root`'s `/`).
pub fn find_bundle(root: &Path, id: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    for ns in subdirs(&root.join("run/containerd/io.containerd.runtime.v2.task")) {
        candidates.push(ns.join(id));
    }
    for storage in ["run/containers/storage", "var/lib/containers/storage"] {
        for d in subdirs(&root.join(storage)) {
            if d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("-containers"))
            {
                candidates.push(d.join(id).join("userdata"));
            }
        }
    }
    let found = candidates
        .into_iter()
        .find(|b| b.join("config.json").is_file())?;
    Some(Path::new("/").join(found.strip_prefix(root).ok()?))
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// The annotations of the bundle at `dir` (a path below our root).
pub fn bundle_annotations(dir: &Path) -> Option<HashMap<String, String>> {
    read_json::<Spec>(&dir.join("config.json")).map(|s| s.annotations)
}

/// Fills the Kubernetes fields and the name from annotations (or Docker
/// labels): containerd's CRI scheme first, then CRI-O's and dockershim's,
/// then nerdctl's name.
pub fn apply_annotations(a: &HashMap<String, String>, info: &mut ContainerInfo) {
    let get = |k: &str| a.get(k).filter(|v| !v.is_empty()).cloned();
    let containerd = (
        get("io.kubernetes.cri.sandbox-name"),
        get("io.kubernetes.cri.sandbox-namespace"),
        get("io.kubernetes.cri.container-name"),
        get("io.kubernetes.cri.container-type").as_deref() == Some("sandbox"),
    );
    let crio = (
        get("io.kubernetes.pod.name"),
        get("io.kubernetes.pod.namespace"),
        get("io.kubernetes.container.name"),
        get("io.kubernetes.cri-o.ContainerType").as_deref() == Some("sandbox")
            || get("io.kubernetes.docker.type").as_deref() == Some("podsandbox"),
    );
    let (pod, ns, container, sandbox) = if containerd.0.is_some() {
        containerd
    } else {
        crio
    };
    if pod.is_some() {
        info.pod = pod;
        info.k8s_namespace = ns;
        // The pause container ("POD") holds the pod's namespaces; it is
        // the pod itself, not one of its containers.
        if !sandbox && container.as_deref() != Some("POD") {
            info.k8s_container = container.clone();
            info.name = container;
        }
        return;
    }
    if let Some(n) = get("nerdctl/name") {
        info.name = Some(n);
    }
}
