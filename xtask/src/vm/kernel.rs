//! The Debian `-cloud-amd64` kernels to boot: the newest package of a
//! series that apt knows of, its vmlinuz unpacked into the cache.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use super::{host::apt_update, sid};

/// A kernel to boot.
pub(super) struct Kernel {
    /// `uname -r` of the kernel, e.g. 6.1.0-57-cloud-amd64.
    pub(super) release: String,
    pub(super) package: String,
    pub(super) vmlinuz: PathBuf,
}

/// Picks the newest `linux-image-<series>.*-cloud-amd64` package apt knows
/// of (the signed one, or the `-unsigned` build of the same kernel), and
/// unpacks its vmlinuz into the cache unless it is there already.
pub(super) fn fetch(cache: &Path, series: &str) -> Result<Kernel> {
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
    let tree = unpack_deb(&tmp, &package)?;
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

/// Unpacks the one `.deb` that `apt-get download` left in `dir` into
/// `dir/x`, and returns that tree.
pub(super) fn unpack_deb(dir: &Path, package: &str) -> Result<PathBuf> {
    let deb = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb"))?;
    let tree = dir.join("x");
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&tree)
        .status()
        .context("running dpkg -x")?;
    if !status.success() {
        bail!("dpkg -x {} failed ({status})", deb.display());
    }
    Ok(tree)
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
}
