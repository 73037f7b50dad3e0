//! Live events, one line each: text for people, NDJSON for machines.
//!
//! Every JSON event has at least `event`, `type`, `ns`, `id` (or null),
//! `pid`, `comm` and `time` (RFC 3339, UTC, microseconds); events that are
//! not about one namespace (`lost`, `rescan`) have `event` and `time`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use super::{json::put_bytes, sanitize::escape_bytes};
use crate::inventory::live::{Change, ChangeKind, TaskEvent, TaskEventKind};
use crate::inventory::{Container, Namespace, NsKey};
use crate::ns::{NsType, flag_names};

pub fn rfc3339(time_ns: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(time_ns);
    humantime::format_rfc3339_micros(t).to_string()
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "created",
        ChangeKind::Joined => "joined",
        ChangeKind::Left => "left",
    }
}

/// How the task got there, e.g. `unshare(CLONE_NEWNET)`, `setns(fd 3)`, `exit`.
fn how(ev: &TaskEvent) -> String {
    match ev.kind {
        TaskEventKind::Exit => "exit".into(),
        TaskEventKind::Setns => format!("setns(fd {})", ev.fd),
        _ => {
            let flags = flag_names(ev.flags);
            if flags.is_empty() {
                format!("{}()", ev.syscall())
            } else {
                format!("{}({})", ev.syscall(), flags.join("|"))
            }
        }
    }
}

pub fn change_json(ev: &TaskEvent, c: &Change) -> Value {
    serde_json::to_value(ChangeLine::new(ev, c)).unwrap_or(Value::Null)
}

/// One `created`/`joined`/`left` JSON line, serialized straight to the
/// writer: under churn, building a map per line cost more than the rest of
/// the line's way out (BENCHMARKS.md, consumer). Fields in the order the
/// schema documents; `comm_hex` only where `comm` is not UTF-8 (see
/// `json::put_bytes`).
#[derive(Serialize)]
pub struct ChangeLine<'a> {
    event: &'static str,
    #[serde(serialize_with = "rfc3339_str")]
    time: u64,
    #[serde(rename = "type")]
    ty: NsType,
    ns: u64,
    id: Option<u64>,
    link: &'static str,
    pid: u32,
    tid: u32,
    ppid: u32,
    uid: u32,
    comm: std::borrow::Cow<'a, str>,
    syscall: &'static str,
    flags: Vec<&'static str>,
    fd: Option<i32>,
    cgroup_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    comm_hex: Option<String>,
}

impl<'a> ChangeLine<'a> {
    pub fn new(ev: &'a TaskEvent, c: &Change) -> Self {
        let bytes = ev.comm.as_bytes();
        let comm_hex = std::str::from_utf8(bytes)
            .is_err()
            .then(|| bytes.iter().map(|b| format!("{b:02x}")).collect());
        ChangeLine {
            event: kind_name(c.kind),
            time: ev.time_ns,
            ty: c.key.ty,
            ns: c.key.inum,
            id: c.key.id,
            link: c.link,
            pid: ev.pid,
            tid: ev.tid,
            ppid: ev.ppid,
            uid: ev.uid,
            comm: String::from_utf8_lossy(bytes),
            syscall: ev.syscall(),
            flags: flag_names(ev.flags),
            fd: (ev.kind == TaskEventKind::Setns).then_some(ev.fd),
            cgroup_id: ev.cgroup_id,
            comm_hex,
        }
    }
}

/// A kernel time as RFC 3339 text, formatted into the writer.
fn rfc3339_str<S: Serializer>(time_ns: &u64, s: S) -> Result<S::Ok, S::Error> {
    let t = UNIX_EPOCH + Duration::from_nanos(*time_ns);
    s.collect_str(&humantime::format_rfc3339_micros(t))
}

/// The namespaces of one kind in a text line: `uts,ipc,net 4026532385,..386,..387`.
fn named(changes: &[&Change]) -> String {
    let types: Vec<&str> = changes.iter().map(|c| c.key.ty.name()).collect();
    let inodes: Vec<u64> = changes.iter().map(|c| c.key.inum).collect();
    format!("{} {}", types.join(","), compact_inodes(&inodes))
}

/// Inodes in a compact form: the first in full, each next one as `..` and
/// the digits that differ from the first (at least three), since the
/// namespaces of one event are usually numbered together:
/// `4026532385,..386,..387`.
pub fn compact_inodes(inodes: &[u64]) -> String {
    let Some(first) = inodes.first() else {
        return String::new();
    };
    let first = first.to_string();
    let mut out = first.clone();
    for inum in &inodes[1..] {
        let s = inum.to_string();
        out.push(',');
        if s.len() == first.len() {
            let common = s
                .bytes()
                .zip(first.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            let keep = (s.len() - common).max(3);
            if keep < s.len() {
                out.push_str("..");
                out.push_str(&s[s.len() - keep..]);
                continue;
            }
        }
        out.push_str(&s);
    }
    out
}

/// One line for a task event, naming every namespace it touched (those
/// `changes` that were not filtered out), created first, then joined,
/// then left:
/// `created  uts,ipc,net 4026532385,..386,..387  by unshare pid 629 via unshare(CLONE_NEWUTS|...)`.
/// `None` when there is nothing to name.
pub fn task_text(ev: &TaskEvent, changes: &[&Change]) -> Option<String> {
    let mut parts = Vec::new();
    for kind in [ChangeKind::Created, ChangeKind::Joined, ChangeKind::Left] {
        let of_kind: Vec<&Change> = changes.iter().copied().filter(|c| c.kind == kind).collect();
        if !of_kind.is_empty() {
            parts.push((kind_name(kind), named(&of_kind)));
        }
    }
    let ((first_kind, first), rest) = parts.split_first()?;
    let mut line = format!("{}  {first_kind:<7}  {first}", clock(ev.time_ns));
    for (kind, what) in rest {
        line.push_str(&format!("  {kind} {what}"));
    }
    let tid = if ev.tid == ev.pid {
        String::new()
    } else {
        format!(" tid {}", ev.tid)
    };
    line.push_str(&format!(
        "  by {} pid {}{tid} via {}",
        escape_bytes(ev.comm.as_bytes()),
        ev.pid,
        how(ev)
    ));
    Some(line)
}

/// `HH:MM:SS.micros` of a wall-clock time.
pub fn clock(time_ns: u64) -> String {
    let time = rfc3339(time_ns);
    time.get(11..26).unwrap_or(&time).to_string()
}

/// `gone` or `hidden`, with the creator where the tracer saw it.
pub fn verdict_json(event: &str, key: &NsKey, ns: &Namespace, time_ns: u64) -> Value {
    let o = ns.origin.as_ref();
    let mut v = json!({
        "event": event,
        "time": rfc3339(time_ns),
        "type": key.ty,
        "ns": key.inum,
        "id": key.id,
        "pid": o.map(|o| o.pid),
        "comm": null,
        "syscall": o.map(|o| o.syscall),
        "created": o.map(|o| rfc3339(o.time_ns)),
        "container": o.and_then(|o| o.container.as_ref()).map(container_json),
        "hidden": ns.hidden,
    });
    if let (Some(o), Value::Object(obj)) = (o, &mut v) {
        put_bytes(obj, "comm", o.comm.as_bytes());
    }
    v
}

/// A container as JSON: `{runtime, id, name, pod, k8s_namespace}` (the
/// Kubernetes keys where known).
pub fn container_json(c: &Container) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

/// One line for namespaces that got the same verdict at once and were
/// created by the same event (or all of unknown origin):
/// `gone     uts,ipc,net 4026532385,..386,..387  created by unshare pid 5 via unshare at 01:02:03.000004`.
pub fn verdict_text(event: &str, group: &[(&NsKey, &Namespace)], time_ns: u64) -> String {
    let types: Vec<&str> = group.iter().map(|(k, _)| k.ty.name()).collect();
    let inodes: Vec<u64> = group.iter().map(|(k, _)| k.inum).collect();
    let origin = match group.first().and_then(|(_, ns)| ns.origin.as_ref()) {
        Some(o) => format!(
            "  created by {} pid {} via {} at {}",
            escape_bytes(o.comm.as_bytes()),
            o.pid,
            o.syscall,
            clock(o.time_ns),
        ),
        None => "  (created before listns started)".into(),
    };
    // HIDDEN stands out in a stream of lower-case events.
    let (label, note) = if event == "hidden" {
        ("HIDDEN", "  alive, but nothing a scan can see holds it;")
    } else {
        (event, "")
    };
    format!(
        "{}  {label:<7}  {} {}{note}{origin}",
        clock(time_ns),
        types.join(","),
        compact_inodes(&inodes),
    )
}

/// Groups verdict subjects by creator (pid and creation time), oldest
/// first, each group in slot order: one text line each.
pub fn group_by_origin<'a>(
    items: &[(&'a NsKey, &'a Namespace)],
) -> Vec<Vec<(&'a NsKey, &'a Namespace)>> {
    let mut groups: Vec<Vec<(&NsKey, &Namespace)>> = Vec::new();
    let origin_of = |ns: &Namespace| ns.origin.as_ref().map(|o| (o.time_ns, o.pid));
    // Oldest creation first, unknown ones last; within one creation in the
    // order event lines use.
    let mut items = items.to_vec();
    items.sort_by_key(|(k, ns)| {
        let o = origin_of(ns);
        (o.is_none(), o, k.ty.slot_rank(), k.inum)
    });
    for (k, ns) in items {
        match groups
            .iter_mut()
            .find(|g| origin_of(g[0].1) == origin_of(ns))
        {
            Some(g) => g.push((k, ns)),
            None => groups.push(vec![(k, ns)]),
        }
    }
    groups
}

/// `count` records lost, `missed` of them runs the kernel skipped.
pub fn lost_json(count: u64, missed: u64) -> Value {
    json!({ "event": "lost", "time": rfc3339(now_ns()), "count": count, "missed": missed })
}

pub fn lost_text(count: u64, missed: u64) -> String {
    let why = match missed {
        0 => "ring buffer full".to_string(),
        m if m == count => "program runs the kernel skipped".to_string(),
        m => format!("ring buffer full; {m} of them program runs the kernel skipped"),
    };
    format!(
        "!! {count} kernel records lost ({why}): namespaces may have come and gone unseen; rescanning"
    )
}

pub fn rescan_json(namespaces: usize, discovered: usize) -> Value {
    json!({ "event": "rescan", "time": rfc3339(now_ns()), "namespaces": namespaces, "discovered": discovered })
}

pub fn rescan_text(namespaces: usize, discovered: usize) -> String {
    format!("-- rescan: {namespaces} namespaces, {discovered} not seen before")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line written straight from `ChangeLine` is the object that
    /// `change_json` (the `-Q` path) builds, key for key and in order; a
    /// comm that is not UTF-8 gets its `comm_hex`.
    #[test]
    fn change_lines_written_directly_match_the_object() {
        use crate::inventory::NsKey;
        use crate::inventory::live::{Change, TaskEvent};
        for comm in [&b"unshare"[..], b"a\xffb\x1b[2J"] {
            let ev = TaskEvent {
                kind: TaskEventKind::Setns,
                time_ns: 1_700_000_000_123_456_789,
                pid: 7,
                tid: 8,
                ppid: 1,
                uid: 0,
                comm: comm.to_vec().into(),
                cgroup_id: 9,
                flags: 0x4000_0000,
                fd: 3,
                slots: Vec::new(),
                followed: false,
                group_dead: None,
            };
            let c = Change {
                kind: ChangeKind::Joined,
                key: NsKey {
                    ty: NsType::Net,
                    inum: 4026532000,
                    id: Some(77),
                },
                link: "net",
            };
            let direct = serde_json::to_string(&ChangeLine::new(&ev, &c)).unwrap();
            let mut obj = json!({
                "event": "joined", "time": rfc3339(ev.time_ns), "type": "net",
                "ns": 4026532000u64, "id": 77, "link": "net", "pid": 7, "tid": 8,
                "ppid": 1, "uid": 0, "comm": null, "syscall": "setns",
                "flags": flag_names(ev.flags), "fd": 3, "cgroup_id": 9,
            });
            put_bytes(obj.as_object_mut().unwrap(), "comm", comm);
            assert_eq!(direct, obj.to_string());
            assert_eq!(change_json(&ev, &c), obj);
        }
    }

    #[test]
    fn lost_says_how_many_and_why() {
        let v = lost_json(7, 2);
        assert_eq!(
            (
                v["event"].as_str(),
                v["count"].as_u64(),
                v["missed"].as_u64()
            ),
            (Some("lost"), Some(7), Some(2))
        );
        assert!(lost_text(7, 0).contains("7 kernel records lost (ring buffer full)"));
        assert!(lost_text(3, 3).contains("(program runs the kernel skipped)"));
        assert!(lost_text(7, 2).contains("ring buffer full; 2 of them program runs"));
    }
    use crate::ns::NsType;

    fn event(comm: &str) -> TaskEvent {
        TaskEvent {
            kind: TaskEventKind::Unshare,
            time_ns: 1_700_000_000_123_456_789,
            pid: 5,
            tid: 5,
            ppid: 1,
            uid: 0,
            comm: comm.into(),
            cgroup_id: 9,
            flags: 0x4000_0000,
            fd: -1,
            slots: vec![],
            followed: false,
            group_dead: None,
        }
    }

    fn change() -> Change {
        Change {
            kind: ChangeKind::Created,
            key: NsKey::new(NsType::Net, 4026532000, Some(42)),
            link: "net",
        }
    }

    #[test]
    fn json_has_the_required_keys() {
        let v = change_json(&event("unshare"), &change());
        for key in ["event", "type", "ns", "id", "pid", "comm", "time"] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        assert_eq!(v["event"], "created");
        assert_eq!(v["type"], "net");
        assert_eq!(v["ns"], 4026532000u64);
        assert_eq!(v["time"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(v["flags"], json!(["CLONE_NEWNET"]));
    }

    #[test]
    fn hidden_event_names_its_creator() {
        let mut ns = Namespace {
            hidden: true,
            ..Default::default()
        };
        ns.origin = Some(crate::inventory::Origin {
            pid: 77,
            tid: 77,
            comm: "sandbox".into(),
            syscall: "unshare",
            flags: 0,
            time_ns: 1_700_000_000_000_000_000,
            container: None,
        });
        let key = change().key;
        let v = verdict_json("hidden", &key, &ns, 1_700_000_001_000_000_000);
        assert_eq!(
            (v["event"].as_str(), v["pid"].as_u64(), v["comm"].as_str()),
            (Some("hidden"), Some(77), Some("sandbox"))
        );
        assert_eq!(v["hidden"], true);
        assert_eq!(v["created"], "2023-11-14T22:13:20.000000Z");
        let t = verdict_text("hidden", &[(&key, &ns)], 1_700_000_001_000_000_000);
        assert!(
            t.contains("HIDDEN") && t.contains("by sandbox pid 77"),
            "{t}"
        );
    }

    #[test]
    fn hostile_comm_stays_valid_json_and_inert_text() {
        let ev = event("x\u{1b}]0;pwned\u{7}\n\"{");
        let line = serde_json::to_string(&change_json(&ev, &change())).unwrap();
        assert!(!line.contains('\n') && !line.contains('\u{1b}'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["comm"], "x\u{1b}]0;pwned\u{7}\n\"{");
        let text = task_text(&ev, &[&change()]).unwrap();
        assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        assert!(text.contains("via unshare(CLONE_NEWNET)"), "{text}");
    }

    fn new(kind: ChangeKind, ty: NsType, inum: u64) -> Change {
        Change {
            kind,
            key: NsKey::new(ty, inum, Some(inum - 4026531000)),
            link: ty.name(),
        }
    }

    #[test]
    fn one_line_names_every_namespace_of_the_event() {
        let mut ev = event("unshare");
        ev.flags = (libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET) as u64;
        let changes = [
            new(ChangeKind::Left, NsType::Net, 4026531840),
            new(ChangeKind::Created, NsType::Net, 4026532387),
            new(ChangeKind::Created, NsType::Uts, 4026532385),
            new(ChangeKind::Created, NsType::Ipc, 4026532386),
        ];
        let refs: Vec<&Change> = changes.iter().collect();
        let line = task_text(&ev, &refs).unwrap();
        assert!(
            line.ends_with(
                "  created  net,uts,ipc 4026532387,..385,..386  left net 4026531840  \
                 by unshare pid 5 via unshare(CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC)"
            ),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1);
        assert_eq!(task_text(&ev, &[]), None, "nothing touched, no line");
        ev.tid = 6;
        let line = task_text(&ev, &refs[..1]).unwrap();
        assert!(
            line.contains("  left     net 4026531840  by unshare pid 5 tid 6 "),
            "{line}"
        );
    }

    #[test]
    fn inodes_compact_only_where_unambiguous() {
        assert_eq!(compact_inodes(&[]), "");
        assert_eq!(compact_inodes(&[4026532385]), "4026532385");
        assert_eq!(
            compact_inodes(&[4026532385, 4026532386, 4026532399, 4026531840]),
            "4026532385,..386,..399,..1840"
        );
        // Other lengths are printed in full.
        assert_eq!(compact_inodes(&[4026532385, 12]), "4026532385,12");
        assert_eq!(compact_inodes(&[100, 200]), "100,200");
    }

    #[test]
    fn verdicts_group_by_creator() {
        let origin = |pid, time_ns| crate::inventory::Origin {
            pid,
            tid: pid,
            comm: "unshare".into(),
            syscall: "unshare",
            flags: 0,
            time_ns,
            container: None,
        };
        let mk = |o| Namespace {
            origin: o,
            ..Default::default()
        };
        let (a, b, c, d) = (
            mk(Some(origin(5, 1))),
            mk(Some(origin(5, 1))),
            mk(Some(origin(6, 2))),
            mk(None),
        );
        let keys: Vec<NsKey> = (0..4)
            .map(|i| NsKey::new(NsType::Uts, 4026532000 + i, None))
            .collect();
        let items = vec![
            (&keys[0], &a),
            (&keys[1], &c),
            (&keys[2], &b),
            (&keys[3], &d),
        ];
        let groups = group_by_origin(&items);
        assert_eq!(
            groups.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 1, 1]
        );
        let line = verdict_text("gone", &groups[0], 1_700_000_000_000_000_000);
        assert!(
            line.contains(
                "gone     uts,uts 4026532000,..002  created by unshare pid 5 via unshare at "
            ),
            "{line}"
        );
    }
}
