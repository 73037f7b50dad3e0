//! listns as a service: metrics scraped by a real Prometheus, /healthz, the
//! event stream into a rotated file, and what listns says where it cannot
//! see the host. Privileged: real namespaces, real eBPF.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use listns_skip::require_root;
use listns_tests::{free_port, http_get, listns_bin, run, wait_for};
use serde_json::Value;

/// A child process killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `listns watch EXTRA` with stdout read into a channel of lines.
fn watch(extra: &[&str]) -> (Reaped, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(listns_bin())
        .arg("watch")
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("listns watch starts");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Reaped(child), rx)
}

/// Waits for /healthz to answer with start-up over. While listns starts
/// (tracer attaching, initial inventory) it must say so with a 503.
fn wait_served(port: u16) -> (u16, String) {
    wait_for(Duration::from_secs(60), || {
        let (status, body) = http_get(port, "/healthz")?;
        if body.starts_with("starting") {
            assert_eq!(status, 503, "not ready yet, yet {status}: {body}");
            return None;
        }
        Some((status, body))
    })
    .expect("listns serves /healthz and finishes starting")
}

/// The value of an instant query, through Prometheus's HTTP API.
fn prom_query(port: u16, query: &str) -> Option<f64> {
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_get(port, &format!("/api/v1/query?query={q}"))?;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_the_creation_counter() {
    if !require_root() {
        return;
    }
    let installable = |cmd: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // The kernel matrix's guests have neither (no disk, no package
    // manager); the host run of this test covers it.
    if !listns_skip::require_on_host(
        installable("prometheus") || installable("apt-get"),
        "no prometheus and no apt-get to install it (a kernel-matrix guest; the host run covers it)",
    ) {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/install-prometheus.sh");
    run("bash", &[script]);
    let (lport, pport) = (free_port(), free_port());
    let (_listns, lines) = watch(&[
        "--json",
        "--events-only",
        "--metrics",
        &format!("127.0.0.1:{lport}"),
    ]);
    let (status, body) = wait_served(lport);
    assert_eq!(
        (status, body.as_str()),
        (200, "ok\n"),
        "healthy with every hook"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: listns\n    \
             static_configs:\n      - targets: ['127.0.0.1:{lport}']\n"
        ),
    )
    .unwrap();
    let _prom = Reaped(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let query = r#"listns_namespaces_created_total{type="uts"}"#;
    let before = wait_for(Duration::from_secs(60), || prom_query(pport, query))
        .expect("Prometheus scraped listns");
    // Created uts namespaces that listns reported, counted from its stream.
    const MADE: usize = 5;
    let mut pids = Vec::new();
    for _ in 0..MADE {
        let child = Command::new("unshare")
            .args(["-u", "true"])
            .spawn()
            .unwrap();
        pids.push(child.id());
        let mut child = child;
        assert!(child.wait().unwrap().success());
    }
    let mut reported = Vec::new();
    let all_ours = wait_for(Duration::from_secs(20), || {
        while let Ok(line) = lines.try_recv() {
            let v: Value = serde_json::from_str(&line).expect("NDJSON");
            if v["event"] == "created" && v["type"] == "uts" {
                reported.push(v["pid"].as_u64().unwrap() as u32);
            }
        }
        pids.iter().all(|p| reported.contains(p)).then_some(())
    });
    assert!(
        all_ours.is_some(),
        "listns reported {reported:?}, made by {pids:?}"
    );
    // Prometheus's counter went up by exactly what listns reported (on a
    // quiet machine: the namespaces made here).
    let want = before + reported.len() as f64;
    let after = wait_for(Duration::from_secs(30), || {
        prom_query(pport, query).filter(|v| *v >= want)
    });
    assert_eq!(
        after,
        Some(want),
        "counter {before} + {} reported creations",
        reported.len()
    );
    assert!(reported.len() >= MADE);
    let metrics = http_get(lport, "/metrics").unwrap().1;
    for name in [
        "listns_namespaces{type=\"net\"}",
        "listns_hook_attached{hook=\"sched_process_fork\"} 1",
        "listns_event_lag_seconds_bucket",
        "listns_build_info{",
        "listns_ringbuf_lost_records_total 0",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[test]
fn healthz_says_why_without_the_tracer() {
    if !require_root() {
        return;
    }
    let port = free_port();
    // No BTF: the tracer cannot start and watch falls back to rescans.
    let (_listns, _lines) = watch(&[
        "--json",
        "--btf",
        "/nonexistent/vmlinux",
        "--metrics",
        &port.to_string(),
    ]);
    let (status, body) = wait_served(port);
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("tracer not running"), "{body}");
    assert_eq!(body.lines().count(), 1, "one line: {body}");
    // Alive all the same: a restart would not bring the tracer back.
    assert_eq!(
        http_get(port, "/livez"),
        Some((200, "ok\n".to_string())),
        "/livez"
    );
}

#[test]
fn output_file_is_reopened_on_sighup() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let (listns, _) = watch(&["--json", "--events-file", path.to_str().unwrap()]);
    let created_by = |file: &std::path::Path, pid: u32| {
        std::fs::read_to_string(file).ok().is_some_and(|text| {
            // Complete lines only: listns may be half-way through writing
            // the last one (a tailing log shipper waits for its newline too).
            text.split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .any(|l| {
                    let v: Value = serde_json::from_str(l).expect("NDJSON line");
                    v["event"] == "created" && v["pid"] == pid
                })
        })
    };
    // The inventory first, then events.
    wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.contains("\"existing\""))
    })
    .expect("inventory written to the file");
    let first = Command::new("unshare")
        .args(["-u", "true"])
        .status()
        .unwrap();
    assert!(first.success());
    let mut c = Command::new("unshare")
        .args(["-i", "true"])
        .spawn()
        .unwrap();
    let pid1 = c.id();
    c.wait().unwrap();
    wait_for(Duration::from_secs(10), || {
        created_by(&path, pid1).then_some(())
    })
    .expect("first event in the file");
    // logrotate: move the file away, then SIGHUP.
    let rotated = dir.path().join("events.ndjson.1");
    std::fs::rename(&path, &rotated).unwrap();
    unsafe { libc::kill(listns.0.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    let mut c = Command::new("unshare")
        .args(["-i", "true"])
        .spawn()
        .unwrap();
    let pid2 = c.id();
    c.wait().unwrap();
    wait_for(Duration::from_secs(10), || {
        created_by(&path, pid2).then_some(())
    })
    .expect("event after SIGHUP in the new file");
    assert!(created_by(&rotated, pid1));
    assert!(
        !created_by(&rotated, pid2),
        "nothing after the reopen goes to the old file"
    );
}

#[test]
fn says_so_when_it_cannot_see_the_host() {
    if !require_root() {
        return;
    }
    // A new pid namespace with its own /proc: what a container without
    // --pid=host looks like.
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(listns_bin())
        .arg("-J")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in the host's PID namespace"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scan"]["host_view"], false, "JSON says so too");
    // On the host, nothing of the kind.
    let out = Command::new(listns_bin()).arg("-J").output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not in the host's PID namespace"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scan"]["host_view"], true);
}

/// A capability set from /proc/PID/status, as bit numbers.
fn cap_bits(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:\t")))
        .unwrap_or_else(|| panic!("no {field} in status"));
    let mask = u64::from_str_radix(hex.trim(), 16).unwrap();
    (0..64).filter(|b| mask & (1 << b) != 0).collect()
}

#[test]
fn the_watcher_keeps_only_the_capabilities_it_uses() {
    if !require_root() {
        return;
    }
    let (listns, lines) = watch(&["--json"]);
    // Past start-up: the inventory is out.
    wait_for(Duration::from_secs(30), || {
        lines
            .recv_timeout(Duration::from_millis(100))
            .ok()
            .filter(|l| l.contains("\"existing\""))
    })
    .expect("inventory");
    let pid = listns.0.id();
    // CAP_DAC_READ_SEARCH 2, CAP_NET_ADMIN 12, CAP_SYS_CHROOT 18,
    // CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21, CAP_BPF 39.
    let kept = vec![2, 12, 18, 19, 21, 39];
    let eff = wait_for(Duration::from_secs(10), || {
        let e = cap_bits(pid, "CapEff");
        (e == kept).then_some(e)
    });
    assert_eq!(
        eff,
        Some(kept.clone()),
        "effective set is {:?}",
        cap_bits(pid, "CapEff")
    );
    assert_eq!(cap_bits(pid, "CapPrm"), kept);
    assert_eq!(cap_bits(pid, "CapBnd"), kept);
    assert!(cap_bits(pid, "CapInh").is_empty() && cap_bits(pid, "CapAmb").is_empty());
    // And it still works: a namespace made now is reported.
    let mut c = Command::new("unshare")
        .args(["-u", "true"])
        .spawn()
        .unwrap();
    let made = c.id();
    c.wait().unwrap();
    let seen = wait_for(Duration::from_secs(10), || {
        lines
            .recv_timeout(Duration::from_millis(100))
            .ok()
            .filter(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["event"] == "created" && v["pid"] == made
            })
    });
    assert!(seen.is_some(), "created event after the drop");
}
