//! What a followed process tree did with namespaces (`listns watch --
//! COMMAND`, `--pid PID`): every namespace it created or joined, by whom
//! and when, and when its last holder left. The inventory says what became
//! of each (gone, hidden, held by what); `output::summary` renders both.

use std::collections::BTreeMap;

use super::{
    Inventory, NsKey, State,
    live::{Change, ChangeKind, TaskEvent},
};
use crate::text::RawText;

/// The task event that brought the tree into a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Involvement {
    /// `Created` or `Joined`.
    pub kind: ChangeKind,
    pub pid: u32,
    pub tid: u32,
    pub comm: RawText,
    /// `clone`, `unshare` or `setns`.
    pub syscall: &'static str,
    pub flags: u64,
    pub time_ns: u64,
}

/// One namespace the tree created or joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowedNs {
    /// The first time the tree came in (a creation wins over a join).
    pub first: Involvement,
    /// When an event last left it with no holder known (wall-clock ns):
    /// the moment it died if the lifecycle then finds it gone.
    pub unheld_since: Option<u64>,
}

/// The namespaces a followed tree touched, in the order first seen.
#[derive(Clone, Debug, Default)]
pub struct Followed {
    namespaces: BTreeMap<NsKey, FollowedNs>,
    order: Vec<NsKey>,
}

impl Followed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what an applied event changed: creations and joins by a
    /// followed task add namespaces; any event (followed or not) that
    /// leaves a tracked namespace with no holder notes when.
    pub fn note(&mut self, ev: &TaskEvent, changes: &[Change], inv: &Inventory) {
        for c in changes {
            match c.kind {
                ChangeKind::Created | ChangeKind::Joined if ev.followed => {
                    let inv_ns = Involvement {
                        kind: c.kind,
                        pid: ev.pid,
                        tid: ev.tid,
                        comm: ev.comm.clone(),
                        syscall: ev.syscall(),
                        flags: ev.flags,
                        time_ns: ev.time_ns,
                    };
                    match self.namespaces.get_mut(&c.key) {
                        Some(f) => {
                            if c.kind == ChangeKind::Created && f.first.kind != ChangeKind::Created
                            {
                                f.first = inv_ns;
                            }
                            f.unheld_since = None;
                        }
                        None => {
                            self.order.push(c.key);
                            self.namespaces.insert(
                                c.key,
                                FollowedNs {
                                    first: inv_ns,
                                    unheld_since: None,
                                },
                            );
                        }
                    }
                }
                ChangeKind::Created | ChangeKind::Joined => {
                    if let Some(f) = self.namespaces.get_mut(&c.key) {
                        f.unheld_since = None;
                    }
                }
                ChangeKind::Left => {
                    if let Some(f) = self.namespaces.get_mut(&c.key) {
                        let empty = inv.get(&c.key).is_none_or(|ns| ns.holders.is_empty());
                        f.unheld_since = empty.then_some(ev.time_ns);
                    }
                }
            }
        }
    }

    pub fn contains(&self, key: &NsKey) -> bool {
        self.namespaces.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The namespaces in the order the tree first touched them.
    pub fn iter(&self) -> impl Iterator<Item = (&NsKey, &FollowedNs)> {
        self.order.iter().map(|k| (k, &self.namespaces[k]))
    }

    /// Only the namespaces `keep` accepts (what the print filters let through).
    pub fn only(&self, keep: impl Fn(&NsKey) -> bool) -> Followed {
        let order: Vec<NsKey> = self.order.iter().filter(|k| keep(k)).copied().collect();
        let namespaces = order
            .iter()
            .map(|k| (*k, self.namespaces[k].clone()))
            .collect();
        Followed { namespaces, order }
    }

    /// Namespaces whose fate is still open: alive as far as known, with no
    /// holder and not (yet) found hidden. The settling wait after the
    /// command exits lasts until there are none.
    pub fn undecided(&self, inv: &Inventory) -> Vec<NsKey> {
        self.order
            .iter()
            .filter(|k| {
                inv.get(k).is_some_and(|ns| {
                    ns.state == State::Alive && ns.holders.is_empty() && !ns.hidden
                })
            })
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        inventory::{
            Holder,
            live::{Slot, TaskEventKind},
        },
        ns::NsType,
    };
    use listns_common::{SLOT_NET, SLOT_UTS};

    fn event(kind: TaskEventKind, pid: u32, followed: bool, slots: Vec<Slot>) -> TaskEvent {
        TaskEvent {
            time_ns: 1_000 * pid as u64,
            slots,
            followed,
            group_dead: Some(true),
            ..TaskEvent::test(kind, pid)
        }
    }

    fn new_ns(slot: usize, inum: u64) -> Slot {
        Slot {
            slot,
            ty: NsType::of_slot(slot),
            inum,
            id: Some(inum + 1),
            prev: Some((1, Some(2))),
            changed: true,
            created: true,
        }
    }

    #[test]
    fn only_followed_tasks_add_namespaces_and_exits_note_when_unheld() {
        let mut inv = Inventory::new();
        let mut f = Followed::new();
        let ours = event(TaskEventKind::Unshare, 10, true, vec![new_ns(SLOT_NET, 50)]);
        let theirs = event(
            TaskEventKind::Unshare,
            11,
            false,
            vec![new_ns(SLOT_UTS, 60)],
        );
        for ev in [&ours, &theirs] {
            let changes = inv.apply(ev);
            f.note(ev, &changes, &inv);
        }
        assert_eq!(f.len(), 1);
        let (key, ns) = f.iter().next().map(|(k, ns)| (*k, ns.clone())).unwrap();
        assert_eq!((key.ty, key.inum), (NsType::Net, 50));
        assert_eq!(ns.first.kind, ChangeKind::Created);
        assert_eq!(ns.first.pid, 10);
        // Another process joins: it now holds the namespace too.
        let mut join = event(TaskEventKind::Setns, 12, false, vec![new_ns(SLOT_NET, 50)]);
        join.slots[0].created = false;
        let changes = inv.apply(&join);
        f.note(&join, &changes, &inv);
        // The creator exits: still held by 12, so not unheld.
        let mut exit = event(TaskEventKind::Exit, 10, true, vec![new_ns(SLOT_NET, 50)]);
        exit.slots[0].changed = false;
        let changes = inv.apply(&exit);
        assert_eq!(changes.len(), 1);
        f.note(&exit, &changes, &inv);
        assert_eq!(f.iter().next().unwrap().1.unheld_since, None);
        assert!(f.undecided(&inv).is_empty());
        // The joiner exits too: unheld since then, and undecided.
        let mut exit = event(TaskEventKind::Exit, 12, false, vec![new_ns(SLOT_NET, 50)]);
        exit.slots[0].changed = false;
        let changes = inv.apply(&exit);
        f.note(&exit, &changes, &inv);
        assert_eq!(f.iter().next().unwrap().1.unheld_since, Some(12_000));
        assert_eq!(f.undecided(&inv), vec![key]);
        // Held by a bind mount found later: decided (alive, held).
        inv.get_mut(&key)
            .unwrap()
            .holders
            .insert(Holder::BindMount {
                path: "/run/netns/x".into(),
                mnt_ns: 1,
            });
        assert!(f.undecided(&inv).is_empty());
    }
}
