//! Least privilege: once the eBPF programs are loaded and attached, the
//! watch loop keeps only the capabilities it still uses, so that a bug in
//! the code that parses what processes chose (names, paths, mount tables)
//! has less to abuse. Each one kept, and why:
//!
//! - CAP_SYS_PTRACE: rescans read other processes' `/proc/PID/ns`, `fd` and
//!   `mountinfo` (ptrace read access) and copy their sockets' fds with
//!   `pidfd_getfd` (ptrace attach access) to ask each socket for its netns.
//! - CAP_DAC_READ_SEARCH: `open_by_handle_at`, the one-syscall liveness check
//!   of a namespace by its nsfs handle (Linux 6.18+); and listing fd
//!   directories of other users' processes.
//! - CAP_NET_ADMIN: `SIOCGSKNS`, a socket's network namespace.
//! - CAP_SYS_ADMIN: `listns(2)` over every namespace, and `setns` into mount
//!   namespaces that no process is in, to read their mounts.
//! - CAP_SYS_CHROOT: `setns` into a mount namespace also needs it.
//! - CAP_BPF: updating the kernel's map of known namespaces after a rescan;
//!   kernels before 6.5 check it on every bpf(2) call, map updates included.
//!
//! Dropped: everything else, CAP_PERFMON and CAP_SYS_RESOURCE (only loading
//! needs them), CAP_DAC_OVERRIDE, CAP_SYS_MODULE, CAP_KILL, CAP_SETUID, ...
//! They leave the effective, permitted and inheritable sets and the
//! ambient set. The bounding set is cut too unless listns will start a
//! command (`watch -- COMMAND` runs it with the privileges it was given).

use caps::{CapSet, Capability, CapsHashSet};

/// What the watch loop keeps (see the module comment).
pub const KEPT: [Capability; 6] = [
    Capability::CAP_SYS_PTRACE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_BPF,
];

/// Drops every capability but `KEPT` (those it has). Returns what was
/// dropped, or why it could not drop.
pub fn drop_unneeded(cut_bounding: bool) -> Result<Vec<Capability>, caps::errors::CapsError> {
    let keep: CapsHashSet = KEPT.into_iter().collect();
    let permitted = caps::read(None, CapSet::Permitted)?;
    let dropped: Vec<Capability> = {
        let mut d: Vec<_> = permitted.difference(&keep).copied().collect();
        d.sort_by_key(|c| c.index());
        d
    };
    let kept: CapsHashSet = permitted.intersection(&keep).copied().collect();
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    // Cutting the bounding set needs CAP_SETPCAP: root has it, a service
    // given ambient capabilities (systemd's DynamicUser=) does not, and its
    // bounding set is already the unit's.
    if cut_bounding && permitted.contains(&Capability::CAP_SETPCAP) {
        for cap in caps::read(None, CapSet::Bounding)? {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)?;
            }
        }
    }
    caps::set(None, CapSet::Effective, &kept)?;
    caps::set(None, CapSet::Permitted, &kept)?;
    Ok(dropped)
}
