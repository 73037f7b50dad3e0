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
hidden verdicts stays complete.")]
pub struct WatchArgs {
    /// Newline-delimited JSON: the inventory as "existing" lines, then one object per event
    /// and namespace (and a final "summary" object when following).
    #[arg(long)]
    pub json: bool,
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
    /// Run COMMAND and follow it and its descendants (after `--`); listns exits with its status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}
