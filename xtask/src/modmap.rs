//! The module map of listns-user, enforced: `listns-user/src/lib.rs`'s doc
//! comment has a table of the top-level modules ("rooms") and which others
//! each may use; this reads every source file with syn and fails on any
//! other `crate::` edge, and on `aya` used outside `trace`.

#![cfg(test)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use syn::visit::Visit;

/// Room -> the rooms it may use, read from the `| `room` | ... | a, b |`
/// rows of lib.rs's doc comment (the last cell lists them).
fn allowed(lib_rs: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut map = BTreeMap::new();
    for line in lib_rs.lines() {
        let Some(row) = line.strip_prefix("//! | `") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let room = cells[0].trim_end_matches('`').to_string();
        let uses = cells[cells.len() - 2]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        map.insert(room, uses);
    }
    map
}

/// One use of another room, or of aya, found in the sources.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    file: PathBuf,
}

/// Every edge between rooms (and every use of aya, as `to: "aya"`) in the
/// crate whose `lib.rs` is in `src`.
fn edges(src: &Path) -> Vec<Edge> {
    let mut out = Vec::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        let mut module: Vec<String> = rel
            .with_extension("")
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if module
            .last()
            .is_some_and(|m| m == "mod" || m == "lib" || m == "main")
        {
            module.pop();
        }
        if module.is_empty() {
            continue; // lib.rs and main.rs declare the rooms
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut v = Visitor {
            module,
            found: BTreeSet::new(),
        };
        v.visit_file(&ast);
        for to in v.found {
            out.push(Edge {
                from: v.module[0].clone(),
                to,
                file: rel.to_path_buf(),
            });
        }
    }
    out.sort();
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

struct Visitor {
    /// The module being read: `["scan", "procs"]`, inline modules pushed.
    module: Vec<String>,
    /// Rooms (and `aya`) its paths name, its own room left out.
    found: BTreeSet<String>,
}

impl Visitor {
    /// Resolves a path's leading segments to the room it names, if any.
    fn path(&mut self, segs: &[String]) {
        let Some(first) = segs.first() else { return };
        let room = match first.as_str() {
            "crate" => segs.get(1).cloned(),
            "super" => {
                let ups = segs.iter().take_while(|s| *s == "super").count();
                if ups < self.module.len() {
                    Some(self.module[0].clone())
                } else {
                    segs.get(ups).cloned()
                }
            }
            "aya" | "aya_log" => Some("aya".to_string()),
            _ => None,
        };
        if let Some(room) = room
            && room != self.module[0]
        {
            self.found.insert(room);
        }
    }
}

/// The paths a use tree spells, cut after their first three segments.
fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => out.push([&prefix[..], &[n.ident.to_string()]].concat()),
        syn::UseTree::Rename(r) => out.push([&prefix[..], &[r.ident.to_string()]].concat()),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_paths(t, prefix, out)),
    }
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        use_paths(&u.tree, &mut Vec::new(), &mut paths);
        for p in paths {
            self.path(&p);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.path(&segs);
        syn::visit::visit_path(self, p);
    }
}

/// The edges the table does not allow, as lines for a person.
fn violations(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let map = allowed(&lib);
    let mut bad = Vec::new();
    for e in edges(src) {
        let ok = match e.to.as_str() {
            // The kernel boundary: only the trace room loads eBPF.
            "aya" => e.from == "trace",
            to if !map.contains_key(to) => true, // not a room (a crate-root item)
            to => map.get(&e.from).is_some_and(|uses| uses.contains(to)),
        };
        if !ok {
            bad.push(format!(
                "{} uses {} ({}), which lib.rs's table does not allow",
                e.from,
                e.to,
                e.file.display()
            ));
        }
    }
    bad
}

fn listns_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../listns-user/src")
}

#[test]
fn listns_user_keeps_its_module_map() {
    let src = listns_src();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let map = allowed(&lib);
    // Every top-level module is in the table, and only those.
    let declared: BTreeSet<String> = syn::parse_file(&lib)
        .unwrap()
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    let tabled: BTreeSet<String> = map.keys().cloned().collect();
    assert_eq!(declared, tabled, "lib.rs's modules and its table differ");
    let bad = violations(&src);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The check can fail: a tree with a forbidden edge (written as a `use`,
/// as a path in code, and through `super::super`) and aya outside trace.
#[test]
fn a_forbidden_edge_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(
        src.join("lib.rs"),
        "//! | room | what | may use |\n//! | --- | --- | --- |\n\
         //! | `scan` | reads procfs | `inventory` |\n//! | `inventory` | data | |\n\
         //! | `output` | renders | `inventory` |\n\
         pub mod inventory;\npub mod output;\npub mod scan;\n",
    )
    .unwrap();
    std::fs::create_dir(src.join("scan")).unwrap();
    std::fs::write(
        src.join("scan/mod.rs"),
        "use crate::inventory::Inventory;\nmod procs;\n\
         fn f() { crate::output::render(); }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("scan/procs.rs"),
        "use super::super::output::View;\nuse super::Thing;\n",
    )
    .unwrap();
    std::fs::write(src.join("inventory.rs"), "use aya::Ebpf;\n").unwrap();
    std::fs::write(src.join("output.rs"), "use crate::inventory::X;\n").unwrap();
    let bad = violations(src);
    assert_eq!(
        bad,
        [
            "inventory uses aya (inventory.rs), which lib.rs's table does not allow",
            "scan uses output (scan/mod.rs), which lib.rs's table does not allow",
            "scan uses output (scan/procs.rs), which lib.rs's table does not allow",
        ]
    );
}
