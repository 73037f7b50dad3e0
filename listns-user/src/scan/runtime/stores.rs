//! The engines' own records of container names: containers/storage's
//! `containers.json` (podman, CRI-O) and Docker's `config.v2.json`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::read_json;

/// `<graphroot>/<driver>-containers` from a bundle at
/// `<graphroot or runroot>/<driver>-containers/<id>/userdata`.
pub fn storage_dir_of_bundle(bundle: &Path) -> Option<PathBuf> {
    if bundle.file_name()? != "userdata" {
        return None;
    }
    let dir = bundle.parent()?.parent()?;
    dir.file_name()?
        .to_str()?
        .ends_with("-containers")
        .then(|| dir.to_path_buf())
}

/// Root podman's default storage directories (one per graph driver), below
/// `root`.
pub fn default_storage_dirs(root: &Path) -> Vec<PathBuf> {
    let base = root.join("var/lib/containers/storage");
    let Ok(rd) = std::fs::read_dir(&base) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("-containers"))
        })
        .collect();
    v.sort();
    v
}

#[derive(Deserialize)]
struct StorageContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

/// id -> first name, from one containers.json (empty when unreadable).
pub fn storage_names(file: &Path) -> HashMap<String, String> {
    read_json::<Vec<StorageContainer>>(file)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| Some((c.id, c.names.into_iter().next()?)))
        .collect()
}

/// Docker's data root: `data-root` in /etc/docker/daemon.json, else
/// /var/lib/docker; below `root`.
pub fn docker_root(root: &Path) -> PathBuf {
    #[derive(Deserialize)]
    struct Daemon {
        #[serde(rename = "data-root")]
        data_root: Option<PathBuf>,
    }
    let configured = read_json::<Daemon>(&root.join("etc/docker/daemon.json"))
        .and_then(|d| d.data_root)
        .filter(|p| p.is_absolute());
    match configured {
        Some(p) => root.join(p.strip_prefix("/").unwrap_or(&p)),
        None => root.join("var/lib/docker"),
    }
}

/// What Docker recorded about one container.
pub struct Docker {
    pub name: Option<String>,
    pub labels: HashMap<String, String>,
    pub pid: Option<u32>,
}

/// Reads `<docker root>/containers/<id>/config.v2.json`.
pub fn docker(docker_root: &Path, id: &str) -> Option<Docker> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct V2 {
        name: Option<String>,
        config: Option<Config>,
        state: Option<St>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Config {
        labels: Option<HashMap<String, String>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct St {
        pid: Option<u32>,
        running: Option<bool>,
    }
    let v: V2 = read_json(
        &docker_root
            .join("containers")
            .join(id)
            .join("config.v2.json"),
    )?;
    let pid = v
        .state
        .filter(|s| s.running != Some(false))
        .and_then(|s| s.pid)
        .filter(|&p| p > 0);
    Some(Docker {
        // Docker keeps names with a leading slash ("/web").
        name: v
            .name
            .map(|n| n.trim_start_matches('/').to_string())
            .filter(|n| !n.is_empty()),
        labels: v.config.and_then(|c| c.labels).unwrap_or_default(),
        pid,
    })
}

/// A process's start time (field 22 of /proc/PID/stat, clock ticks since
/// boot), as runc records `init_process_start`.
pub fn start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    // The command may hold spaces and parentheses: fields start after the
    // last ')'; state is field 3, start time field 22.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}
