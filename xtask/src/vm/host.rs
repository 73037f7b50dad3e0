//! The host's tools the kernel matrix needs: QEMU, a static busybox and
//! cpio (installed from the package registry when missing), and the check
//! that an executable is statically linked.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, Result, bail};

/// Installs QEMU, a static busybox and cpio from the package registry when
/// they are missing (root only; else says what to install).
pub(super) fn ensure_tools() -> Result<()> {
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

pub(super) fn apt_update() -> Result<()> {
    let status = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()
        .context("running apt-get update")?;
    if !status.success() {
        bail!("apt-get update failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
