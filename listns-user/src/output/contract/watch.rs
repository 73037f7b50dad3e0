//! `listns watch --json`: one [`WatchLine`] per line.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Container, Hex, Holders, NamespaceRow, Origin, Task, Text, Time, Which, exact};
use crate::inventory::{
    self as inv, Namespace, NsKey,
    live::{self, ChangeKind, TaskEvent, TaskEventKind},
};

/// One line of `listns watch --json`.
#[derive(Serialize, JsonSchema)]
#[allow(clippy::large_enum_variant)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum WatchLine<'a> {
    /// The inventory at start-up: one per namespace, as `-J` prints them.
    Existing(NamespaceRow<'a>),
    /// A task created a namespace.
    Created(Change<'a>),
    /// A task entered an existing namespace (setns, or a fork into one).
    Joined(Change<'a>),
    /// A task left a namespace (it exited or moved).
    Left(Change<'a>),
    /// The namespace is dead.
    Gone(Verdict<'a>),
    /// Alive, but nothing a scan can see holds it.
    Hidden(Verdict<'a>),
    /// Found by a rescan, unseen before (without the tracer).
    Discovered(Verdict<'a>),
    /// The kernel could not deliver records (ring buffer full).
    Lost(Lost),
    /// The rescan that reconciles the inventory after lost records.
    Rescan(Rescan),
    /// The last line when following (`watch -- COMMAND`, `--pid`): what
    /// the followed tree did with namespaces.
    Summary(Summary<'a>),
}

impl<'a> WatchLine<'a> {
    /// The line for one namespace a task event created, joined or left
    /// (its container unknown).
    pub fn change(ev: &'a TaskEvent, c: &live::Change) -> Self {
        Self::change_in(ev, c, None)
    }

    /// The same, with the task's container where known.
    pub fn change_in(
        ev: &'a TaskEvent,
        c: &live::Change,
        container: Option<&'a inv::Container>,
    ) -> Self {
        let line = Change::new(ev, c, container);
        match c.kind {
            ChangeKind::Created => WatchLine::Created(line),
            ChangeKind::Joined => WatchLine::Joined(line),
            ChangeKind::Left => WatchLine::Left(line),
        }
    }

    /// A verdict on a namespace: `event` is `gone`, `hidden` or
    /// `discovered`.
    pub fn verdict(event: VerdictKind, key: &NsKey, ns: &'a Namespace, time_ns: u64) -> Self {
        let v = Verdict::new(key, ns, time_ns);
        match event {
            VerdictKind::Gone => WatchLine::Gone(v),
            VerdictKind::Hidden => WatchLine::Hidden(v),
            VerdictKind::Discovered => WatchLine::Discovered(v),
        }
    }
}

/// The verdicts a namespace gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictKind {
    Gone,
    Hidden,
    Discovered,
}

impl VerdictKind {
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::Gone => "gone",
            VerdictKind::Hidden => "hidden",
            VerdictKind::Discovered => "discovered",
        }
    }
}

/// A task's effect on one namespace.
#[derive(Serialize, JsonSchema)]
pub struct Change<'a> {
    /// Kernel timestamp of the event.
    pub time: Time,
    #[serde(flatten)]
    pub which: Which,
    /// The task's link that changed (`net`, `pid_for_children`, ...).
    pub link: &'a str,
    #[serde(flatten)]
    pub task: Task<'a>,
    /// The parent process of `pid`.
    pub ppid: u32,
    /// The task's real uid.
    pub uid: u32,
    /// The fd passed to setns; null otherwise.
    pub fd: Option<i32>,
    /// The id of the task's cgroup (the inode of its cgroup2 directory).
    pub cgroup_id: u64,
    /// The task's container (its name and id); null when it is in none,
    /// or when that could not be told (a task that exited at once).
    pub container: Option<Container<'a>>,
}

impl<'a> Change<'a> {
    pub fn new(ev: &'a TaskEvent, c: &live::Change, container: Option<&'a inv::Container>) -> Self {
        Change {
            time: Time(ev.time_ns),
            which: Which::from(&c.key),
            link: c.link,
            task: Task::new(ev.pid, ev.tid, ev.comm.as_bytes(), ev.syscall(), ev.flags),
            ppid: ev.ppid,
            uid: ev.uid,
            fd: (ev.kind == TaskEventKind::Setns).then_some(ev.fd),
            cgroup_id: ev.cgroup_id,
            container: container.map(Container::from),
        }
    }
}

/// A verdict on a namespace, with its creator where the tracer saw it.
#[derive(Serialize, JsonSchema)]
pub struct Verdict<'a> {
    /// When the verdict was reached.
    pub time: Time,
    #[serde(flatten)]
    pub which: Which,
    /// The creator's pid; null when created before listns started.
    pub pid: Option<u32>,
    /// The creator's `comm`.
    pub comm: Option<Text<'a>>,
    /// The exact bytes of `comm` in hex, only when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Hex")]
    pub comm_hex: Option<Hex>,
    /// How the creator made it (`clone`, `unshare`).
    pub syscall: Option<&'a str>,
    /// When it was created.
    pub created: Option<Time>,
    /// The creator's container, when it had one.
    pub container: Option<Container<'a>>,
    /// Alive, but nothing a scan can see holds it.
    pub hidden: bool,
}

impl<'a> Verdict<'a> {
    pub fn new(key: &NsKey, ns: &'a Namespace, time_ns: u64) -> Self {
        let o = ns.origin.as_ref();
        let (comm, comm_hex) = match o.map(|o| exact(o.comm.as_bytes())) {
            Some((t, h)) => (Some(t), h),
            None => (None, None),
        };
        Verdict {
            time: Time(time_ns),
            which: Which::from(key),
            pid: o.map(|o| o.pid),
            comm,
            comm_hex,
            syscall: o.map(|o| o.syscall),
            created: o.map(|o| Time(o.time_ns)),
            container: o.and_then(|o| o.container.as_ref()).map(Container::from),
            hidden: ns.hidden,
        }
    }
}

/// What a followed process tree did with namespaces.
#[derive(Serialize, JsonSchema)]
pub struct Summary<'a> {
    pub time: Time,
    /// The followed process.
    pub pid: u32,
    /// Its command line.
    pub command: Vec<Text<'a>>,
    /// Still running when listns stopped (a signal, `--duration`).
    pub running: bool,
    /// Its exit status, when listns ran it and it exited.
    pub exit_status: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Every namespace the tree created or joined, in that order.
    pub namespaces: Vec<FollowedNamespace<'a>>,
}

/// One namespace a followed tree created or joined, and its fate.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FollowedNamespace<'a> {
    #[serde(flatten)]
    pub which: Which,
    /// `created` or `joined`.
    pub how: &'a str,
    /// The tree's task that created or joined it.
    #[serde(flatten)]
    pub task: Task<'a>,
    /// When it did.
    pub time: Time,
    /// Who created the namespace, where the tracer saw it (null when it
    /// existed before listns started).
    pub creator: Option<Origin<'a>>,
    /// When it was created, where known.
    pub created: Option<Time>,
    /// When it went: its last holder left and the lifecycle then found it
    /// dead; null while it lives.
    pub gone: Option<Time>,
    /// From creation to `gone`, or to now while it lives (milliseconds).
    pub lifetime_ms: Option<f64>,
    /// `alive`, `hidden` (alive, nothing a scan can see holds it) or `gone`.
    pub state: &'a str,
    /// What holds it now.
    pub holders: Holders<'a>,
}

#[derive(Clone, Serialize, JsonSchema)]
pub struct Lost {
    pub time: Time,
    /// Records lost since the last report (the ring buffer was full, or the
    /// kernel skipped a run of a program).
    pub count: u64,
    /// Of `count`: runs of listns's programs the kernel skipped (their
    /// `recursion_misses`); each may be a record never written.
    pub missed: u64,
}

#[derive(Clone, Serialize, JsonSchema)]
pub struct Rescan {
    pub time: Time,
    /// Namespaces in the inventory after the rescan.
    pub namespaces: u64,
    /// Namespaces the rescan found that were unknown.
    pub discovered: u64,
}
