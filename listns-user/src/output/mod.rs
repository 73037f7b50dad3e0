//! Rendering: tables, JSON, trees, the classic listns.py view and the watch
//! stream. The only place that writes for people or machines: text from
//! processes reaches it as raw bytes and is escaped here for terminals
//! (`sanitize`) or carried exactly in JSON (`json`).

mod cells;
pub mod classic;
pub mod columns;
pub mod contract;
pub mod events;
pub mod fit;
pub mod json;
pub mod rows;
pub mod sanitize;
pub mod sink;
pub mod stream;
pub mod summary;
pub mod table;
pub mod tree;

use crate::{
    filter::{self, EvalError},
    inventory::{Inventory, Namespace, NsKey},
    ns::NsType,
};
use columns::{Cells, Column, Value};
pub use rows::TreeMode;

/// What the table, tree and JSON renderers draw: the rows chosen, in
/// order, the columns, and the cell reader.
pub struct View<'a> {
    pub cells: Cells<'a>,
    pub cols: &'a [Column],
    /// Each row's namespace.
    pub rows: Vec<(&'a NsKey, &'a Namespace)>,
    /// The process each row shows (lsns's `proc`), parallel to `rows`.
    pub procs: Vec<Option<u32>>,
    /// The row each row hangs under in a tree, always an earlier one.
    pub parents: Vec<Option<usize>>,
    /// The column that draws the tree, when there is one.
    pub tree: Option<Column>,
}

/// What the rows of a listing are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// One row per namespace, drawn as this tree (none: a flat list).
    Namespaces(Option<TreeMode>),
    /// One row per process in this namespace (`listns NAMESPACE`), drawn
    /// as a process tree when `tree` is set.
    Processes { key: NsKey, tree: bool },
}

impl<'a> View<'a> {
    /// A flat list of the namespaces `filter` chooses, in inode order.
    pub fn new(inv: &'a Inventory, filter: &Selection, cols: &'a [Column]) -> Self {
        Self::build(inv, filter, cols, Rows::Namespaces(None), None)
            .expect("no query, no evaluation error")
    }

    /// The rows of a listing; `query` is `-Q`.
    pub fn build(
        inv: &'a Inventory,
        filter: &Selection,
        cols: &'a [Column],
        rows: Rows,
        query: Option<&filter::Query>,
    ) -> Result<Self, EvalError> {
        let mut view = View {
            cells: Cells::new(inv),
            cols,
            rows: Vec::new(),
            procs: Vec::new(),
            parents: Vec::new(),
            tree: None,
        };
        let mut b = rows::Builder {
            view: &mut view,
            query,
        };
        let tree_col = match rows {
            Rows::Namespaces(mode) => {
                let mut candidates: Vec<_> = inv
                    .iter()
                    .filter(|(k, _)| filter.types.is_empty() || filter.types.contains(&k.ty))
                    .collect();
                // lsns orders by inode.
                candidates.sort_by_key(|(k, _)| (k.inum, k.ty, k.id));
                b.namespaces(&candidates, |k, ns| filter.matches(k, ns), mode)?;
                match mode {
                    None => None,
                    Some(TreeMode::Process) => Some(Column::Command),
                    Some(TreeMode::Owner | TreeMode::Parent) => Some(Column::Ns),
                }
            }
            Rows::Processes { key, tree } => {
                if let Some((k, ns)) = inv.iter().find(|(k, _)| **k == key) {
                    b.processes(k, ns, tree)?;
                }
                tree.then_some(Column::Command)
            }
        };
        // libsmartcols draws a tree only in a column that is shown.
        view.tree = tree_col.filter(|c| cols.contains(c));
        if view.tree.is_none() {
            view.flatten();
        }
        Ok(view)
    }

    /// Forgets the tree: rows in the order they were chosen.
    pub fn flatten(&mut self) {
        self.tree = None;
        self.parents.iter_mut().for_each(|p| *p = None);
    }

    /// Keeps the rows for which `keep(index)` holds (a flat view only).
    pub fn retain(&mut self, keep: impl Fn(usize) -> bool) {
        let mut i = 0;
        let mut kept = 0;
        self.rows.retain(|_| {
            let k = keep(i);
            i += 1;
            kept += k as usize;
            k
        });
        let mut i = 0;
        self.procs.retain(|_| {
            i += 1;
            keep(i - 1)
        });
        self.parents = vec![None; kept];
        self.tree = None;
    }

    /// Row `i`'s cell in column `col`.
    pub fn cell(&self, i: usize, col: Column) -> Value {
        let (key, ns) = self.rows[i];
        self.cells.cell(key, ns, self.procs[i], col)
    }
}

/// Which namespaces to show (before `-Q`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only these types (empty: all).
    pub types: Vec<NsType>,
    /// Only namespaces this process is in (lsns `-p`: its own links).
    pub pid: Option<u32>,
    /// Only namespaces no process is in (lsns `-P`).
    pub persistent: bool,
    /// Only namespaces alive (not those a watcher remembers as gone).
    pub alive: bool,
}

impl Selection {
    pub fn matches(&self, key: &NsKey, ns: &Namespace) -> bool {
        (self.types.is_empty() || self.types.contains(&key.ty))
            && (!self.alive || ns.state == crate::inventory::State::Alive)
            && self
                .pid
                .is_none_or(|pid| cells::member_pids(ns).any(|p| p == pid))
            && (!self.persistent || cells::member_pids(ns).next().is_none())
    }

    /// The namespaces to show, in inode order.
    pub fn select<'a>(&self, inv: &'a Inventory) -> Vec<(&'a NsKey, &'a Namespace)> {
        let mut rows: Vec<_> = inv.iter().filter(|(k, ns)| self.matches(k, ns)).collect();
        // lsns orders by inode.
        rows.sort_by_key(|(k, _)| (k.inum, k.ty, k.id));
        rows
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_view;
