//! Project tasks: `cargo xtask setup | run | test | integration-test vm|systemd | bench |
//! fuzz | package | dist | schema`.
//!
//! xtask orchestrates; it compiles nothing itself (listns-user/build.rs
//! builds the eBPF object). `run` and `test` set up the toolchain first.

mod dist;
mod fuzz;
mod modmap;
mod package;
mod schema;
mod setup;
mod skips;
mod vm;

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the eBPF build needs (nightly rust-src, bpf-linker); idempotent.
    Setup,
    /// Build in release mode and run listns as root; without ARGS runs `listns watch`.
    Run {
        /// Arguments for listns (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Unit tests and the privileged integration tests (one thread: they share kernel state).
    Test {
        /// Extra arguments for `cargo test` (a test name filter, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Integration tests somewhere other than plain `cargo test` on this kernel.
    #[command(subcommand)]
    IntegrationTest(IntegrationTarget),
    /// Benchmarks against peers run side by side (see BENCHMARKS.md):
    /// scan, trace, memory, sweep (default: all); `api` (the inventory
    /// API under load, minutes) and `web` (the web page with 10,000
    /// namespaces, in headless chromium) only when named; `soak [--seconds N]
    /// [--rate R]` alone runs the ten-minute churn soak; `iter [--sizes N,..]
    /// [--rounds R] [--kernels K,..]` alone runs the BPF iterator scan's bench
    /// in a QEMU guest (`cargo xtask bench iter --help`).
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The cargo-fuzz targets (fuzz/), each for a bounded time (see README "Fuzzing").
    Fuzz(fuzz::FuzzArgs),
    /// The FROM scratch container image (packaging/Containerfile, podman)
    /// holding a static listns.
    Package(package::PackageArgs),
    /// The release in target/dist: the static binary with its man pages, completions, unit,
    /// manifests and alert rules as a tarball, the image as an OCI archive, an SBOM, SHA256SUMS.
    Dist(dist::DistArgs),
    /// Writes schema/listns.schema.json, docs/json.md and
    /// schema/openapi.json from the JSON contract's types; with --check,
    /// fails where they differ instead.
    Schema {
        #[arg(long)]
        check: bool,
    },
}

/// `cargo xtask bench iter`: the scan through BPF iterators against lsns -J
/// and listns's own /proc scan, in a kernel-matrix guest (whose kernels
/// accept iterators; `--host` adds this machine's kernel):
/// tests/tests/iter_bench.rs, run alone by the `integration-test vm`
/// harness. Method and figures: BENCHMARKS.md.
#[derive(Parser)]
#[command(name = "cargo xtask bench iter")]
struct IterBenchArgs {
    /// Processes to hold, one held state per size.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    sizes: Vec<usize>,
    /// Rounds per size (each runs all three scans, in rotated order).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Kernel series to boot (as `integration-test vm --kernels`), each its own guest.
    #[arg(long, value_delimiter = ',', default_value = "6.12")]
    kernels: Vec<String>,
    /// Guest memory in MiB; default 1024 + a quarter MiB per process of
    /// the biggest size, at least 2048.
    #[arg(long)]
    memory: Option<u32>,
    /// Seconds a guest may run before it counts as failed.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Print every console line of the guests as it arrives.
    #[arg(long, short)]
    verbose: bool,
    /// Also on this machine's kernel, directly, before the guests (it
    /// fails there when the kernel refuses BPF iterators).
    #[arg(long)]
    host: bool,
}

impl IterBenchArgs {
    /// The `integration-test vm` run that is this bench: one test
    /// executable, its one ignored test, the bench's sizes in its environment.
    fn vm_args(&self) -> vm::VmArgs {
        let biggest = self.sizes.iter().copied().max().unwrap_or(0);
        let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        vm::VmArgs {
            kernels: self.kernels.clone(),
            timeout: self.timeout,
            no_host: !self.host,
            verbose: self.verbose,
            memory: self
                .memory
                .unwrap_or_else(|| (1024 + biggest / 4).max(2048) as u32),
            only: vec!["iter_bench".into()],
            guest_env: vec![
                format!("LISTNS_ITER_BENCH_SIZES={}", join(&self.sizes)),
                format!("LISTNS_ITER_BENCH_ROUNDS={}", self.rounds),
            ],
            release_listns: true,
            test_args: ["--ignored", "--exact", "iter_scan_bench"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[derive(Subcommand)]
enum IntegrationTarget {
    /// The kernel matrix: the privileged tests on the host kernel and on
    /// Debian's 6.1 and 6.12 kernels and Debian unstable's newest, booted under QEMU (see README).
    Vm(vm::VmArgs),
    /// packaging/systemd/listns.service under a real systemd: a Debian guest
    /// under QEMU, its checks printed as pass/fail (xtask/src/vm/systemd.rs).
    Systemd(vm::systemd::SystemdArgs),
}

fn main() {
    if let Err(e) = run_task(Cli::parse().task) {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn run_task(task: Task) -> Result<()> {
    let root = setup::workspace_root();
    match task {
        Task::Setup => setup::setup(),
        Task::Run { args } => {
            setup::setup()?;
            build_release(&root)?;
            let args = if args.is_empty() {
                vec!["watch".to_string()]
            } else {
                args
            };
            run_as_root(&root.join("target/release/listns"), &args)
        }
        Task::Test { args } => {
            setup::setup()?;
            // The integration tests run the binary as users do.
            build_debug(&root)?;
            let mut cmd = vec!["test", "--workspace", "--exclude", "listns-ebpf"];
            let (cargo_args, test_args) = split_dashdash(&args);
            cmd.extend(cargo_args.iter().map(String::as_str));
            // The committed schema and its page are what the types make.
            schema::run(&root, true)?;
            cmd.extend(["--", "--test-threads=1"]);
            cmd.extend(test_args.iter().map(String::as_str));
            // Privileged tests that cannot run log why; the last line says
            // how many there were, whatever the outcome.
            let log = skips::path(&root);
            skips::clear(&log).with_context(|| format!("emptying {}", log.display()))?;
            let result = cargo_env(&root, &cmd, &[(skips::ENV, log.as_os_str())]);
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            eprintln!("{}", skips::summary(&logged));
            result
        }
        Task::IntegrationTest(IntegrationTarget::Vm(args)) => {
            setup::setup()?;
            vm::run(&root, &args)
        }
        Task::IntegrationTest(IntegrationTarget::Systemd(args)) => {
            setup::setup()?;
            vm::systemd::run(&root, &args)
        }
        Task::Bench { args } if args.first().is_some_and(|a| a == "soak") => {
            // Ten minutes by default: never part of a plain `bench`.
            setup::setup()?;
            build_release(&root)?;
            let mut cmd = vec![
                "run",
                "--release",
                "--package",
                "listns-tests",
                "--bin",
                "listns-soak",
                "--",
            ];
            cmd.extend(args[1..].iter().map(String::as_str));
            cargo(&root, &cmd)
        }
        Task::Bench { args } if args.first().is_some_and(|a| a == "iter") => {
            // A guest of its own, minutes long: never part of a plain `bench`.
            let bench = IterBenchArgs::parse_from(
                std::iter::once("cargo xtask bench iter")
                    .chain(args[1..].iter().map(String::as_str)),
            );
            if bench.sizes.is_empty() || bench.sizes.contains(&0) || bench.rounds == 0 {
                bail!("bench iter: sizes and rounds must be at least 1");
            }
            setup::setup()?;
            vm::run(&root, &bench.vm_args())
        }
        Task::Bench { args } => {
            setup::setup()?;
            build_release(&root)?;
            // `scan` is listns-user's bench (listns -J against lsns -J); the
            // rest (trace, memory, sweep, api) live in listns-bench.
            let all = args.is_empty();
            if all || args.iter().any(|a| a == "scan") {
                cargo(
                    &root,
                    &["bench", "--package", "listns-user", "--bench", "scan"],
                )?;
            }
            let rest: Vec<&str> = args
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "scan")
                .collect();
            if all || !rest.is_empty() {
                let mut cmd = vec![
                    "run",
                    "--release",
                    "--package",
                    "listns-tests",
                    "--bin",
                    "listns-bench",
                    "--",
                ];
                cmd.extend(rest);
                cargo(&root, &cmd)?;
            }
            Ok(())
        }
        Task::Fuzz(args) => fuzz::run(&root, &args),
        Task::Package(args) => {
            setup::setup()?;
            package::package(&root, &args)
        }
        Task::Dist(args) => {
            setup::setup()?;
            dist::dist(&root, &args)
        }
        Task::Schema { check } => {
            setup::setup()?;
            build_debug(&root)?;
            schema::run(&root, check)
        }
    }
}

/// The debug `listns` binary that the tests and `schema` run.
fn build_debug(root: &Path) -> Result<()> {
    cargo(
        root,
        &["build", "--package", "listns-user", "--bin", "listns"],
    )
}

/// The release `listns` binary that `run` and `bench` use.
fn build_release(root: &Path) -> Result<()> {
    cargo(
        root,
        &[
            "build",
            "--release",
            "--package",
            "listns-user",
            "--bin",
            "listns",
        ],
    )
}

fn split_dashdash(args: &[String]) -> (&[String], &[String]) {
    match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[]),
    }
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    cargo_env(root, args, &[])
}

fn cargo_env(root: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs the binary as root: directly when already root, else through `sudo -E`.
fn run_as_root(bin: &Path, args: &[String]) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if is_root {
        Command::new(bin)
    } else {
        eprintln!("xtask: listns needs root; running it through sudo -E");
        let mut c = Command::new("sudo");
        c.arg("-E").arg(bin);
        c
    };
    let status = cmd.args(args).status().with_context(|| {
        if is_root {
            format!("running {}", bin.display())
        } else {
            "running sudo (is it installed?)".into()
        }
    })?;
    // Pass listns's own exit code through.
    std::process::exit(status.code().unwrap_or(1));
}
