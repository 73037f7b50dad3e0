//! `cargo xtask integration-test systemd`: the unit under a real systemd.
//!
//! A Debian guest booted under QEMU (TCG, as the kernel matrix boots its
//! guests) with systemd as PID 1. Its root file system is built from
//! Debian packages with debootstrap (minbase plus systemd, iproute2,
//! bpftool, curl, jq), cached in `target/vm-cache/systemd-guest` and
//! rebuilt only when its recipe (suite, mirror, packages, setup) changes;
//! each run copies it, adds the files of [`guest_files`] (`listns`,
//! `packaging/systemd/listns.service`, `listns-held` and the checks), packs it as an ext4 image (`mkfs.ext4 -d`) and boots it from
//! an emulated NVMe disk (nvme and ext4 are built into Debian's cloud
//! kernels: no initramfs).
//!
//! In the guest, `listns-check.service` runs `systemd-check.sh` once the
//! system is up: it starts the unit with `systemctl start listns` and
//! checks it (active, /healthz, /metrics, the API socket, coverage equal to
//! root's on the held state of `listns_tests::held`, the capabilities in
//! `/proc/PID/status`, the start-up notes in the journal, no BPF program
//! left after `systemctl stop`, `systemd-analyze security`), printing one
//! `LISTNS-CHECK PASS|FAIL` line per check on the serial console. xtask
//! prints them and fails on any failure, a missing verdict or a timeout.

use std::{
    fs,
    io::{BufRead, BufReader, Write as _},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{STATIC_RUSTFLAGS, TARGET, elf_is_static, host, kernel, on_path};

#[derive(Debug, clap::Args)]
pub struct SystemdArgs {
    /// Debian kernel series to boot (as `integration-test vm --kernels`).
    #[arg(long, default_value = "6.12")]
    pub kernel: String,
    /// Seconds the guest may run before it counts as failed.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Print every console line of the guest as it arrives.
    #[arg(long, short)]
    pub verbose: bool,
}

/// The Debian suite of the guest's root file system.
const SUITE: &str = "bookworm";
/// What debootstrap installs on top of minbase.
const PACKAGES: &str =
    "systemd,systemd-sysv,dbus,libnss-systemd,iproute2,util-linux,procps,kmod,bpftool,curl,jq";
/// Units masked in the guest: the serial getty (the console carries the
/// checks' lines) and timers that would only slow the boot down.
const MASKED: &[&str] = &[
    "serial-getty@ttyS0.service",
    "getty@tty1.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_reap.service",
];
/// Bump when the setup of the cached root file system changes.
const SETUP_VERSION: u32 = 1;

const CHECK_SCRIPT: &str = include_str!("systemd-check.sh");
const CHECK_UNIT: &str = "\
[Unit]
Description=listns checks (cargo xtask integration-test systemd)
After=multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/lib/listns-check/check.sh

[Install]
WantedBy=multi-user.target
";

/// Console line prefix of the checks.
const MARK: &str = "LISTNS-CHECK ";

/// Capability names without `CAP_`, in the order of their numbers
/// (linux/capability.h).
const CAPS: &str = "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP \
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER \
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE \
    SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP \
    MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF \
    CHECKPOINT_RESTORE";
/// What `listns watch` keeps once attached (README "Capabilities kept",
/// listns-user/src/service/privileges.rs): the loop drops the rest.
const KEPT: [&str; 6] = [
    "SYS_PTRACE",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "SYS_ADMIN",
    "SYS_CHROOT",
    "BPF",
];

/// A file of the guest: its contents and mode, or a symlink.
pub(crate) enum GuestFile {
    /// A copy of a host file.
    Copy(PathBuf),
    Text(String),
    Link(&'static str),
}

pub fn run(root: &Path, args: &SystemdArgs) -> Result<()> {
    let start = Instant::now();
    let cache = root.join("target/vm-cache");
    let dir = cache.join("systemd-guest");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    host::ensure_tools()?;
    ensure_debootstrap()?;
    let kernel = kernel::fetch(&cache, &args.kernel)?;
    let t = Instant::now();
    let bins = build(root)?;
    eprintln!(
        "xtask systemd: listns and the static listns-held in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let rootfs = rootfs(&dir)?;
    eprintln!(
        "xtask systemd: root file system ready in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let files = guest_files(root, &bins)?;
    let image = image(&dir, &rootfs, &files)?;
    eprintln!(
        "xtask systemd: disk image in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let logs = cache.join("logs");
    fs::create_dir_all(&logs)?;
    let log = logs.join("systemd-guest.log");
    let (checks, done, verdict) = boot(&kernel.vmlinuz, &image, args, &log)?;
    let _ = fs::remove_file(&image);

    println!(
        "\nlistns.service under systemd ({}, {:.0} s in all; console in {}):",
        kernel.release,
        start.elapsed().as_secs_f64(),
        log.display()
    );
    for line in &checks {
        println!("  {line}");
    }
    let failed = checks.iter().filter(|l| l.starts_with("FAIL")).count();
    if !done {
        bail!(
            "the guest gave no verdict: {verdict} (see {})",
            log.display()
        );
    }
    if failed > 0 || !checks.iter().any(|l| l.starts_with("PASS")) {
        bail!("{failed} of the checks failed in the systemd guest");
    }
    Ok(())
}

/// debootstrap from the package registry when missing (root only).
fn ensure_debootstrap() -> Result<()> {
    if on_path("debootstrap") && on_path("mkfs.ext4") {
        return Ok(());
    }
    eprintln!("xtask systemd: installing debootstrap and e2fsprogs");
    let status = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "debootstrap",
            "e2fsprogs",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!("apt-get install debootstrap e2fsprogs failed ({status})");
    }
    Ok(())
}

/// `listns`: the release tarball of `cargo xtask dist` (its static
/// binary, man pages and unit), which the guest's check script unpacks and
/// installs as a user would; there is no cargo in the guest.
/// `listns-held`: static (it names no user), built as the kernel
/// matrix builds the test executables (same target directory, flags and
/// profile), so that after the matrix only the bin itself compiles.
fn build(root: &Path) -> Result<[PathBuf; 2]> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |cmd: &mut Command, what: &str| -> Result<()> {
        let status = cmd
            .current_dir(root)
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("building {what} failed ({status})");
        }
        Ok(())
    };
    let dist = root.join("target/vm-cache/systemd-guest/dist");
    let _ = fs::remove_dir_all(&dist);
    crate::dist::dist(
        root,
        &crate::dist::DistArgs {
            out: Some(dist.clone()),
            no_image: true,
            image: "localhost/listns".into(),
        },
    )?;
    let tarball = fs::read_dir(&dist)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-x86_64-linux.tar.gz"))
        .context("cargo xtask dist wrote no tarball")?;
    let vm_build = root.join("target/vm-build");
    run(
        Command::new(&cargo)
            .args(["build", "--package", "listns-tests", "--bin", "listns-held"])
            .args(["--target", TARGET])
            .env("CARGO_TARGET_DIR", &vm_build)
            .env("RUSTFLAGS", STATIC_RUSTFLAGS)
            .env("CARGO_PROFILE_DEV_DEBUG", "0"),
        "the static listns-held",
    )?;
    let held = vm_build.join(TARGET).join("debug/listns-held");
    if !elf_is_static(&held)? {
        bail!("{} is dynamically linked", held.display());
    }
    Ok([tarball, held])
}

/// The Debian mirror this host's apt uses (the first source whose address
/// ends in `/debian`: not the security archive, not a third party's), else
/// deb.debian.org.
fn mirror() -> String {
    let mut texts = vec![fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        texts.extend(
            dir.flatten()
                .filter_map(|e| fs::read_to_string(e.path()).ok()),
        );
    }
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("URIs:")
                .or_else(|| {
                    l.strip_prefix("deb ")
                        .map(|r| r.trim_start_matches(|c| c != 'h'))
                })
                .and_then(|r| r.split_whitespace().next())
        })
        .map(|u| u.trim_end_matches('/'))
        .find(|u| u.starts_with("http") && u.ends_with("/debian"))
        .unwrap_or("http://deb.debian.org/debian")
        .to_string()
}

/// The cached root file system, built when missing or when its recipe
/// changed.
fn rootfs(dir: &Path) -> Result<PathBuf> {
    let tree = dir.join("rootfs");
    let recipe_file = dir.join("rootfs.recipe");
    let recipe = format!(
        "debootstrap --variant=minbase --include={} {SUITE} {}\nmasked: {}\nsetup {SETUP_VERSION}\n",
        PACKAGES,
        mirror(),
        MASKED.join(" ")
    );
    if tree.join("etc/os-release").exists()
        && fs::read_to_string(&recipe_file).is_ok_and(|r| r == recipe)
    {
        return Ok(tree);
    }
    let tmp = dir.join("rootfs.tmp");
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(&tree);
    let _ = fs::remove_file(&recipe_file);
    eprintln!(
        "xtask systemd: building the root file system: {}",
        recipe.lines().next().unwrap_or("")
    );
    let status = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={}", PACKAGES),
            SUITE,
        ])
        .arg(&tmp)
        .arg(mirror())
        .stdout(Stdio::null())
        .status()
        .context("running debootstrap")?;
    if !status.success() {
        bail!("debootstrap failed ({status})");
    }
    fs::write(tmp.join("etc/hostname"), "listns-guest\n")?;
    for unit in MASKED {
        let link = tmp.join("etc/systemd/system").join(unit);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link)?;
    }
    // apt's package cache is not needed in the guest.
    let _ = Command::new("chroot")
        .arg(&tmp)
        .args(["apt-get", "clean"])
        .status();
    fs::rename(&tmp, &tree)?;
    fs::write(&recipe_file, recipe)?;
    Ok(tree)
}

/// Everything added to the guest, by path in the guest: add a line here
/// to install another file.
fn guest_files(root: &Path, bins: &[PathBuf; 2]) -> Result<Vec<(&'static str, u32, GuestFile)>> {
    let unit = root.join("packaging/systemd/listns.service");
    let caps = unit_caps(&fs::read_to_string(&unit).context("reading the unit")?)?;
    let mask = |names: &mut dyn Iterator<Item = &str>| -> Result<String> {
        let mut m = 0u64;
        for n in names {
            let i = CAPS
                .split_whitespace()
                .position(|c| c == n)
                .with_context(|| format!("unknown CAP_{n}"))?;
            m |= 1 << i;
        }
        Ok(format!("{m:016x}"))
    };
    let kept = mask(&mut caps.iter().map(String::as_str).filter(|c| KEPT.contains(c)))?;
    let expect = format!(
        "CapBnd={}\nCapEff={kept}\nCapPrm={kept}\nCapAmb={:016x}\nCapInh={:016x}\n",
        mask(&mut caps.iter().map(String::as_str))?,
        0,
        0
    );
    Ok(vec![
        // The release as `cargo xtask dist` makes it; check.sh installs
        // its binary, man page and unit.
        (
            "root/listns-dist.tar.gz",
            0o644,
            GuestFile::Copy(bins[0].clone()),
        ),
        (
            "usr/local/bin/listns-held",
            0o755,
            GuestFile::Copy(bins[1].clone()),
        ),
        (
            "usr/local/lib/listns-check/check.sh",
            0o755,
            GuestFile::Text(CHECK_SCRIPT.into()),
        ),
        (
            "usr/local/lib/listns-check/expect.env",
            0o644,
            GuestFile::Text(expect),
        ),
        (
            "etc/systemd/system/listns-check.service",
            0o644,
            GuestFile::Text(CHECK_UNIT.into()),
        ),
        (
            "etc/systemd/system/multi-user.target.wants/listns-check.service",
            0,
            GuestFile::Link("/etc/systemd/system/listns-check.service"),
        ),
    ])
}

/// The unit's CapabilityBoundingSet= names, without `CAP_`.
fn unit_caps(unit: &str) -> Result<Vec<String>> {
    let caps: Vec<String> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CapabilityBoundingSet="))
        .flat_map(|v| v.split_whitespace())
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect();
    if caps.is_empty() {
        bail!("the unit has no CapabilityBoundingSet=");
    }
    Ok(caps)
}

/// A copy of the root file system with the guest files added, packed as
/// an ext4 image (the copy is removed again).
fn image(dir: &Path, rootfs: &Path, files: &[(&str, u32, GuestFile)]) -> Result<PathBuf> {
    let stage = dir.join("stage");
    let _ = fs::remove_dir_all(&stage);
    let status = Command::new("cp")
        .arg("-a")
        .arg(rootfs)
        .arg(&stage)
        .status()?;
    if !status.success() {
        bail!("copying the root file system failed ({status})");
    }
    for (to, mode, what) in files {
        let path = stage.join(to);
        fs::create_dir_all(path.parent().unwrap())?;
        let _ = fs::remove_file(&path);
        match what {
            GuestFile::Copy(from) => {
                fs::copy(from, &path).with_context(|| format!("copying {}", from.display()))?;
            }
            GuestFile::Text(text) => fs::write(&path, text)?,
            GuestFile::Link(target) => {
                std::os::unix::fs::symlink(target, &path)?;
                continue;
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
    }
    let image = dir.join("guest.ext4");
    let _ = fs::remove_file(&image);
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&stage)
        .arg(&image)
        .arg("2G")
        .status()
        .context("running mkfs.ext4")?;
    fs::remove_dir_all(&stage)?;
    if !status.success() {
        bail!("mkfs.ext4 failed ({status})");
    }
    Ok(image)
}

/// Boots the guest and reads its console: the check lines (`PASS name:
/// detail`), whether it said DONE, and why not.
fn boot(
    vmlinuz: &Path,
    image: &Path,
    args: &SystemdArgs,
    log: &Path,
) -> Result<(Vec<String>, bool, String)> {
    eprintln!(
        "xtask systemd: booting under QEMU (TCG), timeout {} s",
        args.timeout
    );
    let mut log = fs::File::create(log)?;
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2",
        ])
        .args(["-nographic", "-no-reboot", "-nic", "none", "-kernel"])
        .arg(vmlinuz)
        .args([
            "-append",
            "root=/dev/nvme0n1 rw console=ttyS0 panic=-1 quiet random.trust_cpu=on",
        ])
        .arg("-drive")
        .arg(format!("file={},if=none,id=d0,format=raw", image.display()))
        .args(["-device", "nvme,drive=d0,serial=d0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let (tx, rx) = mpsc::channel::<String>();
    let streams: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for stream in streams {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf).replace(['\r', '\n'], "");
                if tx.send(line).is_err() {
                    break;
                }
                buf.clear();
            }
        });
    }
    drop(tx);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.timeout);
    let (mut checks, mut done, mut verdict) = (Vec::new(), false, String::new());
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                writeln!(log, "{line}")?;
                if args.verbose {
                    eprintln!("[guest] {line}");
                }
                // The line may follow kernel output on the same console line.
                let Some(at) = line.find(MARK) else { continue };
                let check = &line[at + MARK.len()..];
                if check == "DONE" {
                    done = true;
                } else {
                    eprintln!("  [{:5.1} s] {check}", start.elapsed().as_secs_f64());
                    checks.push(check.to_string());
                }
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
    if !done && verdict.is_empty() {
        verdict = format!("qemu exited ({status}) before the checks were done");
    }
    Ok((checks, done, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_numbers_are_the_uapi_ones() {
        // linux/capability.h, by hand.
        let n = |name| CAPS.split_whitespace().position(|c| c == name);
        assert_eq!(n("DAC_READ_SEARCH"), Some(2));
        assert_eq!(n("NET_ADMIN"), Some(12));
        assert_eq!(n("SYS_CHROOT"), Some(18));
        assert_eq!(n("SYS_PTRACE"), Some(19));
        assert_eq!(n("SYS_ADMIN"), Some(21));
        assert_eq!(n("PERFMON"), Some(38));
        assert_eq!(n("BPF"), Some(39));
        assert_eq!(CAPS.split_whitespace().count(), 41);
    }

    #[test]
    fn unit_capabilities_are_read_from_the_bounding_set() {
        let unit =
            "[Service]\nCapabilityBoundingSet=CAP_BPF CAP_SYS_ADMIN\nAmbientCapabilities=CAP_BPF\n";
        assert_eq!(unit_caps(unit).unwrap(), ["BPF", "SYS_ADMIN"]);
        assert!(unit_caps("[Service]\n").is_err());
    }
}
