//! Kernel struct offsets from the running kernel's BTF.
//!
//! Rust eBPF gets no CO-RE relocations, so the programs read kernel memory at
//! offsets resolved here, at start-up, and handed over as a frozen global.
//! Members inside anonymous structs and unions are found too. A member this
//! kernel lacks is `OFF_MISSING`: the programs then report that field as
//! unknown instead of reading the wrong bytes.

use std::path::Path;

use btf_rs::{Btf, Type};
use listns_common::{
    Follow, NS_SLOTS, OFF_MISSING, Offsets, SLOT_CGROUP, SLOT_IPC, SLOT_MNT, SLOT_NET, SLOT_PID,
    SLOT_PID_FOR_CHILDREN, SLOT_TIME, SLOT_TIME_FOR_CHILDREN, SLOT_USER, SLOT_UTS,
};

use super::TraceError;

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
}

impl Resolved {
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
    let btf =
        Btf::from_file(path).map_err(|e| TraceError::Btf(format!("{}: {e}", path.display())))?;
    Ok(resolve(&btf))
}

pub fn resolve(btf: &Btf) -> Resolved {
    let mut missing = Vec::new();
    let mut off = |st: &str, member: &str| -> u32 {
        match member_offset(btf, st, member) {
            Some(o) => o,
            None => {
                missing.push(format!("{st}.{member}"));
                OFF_MISSING
            }
        }
    };
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
    match struct_size(btf, "upid") {
        Some(size) => o.upid_size = size,
        None => missing.push("upid (size)".into()),
    }
    // Optional: without them exits cannot tell a process's last thread
    // (the leader's exit stands for it) and following is refused.
    let follow = Follow {
        task_signal: member_offset(btf, "task_struct", "signal").unwrap_or(OFF_MISSING),
        signal_live: member_offset(btf, "signal_struct", "live").unwrap_or(OFF_MISSING),
        ..Follow::OFF
    };
    missing.sort();
    missing.dedup();
    Resolved {
        offsets: o,
        follow,
        missing,
    }
}

fn find_struct(btf: &Btf, name: &str) -> Option<btf_rs::Struct> {
    btf.resolve_types_by_name(name)
        .ok()?
        .into_iter()
        .find_map(|t| match t {
            Type::Struct(s) => Some(s),
            _ => None,
        })
}

fn struct_size(btf: &Btf, name: &str) -> Option<u32> {
    find_struct(btf, name).map(|s| s.size() as u32)
}

/// Byte offset of `member` in struct `name`, looking inside anonymous
/// structs and unions.
pub fn member_offset(btf: &Btf, name: &str, member: &str) -> Option<u32> {
    let st = find_struct(btf, name)?;
    find_member(btf, &st, member, 0).map(|bits| bits / 8)
}

fn find_member(btf: &Btf, st: &btf_rs::Struct, member: &str, base_bits: u32) -> Option<u32> {
    for m in &st.members {
        let name = btf.resolve_name(m).unwrap_or_default();
        let bits = base_bits + m.bit_offset();
        if name == member {
            return Some(bits);
        }
        if name.is_empty() {
            // Anonymous struct or union: follow typedefs/modifiers to it.
            let inner = btf.type_iter(m).find_map(|t| match t {
                Type::Struct(s) | Type::Union(s) => Some(s),
                _ => None,
            });
            if let Some(inner) = inner
                && let Some(found) = find_member(btf, &inner, member, bits)
            {
                return Some(found);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    /// Resolves against this machine's kernel: every offset the programs need
    /// must be found and lie inside its struct.
    #[test]
    fn resolves_host_kernel() {
        if !Path::new(VMLINUX).exists() {
            eprintln!("SKIP: {VMLINUX} missing: this kernel has no BTF");
            assert!(std::env::var_os("CI").is_none(), "CI machines have BTF");
            return;
        }
        let r = resolve_file(Path::new(VMLINUX)).unwrap();
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
        let btf = Btf::from_file(VMLINUX).unwrap();
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

    #[test]
    fn unknown_member_is_none() {
        if !Path::new(VMLINUX).exists() {
            eprintln!("SKIP: {VMLINUX} missing");
            return;
        }
        let btf = Btf::from_file(VMLINUX).unwrap();
        assert_eq!(member_offset(&btf, "task_struct", "no_such_member"), None);
        assert_eq!(member_offset(&btf, "no_such_struct", "x"), None);
        // A member that sits in an anonymous union/struct on most kernels.
        assert!(member_offset(&btf, "task_struct", "nsproxy").is_some());
    }
}
