//! Drawing a view's tree as libsmartcols does: depth first, each node's
//! children in the order they were added, lines `├─`, `└─` and `│ ` in
//! front of the tree column's text (`|-`, `` `- `` and `| ` when the locale
//! is not UTF-8, as lsns draws them then). Which row hangs under which is
//! decided in `rows`.

use super::View;

/// The roots and each row's children, in the order they were added.
pub fn children(parents: &[Option<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut roots = Vec::new();
    let mut kids = vec![Vec::new(); parents.len()];
    for (i, p) in parents.iter().enumerate() {
        match p {
            // A parent is always an earlier row; anything else is a root.
            Some(p) if *p < i => kids[*p].push(i),
            _ => roots.push(i),
        }
    }
    (roots, kids)
}

/// The rows in drawing order, each with the tree lines that go in front of
/// its tree column (empty for roots and when there is no tree).
pub fn layout(view: &View<'_>, ascii: bool) -> Vec<(usize, String)> {
    let (branch, last_branch, vertical) = if ascii {
        ("|-", "`-", "| ")
    } else {
        ("├─", "└─", "│ ")
    };
    let (roots, kids) = children(&view.parents);
    let mut out = Vec::with_capacity(view.rows.len());
    // (row, indent of its children, its own prefix)
    let mut stack: Vec<(usize, String, String)> = roots
        .iter()
        .rev()
        .map(|&r| (r, String::new(), String::new()))
        .collect();
    while let Some((row, indent, prefix)) = stack.pop() {
        out.push((row, prefix));
        let n = kids[row].len();
        for (j, &k) in kids[row].iter().enumerate().rev() {
            let last = j + 1 == n;
            let prefix = format!("{indent}{}", if last { last_branch } else { branch });
            let child_indent = format!("{indent}{}", if last { "  " } else { vertical });
            stack.push((k, child_indent, prefix));
        }
    }
    out
}

/// Whether the locale's character set is UTF-8, as `setlocale(LC_CTYPE,
/// "")` would decide: the first of LC_ALL, LC_CTYPE and LANG that is set
/// names it. libsmartcols draws tree lines in ASCII otherwise, and so does
/// listns (a terminal in the C locale may not show the box characters).
pub fn locale_is_utf8(var: impl Fn(&str) -> Option<String>) -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_keep_insertion_order_and_bad_links_become_roots() {
        let (roots, kids) = children(&[None, Some(0), None, Some(0), Some(3), Some(9), Some(6)]);
        assert_eq!(roots, [0, 2, 5, 6]);
        assert_eq!(kids[0], [1, 3]);
        assert_eq!(kids[3], [4]);
    }

    #[test]
    fn utf8_locale_as_setlocale_picks_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(locale_is_utf8(env(&[("LANG", "en_US.UTF-8")])));
        assert!(locale_is_utf8(env(&[
            ("LC_CTYPE", "C.utf8"),
            ("LANG", "C")
        ])));
        // LC_ALL wins; an empty one does not count.
        assert!(!locale_is_utf8(env(&[
            ("LC_ALL", "C"),
            ("LANG", "en_US.UTF-8")
        ])));
        assert!(locale_is_utf8(env(&[
            ("LC_ALL", ""),
            ("LANG", "en_US.UTF-8")
        ])));
        assert!(!locale_is_utf8(env(&[])));
        assert!(!locale_is_utf8(env(&[("LANG", "POSIX")])));
    }
}
