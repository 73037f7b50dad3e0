//! Rendering: tables, JSON, trees, the classic listns.py view and the watch
//! stream. The only place that writes for people or machines: text from
//! processes reaches it as raw bytes and is escaped here for terminals
//! (`sanitize`) or carried exactly in JSON (`json`).

pub mod classic;
pub mod columns;
pub mod events;
pub mod json;
pub mod sanitize;
pub mod stream;
pub mod summary;
pub mod table;
pub mod tree;

use crate::{
    inventory::{Inventory, Namespace, NsKey},
    ns::NsType,
};
use columns::{Cells, Column};

/// What the table, tree and JSON renderers draw: the namespaces chosen,
/// the columns, and the cell reader.
pub struct View<'a> {
    pub cells: Cells<'a>,
    pub cols: &'a [Column],
    pub rows: Vec<(&'a NsKey, &'a Namespace)>,
}

impl<'a> View<'a> {
    pub fn new(inv: &'a Inventory, filter: &Filter, cols: &'a [Column]) -> Self {
        View {
            cells: Cells::new(inv),
            cols,
            rows: filter.select(inv),
        }
    }

    /// A row's cells as a terminal may show them.
    pub fn row_text(&self, key: &NsKey, ns: &Namespace) -> Vec<String> {
        self.cols
            .iter()
            .map(|c| self.cells.value(key, ns, *c).display())
            .collect()
    }
}

/// Which namespaces to show.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these types (empty: all).
    pub types: Vec<NsType>,
    /// Only namespaces this process holds in any way.
    pub pid: Option<u32>,
}

impl Filter {
    pub fn matches(&self, key: &NsKey, ns: &Namespace) -> bool {
        (self.types.is_empty() || self.types.contains(&key.ty))
            && self
                .pid
                .is_none_or(|pid| ns.holders.iter().any(|h| h.pid() == Some(pid)))
    }

    /// The namespaces to show, in inventory order (type, then inode).
    pub fn select<'a>(&self, inv: &'a Inventory) -> Vec<(&'a NsKey, &'a Namespace)> {
        let mut rows: Vec<_> = inv.iter().filter(|(k, ns)| self.matches(k, ns)).collect();
        // lsns orders by inode.
        rows.sort_by_key(|(k, _)| (k.inum, k.ty, k.id));
        rows
    }
}

#[cfg(test)]
mod tests;
