//! The inventory: every namespace known on the host and what holds it.
//! Pure data, no I/O: the scan fills it, trace events update it, output
//! renders it.
//!
//! Identity: a namespace is its type plus inode plus, where the kernel has
//! one, its 64-bit id. Inode numbers are reused by the kernel, ids are not;
//! without ids (kernels before 6.18) a reused inode looks like the same
//! namespace, which is the cost the README describes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ns::NsType;

pub mod followed;
pub mod live;
mod types;

pub use types::{
    CgroupHierarchy, Container, Holder, Namespace, NetnsId, NsKey, Origin, Process, State,
};

/// The whole inventory.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    namespaces: BTreeMap<NsKey, Namespace>,
    /// The live namespace that currently has each (type, inode).
    by_inode: HashMap<(NsType, u64), NsKey>,
    pub processes: BTreeMap<u32, Process>,
    /// Inode of each initial namespace (the host's defaults).
    pub initial: BTreeMap<NsType, u64>,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves a (type, inode, maybe id) sighting to the key stored in the
    /// inventory: a sighting without an id matches the live namespace with
    /// that inode; one with an id never matches a namespace with another id.
    pub fn resolve(&self, ty: NsType, inum: u64, id: Option<u64>) -> NsKey {
        match self.by_inode.get(&(ty, inum)) {
            // Two live namespaces never share an inode, so a sighting without
            // an id, or a stored entry without one, is that namespace.
            Some(k) if id.is_none() || k.id.is_none() || k.id == id => *k,
            _ => NsKey::new(ty, inum, id),
        }
    }

    /// The namespace for a sighting, created if new. A sighting that carries
    /// an id upgrades an entry known by inode only.
    pub fn entry(&mut self, ty: NsType, inum: u64, id: Option<u64>) -> (NsKey, &mut Namespace) {
        let (key, _, ns) = self.sighting(ty, inum, id);
        (key, ns)
    }

    /// `entry`, and whether the inventory knew the namespace before.
    pub fn sighting(
        &mut self,
        ty: NsType,
        inum: u64,
        id: Option<u64>,
    ) -> (NsKey, bool, &mut Namespace) {
        let mut key = self.resolve(ty, inum, id);
        if key.id.is_none() && id.is_some() {
            let ns = self.namespaces.remove(&key).unwrap_or_default();
            key.id = id;
            self.namespaces.insert(key, ns);
        }
        // A new id on a known inode: the kernel reused the inode of a dead
        // namespace. The index moves to the new one; the old entry stays
        // until the lifecycle confirms the death and reports it.
        self.by_inode.insert((ty, inum), key);
        match self.namespaces.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => (key, true, e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) => {
                (key, false, e.insert(Namespace::default()))
            }
        }
    }

    pub fn get(&self, key: &NsKey) -> Option<&Namespace> {
        self.namespaces.get(key)
    }

    pub fn get_mut(&mut self, key: &NsKey) -> Option<&mut Namespace> {
        self.namespaces.get_mut(key)
    }

    /// The live namespace with this type and inode.
    pub fn by_inode(&self, ty: NsType, inum: u64) -> Option<NsKey> {
        self.by_inode.get(&(ty, inum)).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NsKey, &Namespace)> {
        self.namespaces.iter()
    }

    pub fn len(&self) -> usize {
        self.namespaces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// Whether this is one of the host's initial namespaces.
    pub fn is_initial(&self, key: &NsKey) -> bool {
        self.is_initial_inode(key.ty, key.inum)
    }

    /// `is_initial` of a (type, inode) sighting.
    pub fn is_initial_inode(&self, ty: NsType, inum: u64) -> bool {
        self.initial.get(&ty) == Some(&inum)
    }

    /// Puts a namespace in under its exact key, as another inventory had it
    /// (`listns --from` rebuilding the watcher's), replacing any entry with
    /// that key. The inode index keeps the live one of namespaces that share
    /// an inode (else the newer id); an entry without an inode (inode 0,
    /// see `add_unexplained`) stays out of it.
    pub fn insert(&mut self, key: NsKey, ns: Namespace) {
        let rank = |k: &NsKey, ns: Option<&Namespace>| {
            (ns.is_some_and(|ns| ns.state == State::Alive), k.id)
        };
        let alive = ns.state == State::Alive;
        self.namespaces.insert(key, ns);
        if key.inum == 0 && key.id.is_some() {
            return;
        }
        let index = (key.ty, key.inum);
        let better = match self.by_inode.get(&index) {
            Some(old) if old != &key => rank(old, self.namespaces.get(old)) < (alive, key.id),
            _ => true,
        };
        if better {
            self.by_inode.insert(index, key);
        }
    }

    /// A copy without the namespaces found gone (thousands under churn,
    /// kept until forgotten): what the API's snapshots copy.
    pub fn alive_copy(&self) -> Inventory {
        let mut copy = Inventory {
            namespaces: BTreeMap::new(),
            by_inode: HashMap::with_capacity(self.by_inode.len()),
            processes: self.processes.clone(),
            initial: self.initial.clone(),
        };
        for (k, ns) in &self.namespaces {
            if ns.state == State::Alive {
                copy.insert(*k, ns.clone());
            }
        }
        copy
    }

    /// Forgets a namespace entirely.
    pub fn forget(&mut self, key: &NsKey) {
        self.namespaces.remove(key);
        if self.by_inode.get(&(key.ty, key.inum)) == Some(key) {
            self.by_inode.remove(&(key.ty, key.inum));
        }
    }
}

impl Inventory {
    /// Takes in a fresh scan (after lost records, or as the tracer-less
    /// fallback): holders come from the scan, what the tracer learnt
    /// (origins) stays. A namespace the scan no longer finds keeps its entry
    /// with no holders, for the lifecycle to decide on.
    pub fn merge_rescan(&mut self, scan: Inventory) -> Rescan {
        let mut before_held = BTreeSet::new();
        for (key, ns) in self.namespaces.iter_mut() {
            if !ns.holders.is_empty() {
                before_held.insert(*key);
            }
            ns.holders.clear();
        }
        let mut out = Rescan::default();
        for (key, found) in scan.namespaces {
            // A remembered gone namespace found alive is a new one that
            // reuses its inode (kernels without ids): discovered, and the
            // dead one's creator is not its creator.
            let alive = self
                .get(&self.resolve(key.ty, key.inum, key.id))
                .map(|ns| ns.state == State::Alive);
            let (key, ns) = self.entry(key.ty, key.inum, key.id);
            if alive != Some(true) {
                out.discovered.push(key);
            }
            let (origin, hidden) = match alive {
                Some(false) => (None, false),
                _ => (ns.origin.take(), ns.hidden),
            };
            *ns = found;
            ns.origin = ns.origin.take().or(origin);
            // Found holding something: no longer hidden.
            ns.hidden = hidden && ns.holders.is_empty();
        }
        self.processes = scan.processes;
        self.initial = scan.initial;
        out.unheld = before_held
            .into_iter()
            .filter(|k| {
                self.get(k)
                    .is_some_and(|ns| ns.holders.is_empty() && ns.state == State::Alive)
            })
            .collect();
        out
    }
}

/// What a rescan changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rescan {
    /// Namespaces the inventory did not have.
    pub discovered: Vec<NsKey>,
    /// Namespaces that had holders and now have none.
    pub unheld: Vec<NsKey>,
}

impl Inventory {
    /// Adds the namespaces that `listns(2)` reports and the inventory does
    /// not have, as hidden, with the inode `inode_of` finds for an id (0
    /// when it cannot: listns(2) gives ids only). Returns their keys.
    pub fn add_unexplained(
        &mut self,
        ids: &[(NsType, u64)],
        mut inode_of: impl FnMut(u64) -> Option<u64>,
    ) -> Vec<NsKey> {
        let known: std::collections::HashSet<(NsType, u64)> = self
            .namespaces
            .keys()
            .filter_map(|k| Some((k.ty, k.id?)))
            .collect();
        let mut added = Vec::new();
        for &(ty, id) in ids {
            if known.contains(&(ty, id)) {
                continue;
            }
            let (key, ns) = match inode_of(id) {
                Some(inum) => self.entry(ty, inum, Some(id)),
                // No inode: kept out of the inode index.
                None => {
                    let key = NsKey::new(ty, 0, Some(id));
                    (key, self.namespaces.entry(key).or_default())
                }
            };
            ns.hidden = true;
            added.push(key);
        }
        added
    }
}

#[cfg(test)]
mod tests;
