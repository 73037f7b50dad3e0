//! `--tree`: namespaces under the user namespace that owns them, user
//! namespaces under their parents, pid namespaces under their parent pid
//! namespace. The NS column carries the tree lines, as `lsns -T` draws them.

use std::{
    collections::{BTreeMap, HashSet},
    io::{self, Write},
};

use super::{
    View,
    table::{self, Style},
};
use crate::{
    inventory::{Namespace, NsKey},
    ns::NsType,
};

/// Where a namespace hangs in the tree.
fn tree_parent(key: &NsKey, ns: &Namespace) -> Option<NsKey> {
    match key.ty {
        NsType::Pid => ns.parent.or(ns.owner),
        _ => ns.owner,
    }
}

pub fn render(out: &mut impl Write, view: &View<'_>, style: Style) -> io::Result<()> {
    let rows = &view.rows;
    let shown: HashSet<NsKey> = rows.iter().map(|(k, _)| **k).collect();
    let mut children: BTreeMap<NsKey, Vec<(&NsKey, &Namespace)>> = BTreeMap::new();
    let mut roots = Vec::new();
    for &(k, ns) in rows {
        match tree_parent(k, ns).filter(|p| shown.contains(p) && p != k) {
            Some(p) => children.entry(p).or_default().push((k, ns)),
            None => roots.push((k, ns)),
        }
    }
    // User namespaces first under each node, then the rest by type and inode.
    let order = |v: &mut Vec<(&NsKey, &Namespace)>| {
        v.sort_by_key(|(k, _)| (k.ty != NsType::User, k.ty, k.inum))
    };
    order(&mut roots);
    for v in children.values_mut() {
        order(v);
    }
    let mut text = Vec::new();
    let mut stack: Vec<(&NsKey, &Namespace, String, bool, usize)> = roots
        .iter()
        .rev()
        .map(|(k, ns)| (*k, *ns, String::new(), true, 0))
        .collect();
    let mut seen = HashSet::new();
    // Roots are drawn without lines; a node's prefix says where it sits.
    while let Some((k, ns, indent, last, depth)) = stack.pop() {
        if !seen.insert(*k) {
            continue;
        }
        let mut row = view.row_text(k, ns);
        let branch = if depth == 0 {
            String::new()
        } else {
            format!("{indent}{}", if last { "└─" } else { "├─" })
        };
        if let Some(first) = row.first_mut() {
            *first = format!("{branch}{first}");
        }
        text.push(row);
        if let Some(kids) = children.get(k) {
            let next_indent = if depth == 0 {
                String::new()
            } else {
                format!("{indent}{}", if last { "  " } else { "│ " })
            };
            for (i, (ck, cns)) in kids.iter().enumerate().rev() {
                stack.push((ck, cns, next_indent.clone(), i + 1 == kids.len(), depth + 1));
            }
        }
    }
    // The first column holds the tree lines: left-align it.
    table::render_cells(
        out,
        view.cols,
        &text,
        Style {
            first_left: true,
            ..style
        },
    )
}
