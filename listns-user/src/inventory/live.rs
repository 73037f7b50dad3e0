//! Applying the tracer's task events to the inventory.
//!
//! A `TaskEvent` is one kernel record, decoded: a task and all its namespace
//! slots before and after. Applying it updates the holders and returns the
//! namespace-level changes (`created`, `joined`, `left`) for output.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Holder, Inventory, NsKey, Origin};
use crate::{
    ns::{NsType, slot_name},
    text::RawText,
};

/// What the task did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskEventKind {
    Fork,
    Unshare,
    Setns,
    Exit,
}

/// One namespace slot of a task as the kernel read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Index into `listns_common`'s slots (`ns::slot_name` names it).
    pub slot: usize,
    pub ty: NsType,
    pub inum: u64,
    pub id: Option<u64>,
    /// The slot before the event (parent's for a fork), if it was read.
    pub prev: Option<(u64, Option<u64>)>,
    pub changed: bool,
    /// First sighting in the kernel's map of known namespaces.
    pub created: bool,
}

/// One decoded kernel record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEvent {
    pub kind: TaskEventKind,
    /// Wall-clock time, nanoseconds since the epoch.
    pub time_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub comm: RawText,
    pub cgroup_id: u64,
    pub flags: u64,
    pub fd: i32,
    pub slots: Vec<Slot>,
    /// The task's process is followed (`listns watch -- COMMAND`, `--pid`).
    pub followed: bool,
    /// Exit only: whether this was the last thread of its process (`None`
    /// when the kernel's offsets did not allow telling).
    pub group_dead: Option<bool>,
}

impl TaskEvent {
    /// Exit only: the whole process is gone, not just one thread. Without
    /// the kernel's word, the leader's exit stands for the process's.
    pub fn process_gone(&self) -> bool {
        self.kind == TaskEventKind::Exit && self.group_dead.unwrap_or(self.tid == self.pid)
    }

    /// The syscall family behind the event.
    pub fn syscall(&self) -> &'static str {
        match self.kind {
            TaskEventKind::Fork => "clone",
            TaskEventKind::Unshare => "unshare",
            TaskEventKind::Setns => "setns",
            TaskEventKind::Exit => "exit",
        }
    }
}

/// A namespace-level change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Joined,
    Left,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub key: NsKey,
    /// The `/proc/PID/ns` link the change went through (`pid_for_children`, ...).
    pub link: &'static str,
}

/// Removes what task `tid` of process `pid` held by itself, or, with no
/// `tid` (the process is gone), everything process `pid` held. Returns
/// whether anything went. Holders sort by pid first, so either is one range
/// look-up: an exit costs O(log n) even in a namespace held by thousands
/// (the host's own), where a walk of every holder cost most of the
/// consumer's time under churn.
fn remove_task_holders(holders: &mut BTreeSet<Holder>, pid: u32, tid: Option<u32>) -> bool {
    let (from, to) = match tid {
        Some(tid) => (
            Holder::Thread { pid, tid, link: "" },
            Holder::Thread {
                pid,
                tid: tid.saturating_add(1),
                link: "",
            },
        ),
        // The first holder of `pid` in the order, and the first of `pid + 1`
        // (a pid is at most 2^22, so `pid + 1` never overflows into the
        // holders without a pid).
        None => (
            Holder::Process { pid, link: "" },
            Holder::Process {
                pid: pid.saturating_add(1),
                link: "",
            },
        ),
    };
    let mut removed = false;
    // Usually one or two: a process's own link, sometimes a `*_for_children`.
    while let Some(h) = holders.range(&from..&to).next().cloned() {
        holders.remove(&h);
        removed = true;
    }
    removed
}

impl Inventory {
    /// Applies one task event; returns what changed, in slot order, each
    /// namespace once (a new pid namespace is both `pid` and
    /// `pid_for_children` of a clone(CLONE_NEWPID) child).
    pub fn apply(&mut self, ev: &TaskEvent) -> Vec<Change> {
        let mut out = Vec::new();
        // At most one change per slot: a search of `out` is cheapest.
        let push = |out: &mut Vec<Change>, kind, key: NsKey, link| {
            if !out.iter().any(|c: &Change| c.key == key) {
                out.push(Change { kind, key, link });
            }
        };
        let holder = |link: &'static str| {
            if ev.tid == ev.pid {
                Holder::Process { pid: ev.pid, link }
            } else {
                Holder::Thread {
                    pid: ev.pid,
                    tid: ev.tid,
                    link,
                }
            }
        };
        if ev.kind == TaskEventKind::Exit {
            // Only the namespaces the record names: the event path must not
            // walk the whole inventory (it holds tens of thousands of
            // namespaces under churn). Holders the task has elsewhere (fds,
            // sockets) go at the next rescan; liveness does not depend on them.
            //
            // A thread's exit removes only what that thread held by itself
            // (it unshared or joined on its own); the process's exit (its
            // last thread) removes everything the process held. A `left`
            // is reported only where a holder went: an exit that removed
            // none (a task the tracer never saw arrive, a thread sharing its
            // process's namespaces) reports nothing.
            let process = ev.process_gone();
            for s in &ev.slots {
                let key = self.resolve(s.ty, s.inum, s.id);
                let initial = self.is_initial(&key);
                let Some(ns) = self.get_mut(&key) else {
                    continue;
                };
                let removed =
                    remove_task_holders(&mut ns.holders, ev.pid, (!process).then_some(ev.tid));
                if removed && !initial {
                    push(&mut out, ChangeKind::Left, key, slot_name(s.slot));
                }
            }
            if process {
                self.processes.remove(&ev.pid);
            }
            return out;
        }
        for s in &ev.slots {
            let link = slot_name(s.slot);
            if ev.kind != TaskEventKind::Fork
                && s.changed
                && let Some((inum, id)) = s.prev
            {
                let old = self.resolve(s.ty, inum, id);
                if let Some(ns) = self.get_mut(&old)
                    && ns.holders.remove(&holder(link))
                {
                    push(&mut out, ChangeKind::Left, old, link);
                }
            }
            let (key, known, ns) = self.sighting(s.ty, s.inum, s.id);
            ns.holders.insert(holder(link));
            if !s.changed {
                continue;
            }
            // The kernel's map decides first sightings; an entry the
            // inventory already has (the map is an LRU) is a join.
            // Without ids a reused inode maps to the dead namespace's entry;
            // the kernel (which forgets namespaces as they die there) knows
            // better, so its word wins.
            if s.created && (!known || s.id.is_none()) {
                ns.state = super::State::Alive;
                ns.hidden = false;
                ns.origin = Some(Origin {
                    pid: ev.pid,
                    tid: ev.tid,
                    comm: ev.comm.clone(),
                    syscall: ev.syscall(),
                    flags: ev.flags,
                    time_ns: ev.time_ns,
                    container: None,
                });
                push(&mut out, ChangeKind::Created, key, link);
            } else {
                push(&mut out, ChangeKind::Joined, key, link);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {

    /// The range removal takes exactly what the walk over every holder
    /// (the code it replaced, kept here as the reference) took.
    #[test]
    fn exits_remove_the_same_holders_as_a_full_walk() {
        use crate::text::RawText;
        let mut all = BTreeSet::new();
        for pid in [41, 42, 43] {
            for link in ["net", "pid_for_children", "uts"] {
                all.insert(Holder::Process { pid, link });
            }
            for tid in [pid, pid + 100, pid + 101] {
                all.insert(Holder::Thread {
                    pid,
                    tid,
                    link: "net",
                });
            }
            for fd in [-1, 0, 3, i32::MAX] {
                all.insert(Holder::Fd { pid, fd });
                all.insert(Holder::Socket { pid, fd });
                all.insert(Holder::Tun { pid, fd });
            }
        }
        all.insert(Holder::BindMount {
            path: RawText::from("/run/netns/x"),
            mnt_ns: 42,
        });
        all.insert(Holder::Child {
            ty: NsType::Net,
            ns: 42,
        });
        for (pid, tid) in [
            (42, None),
            (42, Some(142)),
            (42, Some(42)),
            (44, None),
            (0, None),
        ] {
            let mut walked = all.clone();
            walked.retain(|h| match h {
                Holder::Thread { pid: p, tid: t, .. } => {
                    !(*p == pid && tid.is_none_or(|tid| *t == tid))
                }
                other => !(tid.is_none() && other.pid() == Some(pid)),
            });
            let mut ranged = all.clone();
            let removed = remove_task_holders(&mut ranged, pid, tid);
            assert_eq!(ranged, walked, "pid {pid} tid {tid:?}");
            assert_eq!(removed, walked.len() < all.len(), "pid {pid} tid {tid:?}");
        }
    }

    use super::*;
    use listns_common::{SLOT_NET, SLOT_PID, SLOT_PID_FOR_CHILDREN, SLOT_UTS};

    fn slot(slot: usize, inum: u64, prev: u64, created: bool) -> Slot {
        Slot {
            slot,
            ty: NsType::of_slot(slot),
            inum,
            id: Some(inum + 1000),
            prev: Some((prev, Some(prev + 1000))),
            changed: inum != prev,
            created,
        }
    }

    fn event(kind: TaskEventKind, pid: u32, tid: u32, slots: Vec<Slot>) -> TaskEvent {
        TaskEvent {
            kind,
            time_ns: 42,
            pid,
            tid,
            ppid: 1,
            uid: 0,
            comm: "unshare".into(),
            cgroup_id: 0,
            flags: 0,
            fd: -1,
            slots,
            followed: false,
            group_dead: None,
        }
    }

    fn inventory() -> Inventory {
        let mut inv = Inventory::new();
        inv.initial.insert(NsType::Net, 1);
        inv.initial.insert(NsType::Uts, 2);
        inv.add_holder(
            NsType::Net,
            1,
            Some(1001),
            Holder::Process {
                pid: 10,
                link: "net",
            },
        );
        inv.add_holder(
            NsType::Uts,
            2,
            Some(1002),
            Holder::Process {
                pid: 10,
                link: "uts",
            },
        );
        inv
    }

    #[test]
    fn unshare_creates_and_leaves() {
        let mut inv = inventory();
        let ev = event(
            TaskEventKind::Unshare,
            10,
            10,
            vec![slot(SLOT_NET, 50, 1, true), slot(SLOT_UTS, 2, 2, false)],
        );
        let changes = inv.apply(&ev);
        let kinds: Vec<_> = changes.iter().map(|c| (c.kind, c.key.inum)).collect();
        assert_eq!(
            kinds,
            vec![(ChangeKind::Left, 1), (ChangeKind::Created, 50)]
        );
        let new = inv.get(&changes[1].key).unwrap();
        assert_eq!(new.origin.as_ref().unwrap().syscall, "unshare");
        assert_eq!(new.pids().into_iter().collect::<Vec<_>>(), vec![10]);
        assert!(inv.get(&changes[0].key).unwrap().pids().is_empty());
    }

    #[test]
    fn setns_into_known_namespace_is_a_join() {
        let mut inv = inventory();
        inv.add_holder(
            NsType::Net,
            50,
            Some(1050),
            Holder::BindMount {
                path: "/run/netns/x".into(),
                mnt_ns: 9,
            },
        );
        // Even if the kernel's LRU forgot it, the inventory knows it.
        let ev = event(
            TaskEventKind::Setns,
            10,
            10,
            vec![slot(SLOT_NET, 50, 1, true)],
        );
        let changes = inv.apply(&ev);
        assert_eq!(changes[1].kind, ChangeKind::Joined);
        assert!(inv.get(&changes[1].key).unwrap().origin.is_none());
    }

    #[test]
    fn fork_reports_each_namespace_once_and_never_leaves() {
        let mut inv = inventory();
        // clone(CLONE_NEWPID): pid and pid_for_children are the same new namespace.
        let ev = event(
            TaskEventKind::Fork,
            20,
            20,
            vec![
                slot(SLOT_PID_FOR_CHILDREN, 60, 5, true),
                slot(SLOT_PID, 60, 5, false),
            ],
        );
        let changes = inv.apply(&ev);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].kind, ChangeKind::Created);
        assert_eq!(changes[0].key.ty, NsType::Pid);
    }

    #[test]
    fn thread_unshare_is_held_by_the_thread() {
        let mut inv = inventory();
        let ev = event(
            TaskEventKind::Unshare,
            10,
            11,
            vec![slot(SLOT_NET, 70, 1, true)],
        );
        let changes = inv.apply(&ev);
        let ns = inv.get(&changes.last().unwrap().key).unwrap();
        assert!(ns.holders.contains(&Holder::Thread {
            pid: 10,
            tid: 11,
            link: "net"
        }));
        // Thread exit drops only that thread's holders.
        let exit = event(
            TaskEventKind::Exit,
            10,
            11,
            vec![slot(SLOT_NET, 70, 70, false)],
        );
        let left = inv.apply(&exit);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].kind, ChangeKind::Left);
        assert!(inv.get(&left[0].key).unwrap().holders.is_empty());
        assert!(
            !inv.get(&NsKey::new(NsType::Uts, 2, Some(1002)))
                .unwrap()
                .holders
                .is_empty()
        );
    }

    #[test]
    fn exit_in_initial_namespaces_reports_nothing() {
        let mut inv = inventory();
        let ev = event(
            TaskEventKind::Exit,
            10,
            10,
            vec![slot(SLOT_NET, 1, 1, false)],
        );
        assert!(inv.apply(&ev).is_empty());
        assert!(
            inv.get(&NsKey::new(NsType::Net, 1, Some(1001)))
                .unwrap()
                .holders
                .is_empty()
        );
    }

    fn exit(pid: u32, tid: u32, group_dead: Option<bool>, slots: &[(usize, u64)]) -> TaskEvent {
        let mut ev = event(
            TaskEventKind::Exit,
            pid,
            tid,
            slots.iter().map(|&(s, i)| slot(s, i, i, false)).collect(),
        );
        ev.group_dead = group_dead;
        ev
    }

    #[test]
    fn threads_leaving_with_their_process_report_one_left_per_namespace() {
        let mut inv = inventory();
        // Process 20 unshares net and uts (held by the process), then five
        // threads exit: four not last, one last.
        let ev = event(
            TaskEventKind::Unshare,
            20,
            20,
            vec![slot(SLOT_NET, 50, 1, true), slot(SLOT_UTS, 51, 2, true)],
        );
        inv.apply(&ev);
        let slots = [(SLOT_NET, 50), (SLOT_UTS, 51)];
        for tid in [21, 22, 20, 23] {
            let changes = inv.apply(&exit(20, tid, Some(false), &slots));
            assert!(changes.is_empty(), "thread {tid}: {changes:?}");
        }
        let changes = inv.apply(&exit(20, 24, Some(true), &slots));
        let left: Vec<_> = changes.iter().map(|c| (c.kind, c.key.inum)).collect();
        assert_eq!(left, vec![(ChangeKind::Left, 50), (ChangeKind::Left, 51)]);
        // An exit that removed no holder reports nothing.
        assert!(inv.apply(&exit(20, 20, Some(true), &slots)).is_empty());
        assert!(inv.apply(&exit(99, 99, Some(true), &slots)).is_empty());
    }

    #[test]
    fn without_the_kernels_word_the_leaders_exit_is_the_processs() {
        let mut inv = inventory();
        let ev = event(
            TaskEventKind::Unshare,
            20,
            20,
            vec![slot(SLOT_NET, 50, 1, true)],
        );
        inv.apply(&ev);
        assert!(inv.apply(&exit(20, 21, None, &[(SLOT_NET, 50)])).is_empty());
        assert_eq!(inv.apply(&exit(20, 20, None, &[(SLOT_NET, 50)])).len(), 1);
    }

    #[test]
    fn a_thread_that_unshared_alone_reports_its_own_exit() {
        let mut inv = inventory();
        let ev = event(
            TaskEventKind::Unshare,
            20,
            21,
            vec![slot(SLOT_NET, 70, 1, true)],
        );
        inv.apply(&ev);
        let changes = inv.apply(&exit(20, 21, Some(false), &[(SLOT_NET, 70)]));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Left);
    }
}
