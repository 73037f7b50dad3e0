//! The scan's kernel pass (`listns --scan=iter`): loads the iterator
//! programs of the embedded object (listns-ebpf/src/iter.rs) with the
//! offsets the hooks use, reads each iterator to its end, and hands back
//! the records. Nothing stays loaded: the programs, their links and the
//! object's maps close when this returns.
//!
//! Iterators need a kernel that allows BPF tracing programs (5.8+ for
//! `task` and `task_file`, BTF, CAP_BPF and CAP_PERFMON or root). Where
//! that is refused, the error says why, and the scan reads /proc instead.

use std::{io::Read, path::Path};

use aya::{Btf, EbpfLoader, Endianness, programs::Iter};
use listns_common::{IterFile, IterTask, RINGBUF_BYTES};

use super::{OBJECT, TraceError, offsets};

/// What one pass read.
#[derive(Debug, Default)]
pub struct Pass {
    pub tasks: Vec<IterTask>,
    pub files: Vec<IterFile>,
    /// Every open file the file iterator visited (the records are the
    /// few kinds that can hold a namespace).
    pub files_seen: u64,
}

/// Why the iterators did not run.
#[derive(Debug, thiserror::Error)]
pub enum IterError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("this kernel's BTF lacks {0:?}, which the iterator scan needs")]
    MissingOffsets(Vec<String>),
    #[error("loading BPF programs needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)")]
    NotPermitted,
    #[error("the kernel refused the {program} iterator: {reason}")]
    Refused {
        program: &'static str,
        reason: String,
    },
    #[error("reading the {program} iterator: {source}")]
    Read {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Runs both iterators. `btf` is the kernel's BTF file.
pub fn run(btf: &Path) -> Result<Pass, IterError> {
    if OBJECT.is_empty() {
        return Err(TraceError::NoObject.into());
    }
    // Known before the BTF is read (aya reads all of it, twice: ~40 ms).
    if !may_load() {
        return Err(IterError::NotPermitted);
    }
    let start = std::time::Instant::now();
    let step = |name: &str| {
        log::debug!(
            "kernel pass: {name} done at {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        )
    };
    let resolved = offsets::resolve_file_cached(btf)?;
    step("offsets");
    let mut missing = resolved.missing.clone();
    missing.extend(resolved.iter_missing.iter().cloned());
    if !missing.is_empty() {
        return Err(IterError::MissingOffsets(missing));
    }
    let aya_btf = aya_btf(btf)?;
    step("aya's BTF");
    // The object's maps are the hooks'; none is used here, so each is
    // made as small as the kernel allows.
    let mut loader = EbpfLoader::new();
    loader
        .btf(Some(&aya_btf))
        .map_max_entries("EVENTS", 4096.min(RINGBUF_BYTES))
        .map_max_entries("KNOWN", 1)
        .map_max_entries("PENDING", 1)
        .map_max_entries("FOLLOWED", 1)
        .override_global("OFFSETS", &resolved.offsets, true)
        .override_global("ITER_OFFSETS", &resolved.iter, true);
    let mut ebpf = loader.load(OBJECT).map_err(|e| {
        if super::is_eperm(&e) {
            IterError::NotPermitted
        } else {
            IterError::Refused {
                program: "task",
                reason: chain(&e),
            }
        }
    })?;
    step("object loaded (maps made)");
    let tasks = read_iter(&mut ebpf, &aya_btf, "listns_iter_task", "task")?;
    step("task iterator");
    let files = read_iter(&mut ebpf, &aya_btf, "listns_iter_task_file", "task_file")?;
    step("task_file iterator");
    let files_seen = ebpf
        .map("ITER_FILES")
        .and_then(|m| aya::maps::Array::<_, u64>::try_from(m).ok())
        .and_then(|a| a.get(&0, 0).ok())
        .unwrap_or(0);
    Ok(Pass {
        tasks: records(&tasks),
        files: records(&files),
        files_seen,
    })
}

/// aya's reading of the kernel's BTF (for the iterators' attach points),
/// once per process.
fn aya_btf(path: &Path) -> Result<std::sync::Arc<Btf>, IterError> {
    static CACHE: std::sync::Mutex<Option<(std::path::PathBuf, std::sync::Arc<Btf>)>> =
        std::sync::Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, btf)) = cache.as_ref()
        && p == path
    {
        return Ok(btf.clone());
    }
    let btf = std::sync::Arc::new(Btf::parse_file(path, Endianness::default()).map_err(|e| {
        IterError::Refused {
            program: "task",
            reason: format!("reading BTF {}: {e}", path.display()),
        }
    })?);
    *cache = Some((path.to_owned(), btf.clone()));
    Ok(btf)
}

/// Whether this process may load BPF tracing programs: CAP_SYS_ADMIN, or
/// CAP_BPF with CAP_PERFMON (when the set cannot be read, the kernel is
/// left to answer).
fn may_load() -> bool {
    use caps::{CapSet, Capability};
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(true);
    has(Capability::CAP_SYS_ADMIN) || (has(Capability::CAP_BPF) && has(Capability::CAP_PERFMON))
}

/// Loads, attaches and reads one iterator program to its end.
fn read_iter(
    ebpf: &mut aya::Ebpf,
    btf: &Btf,
    name: &str,
    program: &'static str,
) -> Result<Vec<u8>, IterError> {
    let refused = |reason: String| IterError::Refused { program, reason };
    let prog: &mut Iter = ebpf
        .program_mut(name)
        .ok_or_else(|| refused(format!("{name} is not in the eBPF object")))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| refused(e.to_string()))?;
    prog.load(program, btf).map_err(|e| refused(chain(&e)))?;
    let link = prog.attach().map_err(|e| refused(chain(&e)))?;
    let link = prog.take_link(link).map_err(|e| refused(chain(&e)))?;
    let mut file = link.into_file().map_err(|e| refused(chain(&e)))?;
    let mut out = Vec::with_capacity(1 << 20);
    file.read_to_end(&mut out)
        .map_err(|source| IterError::Read { program, source })?;
    Ok(out)
}

/// The records in `bytes` (a trailing partial record is dropped: the
/// kernel writes whole records or none).
fn records<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    bytes
        .chunks_exact(std::mem::size_of::<T>())
        .map(bytemuck::pod_read_unaligned)
        .collect()
}

/// An error with its sources, on one line and at most `MAX_REASON`
/// characters: aya's say "the BPF_PROG_LOAD syscall failed", keep the errno
/// in the source and may carry the whole verifier log, which `RUST_LOG=debug`
/// prints instead.
fn chain(e: &dyn std::error::Error) -> String {
    const MAX_REASON: usize = 300;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        // aya's errors often repeat their source in their own text.
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_REASON {
        return one_line;
    }
    log::debug!("kernel pass refused: {text}");
    let cut: String = one_line.chars().take(MAX_REASON).collect();
    format!("{cut}... (RUST_LOG=debug shows all of it)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_refusal_is_one_short_line() {
        let log = "0: R1=ctx()\n".repeat(1000);
        let e = std::io::Error::other(format!(
            "the BPF_PROG_LOAD syscall failed. Verifier output: {log}"
        ));
        let reason = super::chain(&e);
        assert!(!reason.contains('\n'), "{reason}");
        assert!(reason.len() < 400, "{}", reason.len());
        assert!(
            reason.ends_with("(RUST_LOG=debug shows all of it)"),
            "{reason}"
        );
        let short = super::chain(&std::io::Error::other("Operation not permitted"));
        assert_eq!(short, "Operation not permitted");
    }
}
