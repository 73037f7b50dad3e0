//! The JSON contract: one Rust type per object that listns prints as JSON
//! (`listns -J`, each line of `listns watch --json`), each field documented.
//! These types are the only description of those objects: the renderers
//! serialize them, `watch -Q` evaluates on their JSON and takes its key
//! names from their schema, and the JSON Schema (`listns --json-schema`,
//! committed at `schema/listns.schema.json`, and `docs/json.md` made from
//! it by `cargo xtask schema`) is generated from them.
//!
//! Text from processes is a string with the exact characters; when the
//! bytes are not UTF-8 the string has U+FFFD in their place and a sibling
//! `<key>_hex` holds the exact bytes in hex. [`exact`] makes both, so that
//! rule is written once.

mod api;
mod inventory;
mod list;
mod schema;
mod watch;

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

pub use api::{ApiError, Event, EventPage, Gone, GoneList, NamespaceDetail, RawEvents};
pub use inventory::{BadDocument, InventoryDocument, NamespaceEntry, NetnsName, ProcessEntry};
pub use list::{ColumnInfo, ColumnList, Holders, ListDocument, NamespaceRow, Origin, Rows};
pub use schema::{schema, watch_keys};
pub use watch::{
    Change, FollowedNamespace, Lost, Rescan, Summary, Verdict, VerdictKind, WatchLine,
};

use crate::inventory as inv;
use crate::ns::NsType;

/// Text from outside, as a JSON string: the exact characters, with U+FFFD
/// for each sequence of bytes that is not UTF-8 (then a [`Hex`] sibling
/// carries the bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text<'a>(Cow<'a, [u8]>);

/// The exact bytes of a [`Text`] in lower-case hex; only there when they
/// are not UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hex(String);

/// Text from outside and its `<key>_hex` sibling: the one place that
/// decides whether the sibling is there.
pub fn exact<'a>(bytes: impl Into<Cow<'a, [u8]>>) -> (Text<'a>, Option<Hex>) {
    let bytes = bytes.into();
    let hex = std::str::from_utf8(&bytes).is_err().then(|| {
        use std::fmt::Write;
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes.iter() {
            let _ = write!(out, "{b:02x}");
        }
        Hex(out)
    });
    (Text(bytes), hex)
}

/// The exact bytes that a [`Text`] and its [`Hex`] sibling stand for (as
/// read back): the hex where it is there, else the text's.
pub fn exact_bytes(text: Text<'_>, hex: Option<Hex>) -> Vec<u8> {
    match hex {
        Some(Hex(h)) => h
            .as_bytes()
            .chunks(2)
            // Checked when read: pairs of lower-case hex digits.
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
            .collect(),
        None => text.0.into_owned(),
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Borrowed, without a copy, when the bytes are UTF-8.
        s.serialize_str(&String::from_utf8_lossy(&self.0))
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Text(Cow::Owned(s.into_bytes())))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(D::Error::custom(format!(
                "{s:?} is not bytes in lower-case hex"
            )));
        }
        Ok(Hex(s))
    }
}

/// A wall-clock time (nanoseconds since the Unix epoch), written as RFC
/// 3339 text in UTC with microseconds: `2026-12-06T10:00:00.123456Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time(pub u64);

impl Time {
    pub fn rfc3339(self) -> String {
        humantime::format_rfc3339_micros(self.system_time()).to_string()
    }

    fn system_time(self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.0)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Formatted on the stack ("2026-12-06T15:30:41.123456Z", 27
        // bytes): `collect_str` would escape it character by character,
        // and every event line has a time.
        use std::io::Write;
        let time = humantime::format_rfc3339_micros(self.system_time());
        let mut buf = [0u8; 64];
        let mut w = &mut buf[..];
        if write!(w, "{time}").is_ok() {
            let n = 64 - w.len();
            if let Ok(text) = std::str::from_utf8(&buf[..n]) {
                return s.serialize_str(text);
            }
        }
        s.collect_str(&time)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        let t = humantime::parse_rfc3339(&s)
            .map_err(|e| D::Error::custom(format!("time {s:?}: {e}")))?;
        let ns = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| D::Error::custom(format!("time {s:?} is before 1970")))?
            .as_nanos();
        u64::try_from(ns)
            .map(Time)
            .map_err(|_| D::Error::custom(format!("time {s:?} is too far ahead")))
    }
}

/// CLONE_NEW* flags, written as the list of their names
/// (`["CLONE_NEWNET", "CLONE_NEWUTS"]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(pub u64);

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(crate::ns::flag_names(self.0))
    }
}

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut bits = 0;
        for name in Vec::<Cow<str>>::deserialize(d)? {
            let ty = NsType::ALL
                .into_iter()
                .find(|t| crate::ns::flag_names(t.clone_flag().into()) == [&*name])
                .ok_or_else(|| D::Error::custom(format!("unknown flag {name:?}")))?;
            bits |= u64::from(ty.clone_flag());
        }
        Ok(Flags(bits))
    }
}

/// A `/proc/PID/ns` link's name (`net`, `pid_for_children`, ...) as the
/// static text the inventory keeps; `None` for any other text.
pub fn known_link(name: &str) -> Option<&'static str> {
    (0..listns_common::NS_SLOTS)
        .map(crate::ns::slot_name)
        .find(|n| *n == name)
}

/// A syscall name of the contract's (`clone`, `unshare`, `setns`, `exit`)
/// as static text; `None` for any other text.
pub fn known_syscall(name: &str) -> Option<&'static str> {
    ["clone", "unshare", "setns", "exit"]
        .into_iter()
        .find(|n| *n == name)
}

/// Reads a link name, refusing an unknown one.
fn link_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = Cow::<str>::deserialize(d)?;
    known_link(&s).ok_or_else(|| D::Error::custom(format!("unknown namespace link {s:?}")))
}

/// Reads a syscall name, refusing an unknown one.
fn syscall_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = Cow::<str>::deserialize(d)?;
    known_syscall(&s).ok_or_else(|| D::Error::custom(format!("unknown syscall {s:?}")))
}

/// A `JsonSchema` written inline where the type is used: the types below
/// serialize as one JSON value of their own shape.
macro_rules! inline_schema {
    ($ty:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

inline_schema!(Text<'_>, "Text", { "type": "string" });
inline_schema!(Hex, "Hex", { "type": "string", "pattern": "^([0-9a-f]{2})*$" });
inline_schema!(Time, "Time", { "type": "string", "format": "date-time" });
inline_schema!(Flags, "Flags", {
    "type": "array",
    "items": { "type": "string", "pattern": "^CLONE_NEW[A-Z]+$" }
});

/// Which namespace: its type, inode and id (flattened into the objects
/// about one namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Which {
    /// The namespace's type, as `/proc/PID/ns` names it.
    #[serde(rename = "type")]
    pub ty: NsType,
    /// The inode number (lsns NS). Inodes are reused by the kernel.
    pub ns: u64,
    /// The 64-bit namespace id (NS_GET_ID, Linux 6.18+), never reused;
    /// null on older kernels.
    pub id: Option<u64>,
}

impl From<&inv::NsKey> for Which {
    fn from(k: &inv::NsKey) -> Self {
        Which {
            ty: k.ty,
            ns: k.inum,
            id: k.id,
        }
    }
}

/// The task behind a change to namespaces (flattened into the objects
/// that name one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Task<'a> {
    /// The process (thread-group id).
    pub pid: u32,
    /// The thread that made the call.
    pub tid: u32,
    /// The thread's name (`comm`), as the kernel had it; chosen by the
    /// process, so any text.
    pub comm: Text<'a>,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub comm_hex: Option<Hex>,
    /// `clone` (fork, clone, clone3), `unshare`, `setns` (or, for a task
    /// leaving, `exit`).
    #[serde(deserialize_with = "syscall_name")]
    pub syscall: &'a str,
    /// The CLONE_NEW* flags of the call.
    pub flags: Flags,
}

impl<'a> Task<'a> {
    pub fn new(pid: u32, tid: u32, comm: &'a [u8], syscall: &'a str, flags: u64) -> Self {
        let (comm, comm_hex) = exact(comm);
        Task {
            pid,
            tid,
            comm,
            comm_hex,
            syscall,
            flags: Flags(flags),
        }
    }
}

/// A container: the runtime and id its cgroup names, and what users call
/// it where the runtime's files say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Container<'a> {
    /// docker, containerd, kubernetes, podman, lxc, systemd-nspawn, ...
    pub runtime: Cow<'a, str>,
    pub id: Cow<'a, str>,
    /// The engine's name (`--name`), or under Kubernetes the container's
    /// name in its pod; null when nothing names it.
    pub name: Option<Cow<'a, str>>,
    /// Kubernetes: the pod's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Cow<'a, str>>,
    /// Kubernetes: the pod's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_namespace: Option<Cow<'a, str>>,
    /// Kubernetes: the container's name in its pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_container: Option<Cow<'a, str>>,
}

impl<'a> From<&'a inv::Container> for Container<'a> {
    fn from(c: &'a inv::Container) -> Self {
        let text = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        Container {
            runtime: c.runtime.into(),
            id: c.id.as_str().into(),
            name: text(&c.name),
            pod: text(&c.pod),
            k8s_namespace: text(&c.k8s_namespace),
            k8s_container: text(&c.k8s_container),
        }
    }
}

/// One thing that keeps a namespace alive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Holder<'a> {
    /// A process has it in `/proc/PID/ns/<link>`.
    Process {
        pid: u32,
        #[serde(deserialize_with = "link_name")]
        link: &'a str,
    },
    /// A thread whose namespace differs from its process's.
    Thread {
        pid: u32,
        tid: u32,
        #[serde(deserialize_with = "link_name")]
        link: &'a str,
    },
    /// An open nsfs file descriptor.
    Fd { pid: u32, fd: i32 },
    /// An nsfs bind mount at `path`, as seen in mount namespace `mnt_ns`.
    BindMount {
        path: Text<'a>,
        /// The exact bytes of `path` in hex, only when they are not UTF-8.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Hex")]
        path_hex: Option<Hex>,
        mnt_ns: u64,
    },
    /// A socket created in it (a network namespace).
    Socket { pid: u32, fd: i32 },
    /// A tun/tap fd whose device lives in it (a network namespace).
    Tun { pid: u32, fd: i32 },
    /// An io_uring (fd `fd` of `pid`) whose registered files include an
    /// nsfs file of it, with that file's own fd closed.
    IoUring { pid: u32, fd: i32 },
    /// A namespace it owns or parents, which keeps a reference to it.
    Child {
        #[serde(rename = "type")]
        ty: NsType,
        ns: u64,
    },
}

impl<'a> From<&'a inv::Holder> for Holder<'a> {
    fn from(h: &'a inv::Holder) -> Self {
        use inv::Holder as H;
        match *h {
            H::Process { pid, link } => Holder::Process { pid, link },
            H::Thread { pid, tid, link } => Holder::Thread { pid, tid, link },
            H::Fd { pid, fd } => Holder::Fd { pid, fd },
            H::BindMount { ref path, mnt_ns } => {
                let (path, path_hex) = exact(path.as_bytes());
                Holder::BindMount {
                    path,
                    path_hex,
                    mnt_ns,
                }
            }
            H::Socket { pid, fd } => Holder::Socket { pid, fd },
            H::Tun { pid, fd } => Holder::Tun { pid, fd },
            H::IoUring { pid, fd } => Holder::IoUring { pid, fd },
            H::Child { ty, ns } => Holder::Child { ty, ns },
        }
    }
}

#[cfg(test)]
mod tests;
