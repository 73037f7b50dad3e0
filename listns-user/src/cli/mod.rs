//! The command line, as clap parses it. `app::list` and `app::watch` run it.

use clap::{ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use std::ffi::OsString;

use crate::{ns::NsType, output::TreeMode, scan::ScanSource};

pub mod manual;
mod placement;
#[cfg(test)]
mod tests;
mod values;
mod watch;

pub use values::parse_ring_bytes;
pub use watch::WatchArgs;

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
                  columns ID, HOLDERS, CONTAINER, NAME and CREATOR (and JSON keys id, holders, hidden, created); \
                  -J flat unless -T is given; -l with -T refused; -t takes comma lists; UID and \
                  USER of a namespace without processes from its owning user namespace; -Q \
                  also with a positional namespace."
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
    #[command(long_about = watch::LONG_ABOUT)]
    Watch(WatchArgs),
}

/// Parses listns's command line (`argv[0]` first): clap's parse, with
/// lsns's `-Tparent` accepted, list options given with `watch` refused,
/// and old spellings moved to the new ones. Returns the notes to print
/// about old spellings.
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<(Cli, Vec<String>), clap::Error> {
    let argv = lsns_argv(argv);
    // The long help's sections cost a schema to build: only for help.
    let mut cmd = if wants_help(&argv) {
        command()
    } else {
        Cli::command()
    };
    let matches = cmd.try_get_matches_from_mut(argv)?;
    placement::check(&mut cmd, &matches)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    let notes = match &mut cli.command {
        Some(Command::Watch(w)) => w.take_deprecated(),
        None => Vec::new(),
    };
    Ok((cli, notes))
}

/// The command line with its long help complete: the examples, exit
/// statuses, environment, files and watch's filter keys after the
/// options (`--help`, the man pages).
pub fn command() -> clap::Command {
    Cli::command()
        .after_long_help(manual::list_long_help())
        .mut_subcommand("watch", |w| w.after_long_help(manual::watch_long_help()))
}

/// Whether `argv` may ask for help (`--help`, `-h` alone or among other
/// short flags, `help`), before any `--`.
fn wants_help(argv: &[OsString]) -> bool {
    argv.iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| {
            a == "--help"
                || a == "help"
                || (a.starts_with('-') && !a.starts_with("--") && a.contains('h'))
        })
}

/// The exit status of a command line clap refuses: 1 as lsns, but 125
/// when it asks to follow a command or process (`watch ... -- COMMAND`,
/// `--follow-pid`), where the command's own statuses must stay apart.
pub fn usage_status(argv: &[OsString]) -> u8 {
    let after_watch = argv.iter().skip(1).skip_while(|a| *a != "watch").skip(1);
    let mut following = false;
    for a in after_watch {
        let a = a.to_string_lossy();
        if a == "--" || a.starts_with("--follow-pid") {
            following = true;
            break;
        }
    }
    if following { manual::EXIT_FAILED } else { 1 }
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
    /// How processes, threads and open files are read: `iter`, one pass of the kernel's BPF
    /// task and task-file iterators (fast; needs root and a kernel that allows them); `proc`,
    /// /proc; `auto`, the iterators where they run, else /proc, saying why once.
    #[arg(long = "scan", value_name = "PASS", value_enum, default_value_t = ScanSource::Auto)]
    pub scan: ScanSource,
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
