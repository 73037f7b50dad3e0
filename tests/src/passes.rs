//! The scan's two passes side by side: `listns --scan=iter -J` (the
//! kernel's BPF iterators) and `listns --scan=proc -J` on the same state
//! must give the same inventory: the same namespaces, the same holders of
//! every namespace that is not the host's, the same pins and the same
//! network namespaces known only by a netns id. The one difference
//! allowed is the kernel pass's own finding: pid namespaces that have no
//! process yet, which /proc hides (docs/scan-coverage.md).

use std::{collections::BTreeMap, process::Command};

use serde_json::Value;

use crate::listns_bin;

/// (type, inode) -> holders, each as its JSON text, sorted.
pub type Holders = BTreeMap<(String, u64), Vec<String>>;

/// Runs `listns ARGS` and parses its JSON (failing on a failed run).
pub fn json(args: &[&str]) -> Value {
    let out = Command::new(listns_bin())
        .args(args)
        .output()
        .expect("runs listns");
    assert!(
        out.status.success(),
        "listns {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).expect("listns -J prints JSON");
    crate::assert_valid_json(&v);
    v
}

pub fn holders(v: &Value) -> Holders {
    v["namespaces"]
        .as_array()
        .expect("a namespaces array")
        .iter()
        .map(|n| {
            let key = (
                n["type"].as_str().unwrap().to_string(),
                n["ns"].as_u64().unwrap(),
            );
            let mut holders: Vec<String> = n["holders"]
                .as_array()
                .into_iter()
                .flatten()
                .map(Value::to_string)
                .collect();
            holders.sort();
            (key, holders)
        })
        .collect()
}

/// A pid namespace held only as processes' `pid_for_children`: one that
/// has no process yet. /proc hides it (`pid_for_children` reads as
/// missing until the namespace has its init: pidns_for_children_get in
/// kernel/pid_namespace.c); the kernel pass reads the nsproxy and finds it.
pub fn unborn_pid_ns(key: &(String, u64), holders: &[String]) -> bool {
    key.0 == "pid"
        && !holders.is_empty()
        && holders
            .iter()
            .all(|h| h.contains("\"link\":\"pid_for_children\""))
}

/// `scan.KEY`'s entries as sorted JSON texts. A pin seen in a mount
/// namespace (no fd) names the process whose mountinfo was read, one of
/// several in that namespace: which one is left out.
fn listed(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v["scan"][key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut e = e.clone();
            if e.get("fd").is_some_and(Value::is_null) && e.get("mnt_ns").is_some() {
                e["pid"] = Value::Null;
            }
            e.to_string()
        })
        .collect();
    out.sort();
    out
}

/// Where two scans differ (see the module's doc; the host's initial
/// namespaces' holders are left out: every process, listns itself among
/// them, holds those, and /proc refuses PID 1's links on some hosts while
/// the kernel pass reads them).
pub fn differences(iter: &Value, proc: &Value) -> Vec<String> {
    let (i, p) = (holders(iter), holders(proc));
    let initial = |holders: &Vec<String>| holders.iter().any(|h| h.contains("\"pid\":2,"));
    let mut out = Vec::new();
    for (key, hs) in &i {
        match p.get(key) {
            None if unborn_pid_ns(key, hs) => {}
            None => out.push(format!("{key:?} only in --scan=iter")),
            Some(other) if !initial(other) && other != hs => out.push(format!(
                "{key:?} holders differ:\n  iter {hs:?}\n  proc {other:?}"
            )),
            _ => {}
        }
    }
    for key in p.keys().filter(|k| !i.contains_key(*k)) {
        out.push(format!("{key:?} only in --scan=proc"));
    }
    for key in ["pins", "unfound_netns"] {
        let (a, b) = (listed(iter, key), listed(proc, key));
        if a != b {
            out.push(format!("scan.{key} differ:\n  iter {a:?}\n  proc {b:?}"));
        }
    }
    out
}

/// Both passes with `args` (after `-J`), up to three times until they
/// agree (something else on the machine may make or drop a namespace
/// between the two runs; a real difference stays): returns the kernel
/// pass's document, or fails with the differences.
pub fn agreeing(args: &[&str]) -> Value {
    let mut last = Vec::new();
    for _ in 0..3 {
        let mut a = vec!["--scan=iter", "-J"];
        a.extend(args);
        let iter = json(&a);
        a[0] = "--scan=proc";
        let proc = json(&a);
        assert_eq!(iter["scan"]["pass"], "iter");
        assert_eq!(proc["scan"]["pass"], "proc");
        last = differences(&iter, &proc);
        if last.is_empty() {
            return iter;
        }
        eprintln!("the scans differ, trying again:\n{}", last.join("\n"));
    }
    panic!("--scan=iter and --scan=proc differ:\n{}", last.join("\n"));
}
