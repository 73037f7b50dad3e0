//! The JSON contract: one Rust type per object that `listns -J` and
//! `listns watch --json` print, with each field documented. The JSON
//! Schema committed at `schema/listns.schema.json` is generated from these
//! types (schemars); a test fails when it no longer matches them, and the
//! integration tests validate real output of every kind against it.
//!
//! Text from processes is a string with the exact characters; when the
//! bytes are not UTF-8 the string has U+FFFD in their place and a sibling
//! `<key>_hex` holds the exact bytes in hex (see `json::put_bytes`).

#![allow(dead_code)] // the types exist for their schema

use schemars::JsonSchema;

use crate::{ns::NsType, stats::ScanStats};

/// `listns -J`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ListOutput {
    /// Every namespace shown, ordered by inode as lsns orders them; with
    /// `-T`, only the tree's roots, the rest nested under `children`.
    namespaces: Vec<Namespace>,
    /// What the scan read and what it could not.
    scan: ScanStats,
}

/// One namespace. `ns`, `type`, `id`, `holders` and `hidden` are always
/// there; the other keys are the columns chosen with `-o` (lsns's names in
/// lower case; the default set is ns, type, nprocs, pid, user, command),
/// null where a column has no value. With `listns NAMESPACE` each object is
/// one process in that namespace (`pid`, `ppid`, `user`, `command`, `path`
/// and `uid` are the process's).
#[derive(JsonSchema)]
pub struct Namespace {
    /// The inode number (lsns NS). Inodes are reused by the kernel.
    ns: u64,
    #[serde(rename = "type")]
    ty: NsType,
    /// The 64-bit namespace id (NS_GET_ID, Linux 6.18+), never reused; null
    /// on older kernels.
    id: Option<u64>,
    /// Processes that have it as their own namespace.
    #[serde(default)]
    nprocs: Option<u64>,
    /// The lowest pid of the processes that are in it (lsns PID); null when
    /// no process is in it (`holders` says what holds it).
    #[serde(default)]
    pid: Option<u32>,
    /// The parent pid of `pid`.
    #[serde(default)]
    ppid: Option<u32>,
    /// The uid of `pid`; without one, the uid that created the user
    /// namespace it is (or that owns it).
    #[serde(default)]
    uid: Option<u32>,
    /// The user name of `uid` (the number where the name is unknown).
    #[serde(default)]
    user: Option<String>,
    /// The command line of `pid`, arguments separated by spaces; the bare
    /// comm for kernel threads; null without `pid`.
    #[serde(default)]
    command: Option<String>,
    /// The exact bytes of `command` in hex, only when they are not UTF-8.
    #[serde(default)]
    command_hex: Option<String>,
    /// `/proc/PID/ns/TYPE` of `pid`; null without `pid`.
    #[serde(default)]
    path: Option<String>,
    /// The id the scanning process's network namespace gave this network
    /// namespace (`ip netns set`, lsns NETNSID); null when none is
    /// assigned. Always there for `net`, whatever the columns.
    #[serde(default)]
    netnsid: Option<u32>,
    /// nsfs bind-mount paths, comma-separated.
    #[serde(default)]
    nsfs: Option<String>,
    /// The exact bytes of `nsfs` in hex, only when they are not UTF-8.
    #[serde(default)]
    nsfs_hex: Option<String>,
    /// The parent namespace's inode (pid and user namespaces); 0 where
    /// there is none, as in lsns.
    #[serde(default)]
    pns: Option<u64>,
    /// The owning user namespace's inode; 0 where there is none (the
    /// initial user namespace), as in lsns.
    #[serde(default)]
    ons: Option<u64>,
    /// The container of a holding process; there whenever one is known,
    /// whatever the columns (null when the column is chosen and none is).
    #[serde(default)]
    container: Option<Container>,
    /// `ip netns` names, comma-separated. Always there for `net`, whatever
    /// the columns.
    #[serde(default)]
    name: Option<String>,
    /// The exact bytes of `name` in hex, only when they are not UTF-8.
    #[serde(default)]
    name_hex: Option<String>,
    /// Everything that keeps it alive.
    holders: Vec<Holder>,
    /// Alive, but nothing a scan can see holds it.
    hidden: bool,
    /// When it was found dead (RFC 3339), for namespaces reported gone.
    #[serde(default)]
    gone: Option<String>,
    /// Who created it, when the tracer saw that.
    #[serde(default)]
    created: Option<Origin>,
    /// With `-T`: the rows drawn under this one in the tree.
    #[serde(default)]
    children: Option<Vec<Namespace>>,
}

/// One thing that keeps a namespace alive.
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Holder {
    /// A process has it in `/proc/PID/ns/<link>`.
    Process { pid: u32, link: String },
    /// A thread whose namespace differs from its process's.
    Thread { pid: u32, tid: u32, link: String },
    /// An open nsfs file descriptor.
    Fd { pid: u32, fd: i32 },
    /// An nsfs bind mount at `path`, as seen in mount namespace `mnt_ns`.
    BindMount {
        path: String,
        /// The exact bytes of `path` in hex, only when they are not UTF-8.
        #[serde(default)]
        path_hex: Option<String>,
        mnt_ns: u64,
    },
    /// A socket created in it (a network namespace).
    Socket { pid: u32, fd: i32 },
    /// A tun/tap fd whose device lives in it (a network namespace).
    Tun { pid: u32, fd: i32 },
    /// A namespace it owns or parents, which keeps a reference to it.
    Child {
        #[serde(rename = "type")]
        ty: NsType,
        ns: u64,
    },
}

/// The creator of a namespace, as the tracer saw it.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Origin {
    /// RFC 3339, UTC, microseconds.
    time: String,
    pid: u32,
    tid: u32,
    comm: String,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(default)]
    comm_hex: Option<String>,
    /// `clone` (fork, clone, clone3), `unshare` or `setns`.
    syscall: String,
    /// The CLONE_NEW* flags of the call.
    flags: Vec<String>,
    /// The creator's container, when it had one.
    container: Option<Container>,
}

/// A container: the runtime and id its cgroup names, and what users call
/// it where the runtime's files say.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Container {
    /// docker, containerd, kubernetes, podman, lxc, systemd-nspawn, ...
    runtime: String,
    id: String,
    /// The engine's name (`--name`), or under Kubernetes the container's
    /// name in its pod; null when nothing names it.
    name: Option<String>,
    /// Kubernetes: the pod's name.
    #[serde(default)]
    pod: Option<String>,
    /// Kubernetes: the pod's namespace.
    #[serde(default)]
    k8s_namespace: Option<String>,
    /// Kubernetes: the container's name in its pod.
    #[serde(default)]
    k8s_container: Option<String>,
}

/// One line of `listns watch --json`.
#[derive(JsonSchema)]
#[allow(clippy::large_enum_variant)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum WatchLine {
    /// The inventory at start-up: one per namespace, as `-J` prints them.
    Existing(Namespace),
    /// A task created a namespace.
    Created(Change),
    /// A task entered an existing namespace (setns, or a fork into one).
    Joined(Change),
    /// A task left a namespace (it exited or moved).
    Left(Change),
    /// The namespace is dead.
    Gone(Verdict),
    /// Alive, but nothing a scan can see holds it.
    Hidden(Verdict),
    /// Found by a rescan, unseen before (without the tracer).
    Discovered(Verdict),
    /// The kernel could not deliver records (ring buffer full).
    Lost(Lost),
    /// The rescan that reconciles the inventory after lost records.
    Rescan(Rescan),
    /// The last line when following (`watch -- COMMAND`, `--pid`): what
    /// the followed tree did with namespaces.
    Summary(Summary),
}

/// A task's effect on one namespace.
#[derive(JsonSchema)]
pub struct Change {
    /// Kernel timestamp of the event (RFC 3339, UTC, microseconds).
    time: String,
    #[serde(rename = "type")]
    ty: NsType,
    ns: u64,
    id: Option<u64>,
    /// The task's link that changed (`net`, `pid_for_children`, ...).
    link: String,
    pid: u32,
    tid: u32,
    ppid: u32,
    uid: u32,
    comm: String,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(default)]
    comm_hex: Option<String>,
    /// `clone`, `unshare`, `setns` or `exit`.
    syscall: String,
    flags: Vec<String>,
    /// The fd passed to setns; null otherwise.
    fd: Option<i32>,
    cgroup_id: u64,
}

/// A verdict on a namespace, with its creator where the tracer saw it.
#[derive(JsonSchema)]
pub struct Verdict {
    time: String,
    #[serde(rename = "type")]
    ty: NsType,
    ns: u64,
    id: Option<u64>,
    /// The creator's pid; null when created before listns started.
    pid: Option<u32>,
    comm: Option<String>,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(default)]
    comm_hex: Option<String>,
    syscall: Option<String>,
    /// When it was created (RFC 3339).
    created: Option<String>,
    /// The creator's container, when it had one.
    container: Option<Container>,
    hidden: bool,
}

/// What a followed process tree did with namespaces.
#[derive(JsonSchema)]
pub struct Summary {
    time: String,
    /// The followed process.
    pid: u32,
    /// Its command line.
    command: Vec<String>,
    /// Still running when listns stopped (a signal, `--duration`).
    running: bool,
    /// Its exit status, when listns ran it and it exited.
    exit_status: Option<i32>,
    /// The signal that killed it.
    signal: Option<i32>,
    /// Every namespace the tree created or joined, in that order.
    namespaces: Vec<FollowedNamespace>,
}

/// One namespace a followed tree created or joined, and its fate.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FollowedNamespace {
    #[serde(rename = "type")]
    ty: NsType,
    ns: u64,
    id: Option<u64>,
    /// `created` or `joined`.
    how: String,
    /// The tree's task that created or joined it.
    pid: u32,
    tid: u32,
    comm: String,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(default)]
    comm_hex: Option<String>,
    /// `clone`, `unshare` or `setns`.
    syscall: String,
    flags: Vec<String>,
    /// When it did (RFC 3339).
    time: String,
    /// Who created the namespace, where the tracer saw it (null when it
    /// existed before listns started).
    creator: Option<Creator>,
    /// When it was created (RFC 3339), where known.
    created: Option<String>,
    /// When it went: its last holder left and the lifecycle then found it
    /// dead (RFC 3339); null while it lives.
    gone: Option<String>,
    /// From creation to `gone`, or to now while it lives (milliseconds).
    lifetime_ms: Option<f64>,
    /// `alive`, `hidden` (alive, nothing a scan can see holds it) or `gone`.
    state: String,
    /// What holds it now.
    holders: Vec<Holder>,
}

/// The creator of a followed namespace.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Creator {
    pid: u32,
    comm: String,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(default)]
    comm_hex: Option<String>,
    syscall: String,
    container: Option<Container>,
}

#[derive(JsonSchema)]
pub struct Lost {
    time: String,
    /// Records lost since the last report (the ring buffer was full, or the
    /// kernel skipped a run of a program).
    count: u64,
    /// Of `count`: runs of listns's programs the kernel skipped (their
    /// `recursion_misses`); each may be a record never written.
    missed: u64,
}

#[derive(JsonSchema)]
pub struct Rescan {
    time: String,
    /// Namespaces in the inventory after the rescan.
    namespaces: u64,
    /// Namespaces the rescan found that were unknown.
    discovered: u64,
}

/// The schema of everything listns prints as JSON: `-J` output, or one
/// line of `watch --json`.
pub fn generate() -> serde_json::Value {
    #[derive(JsonSchema)]
    #[serde(untagged)]
    #[allow(clippy::large_enum_variant)]
    enum Any {
        List(ListOutput),
        Watch(WatchLine),
    }
    let mut schema = serde_json::to_value(schemars::schema_for!(Any)).expect("schema serialises");
    schema["title"] = "listns JSON output".into();
    schema["description"] =
        "`listns -J` prints one ListOutput; `listns watch --json` prints one WatchLine per line."
            .into();
    schema
}

/// A page for people: every object and field of the schema, with its type
/// and description (committed as docs/json.md).
pub fn markdown(schema: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::from(
        "# listns JSON output\n\nGenerated from the Rust types in \
         `listns-user/src/output/schema.rs`, like `schema/listns.schema.json`. \
         `listns -J` prints one ListOutput; `listns watch --json` prints one \
         WatchLine per line (its `event` key says which kind). A key marked \
         optional appears only when its column or fact is there; `null` means \
         no value. `<key>_hex` keys appear only beside text whose bytes are \
         not UTF-8, and hold those bytes exactly.\n",
    );
    let type_of = |p: &serde_json::Value| -> String {
        if let Some(r) = p["$ref"].as_str() {
            return r.trim_start_matches("#/$defs/").to_string();
        }
        if let Some(any) = p["anyOf"].as_array() {
            return any
                .iter()
                .map(|a| {
                    a["$ref"].as_str().map_or_else(
                        || a["type"].to_string(),
                        |r| r.trim_start_matches("#/$defs/").to_string(),
                    )
                })
                .collect::<Vec<_>>()
                .join(" or ");
        }
        match &p["type"] {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
            serde_json::Value::String(t) if t == "array" => format!(
                "array of {}",
                p["items"]["$ref"].as_str().map_or_else(
                    || p["items"]["type"].as_str().unwrap_or("any").to_string(),
                    |r| r.trim_start_matches("#/$defs/").to_string()
                )
            ),
            serde_json::Value::String(t) => t.clone(),
            _ => "any".into(),
        }
    };
    let object = |out: &mut String, name: &str, def: &serde_json::Value| {
        let _ = writeln!(out, "\n## {name}\n");
        if let Some(d) = def["description"].as_str() {
            let _ = writeln!(out, "{}\n", d.replace('\n', " "));
        }
        let Some(props) = def["properties"].as_object() else {
            return;
        };
        let required: Vec<&str> = def["required"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let _ = writeln!(out, "| key | type | |\n| --- | --- | --- |");
        for (key, p) in props {
            let desc = p["description"].as_str().unwrap_or("").replace('\n', " ");
            let opt = if required.contains(&key.as_str()) {
                ""
            } else {
                " (optional)"
            };
            let constant = p["const"]
                .as_str()
                .map(|c| format!("`\"{c}\"`"))
                .unwrap_or_default();
            let ty = if constant.is_empty() {
                type_of(p)
            } else {
                constant
            };
            let _ = writeln!(out, "| `{key}` | {ty}{opt} | {desc} |");
        }
    };
    if let Some(defs) = schema["$defs"].as_object() {
        for (name, def) in defs {
            let Some(variants) = def["oneOf"].as_array() else {
                object(&mut out, name, def);
                continue;
            };
            let _ = writeln!(out, "\n## {name}\n");
            if let Some(d) = def["description"].as_str() {
                let _ = writeln!(out, "{}\n", d.replace('\n', " "));
            }
            let mut sections = String::new();
            for v in variants {
                let tag = v["properties"]["event"]["const"]
                    .as_str()
                    .or(v["properties"]["kind"]["const"].as_str())
                    .unwrap_or("?");
                let what = v["description"].as_str().unwrap_or("").replace('\n', " ");
                let inner = v["$ref"]
                    .as_str()
                    .or(v["allOf"][0]["$ref"].as_str())
                    .map(|r| format!(" (fields: {})", r.trim_start_matches("#/$defs/")))
                    .unwrap_or_default();
                let _ = writeln!(out, "- `{tag}`: {what}{inner}");
                if v["properties"].as_object().is_some_and(|p| p.len() > 1) {
                    object(&mut sections, &format!("{name}: {tag}"), v);
                }
            }
            out.push_str(&sections);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed page is what the schema generates.
    #[test]
    fn committed_docs_match_the_types() {
        let text = markdown(&generate());
        if std::env::var_os("LISTNS_UPDATE_SCHEMA").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/json.md");
            std::fs::write(path, &text).unwrap();
            return;
        }
        // Embedded at build time: the kernel-matrix guests run this test
        // without the source tree.
        let committed = include_str!("../../../docs/json.md");
        assert!(
            committed == text,
            "docs/json.md is out of date: run LISTNS_UPDATE_SCHEMA=1 cargo test -p listns-user schema"
        );
    }

    /// The committed schema is what the types generate. To update it after
    /// changing them: `LISTNS_UPDATE_SCHEMA=1 cargo test -p listns-user schema`.
    #[test]
    fn committed_schema_matches_the_types() {
        let text = format!("{:#}\n", generate());
        if std::env::var_os("LISTNS_UPDATE_SCHEMA").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/listns.schema.json");
            std::fs::write(path, &text).unwrap();
            return;
        }
        let committed = include_str!("../../../schema/listns.schema.json");
        assert!(
            committed == text,
            "schema/listns.schema.json is out of date: run LISTNS_UPDATE_SCHEMA=1 cargo test -p listns-user schema"
        );
    }
}
