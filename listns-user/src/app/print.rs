//! What `listns watch` prints: the filters (`-t`, `--container`, and the
//! followed tree) applied to events and verdicts. Filters choose what is
//! printed, never what is tracked: every event still updates the
//! inventory. The container of the task behind an event comes from
//! `scan::attribution`.

use crate::{
    inventory::{
        Container, Inventory, Namespace, NsKey,
        followed::Followed,
        live::{Change, TaskEvent},
    },
    ns::NsType,
    output::columns::Cells,
};

/// The watch filter: which events and verdicts are printed (`-t`,
/// `--container`, the followed tree), never which are tracked.
#[derive(Clone, Debug, Default)]
pub struct WatchFilter {
    /// Only these types (empty: all).
    pub types: Vec<NsType>,
    /// Only what a process in this container did (name, pod or id prefix).
    pub container: Option<String>,
    /// Only what the followed tree did.
    pub follow: bool,
}

impl WatchFilter {
    pub fn type_ok(&self, ty: NsType) -> bool {
        self.types.is_empty() || self.types.contains(&ty)
    }

    fn container_ok(&self, c: Option<&Container>) -> bool {
        match &self.container {
            None => true,
            Some(want) => c.is_some_and(|c| c.matches(want)),
        }
    }

    /// Whether one change of a task event is printed; `container` is the
    /// task's (looked up only when a container filter is set).
    pub fn change(&self, ev: &TaskEvent, container: Option<&Container>, c: &Change) -> bool {
        self.type_ok(c.key.ty) && (!self.follow || ev.followed) && self.container_ok(container)
    }

    /// Whether a verdict (gone, hidden, discovered) on `key` is printed:
    /// by type, by membership of the followed tree, and by the container of
    /// its creator or, failing that, of its holders.
    pub fn verdict(&self, key: &NsKey, inv: &Inventory, followed: Option<&Followed>) -> bool {
        if !self.type_ok(key.ty) || (self.follow && !followed.is_some_and(|f| f.contains(key))) {
            return false;
        }
        if self.container.is_none() {
            return true;
        }
        let Some(ns) = inv.get(key) else {
            return false;
        };
        let origin = ns.origin.as_ref().and_then(|o| o.container.as_ref());
        self.container_ok(origin) || self.container_ok(Cells::new(inv).container_of(key, ns))
    }

    /// Whether a namespace of the initial inventory is printed.
    pub fn existing(&self, cells: &Cells<'_>, key: &NsKey, ns: &Namespace) -> bool {
        self.container.is_none() || self.container_ok(cells.container_of(key, ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{
        Holder, Origin, Process,
        live::{ChangeKind, TaskEventKind},
    };

    fn ev(followed: bool) -> TaskEvent {
        TaskEvent {
            followed,
            ..TaskEvent::test(TaskEventKind::Unshare, 5)
        }
    }

    fn change(ty: NsType) -> Change {
        Change {
            kind: ChangeKind::Created,
            key: NsKey::new(ty, 9, Some(9)),
            link: ty.name(),
        }
    }

    fn web() -> Container {
        Container {
            name: Some("web".into()),
            ..Container::new("podman", "0123456789abcdef0123")
        }
    }

    #[test]
    fn events_by_type_tree_and_container() {
        let all = WatchFilter::default();
        assert!(all.change(&ev(false), None, &change(NsType::Net)));
        let types = WatchFilter {
            types: vec![NsType::Net, NsType::Uts],
            ..Default::default()
        };
        assert!(types.change(&ev(false), None, &change(NsType::Uts)));
        assert!(!types.change(&ev(false), None, &change(NsType::Ipc)));
        let follow = WatchFilter {
            follow: true,
            ..Default::default()
        };
        assert!(follow.change(&ev(true), None, &change(NsType::Ipc)));
        assert!(!follow.change(&ev(false), None, &change(NsType::Ipc)));
        for (want, ok) in [("web", true), ("0123", true), ("012", false), ("db", false)] {
            let p = WatchFilter {
                container: Some(want.into()),
                ..Default::default()
            };
            assert_eq!(
                p.change(&ev(false), Some(&web()), &change(NsType::Net)),
                ok,
                "{want}"
            );
            assert!(!p.change(&ev(false), None, &change(NsType::Net)));
        }
    }

    #[test]
    fn verdicts_by_creator_or_holder_container() {
        let mut inv = Inventory::new();
        let (a, b) = (
            NsKey::new(NsType::Net, 1, Some(1)),
            NsKey::new(NsType::Net, 2, Some(2)),
        );
        inv.entry(a.ty, a.inum, a.id).1.origin = Some(Origin {
            pid: 5,
            tid: 5,
            comm: "runc".into(),
            syscall: "unshare",
            flags: 0,
            time_ns: 0,
            container: Some(web()),
        });
        inv.add_holder(
            b.ty,
            b.inum,
            b.id,
            Holder::Process {
                pid: 7,
                link: "net",
            },
        );
        inv.processes.insert(
            7,
            Process {
                pid: 7,
                container: Some(web()),
                ..Default::default()
            },
        );
        let p = WatchFilter {
            container: Some("web".into()),
            ..Default::default()
        };
        assert!(p.verdict(&a, &inv, None));
        assert!(p.verdict(&b, &inv, None));
        let other = WatchFilter {
            container: Some("db".into()),
            ..Default::default()
        };
        assert!(!other.verdict(&a, &inv, None) && !other.verdict(&b, &inv, None));
        let follow = WatchFilter {
            follow: true,
            ..Default::default()
        };
        assert!(!follow.verdict(&a, &inv, Some(&Followed::new())));
    }
}
