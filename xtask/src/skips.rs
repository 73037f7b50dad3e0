//! The skip log: tests that cannot run (not root, a kernel without
//! listns(2)) say so on stderr and append `TEST<TAB>REASON` to the file
//! named by `LISTNS_SKIP_LOG` (the `listns-skip` crate, tests/skip). `cargo
//! xtask test` empties it before the tests and ends with one line
//! summarising it, so that a run as non-root does not pass for a full one.

use std::{collections::BTreeMap, path::Path};

/// The variable `listns_skip` reads (its `SKIP_LOG_ENV`).
pub const ENV: &str = "LISTNS_SKIP_LOG";

/// Where the log goes: under the target directory.
pub fn path(root: &Path) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("listns-skipped-tests.log")
}

/// Empties the log before a run (it may not exist yet).
pub fn clear(log: &Path) -> std::io::Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(log, b"")
}

/// The closing line for the log's contents.
pub fn summary(log: &str) -> String {
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let reason = line.split_once('\t').map_or("no reason given", |(_, r)| r);
        *by_reason.entry(reason).or_default() += 1;
        total += 1;
    }
    if total == 0 {
        return "xtask: no test was skipped".into();
    }
    let why: Vec<String> = by_reason
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    format!(
        "xtask: {total} test{} SKIPPED, not run ({}): the ones shown as \"ok\" above include them",
        if total == 1 { "" } else { "s" },
        why.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_groups_by_reason() {
        let log = "a\tneeds root (x)\nb\tneeds root (x)\nc\tno BTF\n";
        assert_eq!(
            summary(log),
            "xtask: 3 tests SKIPPED, not run (2 needs root (x); 1 no BTF): \
             the ones shown as \"ok\" above include them"
        );
    }

    #[test]
    fn empty_log_says_nothing_was_skipped() {
        assert_eq!(summary(""), "xtask: no test was skipped");
        assert_eq!(summary("\n"), "xtask: no test was skipped");
    }

    #[test]
    fn one_skip_is_singular() {
        assert!(summary("t\twhy\n").starts_with("xtask: 1 test SKIPPED"));
    }
}
