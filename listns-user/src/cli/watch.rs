//! `listns watch`'s options.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::values::{parse_duration, parse_listen, parse_ring_bytes};
use crate::ns::NsType;

/// What `listns watch --help` and its man page say before the options.
pub const LONG_ABOUT: &str = "\
Scans and prints the inventory (as `listns` does), then loads eBPF programs and \
prints every namespace event as it happens: created, joined, left, and the \
verdicts gone (dead), hidden (alive, but nothing a scan can see holds it) and \
discovered (found by a rescan).

Following a process tree (like strace -f, for namespaces): with -- COMMAND or \
--follow-pid PID it prints only what that tree does (its children stay followed \
however they re-parent or daemonize), then a summary of every namespace it created \
or joined: who, when, how long it lived, and what holds it now. The first Ctrl-C \
reaches the command too and listns waits for it to exit; a second one stops at once.

Filters choose what is printed, never what is tracked: -t, --container, -Q and \
following narrow the output, while the inventory behind gone and hidden verdicts \
stays complete.

While it runs, the inventory it keeps current is served on its unix socket \
(/run/listns/api.sock, root only; not when following, unless --api-socket is \
given): `listns --from` prints it like a scan but with creators, hidden and gone \
namespaces; `listns watch --from` follows its events without loading eBPF again.";

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Newline-delimited JSON: the inventory as "existing" lines, then one object per event
    /// and namespace (and a final "summary" object when following).
    #[arg(short = 'J', long)]
    pub json: bool,
    /// Print only the lines that match this filter expression
    /// (scols-filter(5)) over the keys of the --json lines, e.g.
    /// 'event == "created" && type == "net"'; the list's column names
    /// (NS, TYPE, PID, COMMAND, CONTAINER, ...) stand for their event keys.
    /// The keys are listed under FILTER KEYS in --help.
    #[arg(short = 'Q', long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Stop after this long: seconds, or with a unit (500ms, 2s, 1m, 1h); default: until
    /// SIGINT/SIGTERM, or the followed command's exit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
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
    #[arg(long = "follow-pid", value_name = "PID", conflicts_with = "command")]
    pub follow_pid: Option<u32>,
    /// The old spelling of --follow-pid (it collides with the list's -p).
    #[arg(short = 'p', long = "pid", value_name = "PID", hide = true,
          conflicts_with_all = ["command", "follow_pid"])]
    pub old_pid: Option<u32>,
    /// When following: after the process exits, wait at most this long for the fate of its
    /// namespaces (gone, hidden or held) before the summary.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// How its scans (at start-up, after lost records) read processes, threads and open
    /// files: `iter` (the kernel's BPF iterators), `proc` or `auto` (as for a list).
    #[arg(long = "scan", value_name = "PASS", value_enum, default_value_t = crate::scan::ScanSource::Auto)]
    pub scan: crate::scan::ScanSource,
    /// The kernel's BTF, for struct offsets (another file for kernels that ship it apart).
    #[arg(long, value_name = "PATH", default_value = "/sys/kernel/btf/vmlinux")]
    pub btf: PathBuf,
    /// Forget namespaces this long after they are gone (keeps memory flat).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub forget_after: Duration,
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
    #[arg(long = "events-file", value_name = "FILE")]
    pub events_file: Option<PathBuf>,
    /// The old spelling of --events-file (it collides with the list's -o).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        hide = true,
        conflicts_with = "events_file"
    )]
    pub old_output: Option<PathBuf>,
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
    pub api_socket: PathBuf,
    /// Let this group connect to the API socket too.
    #[arg(long = "api-group", value_name = "GROUP")]
    pub api_group: Option<String>,
    /// Serve the inventory API on TCP as well. A bare PORT is loopback; any other address
    /// needs --api-token-file (requests without the token get 401).
    #[arg(long = "api", value_name = "[ADDR:]PORT", value_parser = parse_listen)]
    pub api: Option<std::net::SocketAddr>,
    /// A file holding the bearer token that API requests over TCP must carry.
    #[arg(long = "api-token-file", value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Serve no API socket (--api still serves it on TCP).
    #[arg(long = "no-api", conflicts_with = "api_group")]
    pub no_api: bool,
    /// Follow the event stream of a running `listns watch` (its unix socket or
    /// http://HOST:PORT) instead of loading eBPF programs: many people, one tracer.
    #[arg(long = "from", value_name = "SOCKET|URL", num_args = 0..=1,
          default_missing_value = crate::api::DEFAULT_SOCKET,
          conflicts_with_all = ["command", "follow_pid", "old_pid", "metrics", "api"])]
    pub from: Option<String>,
    /// With --from over TCP: a file holding the bearer token the watcher wants.
    #[arg(long = "token-file", value_name = "FILE", requires = "from")]
    pub token_file: Option<PathBuf>,
    /// Run COMMAND and follow it and its descendants (after `--`); listns exits with its
    /// status, or 125-127 when it fails itself (see EXIT STATUS in --help).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

/// The old spellings kept for one release: (old argument's id, its
/// spelling, the new spelling).
pub const DEPRECATED: &[(&str, &str, &str)] = &[
    ("old_pid", "-p/--pid", "--follow-pid"),
    ("old_output", "-o/--output", "--events-file"),
];

impl WatchArgs {
    /// Whether it follows a process tree (a command, or a running process).
    pub fn following(&self) -> bool {
        !self.command.is_empty() || self.follow_pid.is_some()
    }

    /// Moves the old spellings' values to the new ones, and returns a note
    /// for each old spelling used.
    pub(super) fn take_deprecated(&mut self) -> Vec<String> {
        let mut used = Vec::new();
        if let Some(pid) = self.old_pid.take() {
            self.follow_pid = Some(pid);
            used.push("old_pid");
        }
        if let Some(file) = self.old_output.take() {
            self.events_file = Some(file);
            used.push("old_output");
        }
        DEPRECATED
            .iter()
            .filter(|(id, ..)| used.contains(id))
            .map(|(_, old, new)| {
                format!(
                    "watch {old} is deprecated and will go in the next release: write {new} \
                     (the list's {} means something else)",
                    &old[..2]
                )
            })
            .collect()
    }
}
