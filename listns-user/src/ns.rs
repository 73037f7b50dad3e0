//! Namespace types and what the nsfs ioctls (`sys::nsfs`) say about a
//! namespace, shared by scan, trace and output.

use std::{fmt, os::fd::BorrowedFd};

use listns_common as common;
use serde::{Deserialize, Serialize};

use crate::sys;

/// The eight namespace types, in lsns's order.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum NsType {
    Mnt,
    Net,
    Pid,
    User,
    Uts,
    Ipc,
    Cgroup,
    Time,
}

impl NsType {
    pub const ALL: [NsType; 8] = [
        NsType::Mnt,
        NsType::Net,
        NsType::Pid,
        NsType::User,
        NsType::Uts,
        NsType::Ipc,
        NsType::Cgroup,
        NsType::Time,
    ];

    /// The name lsns and `/proc/PID/ns` use.
    pub fn name(self) -> &'static str {
        match self {
            NsType::Mnt => "mnt",
            NsType::Net => "net",
            NsType::Pid => "pid",
            NsType::User => "user",
            NsType::Uts => "uts",
            NsType::Ipc => "ipc",
            NsType::Cgroup => "cgroup",
            NsType::Time => "time",
        }
    }

    pub fn from_name(name: &str) -> Option<NsType> {
        NsType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The CLONE_NEW* flag (also the nsfs `NS_GET_NSTYPE` answer).
    pub fn clone_flag(self) -> u32 {
        match self {
            NsType::Mnt => common::CLONE_NEWNS,
            NsType::Net => common::CLONE_NEWNET,
            NsType::Pid => common::CLONE_NEWPID,
            NsType::User => common::CLONE_NEWUSER,
            NsType::Uts => common::CLONE_NEWUTS,
            NsType::Ipc => common::CLONE_NEWIPC,
            NsType::Cgroup => common::CLONE_NEWCGROUP,
            NsType::Time => common::CLONE_NEWTIME,
        }
    }

    pub fn from_clone_flag(flag: u32) -> Option<NsType> {
        NsType::ALL.into_iter().find(|t| t.clone_flag() == flag)
    }

    /// The type of a kernel record slot.
    pub fn of_slot(slot: usize) -> NsType {
        NsType::from_clone_flag(common::SLOT_TYPE[slot]).expect("every slot has a type")
    }

    /// The first kernel record slot of this type: the order in which event
    /// lines name namespaces (uts, ipc, mnt, net, cgroup, time, pid, user).
    pub fn slot_rank(self) -> usize {
        common::SLOT_TYPE
            .iter()
            .position(|&t| t == self.clone_flag())
            .expect("every type has a slot")
    }
}

impl fmt::Display for NsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names of the CLONE_NEW* flags in `flags` (`CLONE_NEWNET`, ...).
pub fn flag_names(flags: u64) -> Vec<&'static str> {
    NsType::ALL
        .into_iter()
        .filter(|t| flags & t.clone_flag() as u64 != 0)
        .map(|t| match t {
            NsType::Mnt => "CLONE_NEWNS",
            NsType::Net => "CLONE_NEWNET",
            NsType::Pid => "CLONE_NEWPID",
            NsType::User => "CLONE_NEWUSER",
            NsType::Uts => "CLONE_NEWUTS",
            NsType::Ipc => "CLONE_NEWIPC",
            NsType::Cgroup => "CLONE_NEWCGROUP",
            NsType::Time => "CLONE_NEWTIME",
        })
        .collect()
}

/// Name of a kernel record slot, as the `/proc/PID/ns` link is called.
pub fn slot_name(slot: usize) -> &'static str {
    match slot {
        common::SLOT_UTS => "uts",
        common::SLOT_IPC => "ipc",
        common::SLOT_MNT => "mnt",
        common::SLOT_NET => "net",
        common::SLOT_CGROUP => "cgroup",
        common::SLOT_TIME => "time",
        common::SLOT_TIME_FOR_CHILDREN => "time_for_children",
        common::SLOT_PID_FOR_CHILDREN => "pid_for_children",
        common::SLOT_PID => "pid",
        common::SLOT_USER => "user",
        _ => "?",
    }
}

/// Parses an nsfs link text such as `net:[4026531840]`: a type name and
/// decimal digits, nothing else (`str::parse` alone would take `+808`).
pub fn parse_link(text: &[u8]) -> Option<(NsType, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let (name, rest) = text.split_once(":[")?;
    let digits = rest.strip_suffix(']')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let inum = digits.parse().ok()?;
    Some((NsType::from_name(name)?, inum))
}

/// `NS_GET_OWNER_UID`: for a user namespace, the effective uid of the
/// process that created it; `None` for other types (the kernel answers
/// EINVAL) or where it is refused.
pub fn get_owner_uid(fd: BorrowedFd<'_>) -> Option<u32> {
    sys::nsfs::ns_get_owner_uid(fd).ok()
}

/// `NS_GET_ID`: the 64-bit namespace id (Linux 6.18+); `None` where the
/// kernel does not have it.
pub fn get_id(fd: BorrowedFd<'_>) -> Option<u64> {
    sys::nsfs::ns_get_id(fd).ok().filter(|&id| id != 0)
}

/// `NS_GET_NSTYPE`: the namespace type of an nsfs fd.
pub fn get_type(fd: BorrowedFd<'_>) -> Option<NsType> {
    NsType::from_clone_flag(sys::nsfs::ns_get_nstype(fd).ok()?)
}

/// Which relative to ask for with [`get_related`].
#[derive(Clone, Copy, Debug)]
pub enum Relative {
    /// `NS_GET_USERNS`: the owning user namespace.
    Owner,
    /// `NS_GET_PARENT`: the parent (pid and user namespaces only).
    Parent,
}

/// Opens the owner or parent of a namespace. `Ok(None)` when there is none
/// or it lies outside the caller's reach (EPERM: above the caller's own user
/// namespace; EINVAL: the type has no parent).
pub fn get_related(
    fd: BorrowedFd<'_>,
    which: Relative,
) -> std::io::Result<Option<std::os::fd::OwnedFd>> {
    let res = match which {
        Relative::Owner => sys::nsfs::ns_get_userns(fd),
        Relative::Parent => sys::nsfs::ns_get_parent(fd),
    };
    match res {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::errno::Errno::EPERM | nix::errno::Errno::EINVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_links() {
        assert_eq!(
            parse_link(b"net:[4026531840]"),
            Some((NsType::Net, 4026531840))
        );
        assert_eq!(parse_link(b"pid_for_children:[1]"), None);
        assert_eq!(
            parse_link(b"time:[4026531834]"),
            Some((NsType::Time, 4026531834))
        );
        assert_eq!(parse_link(b"socket:[123]"), None);
        assert_eq!(parse_link(b"net:[12"), None);
        assert_eq!(parse_link(b"\xffnet:[1]"), None);
    }

    /// Found by the ns_link fuzz target: a sign is no digit.
    #[test]
    fn fuzz_sign_is_not_an_inode() {
        assert_eq!(parse_link(b"time:[+808]"), None);
        assert_eq!(parse_link(b"net:[-1]"), None);
        assert_eq!(parse_link(b"net:[]"), None);
    }

    #[test]
    fn slot_types_match_names() {
        for slot in 0..common::NS_SLOTS {
            let name = slot_name(slot);
            let base = name.split('_').next().unwrap();
            assert_eq!(NsType::of_slot(slot).name(), base, "slot {slot}");
        }
    }

    #[test]
    fn flags_round_trip() {
        for t in NsType::ALL {
            assert_eq!(NsType::from_clone_flag(t.clone_flag()), Some(t));
        }
    }

    /// Each type's flag (also its `NS_GET_NSTYPE` number), flag name and
    /// link name against sources other than this module: libc's constants,
    /// the numbers of <linux/sched.h> written out, and the kernel's own
    /// `/proc/self/ns` links.
    #[test]
    fn flags_and_names_are_the_kernels() {
        #[rustfmt::skip]
        let kernel: [(NsType, libc::c_int, u32, &str, &str); 8] = [
            (NsType::Mnt, libc::CLONE_NEWNS, 0x0002_0000, "CLONE_NEWNS", "mnt"),
            (NsType::Net, libc::CLONE_NEWNET, 0x4000_0000, "CLONE_NEWNET", "net"),
            (NsType::Pid, libc::CLONE_NEWPID, 0x2000_0000, "CLONE_NEWPID", "pid"),
            (NsType::User, libc::CLONE_NEWUSER, 0x1000_0000, "CLONE_NEWUSER", "user"),
            (NsType::Uts, libc::CLONE_NEWUTS, 0x0400_0000, "CLONE_NEWUTS", "uts"),
            (NsType::Ipc, libc::CLONE_NEWIPC, 0x0800_0000, "CLONE_NEWIPC", "ipc"),
            (NsType::Cgroup, libc::CLONE_NEWCGROUP, 0x0200_0000, "CLONE_NEWCGROUP", "cgroup"),
            (NsType::Time, libc::CLONE_NEWTIME, 0x0000_0080, "CLONE_NEWTIME", "time"),
        ];
        for (t, libc_flag, sched_h, flag_name, link) in kernel {
            assert_eq!(
                libc_flag as u32, sched_h,
                "libc and <linux/sched.h> differ on {flag_name}"
            );
            assert_eq!(t.clone_flag(), sched_h, "{t:?}");
            assert_eq!(NsType::from_clone_flag(sched_h), Some(t), "{flag_name}");
            assert_eq!(flag_names(sched_h as u64), vec![flag_name]);
            assert_eq!(t.name(), link);
            assert_eq!(NsType::from_name(link), Some(t));
            let text = std::fs::read_link(format!("/proc/self/ns/{link}"))
                .unwrap_or_else(|e| panic!("/proc/self/ns/{link}: {e}"));
            let text = text.to_str().unwrap();
            assert!(text.starts_with(&format!("{link}:[")), "{text}");
        }
        // All eight at once, in this module's order (lsns's).
        let all = kernel.iter().fold(0u64, |acc, k| acc | k.2 as u64);
        let names: Vec<&str> = kernel.iter().map(|k| k.3).collect();
        assert_eq!(flag_names(all), names);
    }
}
