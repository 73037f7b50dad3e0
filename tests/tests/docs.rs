//! Every command the README shows runs here, as a user would type it, so
//! that the documentation cannot go stale: a command that no longer
//! parses, exits otherwise than the README says, or no longer prints the
//! line the README shows fails this test. How the README marks what runs
//! and what it expects: `listns_tests::docs` and CONTRIBUTING.md.
//!
//! The commands run as root, one after another, with this build's `listns`
//! first on PATH, in a scratch directory; the README's own setup block
//! makes the state the others look at (a named netns, processes holding
//! namespaces), and the test removes it again.

use listns_skip::{require, require_root};
use listns_tests::{
    delete_netns,
    docs::{Case, Runner, netns_added, parse_markdown},
    listns_bin,
};

/// The README's blocks (embedded: the kernel matrix's guests have no
/// source tree, though they leave this suite out).
fn readme_cases() -> Vec<Case> {
    parse_markdown("README.md", include_str!("../../README.md")).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The man page's EXAMPLES (`listns::cli::manual::EXAMPLES`, the one table
/// `--help` and the man pages print), each run as a command.
fn man_cases() -> Vec<Case> {
    listns::cli::manual::EXAMPLES
        .iter()
        .map(|e| {
            let mut c = Case::command(format!("man page EXAMPLES: {}", e.command), e.command);
            // Its text says listns exits with the command's 3: the one that is not 0.
            if e.command.contains("exit 3") {
                c.status = 3;
            }
            c
        })
        .collect()
}

fn sources() -> Vec<Vec<Case>> {
    vec![readme_cases(), man_cases()]
}

#[test]
fn man_page_examples_are_all_run() {
    let cases = man_cases();
    assert!(cases.len() >= 10, "{cases:#?}");
    assert!(cases.iter().all(|c| c.skip.is_none()));
    assert_eq!(cases.iter().filter(|c| c.status == 3).count(), 1);
}

#[test]
fn readme_parses_and_marks_what_it_skips() {
    let cases = readme_cases();
    let run: Vec<_> = cases.iter().filter(|c| c.skip.is_none()).collect();
    // The transcripts of the quick start and the examples, at least.
    assert!(
        run.iter().filter(|c| c.transcript).count() >= 5,
        "{cases:#?}"
    );
    assert!(cases.iter().any(|c| c.setup), "no setup block");
    // Skipped blocks are for installing only, and few.
    let skipped: Vec<_> = cases.iter().filter_map(|c| c.skip.as_deref()).collect();
    assert!(skipped.len() <= 2, "{skipped:?}");
}

#[test]
fn documented_commands_run() {
    if !require_root() {
        return;
    }
    let has = |tool: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !require(
        has("jq") && has("ip") && has("unshare"),
        "jq, ip or unshare missing (.ci/run installs them)",
    ) {
        return;
    }
    for cases in sources() {
        run_all(&cases);
    }
}

fn run_all(cases: &[Case]) {
    let netns: Vec<String> = cases.iter().flat_map(netns_added).collect();
    for n in &netns {
        delete_netns(n);
    }
    let result = {
        let mut runner = Runner::new(&listns_bin()).expect("a scratch directory");
        let ordered = cases
            .iter()
            .filter(|c| c.setup)
            .chain(cases.iter().filter(|c| !c.setup));
        let mut failures = Vec::new();
        for case in ordered {
            if let Some(why) = &case.skip {
                eprintln!("{}: not run: {why}", case.origin);
                continue;
            }
            match runner.run(case) {
                Ok(()) => eprintln!("{}: ok ({})", case.origin, case.commands.join("; ")),
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        failures
    };
    for n in &netns {
        delete_netns(n);
    }
    assert!(
        result.is_empty(),
        "documented commands failed:\n\n{}",
        result.join("\n\n")
    );
}
