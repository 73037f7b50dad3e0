//! `/proc/PID/stat` (scan/procs.rs `parse_stat`): any bytes parse without a
//! panic; what parses has the comm between the first `(` and the last `)`
//! and survives being written out and read again; a line written the way
//! the kernel writes it, with any comm, reads back as its fields.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use listns::fuzzing::{Stat, parse_stat};

/// fs/proc/array.c do_task_stat(): pid (comm) state ppid pgrp session
/// tty_nr tpgid flags ... num_threads(20) ... 52 fields in all.
fn kernel_line(pid: u32, s: &Stat) -> Vec<u8> {
    let mut line = format!("{pid} (").into_bytes();
    line.extend_from_slice(&s.comm);
    line.extend(
        format!(
            ") S {} {pid} {pid} 0 -1 {} 112 0 0 0 3 1 0 0 20 0 {} 0 4242 9945088 \
             896 18446744073709551615 1 1 0 0 0 0 0 4096 65536 0 0 0 17 1 0 0 0 0 0 \
             0 0 0 0 0 0 0 0\n",
            s.ppid, s.flags, s.threads
        )
        .into_bytes(),
    );
    line
}

#[derive(Arbitrary, Debug)]
struct Fields {
    pid: u32,
    comm: Vec<u8>,
    ppid: u32,
    flags: u64,
    threads: u32,
}

fuzz_target!(|data: &[u8]| {
    if let Some(s) = parse_stat(data) {
        let open = data.iter().position(|&b| b == b'(').unwrap();
        let close = data.iter().rposition(|&b| b == b')').unwrap();
        assert_eq!(s.comm, &data[open + 1..close]);
        assert_eq!(parse_stat(&kernel_line(1, &s)).as_ref(), Some(&s));
    }

    let mut u = Unstructured::new(data);
    let Ok(f) = Fields::arbitrary(&mut u) else {
        return;
    };
    let s = Stat {
        comm: f.comm,
        ppid: f.ppid,
        flags: f.flags,
        threads: f.threads,
    };
    assert_eq!(parse_stat(&kernel_line(f.pid, &s)), Some(s));
});
