//! Rendering: tables, JSON, trees and the classic listns.py view. The only
//! place that writes for people; everything from processes is escaped here.

pub mod classic;
pub mod columns;
pub mod events;
pub mod json;
pub mod sanitize;
pub mod table;
pub mod tree;

use crate::{
    inventory::{Inventory, Namespace, NsKey},
    ns::NsType,
};

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
