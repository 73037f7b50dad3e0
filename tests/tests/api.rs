//! The watcher's inventory API, for real: a `listns watch` with its eBPF
//! programs, asked over its unix socket and over TCP by a client written
//! by hand. Who may ask (socket mode, bearer token), what a bad request is
//! told, that the stream delivers what the tracer sees, and that clients
//! that send too much or read too little are cut off while the watcher
//! goes on.

use std::{
    io::{Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    process::Command,
    time::{Duration, Instant},
};

use listns_skip::require_root;
use listns_tests::{
    api::{At, Events, get},
    free_port, listns_bin, ns_inode,
    watch::Watch,
};

/// A watcher serving the API on a socket in a fresh directory.
fn watcher(extra: &[&str]) -> (Watch, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let mut args = vec!["--events-only", "--api-socket", sock.to_str().unwrap()];
    args.extend_from_slice(extra);
    let w = Watch::spawn(&args);
    let up = listns_tests::wait_for(Duration::from_secs(60), || {
        let a = get(&At::Unix(&sock), "/v1/namespaces?type=net", &[]).ok()?;
        (a.status == 200).then_some(())
    });
    assert!(up.is_some(), "the API never answered: {:?}", w.stderr());
    (w, dir, sock)
}

#[test]
fn api_socket_is_the_owners_and_errors_say_what_and_where() {
    if !require_root() {
        return;
    }
    let (w, _dir, sock) = watcher(&[]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    // Another user cannot connect.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(listns_bin())
        .args(["--from", sock.to_str().unwrap(), "-J"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "nobody read the inventory");
    let at = At::Unix(&sock);
    // 400s, each naming the parameter.
    for (path, param) in [
        ("/v1/namespaces?type=nett", "type"),
        ("/v1/namespaces?filter=NS%20%3D%3D", "filter"),
        ("/v1/namespaces?tree=up", "tree"),
        ("/v1/namespaces?colour=red", "colour"),
        ("/v1/namespaces/not-an-id", "id"),
        ("/v1/events?since=999999999", "since"),
        ("/v1/gone?since=yesterday", "since"),
    ] {
        let a = get(&at, path, &[]).unwrap();
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.json()["param"], param, "{path}: {}", a.body);
    }
    let a = get(&at, "/v1/namespaces?filter=NS%20%3D%3D", &[]).unwrap();
    assert_eq!(a.json()["position"], 6);
    assert_eq!(get(&at, "/v1/namespaces/net:1", &[]).unwrap().status, 404);
    assert_eq!(get(&at, "/v1/nothing", &[]).unwrap().status, 404);
    // The host's own network namespace, by TYPE:INODE.
    let host_net = ns_inode("/proc/self/ns/net");
    let a = get(&at, &format!("/v1/namespaces/net:{host_net}"), &[]).unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let d = a.json();
    assert_eq!(d["namespace"]["ns"], host_net);
    assert!(
        d["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == w.child.id()),
        "the watcher itself is in the host's netns"
    );
    // The OpenAPI document served is the one committed (which a real
    // validator checks, tests/tests/packaging/openapi.rs).
    let a = get(&at, "/v1/openapi.json", &[]).unwrap();
    assert_eq!(a.status, 200);
    // Embedded: the kernel matrix's guests have the test binary, not the
    // source tree.
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/openapi.json")).unwrap();
    assert_eq!(a.json(), committed);
    // Metrics and health are on the socket too.
    assert_eq!(get(&at, "/healthz", &[]).unwrap().status, 200);
    let m = get(&at, "/metrics", &[]).unwrap();
    assert!(
        m.body
            .contains("listns_http_requests_total{endpoint=\"namespaces\",code=\"400\"}"),
        "{}",
        m.body
    );
}

#[test]
fn api_over_tcp_beyond_loopback_needs_the_token() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Refused without a token file: the whole inventory would be open.
    let port = free_port();
    let out = Command::new(listns_bin())
        .args(["watch", "--no-api", "--duration", "5", "--api"])
        .arg(format!("0.0.0.0:{port}"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--api-token-file"), "{err}");

    let token = "s3cret-token-0123456789";
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let port = free_port();
    let mut w = Watch::spawn(&[
        "--events-only",
        "--no-api",
        "--api",
        &format!("0.0.0.0:{port}"),
        "--api-token-file",
        file.to_str().unwrap(),
    ]);
    let at = At::Tcp(port);
    let up = listns_tests::wait_for(Duration::from_secs(60), || {
        let a = get(&at, "/healthz", &[]).ok()?;
        (a.status == 200).then_some(())
    });
    assert!(up.is_some(), "{:?}", w.stderr());
    let a = get(&at, "/v1/namespaces", &[]).unwrap();
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    let a = get(
        &at,
        "/v1/namespaces",
        &["Authorization: Bearer wrong-token-0123456789"],
    )
    .unwrap();
    assert_eq!(a.status, 401);
    let a = get(
        &at,
        "/v1/namespaces",
        &[&format!("Authorization: Bearer {token}")],
    )
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.json()["namespaces"]
            .as_array()
            .is_some_and(|n| !n.is_empty())
    );
    w.interrupt();
}

#[test]
fn api_stream_delivers_a_new_namespace_within_a_second() {
    if !require_root() {
        return;
    }
    let (_w, _dir, sock) = watcher(&[]);
    let mut events = Events::open(&At::Unix(&sock), "/v1/events/stream").unwrap();
    let mut child = Command::new("unshare")
        .args(["--net", "sleep", "30"])
        .spawn()
        .unwrap();
    let made = Instant::now();
    let path = format!("/proc/{}/ns/net", child.id());
    let inode = listns_tests::wait_for(Duration::from_secs(5), || {
        let i = ns_inode(&path);
        (i != ns_inode("/proc/self/ns/net")).then_some(i)
    })
    .expect("unshare made its netns");
    let created = loop {
        let m = events.next_event().expect("the stream goes on");
        if m.event == "created" && m.data["ns"] == inode {
            break m;
        }
    };
    // The bar for a live stream (the tracer's lag is ~20 ms).
    assert!(
        made.elapsed() < Duration::from_secs(1),
        "{:?}",
        made.elapsed()
    );
    assert_eq!(created.data["type"], "net");
    assert_eq!(created.data["syscall"], "unshare");
    assert_eq!(created.data["cursor"], created.id.unwrap());
    // The same event by replay, from the cursor before it.
    let since = created.id.unwrap() - 1;
    let page = get(
        &At::Unix(&sock),
        &format!("/v1/events?since={since}&limit=1"),
        &[],
    )
    .unwrap()
    .json();
    assert_eq!(page["events"][0], created.data);
    assert_eq!(page["next"], since + 1);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn api_cuts_off_oversized_requests_and_clients_that_stop_reading() {
    if !require_root() {
        return;
    }
    let (w, _dir, sock) = watcher(&[]);
    let at = At::Unix(&sock);
    // A head of 64 KiB: refused, and the connection closed.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = format!(
        "GET /v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    let _ = s.write_all(big.as_bytes());
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:.200}"
    );
    // A stream that is never read: the socket buffers fill, then the
    // watcher's backlog for it; it is cut, the others are not.
    let mut stalled = UnixStream::connect(&sock).unwrap();
    stalled
        .write_all(b"GET /v1/events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = Events::open(&at, "/v1/events/stream").unwrap();
    let made = std::thread::spawn(|| {
        // About 3 events each (created, left, gone): past the 4,096
        // frames a stream may fall behind, and the socket's buffer. Forked
        // children that unshare and exit, not `unshare(1)`: no exec, so
        // that the emulated guests of the kernel matrix make them quickly.
        for _ in 0..2_500 {
            // SAFETY: the child makes one raw system call, then _exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe { libc::_exit(libc::unshare(libc::CLONE_NEWUTS)) };
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
    });
    let cut = listns_tests::wait_for(Duration::from_secs(120), || {
        let m = get(&at, "/metrics", &[]).ok()?;
        m.body
            .lines()
            .find_map(|l| l.strip_prefix("listns_http_clients_cut_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|&n| n >= 1.0)
    });
    made.join().unwrap();
    assert!(cut.is_some(), "the stalled stream was never cut");
    // The stalled connection was closed: reading it to the end finishes.
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut sink = Vec::new();
    let r = stalled.read_to_end(&mut sink);
    assert!(r.is_ok(), "the cut connection never closed: {r:?}");
    // A reader that kept up still gets events, and the watcher answers.
    let m = reader.next_event().unwrap();
    assert!(m.id.is_some());
    let health = get(&at, "/healthz", &[]).unwrap();
    assert_eq!(health.status, 200, "/healthz: {}", health.body);
    assert!(w.stderr().iter().all(|l| !l.contains("panicked")));
}
