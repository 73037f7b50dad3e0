//! lsns (util-linux) as an independent view of the namespaces, for
//! comparisons with listns.

use std::process::Command;

/// One namespace as `lsns -J -o NS,TYPE,PID,NSFS` lists it.
#[derive(Clone, Debug)]
pub struct LsnsEntry {
    pub ty: String,
    pub ns: u64,
    pub pid: Option<u64>,
    /// Bind mounts of it (lsns separates several with newlines).
    pub nsfs: Vec<String>,
}

impl LsnsEntry {
    pub fn key(&self) -> (String, u64) {
        (self.ty.clone(), self.ns)
    }
}

/// `lsns -J -o NS,TYPE,PID,NSFS`, parsed.
pub fn lsns() -> Vec<LsnsEntry> {
    let out = Command::new("lsns")
        .args(["-J", "-o", "NS,TYPE,PID,NSFS"])
        .output()
        .expect("lsns installed");
    assert!(out.status.success(), "lsns failed: {}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| LsnsEntry {
            ty: n["type"].as_str().unwrap().to_string(),
            ns: n["ns"].as_u64().unwrap(),
            pid: n["pid"].as_u64(),
            nsfs: n["nsfs"]
                .as_str()
                .map(|s| s.lines().map(str::to_string).collect())
                .unwrap_or_default(),
        })
        .collect()
}
