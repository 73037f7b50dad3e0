//! `listns --from` and `listns watch --from` against a real watcher: what
//! it shows is what a scan shows, plus what only the tracer knows (who
//! created each namespace, those gone); its stream comes out as the local
//! watch's lines. Privileged: real namespaces, real eBPF.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use listns_skip::require_root;
use listns_tests::{
    NetnsGuard,
    api::{At, get},
    listns_bin, ns_inode, wait_for,
    watch::Watch,
};
use serde_json::Value;

/// A child killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A watcher serving the API on a socket in a fresh directory, once it
/// answers `path`.
fn watcher(path: &str) -> (Watch, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let w = Watch::spawn(&["--events-only", "--api-socket", sock.to_str().unwrap()]);
    let mut last = None;
    let up = wait_for(Duration::from_secs(60), || {
        let a = get(&At::Unix(&sock), path, &[]).ok()?;
        let ok = a.status == 200;
        last = Some((a.status, a.body));
        ok.then_some(())
    });
    assert!(
        up.is_some(),
        "GET {path} never answered 200 (last: {last:?}); stderr: {:?}",
        w.stderr()
    );
    let sock = sock.to_str().unwrap().to_string();
    (w, dir, sock)
}

fn listns(args: &[&str]) -> Output {
    let out = Command::new(listns_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "listns {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `-J` rows by (type, inode, id).
fn rows(args: &[&str]) -> BTreeMap<(String, u64, Option<u64>), Value> {
    let out = listns(args);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = (
                r["type"].as_str().unwrap().to_string(),
                r["ns"].as_u64().unwrap(),
                r["id"].as_u64(),
            );
            (key, r.clone())
        })
        .collect()
}

fn holders(row: &Value) -> BTreeSet<String> {
    row["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect()
}

/// The row of the net namespace with this inode.
fn net_row(rows: &BTreeMap<(String, u64, Option<u64>), Value>, inum: u64) -> Option<&Value> {
    rows.iter()
        .find(|((ty, ns, _), _)| ty == "net" && *ns == inum)
        .map(|(_, r)| r)
}

#[test]
fn from_shows_what_a_scan_shows_and_who_created_it() {
    if !require_root() {
        return;
    }
    let (mut w, _dir, sock) = watcher("/v1/inventory");

    // Made after the watcher started: a netns held by its bind mount...
    let bind = NetnsGuard::new("listns-from-bind");
    let bind_ino = ns_inode("/run/netns/listns-from-bind");
    // ...one held only by an fd of a process in the host's netns (the
    // process that made it exits; its holder is found by the watcher's
    // rescan)...
    let mut holder = Reaped(
        Command::new("sh")
            .args([
                "-c",
                "unshare -n sleep 600 & sleep 0.3; exec 3</proc/$!/ns/net; kill $!; \
                 echo ready; exec sleep 600",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let holder_pid = holder.0.id();
    let fd_ino = ns_inode(format!("/proc/{holder_pid}/fd/3"));
    assert_ne!(fd_ino, 0);
    // ...and one that lives and dies.
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", "readlink /proc/self/ns/net"])
        .output()
        .unwrap();
    let dead: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("net:[")
        .trim_end_matches(']')
        .parse()
        .unwrap();

    // The watcher's inventory settles: the bind mount and the fd found by
    // its rescan, the dead one found gone.
    let from_args = ["--from", sock.as_str(), "-J"];
    let mut last = BTreeMap::new();
    let settled = wait_for(Duration::from_secs(30), || {
        last = rows(&from_args);
        let has = |inum: u64, kind: &str| {
            net_row(&last, inum).is_some_and(|r| {
                r["holders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h["kind"] == kind)
            })
        };
        let gone = net_row(&last, dead).is_some_and(|r| r.get("gone").is_some());
        (has(bind_ino, "bind-mount") && has(fd_ino, "fd") && gone).then_some(())
    });
    assert!(
        settled.is_some(),
        "the watcher's inventory never showed the bind mount, the fd and the dead one: \
         bind {:?}, fd {:?}, dead {:?}",
        net_row(&last, bind_ino),
        net_row(&last, fd_ino),
        net_row(&last, dead)
    );

    // A scan, the watcher's inventory, another scan: what both scans agree
    // on is what the watcher has (the scans' own listns processes, and
    // whatever else came or went meanwhile, differ between the scans).
    let scan1 = rows(&["-J"]);
    let from = rows(&from_args);
    let scan2 = rows(&["-J"]);
    let mut compared = 0;
    for (key, a) in &scan1 {
        let Some(b) = scan2.get(key) else { continue };
        let f = from
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} is in both scans, not in --from"));
        let stable: BTreeSet<String> = holders(a).intersection(&holders(b)).cloned().collect();
        let has = holders(f);
        // The tracer sees a namespace made, not the owner's reference to
        // it: a user namespace's `child` holders of namespaces made since
        // the watcher's last rescan are not in its inventory yet.
        let made_since = |h: &str| {
            let h: Value = serde_json::from_str(h).unwrap();
            h["kind"] == "child"
                && from.iter().any(|((ty, ns, _), r)| {
                    h["type"] == ty.as_str() && h["ns"] == *ns && r.get("created").is_some()
                })
        };
        let missing: Vec<_> = stable.difference(&has).filter(|h| !made_since(h)).collect();
        assert!(
            missing.is_empty(),
            "{key:?}: --from lacks holders {missing:?} (the test's: bind {bind_ino}, fd {fd_ino})"
        );
        compared += 1;
    }
    assert!(compared > 8, "only {compared} namespaces compared");

    // The test's own: the same holders exactly, and who made them.
    for (inum, who) in [(bind_ino, "ip"), (fd_ino, "unshare")] {
        let scanned = net_row(&scan1, inum).unwrap();
        let f = net_row(&from, inum).unwrap();
        assert_eq!(holders(f), holders(scanned), "net:[{inum}]");
        assert!(scanned.get("created").is_none(), "a scan knows no creator");
        let created = &f["created"];
        assert_eq!(created["comm"], who, "net:[{inum}]: {f}");
        assert!(created["time"].is_string(), "{f}");
        assert_eq!(f["hidden"], false);
    }
    assert_eq!(
        holders(net_row(&from, fd_ino).unwrap()),
        BTreeSet::from([format!(r#"{{"kind":"fd","pid":{holder_pid},"fd":3}}"#)])
    );
    let d = net_row(&from, dead).unwrap();
    assert!(net_row(&scan1, dead).is_none(), "a scan sees no dead netns");
    assert_eq!(d["created"]["comm"], "unshare", "{d}");

    // The table: row for row the same on the namespaces whose rows both
    // scans agree on.
    let table = |extra: &[&str]| -> BTreeMap<String, String> {
        let mut args = vec!["-l", "-n", "-r", "-o", "NS,TYPE,ID,NSFS,PID,COMMAND"];
        args.extend_from_slice(extra);
        String::from_utf8(listns(&args).stdout)
            .unwrap()
            .lines()
            .map(|l| {
                (
                    l.split(' ').take(3).collect::<Vec<_>>().join(" "),
                    l.to_string(),
                )
            })
            .collect()
    };
    let (t1, tf, t2) = (table(&[]), table(&["--from", &sock]), table(&[]));
    let mut same = 0;
    for (k, row) in &t1 {
        if t2.get(k) != Some(row) {
            continue;
        }
        assert_eq!(tf.get(k), Some(row), "table row {k}");
        same += 1;
    }
    assert!(same > 8, "only {same} table rows compared");
    assert!(
        tf.keys().any(|k| k.starts_with(&format!("{dead} net "))),
        "the dead one is a row of --from's table"
    );

    // The other views run from the watcher's inventory too.
    let host_net = ns_inode("/proc/self/ns/net").to_string();
    let procs = String::from_utf8(
        listns(&["--from", &sock, "-l", "-n", "-r", "-o", "PID", &host_net]).stdout,
    )
    .unwrap();
    let watcher_pid = w.child.id().to_string();
    assert!(procs.lines().any(|l| l == watcher_pid), "{procs}");
    listns(&["--from", &sock, "--classic"]);
    let tree = listns(&["--from", &sock, "-J", "--tree=owner", "-t", "user"]);
    let doc: Value = serde_json::from_slice(&tree.stdout).unwrap();
    assert!(!doc["namespaces"].as_array().unwrap().is_empty());
    let q = rows(&["--from", &sock, "-J", "-Q", &format!("NS == {bind_ino}")]);
    assert_eq!(q.len(), 1, "{q:?}");

    drop(bind);
    w.interrupt();
}

#[test]
fn watch_from_follows_the_stream_and_says_when_it_ends() {
    if !require_root() {
        return;
    }
    let (mut w, _dir, sock) = watcher("/v1/namespaces?type=net");
    let spawn = |extra: &[&str]| {
        let mut c = Command::new(listns_bin())
            .args(["watch", "--from", &sock, "--events-only"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(c.stdout.take().unwrap());
        (Reaped(c), out)
    };
    let (mut json, mut json_out) = spawn(&["--json", "-t", "uts"]);
    let (mut text, mut text_out) = spawn(&["-Q", "type == \"uts\" && event == \"created\""]);
    // Both subscribed before the namespace is made: the watcher counts
    // its open streams (a fixed sleep was too short in emulated guests).
    let subscribed = wait_for(Duration::from_secs(60), || {
        let m = get(&At::Unix(sock.as_ref()), "/metrics", &[]).ok()?;
        m.body
            .lines()
            .any(|l| l == "listns_api_streams 2")
            .then_some(())
    });
    assert!(subscribed.is_some(), "the followers never subscribed");
    // A follower that never gets its line is killed, so that the test
    // fails instead of waiting forever.
    // (Called off when the test ends either way: `done` is sent or dropped.)
    let pids = [json.0.id() as i32, text.0.id() as i32];
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let patience = listns_tests::scaled(Duration::from_secs(120));
        if finished.recv_timeout(patience) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            for pid in pids {
                // SAFETY: kill(2) on our own children, still unreaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    });
    let out = Command::new("unshare")
        .args(["-u", "sh", "-c", "readlink /proc/self/ns/uts"])
        .output()
        .unwrap();
    let uts: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("uts:[")
        .trim_end_matches(']')
        .parse()
        .unwrap();
    let mut line = String::new();
    let found = loop {
        line.clear();
        assert!(
            json_out.read_line(&mut line).unwrap() > 0,
            "the stream ended"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "uts", "-t uts: {v}");
        assert!(
            v.get("cursor").is_none(),
            "lines as `watch --json` writes them: {v}"
        );
        if v["event"] == "created" && v["ns"] == uts {
            break v;
        }
    };
    assert_eq!(found["syscall"], "unshare");
    let mut t = String::new();
    text_out.read_line(&mut t).unwrap();
    assert!(
        t.contains(&format!("  created  uts {uts}  by "))
            && t.contains("via unshare(CLONE_NEWUTS)"),
        "{t:?}"
    );
    drop(done);
    // The watcher stops: the followers say so and fail.
    w.interrupt();
    for (c, name) in [(&mut json, "json"), (&mut text, "text")] {
        let status = c.0.wait().unwrap();
        assert!(!status.success(), "{name}: {status}");
        let mut err = String::new();
        std::io::Read::read_to_string(c.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(err.contains("event stream"), "{name}: {err}");
    }
}

/// A netns whose only reference is an nsfs fd in flight in a unix socket
/// (sent, never received): no scan can find it, so a plain `listns` does
/// not list it (nor does `lsns`); the watcher saw it made and, finding it
/// alive with nothing holding it, calls it hidden: `listns --from` lists
/// it, with its creator.
#[test]
fn from_lists_a_hidden_namespace_that_no_scan_finds() {
    if !require_root()
        || !listns_skip::require_kernel(
            listns_tests::kernel_has_nsfs_handles(),
            "nsfs file handles (hidden cannot be told from gone without them)",
            (6, 18),
        )
    {
        return;
    }
    let (mut w, _dir, sock) = watcher("/v1/inventory");
    let (pid, a, b) = listns_tests::kernel::netns_in_flight();
    let created = w
        .wait(Duration::from_secs(10), |v| {
            v["event"] == "created" && v["type"] == "net" && v["pid"] == pid
        })
        .expect("the watcher saw it made");
    let inode = created["ns"].as_u64().unwrap();
    let row = wait_for(Duration::from_secs(30), || {
        let rows = rows(&["--from", &sock, "-J", "-t", "net"]);
        rows.into_iter()
            .find(|((_, ino, _), r)| *ino == inode && r["hidden"] == true)
            .map(|(_, r)| r)
    })
    .expect("listns --from lists the in-flight netns as hidden");
    assert_eq!(row["created"]["pid"], pid, "{row}");
    assert_eq!(row["created"]["syscall"], "unshare", "{row}");
    assert_eq!(row["holders"], serde_json::json!([]), "{row}");
    // A scan cannot see it.
    let scan = rows(&["-J", "-t", "net"]);
    assert!(
        scan.keys().all(|(_, ino, _)| *ino != inode),
        "a scan lists {inode}"
    );
    // The table marks it, with its creator.
    let table = listns(&["--from", &sock, "-t", "net", "-o", "NS,CREATOR,HOLDERS"]);
    let table = String::from_utf8_lossy(&table.stdout);
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with(&inode.to_string()))
        .unwrap_or_else(|| panic!("no row for {inode}:\n{table}"));
    assert!(line.contains("HIDDEN"), "{line}");
    assert!(line.contains(&format!("[{pid}] unshare")), "{line}");
    // SAFETY: closing our own socketpair releases the fd in flight.
    unsafe {
        libc::close(a);
        libc::close(b);
    }
}
