//! The packaging (packaging/): the systemd unit, the container image, the
//! DaemonSet, the man pages and completions, and the inventory API's
//! OpenAPI document, each checked by the real tool (systemd-analyze,
//! podman, kubernetes-validate, man, bash, openapi-spec-validator), which
//! packaging/install-test-deps.sh installs when missing.
//!
//! Not part of the kernel matrix (xtask skips this file there): nothing in it
//! depends on the kernel version, and the guests have no podman.

use std::{fs, process::Command};

use clap::CommandFactory;
use listns_tests::{
    listns_bin,
    packaging::{
        kubernetes_validate, output, repo_file, require_tools, root, unit_capabilities, unit_values,
    },
};
use serde_json::Value;

const PORT: &str = "9433";

/// Runs the man page and completion generator (`cargo xtask dist`'s) into a
/// fresh directory.
fn generate_dist() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    output(Command::new(env!("CARGO_BIN_EXE_listns-dist")).arg(dir.path()));
    dir
}

#[test]
fn man_pages_and_completions_come_from_the_cli() {
    let dir = generate_dist();
    let man1 = dir.path().join("man/man1");
    let cli = listns::cli::Cli::command();
    let watch = cli.find_subcommand("watch").expect("a watch subcommand");
    // Every visible long option is on its page, as roff writes it.
    for (page, cmd) in [("listns.1", &cli), ("listns-watch.1", watch)] {
        let text = fs::read_to_string(man1.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        let longs: Vec<&str> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .collect();
        assert!(longs.len() >= 3, "{page}: too few options found: {longs:?}");
        for long in longs {
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(text.contains(&roff), "{page} lacks --{long}");
        }
    }
    // listns's own sections, every example on its page, no README pointer.
    for (page, which) in [
        ("listns.1", listns::cli::manual::Page::List),
        ("listns-watch.1", listns::cli::manual::Page::Watch),
    ] {
        let text = fs::read_to_string(man1.join(page)).unwrap();
        for section in ["EXAMPLES", "EXIT STATUS", "ENVIRONMENT", "FILES"] {
            assert!(
                text.contains(&format!(".SH {section}\n")),
                "{page} lacks {section}"
            );
        }
        assert!(!text.contains("README"), "{page} points to the README");
        for e in listns::cli::manual::EXAMPLES
            .iter()
            .filter(|e| e.page == which)
        {
            let roff = e.command.replace('-', "\\-").replace('\'', "\\(aq");
            assert!(
                text.contains(&roff),
                "{page} lacks the example {}",
                e.command
            );
        }
    }
    let watch_page = fs::read_to_string(man1.join("listns-watch.1")).unwrap();
    assert!(watch_page.contains(".SH FILTER KEYS\n"));
    for key in ["cgroup_id", "comm", "container", "event"] {
        assert!(
            watch_page.contains(key),
            "the watch page lacks the -Q key {key}"
        );
    }
    assert!(watch_page.contains("\\fB\\&125\\fR"), "no exit status 125");
    // man renders it (the formatting is valid roff).
    if require_tools(&["man"]) {
        let out = output(
            Command::new("man")
                .arg("-l")
                .arg(man1.join("listns-watch.1"))
                .env("MANWIDTH", "100"),
        );
        // Bold and underline come as overstrikes (c BS c) when not on a tty.
        let text = strip_overstrikes(&String::from_utf8_lossy(&out.stdout));
        assert!(
            text.contains("--json"),
            "rendered page lacks --json:\n{text}"
        );
        assert!(
            text.contains("NAME"),
            "rendered page has no NAME section:\n{text}"
        );
        assert!(
            text.contains("EXIT STATUS") && text.contains("listns watch -- unshare -n true"),
            "rendered page lacks its sections:\n{text}"
        );
    }

    let completions = dir.path().join("completions");
    for file in [
        "listns.bash",
        "_listns",
        "listns.fish",
        "_listns.ps1",
        "listns.elv",
    ] {
        let text =
            fs::read_to_string(completions.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("watch"), "{file} does not offer `watch`");
    }
    // bash parses the script and completes with it.
    let bash = completions.join("listns.bash");
    output(Command::new("bash").arg("-n").arg(&bash));
    let complete = |line: &str| -> String {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; \
             _listns listns '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bash.display(),
            words.join(" "),
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        String::from_utf8_lossy(&output(Command::new("bash").args(["-c", &script])).stdout)
            .into_owned()
    };
    let first = complete("listns w");
    assert!(
        first.lines().any(|l| l == "watch"),
        "`listns w<TAB>` offers {first:?}"
    );
    let opt = complete("listns watch --ev");
    assert!(
        opt.lines().any(|l| l == "--events-only"),
        "`listns watch --ev<TAB>` offers {opt:?}"
    );
}

/// Text without the overstrikes (`c\x08c`, `_\x08c`) man makes bold and
/// underlined text of.
fn strip_overstrikes(text: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        // The character before a backspace is struck over by the next one.
        if c == '\x08' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

/// The unit with ExecStart pointing at this build's binary, in a temporary
/// directory.
fn unit_copy(dir: &std::path::Path, exec: &std::path::Path) -> std::path::PathBuf {
    let unit = repo_file("packaging/systemd/listns.service");
    let from = "ExecStart=/usr/local/bin/listns ";
    assert!(unit.contains(from), "the unit's ExecStart is not {from:?}");
    let path = dir.join("listns.service");
    fs::write(
        &path,
        unit.replace(from, &format!("ExecStart={} ", exec.display())),
    )
    .unwrap();
    path
}

#[test]
fn systemd_unit_verifies_and_the_readme_has_its_exposure() {
    if !require_tools(&["systemd-analyze"]) {
        return;
    }
    let dist = generate_dist();
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_copy(tmp.path(), &listns_bin());
    // Documentation=man:listns(1) resolves to the generated page.
    let verify = |unit: &std::path::Path| {
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(unit)
            .env("MANPATH", dist.path().join("man"))
            .output()
            .unwrap()
    };
    let out = verify(&unit);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warns:\n{stderr}"
    );

    // It does check: a unit whose binary is missing fails.
    let broken = tempfile::tempdir().unwrap();
    let out = verify(&unit_copy(broken.path(), "/nonexistent/listns".as_ref()));
    assert!(
        !out.status.success(),
        "verify passed a unit without its binary"
    );

    let out = output(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(&unit),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let overall = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for listns.service: ")
                .nth(1)
        })
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    let mut words = overall.split_whitespace();
    let (score, label) = (words.next().unwrap(), words.next().unwrap_or(""));
    eprintln!("systemd-analyze security: exposure {score} {label}");
    assert!(
        ["SAFE", "OK"].contains(&label),
        "exposure {score} {label}: the sandbox got weaker"
    );
    let stated = format!("**{score} {label}**");
    assert!(
        repo_file("README.md").contains(&stated),
        "README does not state the unit's exposure as {stated}"
    );
}

#[test]
fn daemonset_passes_kubernetes_validate_strict() {
    if !require_tools(&["kubernetes-validate"]) {
        return;
    }
    let manifest = root().join("packaging/kubernetes/daemonset.yaml");
    let out = output(
        Command::new(kubernetes_validate())
            .arg("--strict")
            .arg(&manifest),
    );
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for resource in [
        "daemonset/listns",
        "service/listns",
        "priorityclass/listns-node-agent",
    ] {
        assert!(
            said.contains(&format!("passed for resource {resource}")),
            "{resource}: {said}"
        );
    }
    // --strict does reject what Kubernetes would not know.
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("typo.yaml");
    fs::write(
        &typo,
        fs::read_to_string(&manifest)
            .unwrap()
            .replace("hostPID:", "hostPIDs:"),
    )
    .unwrap();
    let out = Command::new(kubernetes_validate())
        .arg("--strict")
        .arg(&typo)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "kubernetes-validate --strict accepted hostPIDs"
    );
}

/// The documents of a YAML file under packaging/kubernetes as JSON, parsed
/// by PyYAML (kubernetes-validate's own dependency, in its venv).
fn manifests(file: &str) -> Vec<Value> {
    let python = kubernetes_validate().with_file_name("python");
    let out = output(Command::new(python).args([
        "-c",
        "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
    ]).arg(root().join("packaging/kubernetes").join(file)));
    let docs: Value = serde_json::from_slice(&out.stdout).unwrap();
    docs.as_array().unwrap().clone()
}

fn kind(docs: &[Value], kind: &str) -> Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind} document"))
        .clone()
}

fn daemonset() -> Value {
    kind(&manifests("daemonset.yaml"), "DaemonSet")
}

/// The pods run on x86_64 nodes only (the only build), with the priority
/// class defined next to them; the headless Service selects them and names
/// their metrics port, and the ServiceMonitor selects that Service and port.
#[test]
fn daemonset_service_and_servicemonitor_fit_together() {
    if !require_tools(&["kubernetes-validate"]) {
        return;
    }
    let docs = manifests("daemonset.yaml");
    let ds = kind(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"];
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/arch"], "amd64");
    let class = kind(&docs, "PriorityClass");
    assert_eq!(pod["spec"]["priorityClassName"], class["metadata"]["name"]);
    let svc = kind(&docs, "Service");
    assert_eq!(svc["spec"]["clusterIP"], "None", "one target per pod");
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod["metadata"]["labels"][k], v, "Service selector {k}");
    }
    let port = &svc["spec"]["ports"][0];
    let container_ports = &pod["spec"]["containers"][0]["ports"];
    assert!(
        container_ports
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port["targetPort"]),
        "the Service's targetPort {} is no container port: {container_ports}",
        port["targetPort"]
    );
    let monitors = manifests("servicemonitor.yaml");
    let sm = kind(&monitors, "ServiceMonitor");
    assert_eq!(sm["metadata"]["namespace"], svc["metadata"]["namespace"]);
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selector {k}"
        );
    }
    assert_eq!(sm["spec"]["endpoints"][0]["port"], port["name"]);
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
}

#[test]
fn unit_daemonset_and_image_agree() {
    if !require_tools(&["kubernetes-validate"]) {
        return;
    }
    let unit = repo_file("packaging/systemd/listns.service");
    let caps = unit_capabilities(&unit);
    assert!(
        caps.contains(&"bpf".to_string()) && caps.len() >= 4,
        "{caps:?}"
    );
    let mut ambient: Vec<String> = unit_values(&unit, "AmbientCapabilities")
        .iter()
        .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect();
    ambient.sort();
    assert_eq!(
        ambient, caps,
        "AmbientCapabilities differ from CapabilityBoundingSet"
    );
    assert!(
        unit.contains(&format!("--metrics 127.0.0.1:{PORT}")),
        "unit: metrics not on loopback:{PORT}"
    );

    let ds = daemonset();
    let pod = &ds["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    let mut added: Vec<String> = c["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_ascii_lowercase())
        .collect();
    added.sort();
    assert_eq!(
        added, caps,
        "the DaemonSet and the unit grant different capabilities"
    );
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(c["securityContext"]["privileged"], false);
    assert_eq!(pod["spec"]["hostPID"], true);
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], PORT);
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(c["ports"][0]["containerPort"].to_string(), PORT);
    // Readiness on the whole picture; liveness (and start-up) only on a
    // stalled loop, which a restart cures.
    for (probe, path) in [
        ("readinessProbe", "/healthz"),
        ("startupProbe", "/livez"),
        ("livenessProbe", "/livez"),
    ] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
    }
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        args.contains(&format!("0.0.0.0:{PORT}").as_str()),
        "{args:?}"
    );

    let containerfile = repo_file("packaging/Containerfile");
    assert!(containerfile.contains(&format!("EXPOSE {PORT}")));
    assert!(containerfile.contains(&format!("\"0.0.0.0:{PORT}\"")));

    // The API socket: the same path in all three, in a directory that is
    // made for it (systemd's RuntimeDirectory=, the DaemonSet's hostPath,
    // the podman example's volume).
    let socket = listns::api::DEFAULT_SOCKET;
    let dir = std::path::Path::new(socket)
        .parent()
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(dir, "/run/listns");
    assert!(
        unit.contains(&format!("--api-socket {socket}")),
        "unit: no --api-socket {socket}"
    );
    assert_eq!(unit_values(&unit, "RuntimeDirectory"), ["listns"]);
    assert!(
        args.windows(2).any(|w| w == ["--api-socket", socket]),
        "{args:?}"
    );
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("the DaemonSet mounts nothing at {dir}"));
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the API socket's volume");
    assert_eq!(volume["hostPath"]["path"], dir);
    assert_eq!(volume["hostPath"]["type"], "DirectoryOrCreate");
    assert!(containerfile.contains(&format!("\"--api-socket\", \"{socket}\"")));
    assert!(containerfile.contains(&format!("-v {dir}:{dir}")));
    let cap_add = containerfile
        .lines()
        .find_map(|l| l.split("--cap-add=").nth(1))
        .expect("the Containerfile shows the podman command");
    let mut shown: Vec<String> = cap_add
        .split_whitespace()
        .next()
        .unwrap()
        .split(',')
        .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect();
    shown.sort();
    assert_eq!(
        shown, caps,
        "the Containerfile's podman example grants other capabilities"
    );
}

#[path = "packaging/alerts.rs"]
mod alerts;
#[path = "packaging/container.rs"]
mod container;
#[path = "packaging/coverage.rs"]
mod coverage;
#[path = "packaging/dist.rs"]
mod dist;
#[path = "packaging/openapi.rs"]
mod openapi;
#[path = "packaging/privileged.rs"]
mod privileged;
