//! Kernel struct offsets from the running kernel's BTF.
//!
//! Rust eBPF gets no CO-RE relocations, so the programs read kernel memory at
//! offsets resolved here, at start-up, and handed over as a frozen global.
//! Members inside anonymous structs and unions are found too. A member this
//! kernel lacks is `OFF_MISSING`: the programs then report that field as
//! unknown instead of reading the wrong bytes.

use std::path::Path;

use super::btf::Btf;
use listns_common::{
    Follow, IterOffsets, NS_SLOTS, OFF_MISSING, Offsets, SLOT_CGROUP, SLOT_IPC, SLOT_MNT, SLOT_NET,
    SLOT_PID, SLOT_PID_FOR_CHILDREN, SLOT_TIME, SLOT_TIME_FOR_CHILDREN, SLOT_USER, SLOT_UTS,
};

use super::TraceError;
use crate::inventory::CgroupHierarchy;

/// The namespace struct of each slot's type.
const NS_STRUCT: [&str; NS_SLOTS] = {
    let mut s = [""; NS_SLOTS];
    s[SLOT_UTS] = "uts_namespace";
    s[SLOT_IPC] = "ipc_namespace";
    s[SLOT_MNT] = "mnt_namespace";
    s[SLOT_NET] = "net";
    s[SLOT_CGROUP] = "cgroup_namespace";
    s[SLOT_TIME] = "time_namespace";
    s[SLOT_TIME_FOR_CHILDREN] = "time_namespace";
    s[SLOT_PID_FOR_CHILDREN] = "pid_namespace";
    s[SLOT_PID] = "pid_namespace";
    s[SLOT_USER] = "user_namespace";
    s
};

/// The nsproxy member of each slot (none for the active pid namespace and
/// the user namespace, which come from the task's pid and credentials).
const NSPROXY_MEMBER: [Option<&str>; NS_SLOTS] = {
    let mut s = [None; NS_SLOTS];
    s[SLOT_UTS] = Some("uts_ns");
    s[SLOT_IPC] = Some("ipc_ns");
    s[SLOT_MNT] = Some("mnt_ns");
    s[SLOT_NET] = Some("net_ns");
    s[SLOT_CGROUP] = Some("cgroup_ns");
    s[SLOT_TIME] = Some("time_ns");
    s[SLOT_TIME_FOR_CHILDREN] = Some("time_ns_for_children");
    s[SLOT_PID_FOR_CHILDREN] = Some("pid_ns_for_children");
    s
};

/// Offsets resolved, with the names of the members this kernel lacks.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub offsets: Offsets,
    /// Offsets for following and for telling a process's last thread
    /// (`enabled` is left 0: the tracer's caller decides).
    pub follow: Follow,
    pub missing: Vec<String>,
    /// `css_set.dfl_cgrp`, `css_set.subsys`, `cgroup_subsys_state.cgroup`,
    /// and the v1 controllers' indices in `subsys` (`enum
    /// cgroup_subsys_id`): what `attribute_by` chooses from.
    cgroups: CgroupOffsets,
    /// The iterator scan's offsets, and what of them this kernel lacks.
    pub iter: IterOffsets,
    pub iter_missing: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct CgroupOffsets {
    dfl_cgrp: Option<u32>,
    subsys: Option<u32>,
    css_cgroup: Option<u32>,
    /// (controller, index), from `memory_cgrp_id` and the like.
    ids: Vec<(String, u32)>,
}

impl Resolved {
    /// Points the programs at each task's cgroup in `h` (the `cgroup` of
    /// every record); false, and records carry 0, when this kernel's BTF
    /// lacks what that takes.
    pub fn attribute_by(&mut self, h: &CgroupHierarchy) -> bool {
        let o = &mut self.offsets;
        let c = &self.cgroups;
        let path = match h {
            CgroupHierarchy::Unified => c.dfl_cgrp.map(|at| (at, OFF_MISSING)),
            CgroupHierarchy::Controller(name) => {
                let index = c.ids.iter().find(|(n, _)| n == name).map(|(_, i)| *i);
                match (c.subsys, index, c.css_cgroup) {
                    (Some(subsys), Some(i), Some(css)) => Some((subsys + 8 * i, css)),
                    _ => None,
                }
            }
        };
        let ready = path.is_some()
            && [o.task_cgroups, o.cgroup_kn, o.kernfs_node_id]
                .iter()
                .all(|&v| v != OFF_MISSING);
        match path {
            Some((at, css)) if ready => (o.css_set_cgroup, o.css_cgroup) = (at, css),
            _ => (o.css_set_cgroup, o.css_cgroup) = (OFF_MISSING, OFF_MISSING),
        }
        ready
    }

    /// Whether the kernel's namespaces carry 64-bit ids (Linux 6.18+).
    pub fn has_ns_id(&self) -> bool {
        self.offsets.ns_common_ns_id != OFF_MISSING
    }
}

/// Reads `/sys/kernel/btf/vmlinux` (or another BTF file) and resolves every
/// offset the programs use.
pub fn resolve_file(path: &Path) -> Result<Resolved, TraceError> {
    if !path.exists() {
        return Err(TraceError::NoBtf(path.to_owned()));
    }
    let bytes =
        std::fs::read(path).map_err(|e| TraceError::Btf(format!("{}: {e}", path.display())))?;
    resolve_bytes(&bytes).map_err(|e| match e {
        TraceError::Btf(msg) => TraceError::Btf(format!("{}: {msg}", path.display())),
        e => e,
    })
}

/// `resolve_file`, once per file and process: the tracer at start-up and
/// each kernel-pass scan after it (a watcher's rescans) share one reading
/// of the kernel's BTF (a few milliseconds since `trace::btf`).
pub fn resolve_file_cached(path: &Path) -> Result<Resolved, TraceError> {
    static CACHE: std::sync::Mutex<Vec<(std::path::PathBuf, Resolved)>> =
        std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = cache.iter().find(|(p, _)| p == path) {
        return Ok(r.clone());
    }
    let r = resolve_file(path)?;
    cache.push((path.to_owned(), r.clone()));
    Ok(r)
}

/// Resolves offsets from BTF already in memory (what `resolve_file` reads).
pub fn resolve_bytes(bytes: &[u8]) -> Result<Resolved, TraceError> {
    check_header(bytes).map_err(TraceError::Btf)?;
    let btf = Btf::parse(bytes).map_err(TraceError::Btf)?;
    Ok(resolve(&btf))
}

/// Checks the header (include/uapi/linux/btf.h) the way libbpf does before
/// reading on (btf-rs, which listns used before `trace::btf`, added the
/// section offsets unchecked: a fuzzed header overflowed them).
fn check_header(bytes: &[u8]) -> Result<(), String> {
    const HDR: usize = 24;
    let Some(head) = bytes.first_chunk::<HDR>() else {
        return Err(format!(
            "{} bytes is too short for a BTF header",
            bytes.len()
        ));
    };
    let little = match [head[0], head[1]] {
        [0x9f, 0xeb] => true,
        [0xeb, 0x9f] => false,
        m => return Err(format!("not BTF (magic {:#04x}{:02x})", m[0], m[1])),
    };
    let word = |at: usize| {
        let b = [head[at], head[at + 1], head[at + 2], head[at + 3]];
        u64::from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let (hdr_len, len) = (word(4), bytes.len() as u64);
    if hdr_len < HDR as u64 || hdr_len > len || len > u64::from(u32::MAX) {
        return Err(format!(
            "BTF header length {hdr_len} in a file of {len} bytes"
        ));
    }
    for (section, off, size) in [("type", word(8), word(12)), ("string", word(16), word(20))] {
        if hdr_len + off + size > len {
            return Err(format!(
                "the BTF {section} section ({size} bytes at {off}) runs past the end of the file ({len} bytes)"
            ));
        }
    }
    Ok(())
}

pub fn resolve(btf: &Btf) -> Resolved {
    let mut missing = Vec::new();
    let mut off = |st: &str, member: &str| required(btf, &mut missing, st, member);
    let mut o = Offsets::MISSING;
    o.task_nsproxy = off("task_struct", "nsproxy");
    o.task_real_cred = off("task_struct", "real_cred");
    o.task_thread_pid = off("task_struct", "thread_pid");
    o.task_pid = off("task_struct", "pid");
    o.task_tgid = off("task_struct", "tgid");
    o.task_real_parent = off("task_struct", "real_parent");
    o.cred_user_ns = off("cred", "user_ns");
    o.cred_uid = off("cred", "uid");
    o.pid_level = off("pid", "level");
    o.pid_numbers = off("pid", "numbers");
    o.upid_ns = off("upid", "ns");
    o.ns_common_inum = off("ns_common", "inum");
    for slot in 0..NS_SLOTS {
        if let Some(member) = NSPROXY_MEMBER[slot] {
            o.nsproxy[slot] = off("nsproxy", member);
        }
        o.ns_common[slot] = off(NS_STRUCT[slot], "ns");
    }
    // ns_id arrived in 6.18; older kernels lack it, which is not an error.
    o.ns_common_ns_id = member_offset(btf, "ns_common", "ns_id").unwrap_or(OFF_MISSING);
    // Only for kernels without ids (see exit.rs); optional too (6.18 renamed
    // ns_common.count, and has ids).
    o.nsproxy_count = member_offset(btf, "nsproxy", "count").unwrap_or(OFF_MISSING);
    o.ns_common_count = member_offset(btf, "ns_common", "count").unwrap_or(OFF_MISSING);
    // A size of 0 or OFF_MISSING (malformed BTF) would read as "missing" to
    // the programs while nothing here said so (found by the btf fuzz target).
    match struct_size(btf, "upid") {
        Some(size) if size != 0 && size != OFF_MISSING => o.upid_size = size,
        _ => missing.push("upid (size)".into()),
    }
    // Optional: without them exits cannot tell a process's last thread
    // (the leader's exit stands for it) and following is refused.
    let follow = Follow {
        task_signal: member_offset(btf, "task_struct", "signal").unwrap_or(OFF_MISSING),
        signal_live: member_offset(btf, "signal_struct", "live").unwrap_or(OFF_MISSING),
        ..Follow::OFF
    };
    // Optional: without them containers are attributed from /proc files.
    let opt = |st: &str, member: &str| member_offset(btf, st, member);
    o.task_cgroups = opt("task_struct", "cgroups").unwrap_or(OFF_MISSING);
    o.cgroup_kn = opt("cgroup", "kn").unwrap_or(OFF_MISSING);
    o.kernfs_node_id = opt("kernfs_node", "id").unwrap_or(OFF_MISSING);
    let cgroups = CgroupOffsets {
        dfl_cgrp: opt("css_set", "dfl_cgrp"),
        subsys: opt("css_set", "subsys"),
        css_cgroup: opt("cgroup_subsys_state", "cgroup"),
        ids: subsys_ids(btf),
    };
    missing.sort();
    missing.dedup();
    let (iter, iter_missing) = resolve_iter(btf);
    Resolved {
        offsets: o,
        follow,
        missing,
        cgroups,
        iter,
        iter_missing,
    }
}

/// The iterator scan's offsets, with the members this kernel lacks (the
/// iterator scan is then not run). `ns_common.ops` may be missing: an
/// nsfs file's type is then read from its /proc link instead.
fn resolve_iter(btf: &Btf) -> (IterOffsets, Vec<String>) {
    let mut missing = Vec::new();
    let mut off = |st: &str, member: &str| required(btf, &mut missing, st, member);
    let mut o = IterOffsets::MISSING;
    o.task_flags = off("task_struct", "flags");
    o.task_comm = off("task_struct", "comm");
    o.cred_euid = off("cred", "euid");
    o.file_inode = off("file", "f_inode");
    o.file_private = off("file", "private_data");
    o.inode_sb = off("inode", "i_sb");
    o.inode_ino = off("inode", "i_ino");
    o.inode_rdev = off("inode", "i_rdev");
    o.inode_private = off("inode", "i_private");
    o.sb_magic = off("super_block", "s_magic");
    o.socket_sk = off("socket", "sk");
    let common = off("sock", "__sk_common");
    let net = off("sock_common", "skc_net");
    if common != OFF_MISSING && net != OFF_MISSING {
        o.sock_net = common + net;
    }
    o.ns_common_ops = member_offset(btf, "ns_common", "ops").unwrap_or(OFF_MISSING);
    o.ns_ops_type = member_offset(btf, "proc_ns_operations", "type").unwrap_or(OFF_MISSING);
    (o, missing)
}

/// `st.member`'s offset, or `OFF_MISSING` with the member named in
/// `missing`: for the members a program cannot do without.
fn required(btf: &Btf, missing: &mut Vec<String>, st: &str, member: &str) -> u32 {
    member_offset(btf, st, member).unwrap_or_else(|| {
        missing.push(format!("{st}.{member}"));
        OFF_MISSING
    })
}

/// The v1 controllers' indices in `css_set.subsys`: `enum cgroup_subsys_id`
/// names each `<controller>_cgrp_id`.
fn subsys_ids(btf: &Btf) -> Vec<(String, u32)> {
    btf.enum_values("cgroup_subsys_id")
        .into_iter()
        .filter_map(|(name, val)| Some((name.strip_suffix("_cgrp_id")?.to_string(), val)))
        .collect()
}

fn struct_size(btf: &Btf, name: &str) -> Option<u32> {
    btf.struct_size(name)
}

/// Byte offset of `member` in struct `name`, looking inside anonymous
/// structs and unions.
pub fn member_offset(btf: &Btf, name: &str, member: &str) -> Option<u32> {
    btf.member_offset(name, member)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
    const NO_BTF: &str = "no /sys/kernel/btf/vmlinux: this kernel has no BTF";

    /// Resolves against this machine's kernel: every offset the programs need
    /// must be found and lie inside its struct.
    #[test]
    fn resolves_host_kernel() {
        if !listns_skip::require(Path::new(VMLINUX).exists(), NO_BTF) {
            return;
        }
        let r = resolve_file(Path::new(VMLINUX)).unwrap();
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
        let bytes = std::fs::read(VMLINUX).unwrap();
        let btf = Btf::parse(&bytes).unwrap();
        let task = struct_size(&btf, "task_struct").unwrap();
        assert!(r.offsets.task_nsproxy < task && r.offsets.task_real_cred < task);
        let common = struct_size(&btf, "ns_common").unwrap();
        assert!(r.offsets.ns_common_inum < common);
        for (slot, name) in NS_STRUCT.iter().enumerate() {
            let size = struct_size(&btf, name).unwrap();
            assert!(r.offsets.ns_common[slot] + common <= size, "slot {slot}");
        }
        // Distinct nsproxy members at distinct offsets.
        let mut members: Vec<u32> = r
            .offsets
            .nsproxy
            .iter()
            .copied()
            .filter(|&o| o != OFF_MISSING)
            .collect();
        members.sort();
        members.dedup();
        assert_eq!(members.len(), 8);
        // Following and last-thread exits: signal_struct.live inside its struct.
        let signal = struct_size(&btf, "signal_struct").unwrap();
        assert!(r.follow.task_signal < task, "{:?}", r.follow);
        assert!(r.follow.signal_live + 4 <= signal, "{:?}", r.follow);
    }

    /// The btf fuzz target's seed: gcc's BTF for kernel_structs.c (fuzz/seeds),
    /// whose layout is known, resolved with no kernel BTF needed.
    const SEED: &[u8] = include_bytes!("../../../fuzz/corpus/btf/kernel-structs.btf");

    #[test]
    fn resolves_small_btf_from_bytes() {
        let r = resolve_bytes(SEED).unwrap();
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
        let o = r.offsets;
        // nsproxy sits in an anonymous struct inside an anonymous union at 40.
        assert_eq!((o.task_pid, o.task_tgid, o.task_nsproxy), (4, 8, 48));
        assert_eq!((o.nsproxy[SLOT_NET], o.ns_common[SLOT_NET]), (40, 8));
        assert_eq!(
            (o.ns_common_inum, o.ns_common_ns_id, o.upid_size),
            (16, 24, 16)
        );
        assert!(r.has_ns_id());
    }

    /// Found by the btf fuzz target: a header whose offsets overflow u32
    /// made btf-rs panic (debug) or seek to a wrapped offset (release).
    #[test]
    fn fuzz_header_offsets_past_the_file_are_an_error() {
        let found = include_bytes!("fuzz-inputs/btf-header-overflow");
        let err = resolve_bytes(found).unwrap_err().to_string();
        assert!(err.contains("BTF header length"), "{err}");
        let err = |bytes: &[u8]| resolve_bytes(bytes).unwrap_err().to_string();
        let mut bad = SEED.to_vec();
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // str_off
        assert!(err(&bad).contains("string section"), "{}", err(&bad));
        assert!(err(&SEED[..0]).contains("too short"));
        assert!(err(&SEED[..23]).contains("too short"));
        let mut magic = SEED.to_vec();
        magic[0] = 0;
        assert!(err(&magic).contains("not BTF"));
        let mut hdr = SEED.to_vec();
        hdr[4..8].copy_from_slice(&8u32.to_le_bytes());
        assert!(err(&hdr).contains("header length"));
    }

    /// Found by the btf fuzz target: the seed with one anonymous member's
    /// type pointing back into itself searched without end.
    #[test]
    fn fuzz_anonymous_member_cycle_ends() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let found = include_bytes!("fuzz-inputs/btf-anonymous-cycle");
            tx.send(resolve_bytes(found).map(|r| r.missing)).unwrap();
        });
        let missing = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("resolving ends")
            .expect("the BTF parses");
        // The looped struct no longer leads to nsproxy; the rest resolves.
        assert!(missing.len() < 5, "{missing:?}");
    }

    /// Found by the btf fuzz target: a upid of size u32::MAX (OFF_MISSING)
    /// was neither a usable size nor named missing.
    #[test]
    fn fuzz_upid_size_that_means_missing_is_missing() {
        let r = resolve_bytes(include_bytes!("fuzz-inputs/btf-upid-size-max")).unwrap();
        assert_eq!(r.offsets.upid_size, OFF_MISSING);
        assert!(
            r.missing.iter().any(|m| m == "upid (size)"),
            "{:?}",
            r.missing
        );
    }

    #[test]
    fn unknown_member_is_none() {
        if !listns_skip::require(Path::new(VMLINUX).exists(), NO_BTF) {
            return;
        }
        let bytes = std::fs::read(VMLINUX).unwrap();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(member_offset(&btf, "task_struct", "no_such_member"), None);
        assert_eq!(member_offset(&btf, "no_such_struct", "x"), None);
        // A member that sits in an anonymous union/struct on most kernels.
        assert!(member_offset(&btf, "task_struct", "nsproxy").is_some());
    }
}
