//! Live events as text for people, one line each. Their JSON form is the
//! contract's `WatchLine` (see `contract`).

use std::time::{SystemTime, UNIX_EPOCH};

use super::{contract::Time, sanitize::escape_bytes};
use crate::inventory::live::{Change, ChangeKind, TaskEvent, TaskEventKind};
use crate::inventory::{Container, Namespace, NsKey};
use crate::ns::flag_names;

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Where the continuation of a wrapped event line starts: under its first
/// namespace, after `HH:MM:SS.micros  created  `.
pub const INDENT: usize = 26;

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
/// then left, and the task's container where known:
/// `created  uts,ipc,net 4026532385,..386,..387  by unshare pid 629 via unshare(CLONE_NEWUTS|...)  in web (0123456789ab)`.
/// `None` when there is nothing to name.
pub fn task_text(
    ev: &TaskEvent,
    changes: &[&Change],
    container: Option<&Container>,
) -> Option<String> {
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
    if let Some(c) = container {
        line.push_str(&format!("  in {}", escape_bytes(c.label().as_bytes())));
    }
    Some(line)
}

/// `HH:MM:SS.micros` of a wall-clock time.
pub fn clock(time_ns: u64) -> String {
    let time = Time(time_ns).rfc3339();
    time.get(11..26).unwrap_or(&time).to_string()
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

pub fn rescan_text(namespaces: usize, discovered: usize) -> String {
    format!("-- rescan: {namespaces} namespaces, {discovered} not seen before")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Origin, live::TaskEvent};
    use crate::ns::NsType;

    /// 2023-11-14T22:13:20.123456789Z.
    const T: u64 = 1_700_000_000_123_456_789;

    fn event(comm: &str) -> TaskEvent {
        TaskEvent {
            time_ns: T,
            comm: comm.into(),
            flags: libc::CLONE_NEWNET as u64,
            ..TaskEvent::test(TaskEventKind::Unshare, 5)
        }
    }

    fn new(kind: ChangeKind, ty: NsType, inum: u64) -> Change {
        Change {
            kind,
            key: NsKey::new(ty, inum, Some(inum - 4026531000)),
            link: ty.name(),
        }
    }

    fn origin(pid: u32, comm: &str, time_ns: u64) -> Origin {
        Origin {
            pid,
            tid: pid,
            comm: comm.into(),
            syscall: "unshare",
            flags: 0,
            time_ns,
            container: None,
        }
    }

    #[test]
    fn clock_is_the_utc_time_of_day_with_microseconds() {
        assert_eq!(clock(T), "22:13:20.123456");
    }

    #[test]
    fn lost_says_how_many_and_why() {
        assert!(lost_text(7, 0).contains("7 kernel records lost (ring buffer full)"));
        assert!(lost_text(3, 3).contains("(program runs the kernel skipped)"));
        assert!(lost_text(7, 2).contains("ring buffer full; 2 of them program runs"));
    }

    #[test]
    fn hidden_names_its_creator() {
        let ns = Namespace {
            hidden: true,
            origin: Some(origin(77, "sandbox", T)),
            ..Default::default()
        };
        let key = NsKey::new(NsType::Net, 4026532000, Some(42));
        let t = verdict_text("hidden", &[(&key, &ns)], T);
        assert_eq!(
            t,
            "22:13:20.123456  HIDDEN   net 4026532000  alive, but nothing a scan can see \
             holds it;  created by sandbox pid 77 via unshare at 22:13:20.123456"
        );
    }

    #[test]
    fn hostile_comm_is_inert_text() {
        let ev = event("x\u{1b}]0;pwned\u{7}\n\"{");
        let c = new(ChangeKind::Created, NsType::Net, 4026532000);
        let text = task_text(&ev, &[&c], None).unwrap();
        assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        assert!(text.contains("via unshare(CLONE_NEWNET)"), "{text}");
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
        let line = task_text(&ev, &refs, None).unwrap();
        assert_eq!(
            line,
            "22:13:20.123456  created  net,uts,ipc 4026532387,..385,..386  left net 4026531840  \
             by unshare pid 5 via unshare(CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC)"
        );
        assert_eq!(task_text(&ev, &[], None), None, "nothing touched, no line");
        ev.tid = 6;
        let line = task_text(&ev, &refs[..1], None).unwrap();
        assert!(
            line.contains("  left     net 4026531840  by unshare pid 5 tid 6 "),
            "{line}"
        );
    }

    #[test]
    fn events_name_the_container_escaped() {
        let ev = event("unshare");
        let c = new(ChangeKind::Joined, NsType::Net, 4026532000);
        let box_ = Container {
            name: Some("web\u{1b}[2J".into()),
            ..Container::new("podman", "0123456789abcdef")
        };
        let line = task_text(&ev, &[&c], Some(&box_)).unwrap();
        assert!(
            line.ends_with("via unshare(CLONE_NEWNET)  in web\\x1b[2J (0123456789ab)"),
            "{line}"
        );
        let unnamed = Container::new("podman", "0123456789abcdef");
        let line = task_text(&ev, &[&c], Some(&unnamed)).unwrap();
        assert!(line.ends_with("  in podman:0123456789ab"), "{line}");
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
        let mk = |o| Namespace {
            origin: o,
            ..Default::default()
        };
        let (a, b, c, d) = (
            mk(Some(origin(5, "unshare", 1))),
            mk(Some(origin(5, "unshare", 1))),
            mk(Some(origin(6, "unshare", 2))),
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
        let line = verdict_text("gone", &groups[0], T);
        assert_eq!(
            line,
            "22:13:20.123456  gone     uts,uts 4026532000,..002  created by unshare pid 5 via \
             unshare at 00:00:00.000000"
        );
    }
}
