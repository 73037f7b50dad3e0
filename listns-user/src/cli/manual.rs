//! The parts of `--help` and of the man pages that are not options:
//! examples, exit statuses, environment, files and watch's filter keys.
//! `--help` prints them as text (`after_long_help`); `listns-dist` renders
//! the same [`sections`] as man page sections. [`EXAMPLES`] is the one
//! table of example commands: the docs test runs every one of them.

use crate::output::stream::watch_keys_by_kind;

/// Which page an example or section belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `listns` (the list).
    List,
    /// `listns watch`.
    Watch,
}

/// An example command and what it shows. Every command ends by itself,
/// as root, and is written for `sh -c`.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    pub page: Page,
    pub command: &'static str,
    pub shows: &'static str,
}

const fn ex(page: Page, command: &'static str, shows: &'static str) -> Example {
    Example {
        page,
        command,
        shows,
    }
}

/// Every example of `--help` and the man pages.
pub const EXAMPLES: &[Example] = &[
    ex(
        Page::List,
        "listns",
        "Every namespace on the host, one row each: its type, how many processes are in it, \
         the lowest pid among them, its user and command.",
    ),
    ex(
        Page::List,
        "listns -t net,user -o NS,TYPE,NPROCS,HOLDERS,CONTAINER",
        "Network and user namespaces, with everything that holds each one and its container.",
    ),
    ex(
        Page::List,
        "listns -T",
        "A tree: every namespace under the user namespace that owns it.",
    ),
    ex(
        Page::List,
        "listns -P",
        "Only namespaces no process is in: held by a bind mount, an open file, a socket or a \
         child namespace.",
    ),
    ex(
        Page::List,
        "listns -Q 'TYPE == \"net\" && NPROCS > 1'",
        "Network namespaces that more than one process is in.",
    ),
    ex(
        Page::List,
        "listns -p $$",
        "The namespaces this shell is in.",
    ),
    ex(
        Page::List,
        "listns -J | jq -r '.namespaces[] | select(.type == \"net\") | .ns'",
        "The inode number of every network namespace, from the JSON output.",
    ),
    ex(
        Page::Watch,
        "listns watch --duration 10s",
        "The inventory, then every namespace created, joined and left, for ten seconds.",
    ),
    ex(
        Page::Watch,
        "listns watch -J --events-only -t net --duration 10s",
        "One JSON object per network namespace event, without the inventory first.",
    ),
    ex(
        Page::Watch,
        "listns watch -Q 'event == \"created\" && TYPE == \"user\"' --duration 10s",
        "Only the creation of user namespaces.",
    ),
    ex(
        Page::Watch,
        "listns watch -- unshare -n true",
        "Runs the command and follows it and its children: their namespace events, then a \
         summary of every namespace they created or joined; exits with the command's status.",
    ),
    ex(
        Page::Watch,
        "listns watch -J -- sh -c 'unshare -n true; exit 3'",
        "The same as JSON lines, the last one the summary; listns exits 3.",
    ),
    ex(
        Page::Watch,
        "listns watch -J --events-only --events-file /tmp/listns-events.ndjson --duration 5s",
        "Appends the events to a file (SIGHUP reopens it, for logrotate).",
    ),
];

/// Exit statuses in follow mode that are listns's own (as env(1) and
/// timeout(1) use them): listns failed...
pub const EXIT_FAILED: u8 = 125;
/// ...the command was found but could not be run...
pub const EXIT_CANNOT_RUN: u8 = 126;
/// ...the command was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// A section: a title and (term, text) items; a term may be empty (a
/// paragraph).
pub struct Section {
    pub title: &'static str,
    pub items: Vec<(String, String)>,
}

fn items(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(t, d)| (t.to_string(), d.to_string()))
        .collect()
}

/// The sections after the options, in order.
pub fn sections(page: Page) -> Vec<Section> {
    let mut out = vec![Section {
        title: "EXAMPLES",
        items: EXAMPLES
            .iter()
            .filter(|e| e.page == page)
            .map(|e| (e.command.to_string(), e.shows.to_string()))
            .collect(),
    }];
    if page == Page::Watch {
        out.push(filter_keys());
    }
    out.push(exit_status(page));
    out.push(Section {
        title: "ENVIRONMENT",
        items: items(&[
            (
                "COLUMNS",
                "The width to fit output to on a terminal, instead of the terminal's own.",
            ),
            (
                "LC_ALL, LC_CTYPE, LANG",
                "The first one set says whether the terminal takes UTF-8; without it trees \
                 are drawn in ASCII.",
            ),
            (
                "RUST_LOG",
                "Diagnostic messages on stderr: error, warn (the default), info, debug, trace.",
            ),
        ]),
    });
    let mut files = vec![
        (
            "/proc",
            "Processes, threads, their namespace links, open files and sockets.",
        ),
        (
            "/run/netns, /var/run/netns",
            "Network namespaces named by ip-netns(8) (bind mounts are found in every mount \
             namespace, wherever they are).",
        ),
        (
            "/sys/fs/cgroup",
            "Cgroups, to tell which container a process is in.",
        ),
        (
            "containers.json, config.v2.json",
            "The names of podman, CRI-O and Docker containers, in those engines' storage \
             directories.",
        ),
        (
            "/run/listns/api.sock",
            "The inventory API of a running `listns watch`, read with --from.",
        ),
    ];
    if page == Page::Watch {
        files.extend([
            (
                "/sys/kernel/btf/vmlinux",
                "The kernel's BTF, for the struct offsets the eBPF programs need (--btf).",
            ),
            (
                "/sys/kernel/tracing",
                "tracefs, for the tracepoints; listns mounts it when it is not mounted.",
            ),
        ]);
    }
    out.push(Section {
        title: "FILES",
        items: items(&files),
    });
    out
}

fn exit_status(page: Page) -> Section {
    let mut pairs = vec![
        ("0", "Success."),
        (
            "1",
            "Failure: a bad command line (as lsns), or listns could not do what was asked.",
        ),
    ];
    if page == Page::Watch {
        pairs = vec![
            (
                "0",
                "Stopped by SIGINT, SIGTERM or --duration; when following, also a process \
                 listns did not start (--follow-pid) or a command still running when listns \
                 stopped.",
            ),
            ("1", "Failure, when not following."),
            (
                "N",
                "Following a command (-- COMMAND): the command's exit status, or 128 + the \
                 number of the signal that killed it.",
            ),
            (
                "125",
                "Following: listns itself failed (a bad command line, the tracer cannot start, \
                 ...).",
            ),
            (
                "126",
                "Following: the command was found but could not be run.",
            ),
            ("127", "Following: the command was not found."),
        ];
    }
    Section {
        title: "EXIT STATUS",
        items: items(&pairs),
    }
}

/// The keys `watch -Q` takes, by the type it compares them as.
fn filter_keys() -> Section {
    let mut items = vec![(
        String::new(),
        "-Q compares the keys of the --json lines (any case); a key a line does not \
         have is empty there. `event` is existing, created, joined, left, gone, hidden, \
         discovered, lost, rescan or summary."
            .to_string(),
    )];
    for (kind, names) in watch_keys_by_kind() {
        items.push((kind.to_string(), names.join(", ")));
    }
    items.push((
        "list columns".into(),
        "NS, TYPE, ID, PID, PPID, UID and the other column names of the list are \
                 the keys of the same name. COMMAND is the command line in existing lines and \
                 `comm` in event lines; CONTAINER is the container as the list prints it, \
                 `name (short id)` or `runtime:id`. CREATOR has no key here (created events \
                 name their creator in pid and comm)."
            .into(),
    ));
    Section {
        title: "FILTER KEYS",
        items,
    }
}

/// The sections as `--help` prints them.
fn help_text(page: Page) -> String {
    let mut out = String::new();
    for s in sections(page) {
        out.push_str(s.title);
        out.push_str(":\n");
        for (term, text) in &s.items {
            if term.is_empty() {
                push_wrapped(&mut out, text, 2);
            } else {
                out.push_str(&format!("  {term}\n"));
                push_wrapped(&mut out, text, 6);
            }
        }
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

/// `text` wrapped to 80 columns at spaces, each line indented.
fn push_wrapped(out: &mut String, text: &str, indent: usize) {
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > 80 {
            out.push_str(&format!("{:indent$}{line}\n", ""));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
}

pub fn list_long_help() -> String {
    help_text(Page::List)
}

pub fn watch_long_help() -> String {
    help_text(Page::Watch)
}
