//! Which rows a listing has, in which order, and where each hangs in a
//! tree: lsns's `show_namespaces` and `show_namespace_processes`.
//!
//! - Rows are namespaces in inode order; `-t`, `-p` and `-P` choose them,
//!   then `-Q` (every column can be named, shown or not).
//! - Process tree (lsns's default): a row hangs under the most recent
//!   earlier row whose process is its process's parent.
//! - Owner tree (`-T`): each namespace under its owner user namespace,
//!   the owner shown first even where `-p` or `-P` would not choose it.
//! - Parent tree (`-T parent`): user and pid namespaces under their parent;
//!   other types are roots, each printed right after its owner.
//! - A row whose tree parent `-Q` rejected becomes a root.
//! - `listns NAMESPACE`: the rows are the processes in that namespace,
//!   each after its parent process when that one is in it too.

use std::collections::HashMap;

use super::{View, cells::member_pids};
use crate::{
    filter::{self, EvalError},
    inventory::{Inventory, Namespace, NsKey},
};

/// lsns's `-T` relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TreeMode {
    /// Each row under the row of its process's parent (the table without -T).
    Process,
    /// User and pid namespaces under their parent namespace.
    Parent,
    /// Every namespace under the user namespace that owns it.
    Owner,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Busy,
    Shown(usize),
    Rejected,
}

/// Collects rows: a row is added only when the query passes.
pub(super) struct Builder<'v, 'a> {
    pub view: &'v mut View<'a>,
    pub query: Option<&'v filter::Query>,
}

impl<'a> Builder<'_, 'a> {
    /// Adds a row unless the query rejects it; its index when added.
    fn add(
        &mut self,
        key: &'a NsKey,
        ns: &'a Namespace,
        pid: Option<u32>,
        parent: Option<usize>,
    ) -> Result<Option<usize>, EvalError> {
        if let Some(q) = self.query
            && !q.matches(&self.view.cells.filter_row(key, ns, pid))?
        {
            return Ok(None);
        }
        self.view.rows.push((key, ns));
        self.view.procs.push(pid);
        self.view.parents.push(parent);
        Ok(Some(self.view.rows.len() - 1))
    }

    /// Namespace rows: `candidates` are the namespaces of the chosen types
    /// in inode order, `chosen` says which of them `-p`/`-P` keep.
    pub fn namespaces(
        &mut self,
        candidates: &[(&'a NsKey, &'a Namespace)],
        chosen: impl Fn(&NsKey, &Namespace) -> bool,
        mode: Option<TreeMode>,
    ) -> Result<(), EvalError> {
        let by_key: HashMap<NsKey, &'a Namespace> =
            candidates.iter().map(|(k, ns)| (**k, *ns)).collect();
        let keys: HashMap<NsKey, &'a NsKey> = candidates.iter().map(|(k, _)| (**k, *k)).collect();
        let mut seen: HashMap<NsKey, Seen> = HashMap::new();
        let mut last_row_of_pid: HashMap<u32, usize> = HashMap::new();
        for &(key, ns) in candidates {
            if !chosen(key, ns) || seen.contains_key(key) {
                continue;
            }
            match mode {
                Some(TreeMode::Process) | None => {
                    seen.insert(*key, Seen::Busy);
                    let pid = self.view.cells.pid(ns);
                    let parent = match (mode, pid) {
                        (Some(_), Some(p)) => self
                            .view
                            .cells
                            .inv
                            .processes
                            .get(&p)
                            .and_then(|proc| last_row_of_pid.get(&proc.ppid).copied()),
                        _ => None,
                    };
                    if let Some(i) = self.add(key, ns, pid, parent)?
                        && let Some(p) = pid
                    {
                        last_row_of_pid.insert(p, i);
                    }
                }
                Some(m) => {
                    self.related(*key, m, &by_key, &keys, &mut seen)?;
                }
            }
        }
        Ok(())
    }

    /// Shows `key` after its owner (or parent), as lsns's show_namespace.
    fn related(
        &mut self,
        key: NsKey,
        mode: TreeMode,
        by_key: &HashMap<NsKey, &'a Namespace>,
        keys: &HashMap<NsKey, &'a NsKey>,
        seen: &mut HashMap<NsKey, Seen>,
    ) -> Result<Seen, EvalError> {
        if let Some(s) = seen.get(&key) {
            return Ok(*s);
        }
        let (Some(ns), Some(kref)) = (by_key.get(&key).copied(), keys.get(&key).copied()) else {
            return Ok(Seen::Rejected);
        };
        seen.insert(key, Seen::Busy);
        let known = |k: Option<NsKey>| k.filter(|k| *k != key && by_key.contains_key(k));
        let hang_under = match mode {
            TreeMode::Owner => known(ns.owner),
            TreeMode::Parent => match known(ns.parent) {
                Some(p) => Some(p),
                None => {
                    // Not hung under it, but printed after it.
                    if let Some(o) = known(ns.owner) {
                        self.related(o, mode, by_key, keys, seen)?;
                    }
                    None
                }
            },
            TreeMode::Process => None,
        };
        let parent_row = match hang_under {
            Some(p) => match self.related(p, mode, by_key, keys, seen)? {
                Seen::Shown(i) => Some(i),
                _ => None,
            },
            None => None,
        };
        let pid = self.view.cells.pid(ns);
        let s = match self.add(kref, ns, pid, parent_row)? {
            Some(i) => Seen::Shown(i),
            None => Seen::Rejected,
        };
        seen.insert(key, s);
        Ok(s)
    }

    /// Process rows for one namespace: each process in it, lowest pid
    /// first, after its parent process when that one is in it too.
    pub fn processes(
        &mut self,
        key: &'a NsKey,
        ns: &'a Namespace,
        tree: bool,
    ) -> Result<(), EvalError> {
        let members: Vec<u32> = member_pids(ns).collect();
        let inv = self.view.cells.inv;
        let ppid = |p: u32| self_ppid(inv, p);
        let mut rows: HashMap<u32, Option<usize>> = HashMap::new();
        for &pid in &members {
            // The chain of not yet shown ancestors in this namespace, top first.
            let mut chain = vec![pid];
            if tree {
                let mut p = pid;
                while let Some(pp) = ppid(p)
                    && members.contains(&pp)
                    && !rows.contains_key(&pp)
                    && !chain.contains(&pp)
                {
                    chain.push(pp);
                    p = pp;
                }
            }
            for &p in chain.iter().rev() {
                if rows.contains_key(&p) {
                    continue;
                }
                let parent = if tree {
                    ppid(p).and_then(|pp| rows.get(&pp).copied().flatten())
                } else {
                    None
                };
                let row = self.add(key, ns, Some(p), parent)?;
                rows.insert(p, row);
            }
        }
        Ok(())
    }
}

fn self_ppid(inv: &Inventory, pid: u32) -> Option<u32> {
    inv.processes.get(&pid).map(|p| p.ppid).filter(|&p| p != 0)
}
