//! The summary that ends `listns watch -- COMMAND` (and `--pid PID`):
//! every namespace the followed tree created or joined, who did it and
//! when, when it went (or that it lives on, hidden or held by what).

use super::{
    columns::holders_summary,
    contract::{self, FollowedNamespace, Holders, Origin, Task, Time, Which, exact},
    events::clock,
    sanitize::escape_bytes,
};
use crate::{
    inventory::{
        Inventory, Namespace, NsKey, State,
        followed::{Followed, FollowedNs},
        live::ChangeKind,
    },
    ns::flag_names,
    text::RawText,
};

/// What was followed and how it ended.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    /// The command line run, or the followed process's command line.
    pub command: Vec<RawText>,
    pub pid: u32,
    /// The command's exit status, when it was ours to wait for.
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Still running when listns stopped (a signal, `--duration`).
    pub running: bool,
}

/// The fate of one namespace as the summary tells it.
struct Fate<'a> {
    key: &'a NsKey,
    f: &'a FollowedNs,
    ns: Option<&'a Namespace>,
    state: &'static str,
    created_ns: Option<u64>,
    gone_ns: Option<u64>,
    /// To when it went, or to now while it lives.
    lifetime_ns: Option<u64>,
}

impl<'a> Fate<'a> {
    fn new(key: &'a NsKey, f: &'a FollowedNs, inv: &'a Inventory, now_ns: u64) -> Self {
        let ns = inv.get(key);
        let created_ns = ns
            .and_then(|ns| ns.origin.as_ref())
            .map(|o| o.time_ns)
            .or((f.first.kind == ChangeKind::Created).then_some(f.first.time_ns));
        // Gone: when its last holder left if the lifecycle then found it dead
        // (the check runs a moment later), else when the check found it.
        let gone_ns = match ns.map(|ns| ns.state) {
            Some(State::Gone { since_ns }) => Some(
                f.unheld_since
                    .filter(|&t| t <= since_ns)
                    .unwrap_or(since_ns),
            ),
            // Forgotten: gone long ago.
            None => f.unheld_since,
            Some(State::Alive) => None,
        };
        let state = match ns {
            Some(ns) if ns.state == State::Alive && ns.hidden => "hidden",
            Some(ns) if ns.state == State::Alive => "alive",
            _ => "gone",
        };
        let lifetime_ns = created_ns.map(|c| gone_ns.unwrap_or(now_ns).saturating_sub(c));
        Fate {
            key,
            f,
            ns,
            state,
            created_ns,
            gone_ns,
            lifetime_ns,
        }
    }
}

/// `0.7 ms`, `221.4 ms`, `3.2 s`, `5m 3s`.
pub fn duration(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let secs = std::time::Duration::from_secs(ns / 1_000_000_000);
        humantime::format_duration(secs).to_string()
    }
}

fn command_text(s: &Subject) -> String {
    let words: Vec<String> = s
        .command
        .iter()
        .map(|w| escape_bytes(w.as_bytes()).into_owned())
        .collect();
    words.join(" ")
}

/// The text summary: a header line, then one line per namespace.
pub fn text(s: &Subject, followed: &Followed, inv: &Inventory, now_ns: u64) -> Vec<String> {
    let ended = match (s.running, s.exit_code, s.signal) {
        (true, ..) => "is still running".to_string(),
        (_, Some(code), _) => format!("exited with status {code}"),
        (_, _, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "exited".to_string(),
    };
    let fates: Vec<Fate> = followed
        .iter()
        .map(|(k, f)| Fate::new(k, f, inv, now_ns))
        .collect();
    let created = fates
        .iter()
        .filter(|f| f.f.first.kind == ChangeKind::Created)
        .count();
    let mut out = vec![format!(
        "-- summary: pid {} ({}) {ended}; its tree created {created} and joined {} namespaces",
        s.pid,
        command_text(s),
        fates.len() - created,
    )];
    for fate in &fates {
        out.push(line(fate, inv));
    }
    out
}

fn line(fate: &Fate<'_>, inv: &Inventory) -> String {
    let (key, first) = (fate.key, &fate.f.first);
    let id = key.id.map_or(String::new(), |id| format!(" id {id}"));
    let verb = if first.kind == ChangeKind::Created {
        "created"
    } else {
        "joined"
    };
    let how = match flag_names(first.flags).join("|") {
        f if f.is_empty() || first.syscall == "setns" => first.syscall.to_string(),
        f => format!("{}({f})", first.syscall),
    };
    let mut out = format!(
        "{:<6} {}{id}  {verb} by {} pid {} via {how} at {}",
        key.ty.name(),
        key.inum,
        escape_bytes(first.comm.as_bytes()),
        first.pid,
        clock(first.time_ns),
    );
    if first.kind == ChangeKind::Joined {
        match fate.ns.and_then(|ns| ns.origin.as_ref()) {
            Some(o) => out.push_str(&format!(
                " (created by {} pid {} at {})",
                escape_bytes(o.comm.as_bytes()),
                o.pid,
                clock(o.time_ns)
            )),
            None => out.push_str(" (created before listns started)"),
        }
    }
    let life = fate.lifetime_ns.map(duration);
    match (fate.state, fate.ns) {
        ("gone", _) => {
            out.push_str("; gone");
            if let Some(g) = fate.gone_ns {
                out.push_str(&format!(" at {}", clock(g)));
            }
            if let Some(l) = life {
                out.push_str(&format!(", lived {l}"));
            }
        }
        ("hidden", _) => {
            out.push_str("; HIDDEN: alive, but nothing a scan can see holds it");
            if let Some(l) = life {
                out.push_str(&format!(" (alive for {l})"));
            }
        }
        (_, Some(ns)) => {
            out.push_str(&format!("; alive, held by {}", holders_summary(ns)));
            let holder = ns
                .representative_pids()
                .find_map(|p| inv.processes.get(&p).map(|proc| (p, &proc.comm)));
            if let Some((pid, comm)) = holder {
                out.push_str(&format!(" (pid {pid} {})", escape_bytes(comm.as_bytes())));
            }
            if let Some(l) = life {
                out.push_str(&format!(" for {l}"));
            }
        }
        _ => {}
    }
    out
}

/// The JSON summary: what `{"event": "summary", ...}` holds.
pub fn json<'a>(
    s: &'a Subject,
    followed: &'a Followed,
    inv: &'a Inventory,
    now_ns: u64,
) -> contract::Summary<'a> {
    contract::Summary {
        time: Time(now_ns),
        pid: s.pid,
        command: s.command.iter().map(|w| exact(w.as_bytes()).0).collect(),
        running: s.running,
        exit_status: s.exit_code,
        signal: s.signal,
        namespaces: followed
            .iter()
            .map(|(k, f)| followed_namespace(Fate::new(k, f, inv, now_ns)))
            .collect(),
    }
}

fn followed_namespace(fate: Fate<'_>) -> FollowedNamespace<'_> {
    let (key, first) = (fate.key, &fate.f.first);
    // Who created it, when known (the tree itself for `created`).
    let creator = fate.ns.and_then(|ns| ns.origin.as_ref()).map(Origin::from);
    FollowedNamespace {
        which: Which::from(key),
        how: if first.kind == ChangeKind::Created {
            "created"
        } else {
            "joined"
        },
        task: Task::new(
            first.pid,
            first.tid,
            first.comm.as_bytes(),
            first.syscall,
            first.flags,
        ),
        time: Time(first.time_ns),
        creator,
        created: fate.created_ns.map(Time),
        gone: fate.gone_ns.map(Time),
        lifetime_ms: fate.lifetime_ns.map(|l| l as f64 / 1e6),
        state: fate.state,
        holders: fate.ns.map(|ns| Holders(&ns.holders)).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        inventory::{
            Holder,
            live::{Slot, TaskEvent, TaskEventKind},
        },
        ns::NsType,
    };
    use listns_common::{SLOT_NET, SLOT_UTS};

    const T0: u64 = 1_700_000_000_000_000_000;

    fn unshare(pid: u32, slot: usize, inum: u64, t: u64) -> TaskEvent {
        TaskEvent {
            time_ns: T0 + t,
            comm: "unshare".into(),
            flags: NsType::of_slot(slot).clone_flag() as u64,
            slots: vec![Slot {
                slot,
                ty: NsType::of_slot(slot),
                inum,
                id: Some(inum - 4026531000),
                prev: Some((1, Some(1))),
                changed: true,
                created: true,
            }],
            followed: true,
            group_dead: Some(true),
            ..TaskEvent::test(TaskEventKind::Unshare, pid)
        }
    }

    fn exit(mut ev: TaskEvent, t: u64) -> TaskEvent {
        ev.kind = TaskEventKind::Exit;
        ev.time_ns = T0 + t;
        ev.slots[0].changed = false;
        ev
    }

    #[test]
    fn gone_and_held_namespaces_with_lifetimes() {
        let mut inv = Inventory::new();
        let mut f = Followed::new();
        let a = unshare(10, SLOT_NET, 4026532384, 1_000_000);
        let b = unshare(11, SLOT_UTS, 4026532385, 2_000_000);
        for ev in [&a, &b, &exit(a.clone(), 1_700_000)] {
            let changes = inv.apply(ev);
            f.note(ev, &changes, &inv);
        }
        let net = inv.by_inode(NsType::Net, 4026532384).unwrap();
        // The lifecycle found it dead 200 ms after its last holder left.
        inv.get_mut(&net).unwrap().state = State::Gone {
            since_ns: T0 + 201_700_000,
        };
        let uts = inv.by_inode(NsType::Uts, 4026532385).unwrap();
        inv.get_mut(&uts)
            .unwrap()
            .holders
            .insert(Holder::BindMount {
                path: "/x".into(),
                mnt_ns: 1,
            });
        let subject = Subject {
            command: vec!["sh".into(), "-c".into(), "x\x1b".into()],
            pid: 9,
            exit_code: Some(3),
            ..Default::default()
        };
        let lines = text(&subject, &f, &inv, T0 + 3_000_000_000);
        assert_eq!(
            lines[0],
            "-- summary: pid 9 (sh -c x\\x1b) exited with status 3; its tree created 2 and joined 0 namespaces"
        );
        assert!(
            lines[1].starts_with(
                "net    4026532384 id 1384  created by unshare pid 10 via unshare(CLONE_NEWNET) at "
            ),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with(", lived 0.7 ms"), "{}", lines[1]);
        assert!(
            lines[2].contains("; alive, held by procs:1 bind:1"),
            "{}",
            lines[2]
        );
        let v = serde_json::to_value(contract::WatchLine::Summary(json(
            &subject,
            &f,
            &inv,
            T0 + 3_000_000_000,
        )))
        .unwrap();
        assert_eq!(v["event"], "summary");
        assert_eq!(v["exit_status"], 3);
        let ns = v["namespaces"].as_array().unwrap();
        assert_eq!(ns.len(), 2);
        assert_eq!(
            (
                ns[0]["type"].as_str().unwrap(),
                ns[0]["how"].as_str().unwrap(),
                ns[0]["state"].as_str().unwrap()
            ),
            ("net", "created", "gone")
        );
        assert_eq!(ns[0]["lifetime_ms"], 0.7);
        assert_eq!(ns[0]["creator"]["pid"], 10);
        // T0 + 1.7 ms.
        assert_eq!(ns[0]["gone"], "2023-11-14T22:13:20.001700Z");
        assert_eq!(ns[1]["state"], "alive");
        assert_eq!(ns[1]["gone"], serde_json::Value::Null);
        assert_eq!(ns[1]["holders"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(700_000), "0.7 ms");
        assert_eq!(duration(221_400_000), "221.4 ms");
        assert_eq!(duration(3_200_000_000), "3.2 s");
        assert_eq!(duration(303_000_000_000), "5m 3s");
    }
}
