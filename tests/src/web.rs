//! A real browser for the web page's tests: Debian's headless chromium
//! driven over WebDriver (chromedriver) with fantoccini, its console log
//! read back, screenshots written under `target/web-screenshots/`.
//! chromium and chromium-driver are installed by
//! packaging/install-test-deps.sh (component `chromium`) when missing.

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, wd::WebDriverCompatibleCommand};
use serde_json::{Value, json};

/// Where the tests leave their screenshots: `target/web-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("web-screenshots")
}

/// chromedriver with one chromium session; both killed on drop (the
/// driver leads a process group of its own, which the browser joins).
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// The legacy log command chromedriver still serves: the browser's
/// console messages since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        (hyper::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless chromium of
    /// 1280x800 (as root it needs --no-sandbox).
    pub async fn start() -> Browser {
        let port = crate::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let up = crate::wait_for(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "chromedriver never listened on {port}");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,800", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromium session");
        // The page gets 1280x800 whatever the browser's frame takes.
        let frame = client
            .execute(
                "return [outerWidth - innerWidth, outerHeight - innerHeight]",
                vec![],
            )
            .await
            .expect("the window's frame");
        let frame = |i: usize| frame[i].as_u64().unwrap_or(0) as u32;
        client
            .set_window_size(1280 + frame(0), 800 + frame(1))
            .await
            .expect("a 1280x800 page");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The console messages since the last call: (level, message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("the browser log");
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Runs `script` (a function body: `return ...`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Polls `script` until it returns something truthy; None after
    /// `timeout` (scaled), with a screenshot `timed-out.png`. Returns the
    /// value and how long it took.
    pub async fn until(
        &self,
        timeout: Duration,
        script: &str,
        args: Vec<Value>,
    ) -> Option<(Value, Duration)> {
        let start = Instant::now();
        let end = start + crate::scaled(timeout);
        loop {
            let v = self.js(script, args.clone()).await;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return Some((v, start.elapsed()));
            }
            if Instant::now() > end {
                // What the page showed then, for whoever reads the failure.
                self.screenshot("timed-out").await;
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A screenshot of the window as `target/web-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{name}.png"));
        std::fs::write(&p, png).unwrap();
        eprintln!("screenshot: {}", p.display());
        p
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.kill();
    }

    fn kill(&mut self) {
        // SAFETY: signals our own child's process group.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the browser tests can run here: root, and chromium installed
/// (by packaging/install-test-deps.sh when missing; a failure to install
/// skips, which fails under CI). In the kernel matrix's guests (no
/// browser, no package manager) they skip; the host run covers them.
pub fn require_browser() -> bool {
    if !listns_skip::require_root() {
        return false;
    }
    if std::env::var_os(listns_skip::GUEST_ENV).is_some() {
        return listns_skip::require_on_host(
            false,
            "no chromium in the kernel matrix's guests: the host run drives the page",
        );
    }
    crate::packaging::require_tools(&["chromium"])
}

/// A process in a UTS namespace of its own (`unshare -u`), its argv[0]
/// set to `argv0` (bash's exec -a), run through `unshare_as` (a symlink
/// to unshare whose name becomes the creator's comm); killed on drop.
pub struct Sandbox {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn spawn(unshare_as: &str, argv0: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join(unshare_as);
        std::os::unix::fs::symlink(which("unshare"), &link).unwrap();
        let child = Command::new(&link)
            .args(["-u", "--", "bash", "-c", r#"exec -a "$0" sleep 600"#, argv0])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let ours = crate::ns_inode("/proc/self/ns/uts");
        let own = crate::wait_for(Duration::from_secs(10), || {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (crate::ns_inode(format!("/proc/{pid}/ns/uts")) != ours
                && cmdline.starts_with(argv0.as_bytes()))
            .then_some(())
        });
        assert!(own.is_some(), "the sandbox never unshared and exec'd");
        Sandbox { child, _dir: dir }
    }

    /// Its UTS namespace's id (NS_GET_ID), from the kernel; None before 6.18.
    pub fn id(&self) -> Option<u64> {
        crate::kernel::ns_id_of_path(&format!("/proc/{}/ns/uts", self.child.id()))
    }

    /// Its UTS namespace's inode, from the kernel.
    pub fn uts(&self) -> u64 {
        crate::ns_inode(format!("/proc/{}/ns/uts", self.child.id()))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(tool: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A watcher serving the API (and the page) on loopback port `port`.
pub fn watcher(port: u16, extra: &[&str]) -> (crate::watch::Watch, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let port_s = port.to_string();
    let mut args = vec![
        "--events-only",
        "--api-socket",
        sock.to_str().unwrap(),
        "--api",
        &port_s,
    ];
    args.extend_from_slice(extra);
    let w = crate::watch::Watch::spawn(&args);
    let up = crate::wait_for(Duration::from_secs(60), || {
        let a =
            crate::api::get(&crate::api::At::Unix(&sock), "/v1/namespaces?type=net", &[]).ok()?;
        (a.status == 200).then_some(())
    });
    assert!(up.is_some(), "the API never answered: {:?}", w.stderr());
    (w, dir)
}

/// A raw GET with the Host header given: (status, head, body).
pub fn get_as(port: u16, host: &str, path: &str, extra: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}
