//! The worker pool that reads processes: a few threads, each taking
//! interleaved chunks of pids (low pids are kernel threads, cheap to read),
//! results put back in pid order.

use std::os::fd::BorrowedFd;

use super::procs::{self, Failure, ProcRead};

/// Pids per chunk handed to a worker.
const CHUNK: usize = 64;

/// Reads every pid, fds included, with `workers` threads; `eager_stat(pid)`
/// says whether to read its stat now. Results are in the order of `pids`.
pub fn read_all(
    root: BorrowedFd<'_>,
    pids: &[u32],
    workers: usize,
    eager_stat: impl Fn(u32) -> bool + Sync,
) -> Vec<Result<ProcRead, Failure>> {
    let workers = workers.min(pids.len().max(1));
    if workers <= 1 {
        let mut buf = Vec::new();
        return pids
            .iter()
            .map(|&pid| procs::read_process(root, pid, true, eager_stat(pid), &mut buf))
            .collect();
    }
    let eager_stat = &eager_stat;
    let results: Vec<Vec<(usize, Result<ProcRead, Failure>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let mut buf = Vec::new();
                    let mut out = Vec::new();
                    for (c, block) in pids.chunks(CHUNK).enumerate() {
                        if c % workers != w {
                            continue;
                        }
                        for (i, &pid) in block.iter().enumerate() {
                            let r = procs::read_process(root, pid, true, eager_stat(pid), &mut buf);
                            out.push((c * CHUNK + i, r));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("scan worker panicked"))
            .collect()
    });
    let mut all: Vec<_> = results.into_iter().flatten().collect();
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}
