//! `--kernels sid`: Debian unstable's newest cloud kernel (Linux 6.19+ there
//! today, with namespace ids, nsfs file handles and `listns(2)`), fetched
//! through a private apt state so that the machine's own apt sources and
//! lists are left alone. The version is looked up, never hard-coded.
//!
//! Unstable ships the image as `linux-binary-<release>` (its
//! `linux-image-<release>` is a meta package there), with the kernel at
//! `usr/lib/modules/<release>/vmlinuz`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result, bail};

use super::kernel::Kernel;

/// The name `--kernels` takes for it.
pub const SERIES: &str = "sid";
const SOURCE: &str = "deb http://deb.debian.org/debian sid main";
/// Package lists older than this are fetched again (about 17 MB).
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// apt's options for the private state under `dir`.
fn apt_opts(dir: &Path) -> Vec<String> {
    vec![
        "-o".into(),
        format!(
            "Dir::Etc::sourcelist={}",
            dir.join("sources.list").display()
        ),
        "-o".into(),
        "Dir::Etc::sourceparts=-".into(),
        "-o".into(),
        format!("Dir::State::Lists={}", dir.join("lists").display()),
        "-o".into(),
        format!("Dir::Cache={}", dir.join("cache").display()),
        "-o".into(),
        "APT::Sandbox::User=root".into(),
    ]
}

/// Fetches unstable's package lists into the private state when they are
/// missing or older than a day (`force`: in any case).
fn update(dir: &Path, force: bool) -> Result<()> {
    let stamp = dir.join("lists/updated");
    let fresh = fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < LISTS_MAX_AGE);
    if fresh && !force {
        return Ok(());
    }
    for sub in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::write(dir.join("sources.list"), format!("{SOURCE}\n"))?;
    eprintln!(
        "xtask vm: fetching Debian unstable's package lists into {}",
        dir.display()
    );
    let status = Command::new("apt-get")
        .args(apt_opts(dir))
        .args(["update", "-qq"])
        .status()
        .context("running apt-get update (private state)")?;
    if !status.success() {
        bail!("apt-get update of Debian unstable failed ({status}): cannot test on {SERIES}");
    }
    fs::write(&stamp, b"")?;
    Ok(())
}

/// (version key, package, release) of every signed cloud kernel binary
/// package unstable's lists name.
fn candidates(dir: &Path) -> Result<Vec<(Vec<u64>, String, String)>> {
    let out = Command::new("apt-cache")
        .args(apt_opts(dir))
        .args([
            "search",
            "--names-only",
            "^linux-binary-[0-9].*-cloud-amd64$",
        ])
        .output()
        .context("running apt-cache search (private state)")?;
    if !out.status.success() {
        bail!(
            "apt-cache search failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(parse_candidates(&String::from_utf8_lossy(&out.stdout)))
}

/// From `apt-cache search` lines such as
/// `linux-binary-7.2.13+deb14-cloud-amd64 - Linux 7.2.13 for x86-64 cloud`.
fn parse_candidates(search: &str) -> Vec<(Vec<u64>, String, String)> {
    let mut out = Vec::new();
    for line in search.lines() {
        let name = line.split(" - ").next().unwrap_or("").trim();
        let Some(release) = name.strip_prefix("linux-binary-") else {
            continue;
        };
        let Some(version) = release.strip_suffix("-cloud-amd64") else {
            continue;
        };
        // "7.2.13+deb14": numbers only, or it is not a kernel.
        let key: Option<Vec<u64>> = version
            .split(['-', '+', '.'])
            .map(|p| p.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
            .map(|p| p.parse().ok())
            .collect();
        if let Some(key) = key.filter(|k| !k.is_empty()) {
            out.push((key, name.to_string(), release.to_string()));
        }
    }
    out
}

/// The newest unstable cloud kernel, downloaded and unpacked into the cache
/// unless it is there already.
pub fn fetch(cache: &Path) -> Result<Kernel> {
    let dir = cache.join("sid-apt");
    update(&dir, false)?;
    let Some((_, package, release)) = candidates(&dir)?.into_iter().max() else {
        bail!(
            "Debian unstable's lists name no linux-binary-*-cloud-amd64 package: cannot test on {SERIES}"
        );
    };
    let vmlinuz = cache.join("kernels").join(&package).join("vmlinuz");
    if vmlinuz.is_file() {
        return Ok(Kernel {
            release,
            package,
            vmlinuz,
        });
    }
    let tmp = cache.join("kernels").join(format!("{package}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    eprintln!("xtask vm: downloading {package} (Debian unstable)");
    if !download(&dir, &tmp, &package)? {
        // The lists may name a version the mirror has dropped: refresh once.
        update(&dir, true)?;
        if !download(&dir, &tmp, &package)? {
            bail!("apt-get download {package} failed: cannot test on {SERIES}");
        }
    }
    let image = unpack(&tmp, &package, &release)?;
    let dest: PathBuf = vmlinuz.with_extension("part");
    fs::create_dir_all(dest.parent().unwrap())?;
    fs::copy(&image, &dest)?;
    fs::rename(&dest, &vmlinuz)?;
    fs::remove_dir_all(&tmp)?;
    Ok(Kernel {
        release,
        package,
        vmlinuz,
    })
}

fn download(dir: &Path, into: &Path, package: &str) -> Result<bool> {
    let status = Command::new("apt-get")
        .args(apt_opts(dir))
        .args(["download", "-qq", package])
        .current_dir(into)
        .status()
        .context("running apt-get download (private state)")?;
    Ok(status.success())
}

/// `dpkg -x` of the downloaded package; the path of its vmlinuz.
fn unpack(tmp: &Path, package: &str, release: &str) -> Result<PathBuf> {
    let tree = super::kernel::unpack_deb(tmp, package)?;
    let image = tree.join("usr/lib/modules").join(release).join("vmlinuz");
    if !image.is_file() {
        bail!("{package} has no usr/lib/modules/{release}/vmlinuz");
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_signed_cloud_binaries_and_their_release() {
        let search = "linux-binary-unsigned-7.2.13+deb14-cloud-amd64 - Linux 7.2.13 (unsigned)\n\
                      linux-binary-7.2.13+deb14-cloud-amd64 - Linux 7.2.13 for x86-64 cloud\n\
                      linux-binary-7.2.9+deb14-cloud-amd64 - Linux 7.2.9 for x86-64 cloud\n\
                      linux-binary-7.2.13+deb14-amd64 - Linux 7.2.13 for 64-bit PCs\n";
        let mut c = parse_candidates(search);
        c.sort();
        assert_eq!(
            c,
            vec![
                (
                    vec![7, 2, 9, 14],
                    "linux-binary-7.2.9+deb14-cloud-amd64".to_string(),
                    "7.2.9+deb14-cloud-amd64".to_string()
                ),
                (
                    vec![7, 2, 13, 14],
                    "linux-binary-7.2.13+deb14-cloud-amd64".to_string(),
                    "7.2.13+deb14-cloud-amd64".to_string()
                ),
            ]
        );
        // Newest by number, not by string: 7.2.13 > 7.2.9.
        assert_eq!(c.into_iter().max().unwrap().2, "7.2.13+deb14-cloud-amd64");
    }
}
