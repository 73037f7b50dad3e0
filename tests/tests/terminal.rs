//! Terminal safety, end to end: real processes whose name (comm) and
//! command line hold escape sequences, bidi overrides, zero-width and
//! other invisible format characters and bytes that are not UTF-8. What
//! `listns` prints for a terminal (table, `--tree`, `--classic`, `listns
//! watch`) must hold none of them raw and must show their escaped forms;
//! `-J` and `watch --json` must carry the exact text (with `<key>_hex` where
//! it is not UTF-8).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use listns_skip::require_root;
use listns_tests::{
    kernel, listns_bin, wait_for,
    watch::{Watch, is, programs},
};
use serde_json::Value;

/// A comm (at most 15 bytes) that is valid UTF-8: clear-screen, a
/// right-to-left override, a zero-width space.
const COMM_UTF8: &[u8] = b"\x1b[2J\xe2\x80\xaeX\xe2\x80\x8bY";
const COMM_UTF8_SHOWN: &str = r"\x1b[2J\u{202e}X\u{200b}Y";
/// A comm that is not UTF-8.
const COMM_BAD: &[u8] = b"\x1b[1A\xe2\x81\xa6Z\xff";
const COMM_BAD_SHOWN: &str = r"\x1b[1A\u{2066}Z\xff";
/// A command line (argv joined by NULs): an OSC title change ending in BEL,
/// cursor up, a bidi override and isolate, ZWNJ, ZWJ, a BOM, a C1 CSI, two
/// bytes that are not UTF-8, and DEL in the second argument. Short: it is
/// written over the test's own argv area (see `Hostile`).
const CMDLINE: &[u8] = b"\x1b]0;pwn\x07\x1b[1A\xe2\x80\xae\xe2\x81\xa6x\xe2\x80\x8c\xe2\x80\x8d\
\xef\xbb\xbf\xc2\x9b\x80\xfe\0a\x7f\0";
/// How a terminal view shows it (NULs between arguments become spaces).
const CMDLINE_SHOWN: &str =
    r"\x1b]0;pwn\x07\x1b[1A\u{202e}\u{2066}x\u{200c}\u{200d}\u{feff}\x9b\x80\xfe a\x7f";

/// What listns's `command` is made of: the kernel's command line, NULs
/// between arguments as spaces, the last NUL dropped.
fn command_bytes(cmdline: &[u8]) -> Vec<u8> {
    let trimmed = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
    trimmed
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fails if `out` holds anything that acts on a terminal: bytes that are
/// not UTF-8, C0 controls other than newline, DEL, C1 controls, bidi
/// overrides and isolates, zero-width and other invisible format
/// characters, line and paragraph separators.
fn assert_terminal_safe(out: &[u8], what: &str) {
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("{what}: a byte that is not UTF-8 reached the terminal: {e}"));
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c as u32,
                0x00ad | 0x061c | 0x180e | 0x200b..=0x200f | 0x2028..=0x202e
                | 0x2060..=0x2069 | 0xfeff | 0xfff9..=0xfffb);
        assert!(
            !bad,
            "{what}: raw {:?} (U+{:04X}) at byte {i}: {:?}",
            c,
            c as u32,
            &text[i.saturating_sub(40)..(i + 40).min(text.len())]
        );
    }
}

/// A forked child with a hostile comm and command line, in a network
/// namespace of its own (so that listns lists it as that namespace's
/// process); killed and reaped on drop.
struct Hostile {
    pid: i32,
    /// Its command line as the kernel shows it.
    cmdline: Vec<u8>,
}

impl Hostile {
    /// Sets the comm (`PR_SET_NAME`) and writes `cmdline` over its argv
    /// area as setproctitle does (no privilege needed: it is the child's
    /// own memory, padded with NULs), then unshares its network namespace
    /// and pauses.
    fn spawn(comm: &[u8], cmdline: &[u8]) -> Hostile {
        assert!(comm.len() < 16, "a comm holds 15 bytes");
        let mut name = [0u8; 16];
        name[..comm.len()].copy_from_slice(comm);
        // Fields 48 and 49 of /proc/self/stat: where argv lives.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let (start, end): (usize, usize) = (rest[45].parse().unwrap(), rest[46].parse().unwrap());
        assert!(
            end - start >= cmdline.len(),
            "this test's argv area ({} bytes) is too small for {} bytes",
            end - start,
            cmdline.len()
        );
        let mut p = [0i32; 2];
        // SAFETY: pipe writes two fds into p.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        // SAFETY: the child makes raw syscalls only (prctl, unshare, write,
        // pause), writes its own argv area, and never returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                let area = start as *mut u8;
                std::ptr::write_bytes(area, 0, end - start);
                std::ptr::copy_nonoverlapping(cmdline.as_ptr(), area, cmdline.len());
                let ok = libc::prctl(libc::PR_SET_NAME, name.as_ptr()) == 0
                    && libc::unshare(libc::CLONE_NEWNET) == 0;
                libc::write(p[1], [ok as u8].as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        let mut ok = [0u8];
        // SAFETY: our copy of the write end closes; one byte is read.
        unsafe {
            libc::close(p[1]);
            libc::read(p[0], ok.as_mut_ptr().cast(), 1);
            libc::close(p[0]);
        }
        let mut child = Hostile {
            pid,
            cmdline: Vec::new(),
        };
        assert_eq!(ok[0], 1, "the hostile child could not set itself up");
        let comm_now = std::fs::read(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(
            comm_now,
            [comm, b"\n"].concat(),
            "the kernel holds the comm"
        );
        child.cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            child.cmdline.starts_with(cmdline)
                && child.cmdline[cmdline.len()..].iter().all(|&b| b == 0),
            "the kernel shows the command line: {:?}",
            child.cmdline
        );
        child
    }

    fn netns(&self) -> u64 {
        listns_tests::ns_inode(format!("/proc/{}/ns/net", self.pid))
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        // SAFETY: our own child, killed and reaped.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

fn listns(args: &[&str]) -> Vec<u8> {
    let out = Command::new(listns_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "listns {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `bytes` (NULs between arguments shown as spaces) as libsmartcols'
/// raw output writes them.
fn lsns_raw(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .map(|b| match b {
            b'!'..=b'~' if b != b'\\' => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

#[test]
fn table_tree_and_classic_escape_hostile_text() {
    if !require_root() {
        return;
    }
    let h = Hostile::spawn(COMM_UTF8, CMDLINE);
    let netns = h.netns().to_string();
    for args in [&["-t", "net"][..], &["--tree"], &["--classic"], &["-r"]] {
        let out = listns(args);
        let what = format!("listns {}", args.join(" "));
        assert_terminal_safe(&out, &what);
        let text = String::from_utf8(out).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains(&netns) || l.contains(&format!(" {} ", h.pid)))
            .unwrap_or_else(|| panic!("{what}: no line for net:[{netns}]:\n{text}"));
        // --classic cuts the command at 60 characters.
        let shown: String = match args {
            ["--classic"] => CMDLINE_SHOWN.chars().take(60).collect(),
            // Raw output escapes as lsns -r (libsmartcols) does: every
            // byte but printable ASCII as \xHH, spaces and backslashes too.
            ["-r"] => lsns_raw(&CMDLINE[..CMDLINE.len() - 1]),
            _ => CMDLINE_SHOWN.into(),
        };
        assert!(
            line.contains(&shown),
            "{what}: the escaped command line is not in {line:?}"
        );
    }
}

#[test]
fn json_carries_the_exact_text() {
    if !require_root() {
        return;
    }
    let h = Hostile::spawn(COMM_UTF8, CMDLINE);
    let v: Value = serde_json::from_slice(&listns(&["-J", "-o", "+PID,COMMAND"])).unwrap();
    let ns = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "net" && n["ns"] == h.netns())
        .expect("the hostile process's netns");
    assert_eq!(ns["pid"], h.pid);
    let cmd = command_bytes(&h.cmdline);
    assert_eq!(ns["command"], String::from_utf8_lossy(&cmd).as_ref());
    assert_eq!(ns["command_hex"], hex(&cmd), "the exact bytes, in hex");
    assert!(
        ns["command"]
            .as_str()
            .unwrap()
            .starts_with("\u{1b}]0;pwn\u{7}\u{1b}[1A\u{202e}\u{2066}x\u{200c}\u{200d}\u{feff}"),
        "real characters, not \\x1b spelled out: {}",
        ns["command"]
    );
}

#[test]
fn watch_text_escapes_and_watch_json_is_exact() {
    if !require_root() {
        return;
    }
    let before = Hostile::spawn(COMM_UTF8, CMDLINE);

    // Text: the inventory table, then one line per event.
    let mut text = TextWatch::start();
    let ok = Hostile::spawn(COMM_UTF8, b"x\0");
    let bad = Hostile::spawn(COMM_BAD, b"y\0");
    for (h, shown) in [(&ok, COMM_UTF8_SHOWN), (&bad, COMM_BAD_SHOWN)] {
        let pid = format!("pid {} ", h.pid);
        let line = text
            .wait(|l| {
                let l = String::from_utf8_lossy(l);
                l.contains(" created ") && l.contains(&pid)
            })
            .unwrap_or_else(|| panic!("no created line for {pid}"));
        let line = String::from_utf8_lossy(&line).into_owned();
        assert!(line.contains(shown), "{shown} not in {line:?}");
    }
    let out = text.stop();
    assert_terminal_safe(&out, "listns watch");
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(CMDLINE_SHOWN),
        "the inventory shows the escaped command line"
    );
    assert!(out.contains(&before.netns().to_string()));
    drop((ok, bad));

    // JSON: the same, exact.
    let mut w = Watch::start(&[]);
    let existing = w
        .wait(Duration::from_secs(5), |v| {
            v["event"] == "existing" && v["type"] == "net" && v["ns"] == before.netns()
        })
        .expect("the hostile netns in the inventory");
    let cmd = command_bytes(&before.cmdline);
    assert_eq!(existing["command"], String::from_utf8_lossy(&cmd).as_ref());
    assert_eq!(existing["command_hex"], hex(&cmd));
    let ok = Hostile::spawn(COMM_UTF8, b"x\0");
    let bad = Hostile::spawn(COMM_BAD, b"y\0");
    for (h, comm) in [(&ok, COMM_UTF8), (&bad, COMM_BAD)] {
        let ev = w
            .wait(Duration::from_secs(10), |v| {
                is(v, "created", "net") && v["pid"] == h.pid
            })
            .unwrap_or_else(|| panic!("no created event for pid {}", h.pid));
        assert_eq!(ev["comm"], String::from_utf8_lossy(comm).as_ref(), "{ev}");
        match std::str::from_utf8(comm) {
            Ok(_) => assert!(
                ev.get("comm_hex").is_none(),
                "exact text needs no hex: {ev}"
            ),
            Err(_) => assert_eq!(ev["comm_hex"], hex(comm), "{ev}"),
        }
    }
    assert!(w.stop(libc::SIGTERM).success());
}

/// `listns watch` in text mode, its stdout kept as raw bytes, line by line.
struct TextWatch {
    child: std::process::Child,
    lines: mpsc::Receiver<Vec<u8>>,
    all: Vec<u8>,
    programs: std::collections::BTreeSet<u32>,
}

impl TextWatch {
    fn start() -> TextWatch {
        let mut child = Command::new(listns_bin())
            .arg("watch")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let pid = child.id().to_string();
        let programs = wait_for(Duration::from_secs(30), || {
            let ids = kernel::prog_ids_of(&pid);
            (ids.len() >= programs()).then_some(ids)
        })
        .expect("listns watch loads its programs");
        let mut w = TextWatch {
            child,
            lines,
            all: Vec::new(),
            programs,
        };
        w.wait(|l| l.starts_with(b"-- watching"))
            .expect("the inventory, then the watching line");
        w
    }

    fn wait(&mut self, mut pred: impl FnMut(&[u8]) -> bool) -> Option<Vec<u8>> {
        let end = Instant::now() + listns_tests::scaled(Duration::from_secs(30));
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let line = self.lines.recv_timeout(left).ok()?;
            self.all.extend_from_slice(&line);
            if pred(&line) {
                return Some(line);
            }
        }
        None
    }

    /// SIGTERM; everything it printed; its programs must be unloaded.
    fn stop(mut self) -> Vec<u8> {
        // SAFETY: our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert!(self.child.wait().unwrap().success());
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.all.extend_from_slice(&line);
        }
        let left = kernel::wait_unloaded(&self.programs, Duration::from_secs(5));
        assert!(left.is_empty(), "programs left loaded: {left:?}");
        std::mem::take(&mut self.all)
    }
}

impl Drop for TextWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
