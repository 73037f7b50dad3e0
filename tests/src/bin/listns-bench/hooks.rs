//! `cargo xtask bench hooks`: the kernel-side cost of each of listns's
//! programs, from the kernel's own BPF run-time statistics.

use anyhow::{Result, bail};

use super::{Watch, fork_exit, median};

/// The kernel-side cost of each hook, from the kernel's own BPF run-time
/// statistics (BPF_ENABLE_STATS): a figure the machine's noise does not
/// blur. Two loops measured apart, five times each (medians): plain
/// fork+exit on the host, where every hook must take its fast path, and
/// fork+unshare(UTS)+exit, which reports a created namespace and an exit.
pub fn program_costs() -> Result<()> {
    const REPS: usize = 5;
    type Snapshot = std::collections::BTreeMap<String, (u64, u64)>;
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map_err(|e| anyhow::anyhow!("BPF_ENABLE_STATS: {e}"))?;
    let w = Watch::start()?;
    // This listns's programs, by id: other tracers (other listns runs, other
    // tools) may have programs of the same 15-character names.
    let ids = listns_tests::kernel::prog_ids_of(&w.child.id().to_string());
    if ids.is_empty() {
        bail!("no eBPF program fds in listns watch (pid {})", w.child.id());
    }
    let snapshot = || -> Snapshot {
        aya::programs::loaded_programs()
            .filter_map(|p| p.ok())
            .filter(|p| ids.contains(&p.id()))
            .filter_map(|p| {
                let name = p.name_as_str()?.to_string();
                Some((name, (p.run_time().as_nanos() as u64, p.run_count())))
            })
            .collect()
    };
    // Runs and ns per run of each program over `n` iterations.
    let measure = |n: u32, flags: i32| -> std::collections::BTreeMap<String, (u64, f64)> {
        let before = snapshot();
        fork_exit(n, flags);
        let after = snapshot();
        after
            .iter()
            .filter_map(|(name, &(t1, c1))| {
                let (t0, c0) = before.get(name).copied().unwrap_or_default();
                (c1 > c0).then(|| (name.clone(), (c1 - c0, (t1 - t0) as f64 / (c1 - c0) as f64)))
            })
            .collect()
    };
    for (what, n, flags) in [
        ("fork+exit", 4000, 0),
        ("fork+unshare(UTS)+exit", 2000, libc::CLONE_NEWUTS),
    ] {
        let runs: Vec<_> = (0..REPS).map(|_| measure(n, flags)).collect();
        println!("per hook over {n} {what} (kernel BPF stats, median of {REPS} repetitions):");
        let mut total = 0.0;
        for (name, &(count, _)) in &runs[0] {
            let mut ns: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.get(name).map(|v| v.1))
                .collect();
            let med = median(&mut ns);
            let (lo, hi) = (ns[0], ns[ns.len() - 1]);
            println!("  {name:<16} {count:>6} runs  {med:>6.0} ns/run  (range {lo:.0}..{hi:.0})");
            total += med * count as f64;
        }
        println!("  all hooks        {:>6.0} ns per {what}", total / n as f64);
    }
    w.stop()?;
    Ok(())
}
