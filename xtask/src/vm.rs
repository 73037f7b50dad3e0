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

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use cargo_metadata::Message;

mod sid;

/// Rust target of the static test executables (the guests are x86_64 too).
pub(crate) const TARGET: &str = "x86_64-unknown-linux-gnu";
/// RUSTFLAGS of every static build (the guests' and the container image's).
pub(crate) const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";
/// Integration test suites that do not depend on the kernel, left out of
/// the guests.
const HOST_ONLY: [&str; 4] = ["packaging", "service", "terminal", "skips"];

/// Marker lines the guest's /init prints (see `INIT`).
const M_KERNEL: &str = "LISTNS-VM-KERNEL: ";
const M_BEGIN: &str = "LISTNS-VM-BEGIN: ";
const M_END: &str = "LISTNS-VM-END: ";
const M_DONE: &str = "LISTNS-VM-DONE: ";

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
    /// Arguments for every test executable (a test name filter, ...), after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub test_args: Vec<String>,
}

/// One kernel's outcome.
struct Outcome {
    kernel: String,
    passed: bool,
    /// Why it failed when no test said so (timeout, crash, boot failure).
    verdict: String,
    /// Per test executable: its name and its summary line (or rc).
    results: Vec<(String, String)>,
    secs: f64,
}

pub fn run(root: &Path, args: &VmArgs) -> Result<()> {
    let start = Instant::now();
    let cache = root.join("target/vm-cache");
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    ensure_host_tools()?;
    // Kernels first: a missing package fails the run before the long build.
    let mut kernels = Vec::new();
    for series in &args.kernels {
        kernels.push(fetch_kernel(&cache, series)?);
    }
    let t = Instant::now();
    let build = build_static(root)?;
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
    let initrd = make_initramfs(&cache, &build, &args.test_args)?;
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
        outcomes.push(run_host(&build, &args.test_args, &logs)?);
    }
    // The guests boot side by side: each is one emulated CPU (TCG), so two
    // or three at once use the host's CPUs instead of waiting in turn.
    let guests: Vec<Result<Outcome>> = std::thread::scope(|s| {
        let running: Vec<_> = kernels
            .iter()
            .map(|k| {
                let (initrd, logs) = (&initrd, &logs);
                s.spawn(move || run_guest(k, initrd, args, logs))
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

// ---------------------------------------------------------------- host tools

/// Installs QEMU, a static busybox and cpio from the package registry when
/// they are missing (root only; else says what to install).
fn ensure_host_tools() -> Result<()> {
    let mut missing = Vec::new();
    if !on_path("qemu-system-x86_64") {
        missing.push("qemu-system-x86");
    }
    if !is_static_busybox(Path::new("/bin/busybox")) {
        missing.push("busybox-static");
    }
    if !on_path("cpio") {
        missing.push("cpio");
    }
    for tool in ["apt-get", "apt-cache", "dpkg", "gzip"] {
        if !on_path(tool) {
            bail!("{tool} is missing: the kernel matrix needs a Debian-like host");
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing {}; install them: apt-get install --no-install-recommends {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!(
        "xtask vm: installing {} (note: qemu-system-x86 brings Debian's qemu-utils)",
        missing.join(" ")
    );
    apt_update()?;
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!("apt-get install {} failed ({status})", missing.join(" "));
    }
    Ok(())
}

pub(crate) fn on_path(tool: &str) -> bool {
    which::which(tool).is_ok()
}

/// A busybox with no ELF interpreter (the guest has no libc).
fn is_static_busybox(path: &Path) -> bool {
    elf_is_static(path).unwrap_or(false)
}

/// Whether a file is a 64-bit little-endian ELF without a PT_INTERP program
/// header (an error when it cannot be read or is no such ELF). Reads only
/// the file header and the program headers, not the whole executable.
pub(crate) fn elf_is_static(path: &Path) -> Result<bool> {
    use object::{
        LittleEndian,
        elf::{FileHeader64, PT_INTERP},
        read::{ReadCache, elf::FileHeader as _, elf::ProgramHeader as _},
    };
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let data = ReadCache::new(file);
    let not_elf = |e: object::Error| anyhow::anyhow!("{}: {e}", path.display());
    let header = FileHeader64::<LittleEndian>::parse(&data).map_err(not_elf)?;
    let endian = header.endian().map_err(not_elf)?;
    let headers = header.program_headers(endian, &data).map_err(not_elf)?;
    Ok(headers.iter().all(|ph| ph.p_type(endian) != PT_INTERP))
}

fn apt_update() -> Result<()> {
    let status = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()
        .context("running apt-get update")?;
    if !status.success() {
        bail!("apt-get update failed ({status})");
    }
    Ok(())
}

// ------------------------------------------------------------------ kernels

/// A kernel to boot.
struct Kernel {
    /// `uname -r` of the kernel, e.g. 6.1.0-57-cloud-amd64.
    release: String,
    package: String,
    vmlinuz: PathBuf,
}

/// Picks the newest `linux-image-<series>.*-cloud-amd64` package apt knows
/// of (the signed one, or the `-unsigned` build of the same kernel), and
/// unpacks its vmlinuz into the cache unless it is there already.
fn fetch_kernel(cache: &Path, series: &str) -> Result<Kernel> {
    if series == sid::SERIES {
        return sid::fetch(cache);
    }
    let mut names = cloud_images(series)?;
    if names.is_empty() {
        eprintln!("xtask vm: no linux-image-{series}.*-cloud-amd64 in apt's lists; apt-get update");
        apt_update()?;
        names = cloud_images(series)?;
    }
    let Some((_, package, release)) = names.into_iter().max() else {
        bail!(
            "no Debian kernel package linux-image-{series}.*-cloud-amd64 is known to apt \
             (apt-cache search linux-image | grep cloud-amd64): cannot test on {series}"
        );
    };
    let dir = cache.join("kernels").join(&package);
    let vmlinuz = dir.join("vmlinuz");
    if vmlinuz.is_file() {
        return Ok(Kernel {
            release,
            package,
            vmlinuz,
        });
    }
    eprintln!("xtask vm: downloading {package}");
    let tmp = cache.join("kernels").join(format!("{package}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let status = Command::new("apt-get")
        .args(["download", "-qq", "-o", "APT::Sandbox::User=root", &package])
        .current_dir(&tmp)
        .status()
        .context("running apt-get download")?;
    if !status.success() {
        bail!("apt-get download {package} failed ({status}): cannot test on {series}");
    }
    let deb = fs::read_dir(&tmp)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb"))?;
    let tree = tmp.join("x");
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&tree)
        .status()
        .context("running dpkg -x")?;
    if !status.success() {
        bail!("dpkg -x {} failed ({status})", deb.display());
    }
    let image = tree.join("boot").join(format!("vmlinuz-{release}"));
    if !image.is_file() {
        bail!("{package} has no boot/vmlinuz-{release}");
    }
    fs::create_dir_all(&dir)?;
    fs::copy(&image, dir.join("vmlinuz.part"))?;
    fs::rename(dir.join("vmlinuz.part"), &vmlinuz)?;
    fs::remove_dir_all(&tmp)?;
    Ok(Kernel {
        release,
        package,
        vmlinuz,
    })
}

/// (version key, package name, kernel release) of every cloud image of a series.
fn cloud_images(series: &str) -> Result<Vec<(Vec<u64>, String, String)>> {
    let out = Command::new("apt-cache")
        .args(["search", "--names-only", &format!("^linux-image-{series}")])
        .output()
        .context("running apt-cache search")?;
    if !out.status.success() {
        bail!(
            "apt-cache search failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(parse_cloud_images(series, &text))
}

fn parse_cloud_images(series: &str, apt_search: &str) -> Vec<(Vec<u64>, String, String)> {
    let prefix = format!("linux-image-{series}.");
    let mut out = Vec::new();
    for line in apt_search.lines() {
        let name = line.split(" - ").next().unwrap_or("").trim();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let (middle, signed) = if let Some(m) = rest.strip_suffix("-cloud-amd64") {
            (m, true)
        } else if let Some(m) = rest.strip_suffix("-cloud-amd64-unsigned") {
            (m, false)
        } else {
            continue;
        };
        // 6.1: "0-57"; 6.12: "117+deb12". Numbers only, or it is not a kernel.
        let key: Vec<u64> = middle
            .split(['-', '+', '.'])
            .map(|p| p.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
            .map(str::parse)
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        if key.is_empty() {
            continue;
        }
        let mut key = key;
        key.push(signed as u64); // the signed package wins a tie
        let release = format!("{series}.{middle}-cloud-amd64");
        out.push((key, name.to_string(), release));
    }
    out
}

// ------------------------------------------------------------ static build

struct StaticBuild {
    /// (short name, executable) of every test executable.
    tests: Vec<(String, PathBuf)>,
    /// The static `listns` binary (some tests run it).
    listns: PathBuf,
    /// What `CARGO_TARGET_DIR` must be for `listns_tests::listns_bin()` to find `listns`.
    target_dir_for_tests: PathBuf,
}

/// Builds the test executables and `listns` statically linked, into
/// `target/vm-build` (a target dir of their own: other RUSTFLAGS would
/// otherwise rebuild the host's artifacts every time).
fn build_static(root: &Path) -> Result<StaticBuild> {
    let target_dir = root.join("target/vm-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&cargo);
        c.current_dir(root)
            .args(args)
            .args(["--target", TARGET])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", STATIC_RUSTFLAGS)
            // Smaller executables, a smaller initramfs, a faster build.
            .env("CARGO_PROFILE_DEV_DEBUG", "0");
        c
    };
    let out = cmd(&[
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
        "--package",
        "listns-tests",
        "--package",
        "listns-user",
        "--tests",
    ])
    .stderr(Stdio::inherit())
    .output()
    .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!(
            "building the static test executables failed ({})",
            out.status
        );
    }
    let mut tests = Vec::new();
    for msg in Message::parse_stream(out.stdout.as_slice()) {
        let Message::CompilerArtifact(art) = msg.context("reading cargo's JSON messages")? else {
            continue;
        };
        let Some(exe) = art.executable.filter(|_| art.profile.test) else {
            continue;
        };
        let target = &art.target.name;
        // Integration tests by their file name; the library's unit tests
        // (which resolve offsets from the running kernel's BTF) as `unit`.
        let name = if art.target.is_test() {
            // Suites that check userspace only (files, containers, systemd,
            // HTTP, escaping, skips) run once, on the host, in `cargo xtask
            // test`; under emulation they would only cost minutes.
            if HOST_ONLY.contains(&target.as_str()) {
                continue;
            }
            target.clone()
        } else if art.target.is_lib() && art.manifest_path.ends_with("listns-user/Cargo.toml") {
            format!("{target}-unit")
        } else {
            continue; // other unit tests: nothing kernel-specific
        };
        tests.push((name, exe.into_std_path_buf()));
    }
    tests.sort();
    tests.dedup();
    if tests.is_empty() {
        bail!("cargo built no test executables");
    }
    let status = cmd(&["build", "--package", "listns-user", "--bin", "listns"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the static listns failed ({status})");
    }
    let arch_dir = target_dir.join(TARGET);
    let listns = arch_dir.join("debug/listns");
    for exe in tests.iter().map(|(_, p)| p).chain([&listns]) {
        if !elf_is_static(exe)? {
            bail!(
                "{} is dynamically linked: the guests have no libc",
                exe.display()
            );
        }
    }
    Ok(StaticBuild {
        tests,
        listns,
        target_dir_for_tests: arch_dir,
    })
}

// --------------------------------------------------------------- initramfs

/// The guest's /init. It must end with a `LISTNS-VM-DONE:` line; anything
/// else (a crash, a hang until the timeout) is a failure.
const INIT: &str = r#"#!/bin/sh
export PATH=/usr/bin:/bin HOME=/root TMPDIR=/tmp
# Privileged tests must run, never skip (CI); listns_bin() finds
# /target/debug/listns.
export CI=true CARGO_TARGET_DIR=/target RUST_BACKTRACE=1
# Emulated (TCG) and sharing the host's CPUs with the other guests: the
# tests' timeouts stretch five times (listns_tests::scaled).
export LISTNS_TEST_TIME_SCALE=5
mkdir -p /proc /sys /dev /run /tmp /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Pseudo-terminals (the lsns parity test runs listns on one).
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts || echo "listns-vm: devpts could not be mounted"
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing || echo "listns-vm: tracefs could not be mounted"
# Loopback up: the service tests talk HTTP to listns on 127.0.0.1.
ip link set lo up || echo "listns-vm: lo could not be brought up"
mount -t bpf bpf /sys/fs/bpf || echo "listns-vm: bpffs could not be mounted"
mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "listns-vm: cgroup2 could not be mounted"
echo "LISTNS-VM-KERNEL: $(uname -r)"
fail=0
for t in /tests/*; do
  name=${t##*/}
  echo "LISTNS-VM-BEGIN: $name"
  "$t" --test-threads=1 --color=never --show-output @ARGS@
  rc=$?
  echo "LISTNS-VM-END: $name rc=$rc"
  [ "$rc" -eq 0 ] || fail=1
done
if [ "$fail" -eq 0 ]; then echo "LISTNS-VM-DONE: PASS"; else echo "LISTNS-VM-DONE: FAIL"; fi
sync
poweroff -f
"#;

/// Tools the tests run that busybox lacks (`ip netns`, `lsns`) or does
/// differently: the host's own, with the shared libraries they load, so the
/// guests drive the same tools as the host. (tool, Debian package)
const HOST_TOOLS: [(&str, &str); 5] = [
    ("ip", "iproute2"),
    ("lsns", "util-linux"),
    ("unshare", "util-linux"),
    ("nsenter", "util-linux"),
    // The skip test runs a test executable as another user.
    ("setpriv", "util-linux"),
];

/// Copies a host tool to /usr/bin and every library `ldd` names to the same
/// path in the initramfs.
fn copy_host_tool(stage: &Path, (tool, package): (&str, &str)) -> Result<()> {
    let Ok(path) = which::which(tool) else {
        bail!("{tool} is missing on the host: apt-get install {package}");
    };
    fs::copy(&path, stage.join("usr/bin").join(tool))
        .with_context(|| format!("copying {}", path.display()))?;
    let out = Command::new("ldd")
        .arg(&path)
        .output()
        .context("running ldd")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no path.
        let lib = line.split("=>").last().unwrap_or("").trim();
        let lib = lib.split(" (").next().unwrap_or("").trim();
        if !lib.starts_with('/') {
            continue;
        }
        let dest = stage.join(lib.trim_start_matches('/'));
        if dest.exists() {
            continue;
        }
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(lib, &dest).with_context(|| format!("copying {lib}"))?;
    }
    Ok(())
}

/// Writes `target/vm-cache/initramfs.cpio.gz`: busybox and its applets, a
/// few host tools, the test executables, `listns`, and /init.
fn make_initramfs(cache: &Path, build: &StaticBuild, test_args: &[String]) -> Result<PathBuf> {
    let stage = cache.join("initramfs");
    let _ = fs::remove_dir_all(&stage);
    for dir in [
        "bin",
        "usr/bin",
        "tests",
        "target/debug",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
    ] {
        fs::create_dir_all(stage.join(dir))?;
    }
    fs::copy("/bin/busybox", stage.join("bin/busybox")).context("copying /bin/busybox")?;
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .context("running busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if !applet.is_empty() && applet != "busybox" {
            std::os::unix::fs::symlink("busybox", stage.join("bin").join(applet))?;
        }
    }
    for (name, exe) in &build.tests {
        fs::copy(exe, stage.join("tests").join(name))
            .with_context(|| format!("copying {}", exe.display()))?;
    }
    fs::copy(&build.listns, stage.join("target/debug/listns"))?;
    // Tests that find `listns` next to their own directory look at /listns.
    std::os::unix::fs::symlink("target/debug/listns", stage.join("listns"))?;
    for tool in HOST_TOOLS {
        copy_host_tool(&stage, tool)?;
    }
    let args = shlex::try_join(test_args.iter().map(String::as_str))
        .context("a test argument holds a NUL byte")?;
    let init = stage.join("init");
    fs::write(&init, INIT.replace("@ARGS@", &args))?;
    fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let out = cache.join("initramfs.cpio.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg("find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1 > \"$1\"")
        .arg("sh")
        .arg(&out)
        .current_dir(&stage)
        .status()
        .context("running cpio")?;
    if !status.success() {
        bail!("writing the initramfs failed ({status})");
    }
    Ok(out)
}

// ------------------------------------------------------------------- runs

/// Per-executable results parsed from a console or an output stream.
#[derive(Default)]
struct Parsed {
    kernel: Option<String>,
    done: Option<bool>,
    /// (name, rc, summary line) per test executable.
    ends: Vec<(String, i32, Option<String>)>,
    current: Option<(String, Option<String>)>,
    /// Lines worth showing: skips and notes from the tests, failures.
    notable: Vec<String>,
    in_failures: bool,
}

impl Parsed {
    fn line(&mut self, line: &str) {
        if let Some(k) = line.strip_prefix(M_KERNEL) {
            self.kernel = Some(k.trim().to_string());
        } else if let Some(name) = line.strip_prefix(M_BEGIN) {
            self.current = Some((name.trim().to_string(), None));
            self.in_failures = false;
        } else if let Some(rest) = line.strip_prefix(M_END) {
            let rc = rest
                .rsplit_once("rc=")
                .and_then(|(_, rc)| rc.trim().parse().ok())
                .unwrap_or(-1);
            let (name, summary) = self
                .current
                .take()
                .unwrap_or_else(|| (rest.to_string(), None));
            self.ends.push((name, rc, summary));
            self.in_failures = false;
        } else if let Some(v) = line.strip_prefix(M_DONE) {
            self.done = Some(v.trim() == "PASS");
        } else if line.starts_with("test result: ") {
            if let Some((_, s)) = self.current.as_mut() {
                *s = Some(line.to_string());
            }
            self.in_failures = false;
        } else if line == "failures:" {
            self.in_failures = true;
            self.notable.push(line.to_string());
        } else if self.in_failures
            || line.starts_with("SKIP")
            || line.starts_with("NOTE")
            || line.contains("panicked at")
            || line.contains("Kernel panic")
            || line.ends_with("... FAILED")
        {
            self.notable.push(line.to_string());
        }
    }

    fn results(&self) -> Vec<(String, String)> {
        self.ends
            .iter()
            .map(|(name, rc, summary)| {
                let s = summary.clone().unwrap_or_else(|| format!("exit code {rc}"));
                (name.clone(), s)
            })
            .collect()
    }
}

/// Runs the same static executables on the host kernel.
fn run_host(build: &StaticBuild, test_args: &[String], logs: &Path) -> Result<Outcome> {
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
fn run_guest(k: &Kernel, initrd: &Path, args: &VmArgs, logs: &Path) -> Result<Outcome> {
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
        .args([
            "-m",
            "1024",
            "-cpu",
            "max",
            "-nographic",
            "-no-reboot",
            "-kernel",
        ])
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
        secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_newest_cloud_image_by_version_not_by_text() {
        let apt = "\
linux-image-6.1.0-9-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.1.0-57-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-57-cloud-amd64-dbg - Debug symbols
linux-image-6.1.0-56-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.12.117+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-cloud-amd64 - Linux for x86-64 cloud (meta-package)
";
        let best = parse_cloud_images("6.1", apt).into_iter().max().unwrap();
        assert_eq!(best.1, "linux-image-6.1.0-57-cloud-amd64-unsigned");
        assert_eq!(best.2, "6.1.0-57-cloud-amd64");
        let best = parse_cloud_images("6.12", apt).into_iter().max().unwrap();
        assert_eq!(best.1, "linux-image-6.12.117+deb12-cloud-amd64");
        assert_eq!(best.2, "6.12.117+deb12-cloud-amd64");
    }

    #[test]
    fn signed_image_wins_a_tie() {
        let apt =
            "linux-image-6.1.0-57-cloud-amd64-unsigned - x\nlinux-image-6.1.0-57-cloud-amd64 - y\n";
        let best = parse_cloud_images("6.1", apt).into_iter().max().unwrap();
        assert_eq!(best.1, "linux-image-6.1.0-57-cloud-amd64");
    }

    #[test]
    fn console_without_verdict_is_not_a_pass() {
        let mut p = Parsed::default();
        for l in [
            "LISTNS-VM-KERNEL: 6.1.0-57-cloud-amd64",
            "LISTNS-VM-BEGIN: trace",
            "test result: ok. 6 passed; 0 failed",
            "LISTNS-VM-END: trace rc=0",
        ] {
            p.line(l);
        }
        assert_eq!(p.done, None);
        assert_eq!(
            p.results(),
            vec![("trace".into(), "test result: ok. 6 passed; 0 failed".into())]
        );
        p.line("LISTNS-VM-DONE: FAIL");
        assert_eq!(p.done, Some(false));
    }

    #[test]
    fn static_check_reads_program_headers() {
        // This test executable is dynamically linked (xtask is not built static).
        let me = std::env::current_exe().unwrap();
        assert!(!elf_is_static(&me).unwrap());
        // Not an ELF file: an error, and no busybox.
        let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(elf_is_static(&text).is_err());
        assert!(!is_static_busybox(&text));
    }

    /// A 64-bit little-endian ELF header followed by one program header of
    /// type `p_type`.
    fn tiny_elf(p_type: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56];
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01"); // ELF64, LE, version 1
        elf[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        elf[0x14..0x18].copy_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        elf[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        elf[64..68].copy_from_slice(&p_type.to_le_bytes());
        elf
    }

    #[test]
    fn static_check_tells_pt_interp_from_none() {
        let dir = tempfile::tempdir().unwrap();
        let (load, interp) = (dir.path().join("load"), dir.path().join("interp"));
        fs::write(&load, tiny_elf(object::elf::PT_LOAD)).unwrap();
        fs::write(&interp, tiny_elf(object::elf::PT_INTERP)).unwrap();
        assert!(elf_is_static(&load).unwrap());
        assert!(!elf_is_static(&interp).unwrap());
        // A truncated program header table is an error, not "static".
        fs::write(&load, &tiny_elf(object::elf::PT_LOAD)[..80]).unwrap();
        assert!(elf_is_static(&load).is_err());
    }

    #[test]
    fn test_args_reach_the_guest_shell_unchanged() {
        let args: Vec<String> = ["burst", "it's", "a b", "$HOME", "`id`", "--exact", ""]
            .map(String::from)
            .to_vec();
        let joined = shlex::try_join(args.iter().map(String::as_str)).unwrap();
        // The same shape as /init: the words pasted into a script, run by
        // the host's sh and by busybox's (the guest's) when it is here.
        let script = format!("for a in {joined}; do printf '%s\\n' \"$a\"; done");
        for shell in ["sh", "/bin/busybox sh"] {
            let mut words = shell.split(' ');
            let Ok(program) = which::which(words.next().unwrap()) else {
                eprintln!("NOTE {shell} is not installed: not checked with it");
                continue;
            };
            let out = Command::new(program)
                .args(words)
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
            assert_eq!(got, args, "{shell}");
        }
    }
}
