//! The command line, as clap parses it. `app::list` and `app::watch` run it.

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::ns::NsType;

#[derive(Parser, Debug)]
#[command(
    name = "listns",
    version,
    about = "List every Linux namespace on this host and what holds it; trace namespace creation live",
    long_about = "Without a subcommand, listns scans /proc (processes, threads, fds, sockets, \
                  bind mounts in every mount namespace, /run/netns) and prints one row per \
                  namespace, like lsns. `listns watch` loads eBPF programs and reports \
                  namespaces as they are created, joined and left."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan, print the inventory, then trace namespace events live (eBPF).
    Watch(WatchArgs),
}

#[derive(Args, Debug, Clone, Default)]
#[command(group(ArgGroup::new("mode").args(["json", "tree", "classic"])))]
pub struct ListArgs {
    /// Columns to print, comma-separated (see --list-columns).
    #[arg(short = 'o', long = "output", value_delimiter = ',')]
    pub output: Vec<String>,
    /// Print all available columns.
    #[arg(long = "output-all")]
    pub output_all: bool,
    /// List the available columns and exit.
    #[arg(long = "list-columns")]
    pub list_columns: bool,
    /// Only namespaces of this type; repeatable, or comma-separated.
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub types: Vec<NsType>,
    /// Only namespaces held by this process.
    #[arg(short = 'p', long = "task")]
    pub pid: Option<u32>,
    /// Do not print a header line.
    #[arg(short = 'n', long = "noheadings")]
    pub noheadings: bool,
    /// Raw output: columns separated by one space, no alignment.
    #[arg(short = 'r', long = "raw")]
    pub raw: bool,
    /// JSON output: {"namespaces": [...]}.
    #[arg(short = 'J', long = "json")]
    pub json: bool,
    /// Show the owner (user namespace) and parent hierarchy as a tree.
    #[arg(long = "tree")]
    pub tree: bool,
    /// The original listns.py view: non-initial namespaces per process.
    #[arg(long = "classic")]
    pub classic: bool,
    /// Read this procfs instead of /proc (for tests and offline analysis).
    #[arg(long = "proc-root", default_value = "/proc", hide = true)]
    pub proc_root: std::path::PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Newline-delimited JSON: the inventory as "existing" lines, then one object per event.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Do not print the initial inventory, only events.
    #[arg(long)]
    pub events_only: bool,
    /// The kernel's BTF, for struct offsets (another file for kernels that ship it apart).
    #[arg(long, value_name = "PATH", default_value = "/sys/kernel/btf/vmlinux")]
    pub btf: std::path::PathBuf,
    /// Forget namespaces this many seconds after they are gone (keeps memory flat).
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub forget_after: f64,
    /// Remember at most this many gone namespaces (the oldest are forgotten first).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_gone: usize,
    /// Size of the kernel ring buffer that carries events: a power of two and a
    /// multiple of the page size (K and M suffixes allowed: 16K, 8M). Records that
    /// do not fit are counted (`lost`) and followed by a rescan.
    #[arg(long, value_name = "BYTES", default_value_t = listns_common::RINGBUF_BYTES,
          value_parser = parse_ring_bytes)]
    pub ring_buffer_size: u32,
}

/// `--ring-buffer-size`: bytes, with an optional K/KiB or M/MiB suffix; a
/// power of two and a multiple of the page size, as the kernel requires.
pub fn parse_ring_bytes(s: &str) -> Result<u32, String> {
    let page = page_size();
    ring_bytes(s, page)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64,
        _ => 4096,
    }
}

fn ring_bytes(s: &str, page: u64) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size in bytes (e.g. 16K, 8M, 65536)"))?;
    let mult: u64 = match unit.trim() {
        "" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        other => {
            return Err(format!(
                "unknown unit {other:?} (bytes, or a K or M suffix: 16K, 8M)"
            ));
        }
    };
    let bytes = n
        .checked_mul(mult)
        .filter(|&b| b <= 1 << 31)
        .ok_or_else(|| format!("{s} is too large (at most 2G)"))?;
    if bytes < page || !bytes.is_power_of_two() {
        let up = bytes.max(page).next_power_of_two();
        let down = (up / 2).max(page);
        let hint = if down == up || bytes < page {
            format!("{up}")
        } else {
            format!("{down} or {up}")
        };
        return Err(format!(
            "{bytes} bytes: the ring buffer must be a power of two and a multiple of the \
             page size ({page} bytes); try {hint}"
        ));
    }
    Ok(bytes as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_in_bytes_and_units() {
        assert_eq!(ring_bytes("16384", 4096), Ok(16384));
        assert_eq!(ring_bytes("16K", 4096), Ok(16384));
        assert_eq!(ring_bytes("16KiB", 4096), Ok(16384));
        assert_eq!(ring_bytes("8M", 4096), Ok(8 << 20));
        assert_eq!(ring_bytes("4096", 4096), Ok(4096));
        assert_eq!(ring_bytes("2048M", 4096), Ok(1 << 31));
    }

    #[test]
    fn bad_ring_sizes_say_why_and_what_would_do() {
        let e = ring_bytes("10000", 4096).unwrap_err();
        assert!(
            e.contains("power of two") && e.contains("try 8192 or 16384"),
            "{e}"
        );
        let e = ring_bytes("2048", 4096).unwrap_err();
        assert!(
            e.contains("page size (4096 bytes)") && e.contains("try 4096"),
            "{e}"
        );
        assert!(ring_bytes("0", 4096).unwrap_err().contains("try 4096"));
        assert!(ring_bytes("4096M", 4096).unwrap_err().contains("too large"));
        assert!(
            ring_bytes("16Q", 4096)
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(ring_bytes("lots", 4096).unwrap_err().contains("not a size"));
        // A 64 KiB page: 16K is not a multiple of it.
        assert!(ring_bytes("16K", 65536).unwrap_err().contains("try 65536"));
    }

    #[test]
    fn default_ring_size_is_valid_and_parses() {
        let d = listns_common::RINGBUF_BYTES;
        assert_eq!(parse_ring_bytes(&d.to_string()), Ok(d));
        let w = <Cli as clap::Parser>::try_parse_from(["listns", "watch"]).unwrap();
        let Some(Command::Watch(w)) = w.command else {
            panic!("watch")
        };
        assert_eq!(w.ring_buffer_size, d);
        assert!(
            <Cli as clap::Parser>::try_parse_from([
                "listns",
                "watch",
                "--ring-buffer-size",
                "5000"
            ])
            .is_err()
        );
    }
}
