//! The command line, as clap parses it. `app::list` and `app::watch` run it.

use clap::{ArgGroup, Args, Parser, Subcommand};

use std::ffi::OsString;

use crate::{ns::NsType, output::TreeMode};

#[derive(Parser, Debug)]
#[command(
    name = "listns",
    version,
    about = "List every Linux namespace on this host and what holds it; trace namespace creation live",
    long_about = "Without a subcommand, listns scans /proc (processes, threads, fds, sockets, \
                  bind mounts in every mount namespace, /run/netns) and prints one row per \
                  namespace, like lsns, with lsns's options and columns. `listns watch` loads \
                  eBPF programs and reports namespaces as they are created, joined and left.\n\n\
                  Differences from lsns, on purpose: more rows (threads, *_for_children links, \
                  bind mounts in other mount namespaces, every owner and parent); the extra \
                  columns ID, HOLDERS, CONTAINER and NAME (and JSON keys id, holders, hidden); \
                  -J flat unless -T is given; -l with -T refused; -t takes comma lists; UID and \
                  USER of a namespace without processes from its owning user namespace; -Q \
                  also with a positional namespace. See the README."
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

/// `listns [OPTIONS] [NAMESPACE]`: lsns's options with lsns's meanings;
/// where listns differs on purpose the option's help says so.
#[derive(Args, Debug, Clone, Default)]
#[command(group(ArgGroup::new("classic-mode").args(["classic"]).conflicts_with_all(["json", "tree", "raw", "list", "filter", "namespace", "persistent"])))]
pub struct ListArgs {
    /// Show only this namespace's processes, one row each (an inode
    /// number as lsns takes it, or a 64-bit namespace id).
    #[arg(value_name = "NAMESPACE", conflicts_with = "pid")]
    pub namespace: Option<String>,
    /// Columns to print, comma-separated; `+LIST` adds to the defaults; the
    /// last -o counts (see --list-columns).
    #[arg(short = 'o', long = "output", value_name = "LIST", action = clap::ArgAction::Append)]
    pub output: Vec<String>,
    /// Print all available columns (lsns's thirteen, then listns's own).
    #[arg(long = "output-all")]
    pub output_all: bool,
    /// List the available columns and exit (with -J or -r in those formats).
    #[arg(short = 'H', long = "list-columns")]
    pub list_columns: bool,
    /// Print the JSON Schema of `-J` and of `watch --json` lines, and exit.
    #[arg(long = "json-schema")]
    pub json_schema: bool,
    /// Only namespaces of this type; repeatable, or comma-separated (lsns
    /// takes one type per option).
    #[arg(short = 't', long = "type", value_delimiter = ',', value_name = "TYPE")]
    pub types: Vec<NsType>,
    /// Only the namespaces this process is in (its own /proc/PID/ns links).
    #[arg(
        short = 'p',
        long = "task",
        value_name = "PID",
        conflicts_with = "persistent"
    )]
    pub pid: Option<u32>,
    /// Only namespaces no process is in (held by a bind mount, an fd, a
    /// socket or a child namespace).
    #[arg(short = 'P', long = "persistent")]
    pub persistent: bool,
    /// Only rows that match this libsmartcols filter expression
    /// (scols-filter(5)), over any column, shown or not; e.g.
    /// 'NPROCS == 0 && TYPE == "net"'.
    #[arg(short = 'Q', long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Do not print a header line.
    #[arg(short = 'n', long = "noheadings")]
    pub noheadings: bool,
    /// Raw output: one space between cells, no alignment, blanks, backslashes
    /// and non-ASCII bytes as \xNN (as lsns).
    #[arg(short = 'r', long = "raw", conflicts_with = "json")]
    pub raw: bool,
    /// JSON output: {"namespaces": [...]}, with listns's extra keys (id,
    /// holders, hidden). Flat unless -T is given (lsns nests rows under
    /// their process tree parent by default).
    #[arg(short = 'J', long = "json")]
    pub json: bool,
    /// No tree: a flat list in inode order (refused with -T; lsns lets -T win).
    #[arg(short = 'l', long = "list", conflicts_with = "tree")]
    pub list: bool,
    /// Draw a tree: `owner` (the default: every namespace under the user
    /// namespace that owns it), `parent` (user and pid namespaces under their
    /// parent) or `process` (each row under its process's parent, as the
    /// plain table draws it). Write -Tparent or --tree=parent.
    #[arg(
        short = 'T',
        long = "tree",
        value_name = "REL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "owner",
        value_enum
    )]
    pub tree: Option<TreeMode>,
    /// Do not cut text to fit the terminal (a pipe always gets everything).
    #[arg(short = 'u', long = "notruncate")]
    pub notruncate: bool,
    /// No multi-line cells: NSFS on one line, joined by `,`, never cut.
    #[arg(short = 'W', long = "nowrap")]
    pub nowrap: bool,
    /// The original listns.py view: non-initial namespaces per process.
    #[arg(long = "classic")]
    pub classic: bool,
    /// Read this procfs instead of /proc (for tests and offline analysis).
    #[arg(long = "proc-root", default_value = "/proc", hide = true)]
    pub proc_root: std::path::PathBuf,
    /// Show the inventory of a running `listns watch` instead of scanning: its unix socket
    /// (default /run/listns/api.sock) or http://HOST:PORT. It knows what a scan cannot:
    /// hidden namespaces, who created each one, and those gone since it started.
    #[arg(long = "from", value_name = "SOCKET|URL", num_args = 0..=1,
          default_missing_value = crate::api::DEFAULT_SOCKET)]
    pub from: Option<String>,
    /// With --from over TCP: a file holding the bearer token the watcher wants.
    #[arg(long = "token-file", value_name = "FILE", requires = "from")]
    pub token_file: Option<std::path::PathBuf>,
}

/// lsns's `-T` takes its argument only attached (`-Tparent`), as getopt's
/// optional arguments do; clap wants `-T=parent`. Rewrites the first form
/// into the second, before any `--`.
pub fn lsns_argv(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest = false;
    for a in args {
        if !rest && a == "--" {
            rest = true;
        }
        match a.to_str() {
            Some(s) if !rest && s.len() > 2 && s.starts_with("-T") && !s.starts_with("-T=") => {
                out.push(format!("-T={}", &s[2..]).into());
            }
            _ => out.push(a),
        }
    }
    out
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Following a process tree (like strace -f, for namespaces):
  listns watch -- podman run --rm alpine true
  listns watch --json -- sh -c 'unshare -n true; exit 3'
  listns watch --pid 1234
prints only what that tree does (its children stay followed however they
re-parent or daemonize), then a summary of every namespace it created or
joined: who, when, how long it lived, and what holds it now. listns exits
with the command's status. The first Ctrl-C reaches the command too and
listns waits for it to exit; a second one stops at once.

Filters choose what is printed, never what is tracked: -t, --container
and following narrow the output, while the inventory behind gone and
hidden verdicts stays complete.

While it runs, the inventory it keeps current is served on its unix
socket (/run/listns/api.sock, root only; not when following, unless
--api-socket is given): `listns --from` prints it like a scan but with
creators, hidden and gone namespaces; `listns watch --from` follows its
events without loading eBPF again; `curl --unix-socket
/run/listns/api.sock http://localhost/v1/namespaces` reads the JSON
(endpoints: /v1/openapi.json).")]
pub struct WatchArgs {
    /// Newline-delimited JSON: the inventory as "existing" lines, then one object per event
    /// and namespace (and a final "summary" object when following).
    #[arg(long)]
    pub json: bool,
    /// Print only the lines that match this filter expression
    /// (scols-filter(5)) over the event's keys as --json names them, e.g.
    /// 'event == "created" && type == "net"' (see the README for the keys).
    #[arg(short = 'Q', long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM, or the followed command's exit).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Do not print the initial inventory, only events.
    #[arg(long)]
    pub events_only: bool,
    /// Only events of namespaces of this type; repeatable, or comma-separated.
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub types: Vec<NsType>,
    /// Only events of processes in this container: its name, its pod's name, or its id
    /// (a prefix of at least 4 characters).
    #[arg(long, value_name = "NAME|ID")]
    pub container: Option<String>,
    /// Follow this running process and every process it forks from now on (its existing
    /// descendants too); print only their events and end with a summary when it exits.
    #[arg(short = 'p', long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,
    /// When following: after the process exits, wait at most this long for the fate of its
    /// namespaces (gone, hidden or held) before the summary.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub settle: f64,
    /// The kernel's BTF, for struct offsets (another file for kernels that ship it apart).
    #[arg(long, value_name = "PATH", default_value = "/sys/kernel/btf/vmlinux")]
    pub btf: std::path::PathBuf,
    /// Forget namespaces this many seconds after they are gone (keeps memory flat).
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub forget_after: f64,
    /// Remember at most this many gone namespaces (the oldest are forgotten first).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_gone: usize,
    /// Serve Prometheus metrics on /metrics, health on /healthz (503 and why when the picture
    /// is incomplete) and liveness on /livez (503 only when the loop stalls).
    /// A bare PORT listens on loopback (127.0.0.1) only; name another address
    /// (0.0.0.0:PORT, [::]:PORT) to be reachable from elsewhere.
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_listen)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Append the event stream to FILE instead of stdout; SIGHUP reopens it
    /// (for logrotate).
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Size of the kernel ring buffer that carries events: a power of two and a
    /// multiple of the page size (K and M suffixes allowed: 16K, 8M). Records that
    /// do not fit are counted (`lost`) and followed by a rescan.
    #[arg(long, value_name = "BYTES", default_value_t = listns_common::RINGBUF_BYTES,
          value_parser = parse_ring_bytes)]
    pub ring_buffer_size: u32,
    /// Serve the inventory API (/v1: the live inventory, events, gone namespaces) on this unix
    /// socket, mode 0600 (0660 with --api-group). Another watcher already serving there is
    /// left alone.
    #[arg(long = "api-socket", value_name = "PATH", default_value = crate::api::DEFAULT_SOCKET)]
    pub api_socket: std::path::PathBuf,
    /// Let this group connect to the API socket too.
    #[arg(long = "api-group", value_name = "GROUP")]
    pub api_group: Option<String>,
    /// Serve the inventory API on TCP as well. A bare PORT is loopback; any other address
    /// needs --api-token-file (requests without the token get 401).
    #[arg(long = "api", value_name = "[ADDR:]PORT", value_parser = parse_listen)]
    pub api: Option<std::net::SocketAddr>,
    /// A file holding the bearer token that API requests over TCP must carry.
    #[arg(long = "api-token-file", value_name = "FILE")]
    pub api_token_file: Option<std::path::PathBuf>,
    /// Serve no API socket (--api still serves it on TCP).
    #[arg(long = "no-api", conflicts_with = "api_group")]
    pub no_api: bool,
    /// Follow the event stream of a running `listns watch` (its unix socket or
    /// http://HOST:PORT) instead of loading eBPF programs: many people, one tracer.
    #[arg(long = "from", value_name = "SOCKET|URL", num_args = 0..=1,
          default_missing_value = crate::api::DEFAULT_SOCKET,
          conflicts_with_all = ["command", "pid", "metrics", "api"])]
    pub from: Option<String>,
    /// With --from over TCP: a file holding the bearer token the watcher wants.
    #[arg(long = "token-file", value_name = "FILE", requires = "from")]
    pub token_file: Option<std::path::PathBuf>,
    /// Run COMMAND and follow it and its descendants (after `--`); listns exits with its status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

/// `PORT` (loopback) or `ADDR:PORT`.
fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not PORT or ADDR:PORT (127.0.0.1:9433, [::1]:9433)"))
}

/// `--ring-buffer-size`: bytes, with an optional K/KiB or M/MiB suffix; a
/// power of two and a multiple of the page size, as the kernel requires.
pub fn parse_ring_bytes(s: &str) -> Result<u32, String> {
    ring_bytes(s, crate::sys::page_size() as u64)
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
    fn metrics_address_defaults_to_loopback() {
        assert_eq!(parse_listen("9433").unwrap().to_string(), "127.0.0.1:9433");
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap().to_string(),
            "0.0.0.0:80"
        );
        assert_eq!(parse_listen("[::1]:9").unwrap().to_string(), "[::1]:9");
        assert!(parse_listen("localhost").is_err());
    }

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
