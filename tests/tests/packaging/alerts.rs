//! The Prometheus alerting rules (packaging/prometheus/): promtool checks
//! them and runs their unit tests (each alert fires on the state it is for
//! and stays quiet on a healthy watcher), and every listns metric a rule
//! names is one that listns serves.

use std::{collections::BTreeSet, process::Command};

use listns_tests::packaging::{output, repo_file, require_tools, root};

const RULES: &str = "packaging/prometheus/listns-alerts.yaml";

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    if !require_tools(&["promtool"]) {
        return;
    }
    let dir = root().join("packaging/prometheus");
    let text = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let check = text(output(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(root().join(RULES)),
    ));
    assert!(check.contains("SUCCESS: 8 rules found"), "{check}");
    // promtool test rules resolves rule_files relative to the test file.
    let tests = text(output(Command::new("promtool").current_dir(&dir).args([
        "test",
        "rules",
        "listns-alerts.test.yaml",
    ])));
    assert!(tests.contains("SUCCESS"), "{tests}");
}

/// Metric names (`listns_...`) in the rules, each a series listns serves:
/// the families' names from the real encoder, with the suffixes the
/// exposition format adds (`_total` for counters, `_bucket`/`_sum`/`_count`
/// for histograms). A family is written only once it has a series, so
/// the labelled ones get one each first.
#[test]
fn alert_rules_name_only_metrics_listns_serves() {
    use listns::service::metrics::{HookLabel, RequestLabels, UnreadLabel};
    let m = listns::service::Metrics::new("test");
    m.hooks
        .get_or_create(&HookLabel { hook: "h".into() })
        .set(1);
    m.scan_unread
        .get_or_create(&UnreadLabel { what: "fds" })
        .set(0);
    m.api_requests
        .get_or_create(&RequestLabels {
            endpoint: "e",
            code: 200,
        })
        .inc();
    let served: BTreeSet<String> = m
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .flat_map(|l| {
            let mut words = l.split_whitespace();
            let (name, kind) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            match kind {
                "counter" => vec![format!("{name}_total")],
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect(),
                _ => vec![name.to_string()],
            }
        })
        .collect();
    assert!(served.contains("listns_hook_attached"), "{served:?}");
    let rules = repo_file(RULES);
    let named: BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("listns_"))
        .collect();
    assert!(named.len() >= 7, "{named:?}");
    let unknown: Vec<_> = named.iter().filter(|n| !served.contains(**n)).collect();
    assert!(
        unknown.is_empty(),
        "the rules name metrics listns does not serve: {unknown:?} (served: {served:?})"
    );
}
