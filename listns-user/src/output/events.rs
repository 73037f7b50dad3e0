//! Live events, one line each: text for people, NDJSON for machines.
//!
//! Every JSON event has at least `event`, `type`, `ns`, `id` (or null),
//! `pid`, `comm` and `time` (RFC 3339, UTC, microseconds); events that are
//! not about one namespace (`lost`, `rescan`) have `event` and `time`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{json::put_bytes, sanitize::escape_bytes};
use crate::inventory::live::{Change, ChangeKind, TaskEvent, TaskEventKind};
use crate::inventory::{Namespace, NsKey};
use crate::ns::flag_names;

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
    let mut v = json!({
        "event": kind_name(c.kind),
        "time": rfc3339(ev.time_ns),
        "type": c.key.ty,
        "ns": c.key.inum,
        "id": c.key.id,
        "link": c.link,
        "pid": ev.pid,
        "tid": ev.tid,
        "ppid": ev.ppid,
        "uid": ev.uid,
        "comm": null,
        "syscall": ev.syscall(),
        "flags": flag_names(ev.flags),
        "fd": (ev.kind == TaskEventKind::Setns).then_some(ev.fd),
        "cgroup_id": ev.cgroup_id,
    });
    if let Value::Object(obj) = &mut v {
        put_bytes(obj, "comm", ev.comm.as_bytes());
    }
    v
}

pub fn change_text(ev: &TaskEvent, c: &Change) -> String {
    let id = c.key.id.map_or(String::new(), |id| format!(" id {id}"));
    let time = rfc3339(ev.time_ns);
    let clock = time.get(11..26).unwrap_or(&time);
    format!(
        "{clock}  {:<7}  {:<6} {}{id}  pid {} tid {} ppid {} uid {}  {}  via {}",
        kind_name(c.kind),
        c.key.ty.name(),
        c.key.inum,
        ev.pid,
        ev.tid,
        ev.ppid,
        ev.uid,
        escape_bytes(ev.comm.as_bytes()),
        how(ev),
    )
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
        "container": o.and_then(|o| o.container.as_deref()),
        "hidden": ns.hidden,
    });
    if let (Some(o), Value::Object(obj)) = (o, &mut v) {
        put_bytes(obj, "comm", o.comm.as_bytes());
    }
    v
}

pub fn verdict_text(event: &str, key: &NsKey, ns: &Namespace, time_ns: u64) -> String {
    let time = rfc3339(time_ns);
    let clock = time.get(11..26).unwrap_or(&time);
    let id = key.id.map_or(String::new(), |id| format!(" id {id}"));
    let origin = match &ns.origin {
        Some(o) => format!(
            "  created by pid {} {} via {} at {}",
            o.pid,
            escape_bytes(o.comm.as_bytes()),
            o.syscall,
            rfc3339(o.time_ns)
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
        "{clock}  {label:<7}  {:<6} {}{id}{note}{origin}",
        key.ty.name(),
        key.inum
    )
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
        let t = verdict_text("hidden", &key, &ns, 1_700_000_001_000_000_000);
        assert!(t.contains("HIDDEN") && t.contains("pid 77 sandbox"), "{t}");
    }

    #[test]
    fn hostile_comm_stays_valid_json_and_inert_text() {
        let ev = event("x\u{1b}]0;pwned\u{7}\n\"{");
        let line = serde_json::to_string(&change_json(&ev, &change())).unwrap();
        assert!(!line.contains('\n') && !line.contains('\u{1b}'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["comm"], "x\u{1b}]0;pwned\u{7}\n\"{");
        let text = change_text(&ev, &change());
        assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        assert!(text.contains("via unshare(CLONE_NEWNET)"), "{text}");
    }
}
