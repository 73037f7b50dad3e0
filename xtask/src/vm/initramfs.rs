//! The guests' initramfs: busybox and its applets, a few host tools with
//! their libraries, the test executables, `listns`, and the /init script
//! that runs the tests and prints the console markers.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use super::build::StaticBuild;

/// The guest's /init. It must end with a `LISTNS-VM-DONE:` line; anything
/// else (a crash, a hang until the timeout) is a failure.
const INIT: &str = r#"#!/bin/sh
export PATH=/usr/bin:/bin HOME=/root TMPDIR=/tmp
# Privileged tests must run, never skip (CI), but for what a guest lacks by
# design (listns_skip::require_on_host); listns_bin() finds
# /target/debug/listns.
export CI=true LISTNS_VM_GUEST=1 CARGO_TARGET_DIR=/target RUST_BACKTRACE=1
# Emulated (TCG) and sharing the host's CPUs with the other guests: the
# tests' timeouts stretch five times (listns_tests::scaled).
export LISTNS_TEST_TIME_SCALE=5
@ENV@mkdir -p /proc /sys /dev /run /tmp /root
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
pub(super) fn make(
    cache: &Path,
    build: &StaticBuild,
    test_args: &[String],
    guest_env: &[String],
) -> Result<PathBuf> {
    let stage = cache.join("initramfs");
    let _ = fs::remove_dir_all(&stage);
    for dir in [
        "bin",
        "usr/bin",
        "tests",
        "target/debug",
        "target/release",
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
    if let Some(release) = &build.listns_release {
        fs::copy(release, stage.join("target/release/listns"))?;
    }
    // Tests that find `listns` next to their own directory look at /listns.
    std::os::unix::fs::symlink("target/debug/listns", stage.join("listns"))?;
    for tool in HOST_TOOLS {
        copy_host_tool(&stage, tool)?;
    }
    let args = shlex::try_join(test_args.iter().map(String::as_str))
        .context("a test argument holds a NUL byte")?;
    let init = stage.join("init");
    fs::write(
        &init,
        INIT.replace("@ARGS@", &args)
            .replace("@ENV@", &env_lines(guest_env)?),
    )?;
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

/// `export KEY='VALUE'` lines for /init, one per `KEY=VALUE`.
fn env_lines(guest_env: &[String]) -> Result<String> {
    let mut out = String::new();
    for kv in guest_env {
        let Some((key, value)) = kv.split_once('=') else {
            bail!("--guest-env {kv:?}: not KEY=VALUE");
        };
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            bail!("--guest-env {kv:?}: {key:?} is not a variable name");
        }
        let value = shlex::try_quote(value).context("a --guest-env value holds a NUL byte")?;
        out.push_str(&format!("export {key}={value}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn guest_env_reaches_the_guest_shell_unchanged() {
        let lines = env_lines(&["A_1=10,000".into(), "B=it's $HOME".into(), "C=".into()]).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{lines}printf '%s|%s|%s' \"$A_1\" \"$B\" \"$C\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "10,000|it's $HOME|");
        for bad in ["NOEQUALS", "=x", "1A=x", "A-B=x", "A B=x"] {
            assert!(env_lines(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
