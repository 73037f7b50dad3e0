//! `cargo xtask integration-test vm`: the privileged tests on the kernels
//! users run, not only on this machine's.
//!
//! The `tests` crate's integration tests (and listns-user's unit tests, which
//! resolve struct offsets from the running kernel's BTF) are built once as
//! static executables and run
//! - on the host kernel, directly;
//! - in a QEMU guest (software emulation: KVM does not work on these
//!   machines) for each Debian `-cloud-amd64` kernel series asked for, the
//!   newest package of each series that apt knows of.
//!
//! A guest has no disk: its initramfs holds a static busybox (the shell,
//! `mount`, `sleep`...), the host's `ip`, `lsns`, `unshare`, `nsenter` and `setpriv`
//! with their shared libraries, the test executables, a static `listns`
//! and an `/init` script that mounts what the tests need, runs every test
//! executable and prints marker lines on the serial console.
//! xtask reads the console, prints each test runner's summary per kernel,
//! and fails when any kernel fails, a guest gives no verdict before its
//! timeout, or a kernel package cannot be fetched.
//!
//! Downloads are cached in `target/vm-cache`; the static build goes to
//! `target/vm-build` so the host build is not invalidated.

use std::{fs, path::Path, time::Instant};

use anyhow::{Context, Result, bail};

mod build;
mod console;
mod host;
mod initramfs;
mod kernel;
mod runs;
mod sid;
pub(crate) mod systemd;

pub(crate) use host::{elf_is_static, on_path};
use runs::Outcome;

/// Rust target of the static test executables (the guests are x86_64 too).
pub(crate) const TARGET: &str = "x86_64-unknown-linux-gnu";
/// RUSTFLAGS of every static build (the guests' and the container image's).
pub(crate) const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";
/// Integration test suites that do not depend on the kernel, left out of
/// the guests.
const HOST_ONLY: [&str; 5] = ["packaging", "service", "terminal", "skips", "docs"];

/// What `integration-test vm` was asked to do.
#[derive(Debug, clap::Args)]
pub struct VmArgs {
    /// Debian kernel series to boot (newest `linux-image-<SERIES>.*-cloud-amd64` apt knows of),
    /// or `sid`: Debian unstable's newest cloud kernel (through a private apt state).
    #[arg(long, value_delimiter = ',', default_value = "6.1,6.12,sid")]
    pub kernels: Vec<String>,
    /// Seconds a guest may run before it counts as failed.
    #[arg(long, default_value_t = 1500)]
    pub timeout: u64,
    /// Do not run the tests on the host kernel (`cargo xtask test` does too).
    #[arg(long)]
    pub no_host: bool,
    /// Print every console line of the guests as it arrives.
    #[arg(long, short)]
    pub verbose: bool,
    /// Guest memory in MiB (`qemu -m`).
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    /// Only these test executables (by name: `scan`, `trace`, ...), in the
    /// guests and on the host; the others are left out of the initramfs.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// `KEY=VALUE` exported by the guests' /init before the tests run (a
    /// bench's sizes, say); the host's run gets them too.
    #[arg(long = "guest-env", value_name = "KEY=VALUE")]
    pub guest_env: Vec<String>,
    /// Also put a static release build of listns in the guests, at
    /// /target/release/listns (`listns_tests::listns_bin_release()`: benches).
    #[arg(long)]
    pub release_listns: bool,
    /// Arguments for every test executable (a test name filter, ...), after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub test_args: Vec<String>,
}

pub fn run(root: &Path, args: &VmArgs) -> Result<()> {
    let start = Instant::now();
    let cache = root.join("target/vm-cache");
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    host::ensure_tools()?;
    // Kernels first: a missing package fails the run before the long build.
    let mut kernels = Vec::new();
    for series in &args.kernels {
        kernels.push(kernel::fetch(&cache, series)?);
    }
    let t = Instant::now();
    let mut build = build::build_static(root)?;
    if !args.only.is_empty() {
        for name in &args.only {
            if !build.tests.iter().any(|(n, _)| n == name) {
                bail!("--only {name}: no such test executable");
            }
        }
        build.tests.retain(|(n, _)| args.only.contains(n));
    }
    if args.release_listns {
        build.listns_release = Some(crate::package::build_static_release(root)?);
    }
    eprintln!(
        "xtask vm: not run in the guests (they check userspace only; `cargo xtask test` runs them on the host): {}",
        HOST_ONLY.join(", ")
    );
    eprintln!(
        "xtask vm: static test build in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        build
            .tests
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let t = Instant::now();
    let initrd = initramfs::make(&cache, &build, &args.test_args, &args.guest_env)?;
    eprintln!(
        "xtask vm: initramfs {} ({} MB) in {:.1} s",
        initrd.display(),
        fs::metadata(&initrd)?.len() >> 20,
        t.elapsed().as_secs_f64()
    );
    let logs = cache.join("logs");
    fs::create_dir_all(&logs)?;

    let mut outcomes = Vec::new();
    if !args.no_host {
        outcomes.push(runs::on_host(
            &build,
            &args.test_args,
            &args.guest_env,
            &logs,
        )?);
    }
    // The guests boot side by side: each is one emulated CPU (TCG), so two
    // or three at once use the host's CPUs instead of waiting in turn.
    let guests: Vec<Result<Outcome>> = std::thread::scope(|s| {
        let running: Vec<_> = kernels
            .iter()
            .map(|k| {
                let (initrd, logs) = (&initrd, &logs);
                s.spawn(move || runs::in_guest(k, initrd, args, logs))
            })
            .collect();
        running
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a guest's thread panicked")))
            })
            .collect()
    });
    for g in guests {
        outcomes.push(g?);
    }

    println!(
        "\nkernel matrix ({:.0} s in all; logs in {}):",
        start.elapsed().as_secs_f64(),
        logs.display()
    );
    for o in &outcomes {
        println!(
            "  {:<32} {}  ({:.1} s){}",
            o.kernel,
            if o.passed { "PASS" } else { "FAIL" },
            o.secs,
            if o.verdict.is_empty() {
                String::new()
            } else {
                format!("  {}", o.verdict)
            }
        );
        for (name, summary) in &o.results {
            println!("      {name}: {summary}");
        }
        // What benches printed (their tables), in full.
        if !o.bench.is_empty() {
            println!();
            for line in &o.bench {
                println!("    {line}");
            }
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.kernel.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("the tests failed on {}", failed.join(", "));
    }
    Ok(())
}
