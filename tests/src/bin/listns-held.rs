//! `listns-held` (root): builds the held state of `listns_tests::held`
//! (one namespace of every kind the scan finds, each held by nothing
//! else), prints its cases as one JSON line on stdout
//! (`{"cases":[{"what":..,"type":..,"ns":..}]}`), and holds them until its
//! stdin closes; then releases them and exits. The systemd guest of
//! `cargo xtask integration-test systemd` runs it to compare what the
//! service lists with what root lists.

use std::io::Read;

fn main() {
    let held = listns_tests::held::Held::build("listns-held");
    let cases: Vec<serde_json::Value> = held
        .cases
        .iter()
        .map(|c| serde_json::json!({"what": c.what, "type": c.ty, "ns": c.ns}))
        .collect();
    println!("{}", serde_json::json!({ "cases": cases }));
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(held);
}
