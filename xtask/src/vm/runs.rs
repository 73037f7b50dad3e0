//! Running the static tests: directly on the host kernel, or in a QEMU
//! guest whose serial console is read until its verdict or a timeout.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Write as _},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::{
    VmArgs,
    build::StaticBuild,
    console::{M_BEGIN, M_BENCH, M_END, M_KERNEL, Parsed},
    kernel::Kernel,
};

/// One kernel's outcome.
pub(super) struct Outcome {
    pub(super) kernel: String,
    pub(super) passed: bool,
    /// Why it failed when no test said so (timeout, crash, boot failure).
    pub(super) verdict: String,
    /// Per test executable: its name and its summary line (or rc).
    pub(super) results: Vec<(String, String)>,
    /// What benches printed (console::M_BENCH lines).
    pub(super) bench: Vec<String>,
    pub(super) secs: f64,
}

/// Runs the same static executables on the host kernel, with the guests'
/// extra environment (`KEY=VALUE`, checked when the initramfs was made).
pub(super) fn on_host(
    build: &StaticBuild,
    test_args: &[String],
    guest_env: &[String],
    logs: &Path,
) -> Result<Outcome> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let kernel = format!("host {release}");
    eprintln!("\n== {kernel}: running the tests directly");
    let start = Instant::now();
    let log_path = logs.join("host.log");
    let mut log = fs::File::create(&log_path)?;
    let mut parsed = Parsed::default();
    for (name, exe) in &build.tests {
        let out = Command::new(exe)
            .args(["--test-threads=1", "--color=never", "--show-output"])
            .args(test_args)
            .env("CI", std::env::var("CI").unwrap_or_else(|_| "true".into()))
            .env("CARGO_TARGET_DIR", &build.target_dir_for_tests)
            .envs(guest_env.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        let mut text = format!("{M_BEGIN}{name}\n");
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let _ = writeln!(text, "{M_END}{name} rc={}", out.status.code().unwrap_or(-1));
        log.write_all(text.as_bytes())?;
        for line in text.lines() {
            parsed.line(line);
        }
    }
    let passed = parsed.ends.iter().all(|(_, rc, _)| *rc == 0);
    Ok(report(
        kernel,
        passed,
        String::new(),
        &parsed,
        start,
        &log_path,
    ))
}

/// Boots one kernel with the initramfs and reads its serial console.
pub(super) fn in_guest(k: &Kernel, initrd: &Path, args: &VmArgs, logs: &Path) -> Result<Outcome> {
    let kernel = k.release.clone();
    eprintln!(
        "\n== {kernel} ({}): booting under QEMU (TCG), timeout {} s",
        k.package, args.timeout
    );
    let start = Instant::now();
    let log_path = logs.join(format!("{kernel}.log"));
    let mut log = fs::File::create(&log_path)?;
    let mut child = Command::new("qemu-system-x86_64")
        // `-cpu max` gives the emulated CPU RDRAND, which seeds the guest's
        // random pool at boot: without it getrandom(2) blocks for minutes
        // (the tests' JSON Schema validator hashes with a random key).
        .arg("-m")
        .arg(args.memory.to_string())
        .args(["-cpu", "max", "-nographic", "-no-reboot", "-kernel"])
        .arg(&k.vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args([
            "-append",
            "console=ttyS0 panic=-1 quiet random.trust_cpu=on",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']).replace('\r', "");
                if tx.send(line).is_err() {
                    break;
                }
                buf.clear();
            }
        });
    }
    drop(tx);
    let deadline = start + Duration::from_secs(args.timeout);
    let mut parsed = Parsed::default();
    let mut verdict = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                writeln!(log, "{line}")?;
                if args.verbose {
                    eprintln!("[{kernel}] {line}");
                } else if line.starts_with("test result: ") || line.starts_with(M_KERNEL) {
                    eprintln!("  {line}");
                } else if let Some(b) = line.strip_prefix(M_BENCH) {
                    eprintln!("  [{kernel}] {b}");
                }
                parsed.line(&line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                verdict = format!("timed out after {} s", args.timeout);
                break;
            }
        }
    }
    let _ = child.kill();
    let status = child.wait()?;
    let passed = match parsed.done {
        Some(true) => parsed.ends.iter().all(|(_, rc, _)| *rc == 0),
        Some(false) => false,
        None => {
            if verdict.is_empty() {
                verdict = format!(
                    "the guest stopped without a verdict (qemu {status}): boot failure or crash"
                );
            }
            false
        }
    };
    if let Some(seen) = &parsed.kernel
        && seen != &k.release
    {
        verdict = format!("booted {seen}, expected {}", k.release);
    }
    Ok(report(kernel, passed, verdict, &parsed, start, &log_path))
}

fn report(
    kernel: String,
    passed: bool,
    verdict: String,
    parsed: &Parsed,
    start: Instant,
    log: &Path,
) -> Outcome {
    let secs = start.elapsed().as_secs_f64();
    let results = parsed.results();
    eprintln!(
        "== {kernel}: {} in {secs:.1} s{}",
        if passed { "PASS" } else { "FAIL" },
        if verdict.is_empty() {
            String::new()
        } else {
            format!(" ({verdict})")
        }
    );
    for (name, summary) in &results {
        eprintln!("   {name}: {summary}");
    }
    let mut seen = BTreeSet::new();
    for line in &parsed.notable {
        // Failures in full; each distinct skip or note once.
        if !passed || seen.insert(line.clone()) {
            eprintln!("   | {line}");
        }
    }
    if !passed {
        eprintln!("   full console/output: {}", log.display());
    }
    Outcome {
        kernel,
        passed,
        verdict,
        results,
        bench: parsed.bench.clone(),
        secs,
    }
}
