//! The inventory API's OpenAPI document (schema/openapi.json, which
//! `cargo xtask schema` writes from listns-user's `api::openapi` and a
//! unit test there keeps equal to what the watcher serves), checked by a
//! real validator: openapi-spec-validator from PyPI, in the venv that
//! packaging/install-test-deps.sh makes.

use std::{fs, path::Path, process::Command};

use listns_tests::packaging::{kubernetes_validate, repo_file, require_tools, root};
use serde_json::Value;

/// Runs the validator on `file` as OpenAPI 3.1: whether it passed, and what
/// it said (its error messages quote the whole document: cut short).
fn validate(file: &Path) -> (bool, String) {
    let validator = kubernetes_validate().with_file_name("openapi-spec-validator");
    let out = Command::new(&validator)
        .args(["--schema", "3.1"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", validator.display()));
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said.chars().take(2000).collect())
}

#[test]
fn the_openapi_document_passes_openapi_spec_validator() {
    if !require_tools(&["openapi-spec-validator"]) {
        return;
    }
    let committed = root().join("schema/openapi.json");
    let (ok, said) = validate(&committed);
    assert!(
        ok,
        "openapi-spec-validator rejects schema/openapi.json:\n{said}"
    );
    assert!(said.contains(": OK"), "{said}");

    // It does check: a reference to no schema, and a parameter in a place
    // that OpenAPI 3.1 does not have, are each rejected.
    let doc: Value = serde_json::from_str(&repo_file("schema/openapi.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let broken = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut copy = doc.clone();
        edit(&mut copy);
        let path = tmp.path().join(name);
        fs::write(&path, serde_json::to_string_pretty(&copy).unwrap()).unwrap();
        validate(&path)
    };
    let (ok, said) = broken("dangling.json", &|d| {
        d["paths"]["/v1/gone"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"] = "#/components/schemas/NoSuchType".into();
    });
    assert!(!ok, "a dangling $ref passed:\n{said}");
    assert!(said.contains("NoSuchType"), "{said}");
    let (ok, said) = broken("body-param.json", &|d| {
        d["paths"]["/v1/namespaces"]["get"]["parameters"][0]["in"] = "body".into();
    });
    assert!(!ok, "a parameter `in: body` passed:\n{said}");
}
