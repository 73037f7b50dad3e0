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
    /// The task's cgroup in the hierarchy containers are attributed by
    /// (its kernfs id; 0 when the record has none).
    pub cgroup: u64,
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

#[cfg(test)]
impl TaskEvent {
    /// Test shorthand: a `kind` event of the leader of process `pid` (tid
    /// `pid`, parent 1, uid 0, comm `test`) at time 0, with no cgroup id,
    /// flags, fd or slots, not followed, `group_dead` unknown. A test sets
    /// what it needs: `TaskEvent { tid: 11, ..TaskEvent::test(kind, 10) }`.
    pub(crate) fn test(kind: TaskEventKind, pid: u32) -> TaskEvent {
        TaskEvent {
            kind,
            time_ns: 0,
            pid,
            tid: pid,
            ppid: 1,
            uid: 0,
            comm: "test".into(),
            cgroup_id: 0,
            cgroup: 0,
            flags: 0,
            fd: -1,
            slots: Vec::new(),
            followed: false,
            group_dead: None,
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
            //
            // The host's initial namespaces are skipped (see below).
            let process = ev.process_gone();
            for s in &ev.slots {
                if self.is_initial_inode(s.ty, s.inum) {
                    continue;
                }
                let key = self.resolve(s.ty, s.inum, s.id);
                let Some(ns) = self.get_mut(&key) else {
                    continue;
                };
                let removed =
                    remove_task_holders(&mut ns.holders, ev.pid, (!process).then_some(ev.tid));
                if removed {
                    push(&mut out, ChangeKind::Left, key, slot_name(s.slot));
                }
            }
            if process {
                self.processes.remove(&ev.pid);
            }
            return out;
        }
        // Only for a record that creates something: most create nothing.
        let relatives = ev
            .slots
            .iter()
            .any(|s| s.created)
            .then(|| self.relatives_of_new(ev));
        for s in &ev.slots {
            // The host's initial namespaces keep the holders the last scan
            // found: every record names them (a task is in most of them),
            // and each holds one entry per process, so keeping them per
            // event was a tenth of the consumer's time under churn, for
            // nothing the kernel tells reliably anyway (a task that lives
            // entirely in them is never reported, neither born nor dead).
            // A task moving into or out of one is still a change.
            if !s.changed && self.is_initial_inode(s.ty, s.inum) {
                continue;
            }
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
                if let Some((owner, pid_parent)) = &relatives {
                    match s.ty {
                        NsType::User => (ns.owner, ns.parent) = (owner.before, owner.before),
                        NsType::Pid => (ns.owner, ns.parent) = (owner.after, *pid_parent),
                        _ => ns.owner = owner.after,
                    }
                }
                push(&mut out, ChangeKind::Created, key, link);
            } else {
                push(&mut out, ChangeKind::Joined, key, link);
            }
        }
        out
    }
}

/// A task's user namespace before and after an event.
struct UserNs {
    before: Option<NsKey>,
    after: Option<NsKey>,
}

impl Inventory {
    /// What a namespace that `ev` creates sits under, as a scan would
    /// find it (lsns ONS and PNS): every new namespace is owned by the
    /// task's user namespace after the event, except a new user namespace,
    /// whose owner and parent is the one before; a new pid namespace's
    /// parent is the pid namespace its creator's children went to before
    /// (the kernel's `copy_pid_ns` takes that one, for clone and unshare).
    fn relatives_of_new(&self, ev: &TaskEvent) -> (UserNs, Option<NsKey>) {
        let slot = |n: usize| ev.slots.iter().find(|s| s.slot == n);
        let key = |s: &Slot, (inum, id): (u64, Option<u64>)| self.resolve(s.ty, inum, id);
        let user = slot(listns_common::SLOT_USER);
        let owner = UserNs {
            before: user.and_then(|s| Some(key(s, s.prev?))),
            after: user.map(|s| key(s, (s.inum, s.id))),
        };
        let parent = slot(listns_common::SLOT_PID_FOR_CHILDREN).and_then(|s| Some(key(s, s.prev?)));
        (owner, parent)
    }
}

#[cfg(test)]
mod tests;
