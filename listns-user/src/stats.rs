//! What a scan read and what it could not, and how it decided which
//! namespaces are the host's initial ones; with the one-line English
//! summary that goes to stderr. The scan fills these; output prints them
//! (`-J` carries them under `scan`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ns::NsType;

mod pins;
pub use pins::{NetDevice, Pin, PinKind, UnfoundNetns};

/// The pass that read processes, threads and fds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ScanPass {
    /// `/proc/PID/ns`, `/proc/PID/task/TID/ns` and `/proc/PID/fd`.
    #[default]
    Proc,
    /// One pass of the kernel's task and task-file iterators (BPF).
    Iter,
}

/// Counts of what was read and what could not be.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScanStats {
    /// Which pass read processes, threads and fds: /proc, or the kernel's
    /// iterators (`--scan`).
    #[serde(default)]
    pub pass: ScanPass,
    /// Why the iterators did not run when they were to be tried
    /// (`--scan=auto`): said once per process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_note: Option<String>,
    /// Whether this process sees the host: it is in the initial PID
    /// namespace, so /proc lists every process (see `scan::host`).
    pub host_view: bool,
    /// Whether the root is the live procfs of our own pid namespace (the
    /// ioctls and socket probes run only then).
    pub live: bool,
    pub processes: usize,
    pub processes_gone: usize,
    pub processes_denied: usize,
    /// The first few pids that refused (PID 1 does on some hosts).
    pub denied_pids: Vec<u32>,
    pub processes_failed: usize,
    /// ns links that could not be read in otherwise readable processes.
    pub links_failed: usize,
    pub threads: usize,
    pub threads_failed: usize,
    pub fds: usize,
    pub fds_failed: usize,
    /// Processes whose fd directory could not be listed.
    pub fd_dirs_failed: usize,
    pub sockets: usize,
    pub sockets_failed: usize,
    /// tun/tap fds attached to a device, and those that could not be asked.
    pub tun_fds: usize,
    pub tun_failed: usize,
    pub mount_namespaces_read: usize,
    /// Mount namespaces no process is in, read through a child that
    /// entered them, and those that could not be entered.
    pub mount_namespaces_entered: usize,
    pub mount_namespaces_unentered: usize,
    pub mountinfo_failed: usize,
    pub mountinfo_bad_lines: usize,
    pub netns_entries: usize,
    pub netns_failed: usize,
    pub namespaces_opened: usize,
    pub namespaces_unopened: usize,
    /// Network namespaces whose NETNSID could not be asked for.
    pub netnsid_failed: usize,
    /// Network namespaces that a netns id names and the scan did not
    /// find (dumped with `RTM_GETNSID` in every netns found).
    #[serde(default)]
    pub unfound_netns: Vec<UnfoundNetns>,
    /// Netns id tables that could not be read or matched.
    #[serde(default)]
    pub nsid_tables_failed: usize,
    /// References that pin a namespace the scan cannot open.
    #[serde(default)]
    pub pins: Vec<Pin>,
    /// How each initial namespace was determined.
    pub initial: BTreeMap<NsType, InitialSource>,
    pub elapsed_ms: f64,
}

impl ScanStats {
    /// Processes that could not be read, for whatever reason.
    pub fn processes_unread(&self) -> usize {
        self.processes_gone + self.processes_denied + self.processes_failed
    }

    /// One line for stderr saying what could not be read, or `None` when
    /// everything was.
    pub fn summary(&self) -> Option<String> {
        let fds_unread = self.fds_failed + self.fd_dirs_failed;
        let other = self.threads_failed
            + self.sockets_failed
            + self.tun_failed
            + self.mountinfo_failed
            + self.mount_namespaces_unentered
            + self.mountinfo_bad_lines
            + self.netns_failed
            + self.netnsid_failed
            + self.nsid_tables_failed
            + self.links_failed;
        let pinned = pins::phrase(&self.unfound_netns, &self.pins);
        if self.processes_unread() == 0 && fds_unread == 0 && other == 0 {
            return pinned;
        }
        let mut line = format!(
            "could not read {} of {} processes ({} exited, {} denied, {} other), {} fds ({} fd directories)",
            self.processes_unread(),
            self.processes + self.processes_unread(),
            self.processes_gone,
            self.processes_denied,
            self.processes_failed,
            self.fds_failed + self.fd_dirs_failed,
            self.fd_dirs_failed,
        );
        if !self.denied_pids.is_empty() {
            let pids: Vec<String> = self.denied_pids.iter().map(u32::to_string).collect();
            let more = if self.processes_denied > pids.len() {
                ", ..."
            } else {
                ""
            };
            line.push_str(&format!(" (denied: pid {}{more})", pids.join(", ")));
        }
        for (n, what) in [
            (self.threads_failed, "threads"),
            (self.links_failed, "ns links"),
            (self.sockets_failed, "sockets"),
            (self.tun_failed, "tun fds"),
            (self.mountinfo_failed, "mountinfo files"),
            (
                self.mount_namespaces_unentered,
                "mount namespaces without processes",
            ),
            (self.mountinfo_bad_lines, "mountinfo lines"),
            (self.netns_failed, "netns entries"),
            (self.netnsid_failed, "NETNSIDs"),
            (self.nsid_tables_failed, "netns id tables"),
        ] {
            if n > 0 {
                line.push_str(&format!(", {n} {what}"));
            }
        }
        if self.processes_denied + self.fd_dirs_failed > 0 && !nix::unistd::geteuid().is_root() {
            line.push_str("; not root: namespaces of other users' processes, their fds and sockets are missing");
        }
        if let Some(p) = pinned {
            line.push_str("; ");
            line.push_str(&p);
        }
        Some(line)
    }
}

/// How an initial namespace was determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InitialSource {
    /// kthreadd, PID 2.
    Kthreadd,
    /// Another kernel thread (pid).
    KernelThread(u32),
    /// PID 1's links.
    Pid1,
    /// The kernel's fixed inode number for that type.
    FixedInode,
}

impl std::fmt::Display for InitialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitialSource::Kthreadd => f.write_str("kthreadd (pid 2)"),
            InitialSource::KernelThread(pid) => write!(f, "kernel thread {pid}"),
            InitialSource::Pid1 => f.write_str("pid 1"),
            InitialSource::FixedInode => f.write_str("fixed initial inode"),
        }
    }
}

/// One phrase for the stats line: "kthreadd (pid 2)" or a per-type list.
pub fn describe(how: &BTreeMap<NsType, InitialSource>) -> String {
    let mut sources: Vec<InitialSource> = how.values().copied().collect();
    sources.dedup();
    if sources.len() == 1 && how.len() == 8 {
        return sources[0].to_string();
    }
    let mut parts: Vec<String> = how.iter().map(|(t, s)| format!("{t}: {s}")).collect();
    let missing: Vec<&str> = NsType::ALL
        .iter()
        .filter(|t| !how.contains_key(t))
        .map(|t| t.name())
        .collect();
    if !missing.is_empty() {
        parts.push(format!("unknown for {}", missing.join(",")));
    }
    parts.join("; ")
}
