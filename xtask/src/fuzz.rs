//! `cargo xtask fuzz [--seconds N] [TARGET]`: the cargo-fuzz targets in
//! `fuzz/` (one per parser of outside text or bytes), each for a bounded
//! time, starting from the seed corpus committed in `fuzz/corpus/TARGET/`.
//!
//! What libFuzzer finds while running is kept in `fuzz/target/corpus/TARGET/`
//! (ignored by git), so the committed seeds stay as they are and a later run
//! starts from everything found so far. A crash stops that target, leaves
//! its input in `fuzz/artifacts/TARGET/`, and fails the task once every
//! target has had its turn.
//!
//! cargo-fuzz is installed when missing. The eBPF object is not needed, so
//! the build runs with `AYA_BUILD_SKIP=1`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

/// The cargo-fuzz release the task installs when none is there.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// How long each target runs.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Only this target (default: all of them, one after another).
    pub target: Option<String>,
}

pub fn run(root: &Path, args: &FuzzArgs) -> Result<()> {
    let fuzz_dir = root.join("fuzz");
    let all = targets(&fuzz_dir)?;
    let chosen: Vec<String> = match &args.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target {t:?}; there are: {}", all.join(", ")),
        None => all,
    };
    ensure_cargo_fuzz()?;

    let started = Instant::now();
    eprintln!("xtask fuzz: building {} target(s)", chosen.len());
    let mut build = cargo_fuzz(root);
    build.arg("build");
    if let [one] = chosen.as_slice() {
        build.arg(one);
    }
    let status = build.status().context("running cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    let built = started.elapsed().as_secs();

    let logs = fuzz_dir.join("target/fuzz-logs");
    fs::create_dir_all(&logs)?;
    let mut failed = Vec::new();
    for target in &chosen {
        let work = fuzz_dir.join("target/corpus").join(target);
        fs::create_dir_all(&work)?;
        let log_path = logs.join(format!("{target}.log"));
        let log = fs::File::create(&log_path)?;
        let t0 = Instant::now();
        let status = cargo_fuzz(root)
            .args(["run", target])
            .arg(&work)
            .arg(fuzz_dir.join("corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds))
            // A single input that runs this long is a hang, and a finding.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("running cargo fuzz run {target}"))?;
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let done = text
            .lines()
            .rev()
            .find(|l| l.starts_with("Done "))
            .unwrap_or("no summary");
        let corpus = fs::read_dir(&work).map(|d| d.count()).unwrap_or(0);
        if status.success() {
            eprintln!(
                "xtask fuzz: {target}: ok in {:.0} s ({done}; corpus {corpus} inputs)",
                t0.elapsed().as_secs_f64()
            );
        } else {
            eprintln!("xtask fuzz: {target}: FAILED ({status}):");
            for line in excerpt(&text) {
                eprintln!("  | {line}");
            }
            failed.push(target.clone());
        }
    }
    eprintln!(
        "xtask fuzz: {} of {} target(s) passed; build {built} s, total {} s; logs in {}",
        chosen.len() - failed.len(),
        chosen.len(),
        started.elapsed().as_secs(),
        logs.display()
    );
    if !failed.is_empty() {
        bail!(
            "fuzz target(s) failed: {}. The inputs are in fuzz/artifacts/TARGET/; \
             replay one with `cargo +nightly fuzz run TARGET FILE`, fix the parser and keep \
             the input as a unit test next to it",
            failed.join(", ")
        );
    }
    Ok(())
}

/// What a failed run's log says that matters: the panic or sanitizer
/// report's first lines, and where the input was written (the whole log,
/// with its stack traces, stays in fuzz/target/fuzz-logs/).
fn excerpt(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().position(|l| {
        l.contains("panicked at")
            || l.contains("ERROR: libFuzzer")
            || l.contains("ERROR: AddressSanitizer")
    });
    let mut out: Vec<&str> = match start {
        Some(i) => lines[i..].iter().take(6).copied().collect(),
        None => lines[lines.len().saturating_sub(20)..].to_vec(),
    };
    out.extend(
        lines
            .iter()
            .filter(|l| {
                l.contains("Test unit written to") || l.trim_start().starts_with("cargo fuzz run")
            })
            .copied(),
    );
    out
}

/// The targets: one file each in fuzz/fuzz_targets.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no fuzz targets in {}", dir.display());
    }
    Ok(names)
}

/// `cargo +nightly fuzz ...` from the workspace root (cargo-fuzz finds
/// `fuzz/` there), without the eBPF build.
fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = Command::new(rustup_cargo());
    cmd.current_dir(root)
        .args(["+nightly", "fuzz"])
        .env("AYA_BUILD_SKIP", "1")
        // btf-rs's anyhow errors would each capture a backtrace (slow) when
        // RUST_BACKTRACE is set; panics still print theirs.
        .env("RUST_LIB_BACKTRACE", "0");
    cmd
}

/// The rustup proxy `cargo` (it understands `+nightly`), not the stable
/// cargo binary that runs xtask.
fn rustup_cargo() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    match home.map(|h| h.join("bin/cargo")) {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("cargo"),
    }
}

fn ensure_cargo_fuzz() -> Result<()> {
    let nightly = Command::new(rustup_cargo())
        .args(["+nightly", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !nightly.is_ok_and(|s| s.success()) {
        bail!(
            "fuzzing needs the nightly toolchain (sanitizers).\n  fix: rustup toolchain install nightly"
        );
    }
    let have = Command::new(rustup_cargo())
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if have.is_ok_and(|s| s.success()) {
        return Ok(());
    }
    eprintln!("xtask fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION} from crates.io");
    let status = Command::new(rustup_cargo())
        .args(["install", "--locked", "cargo-fuzz", "--version"])
        .arg(CARGO_FUZZ_VERSION)
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed ({status})");
    }
    Ok(())
}
