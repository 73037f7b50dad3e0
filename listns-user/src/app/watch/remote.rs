//! `listns watch --from`: the event stream of a running watcher instead of
//! eBPF programs of one's own. Each event is read back into the events the
//! local path has (a task event and its change, or a verdict on a
//! namespace) and written by the same `EventWriter`: the same text, the
//! same JSON lines (without the stream's `cursor`), the same `-Q`, `-t` and
//! `--container`. No reconnection: a stream that ends or is cut is an error.

use std::{borrow::Cow, process::ExitCode};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    api::client::{Client, Target},
    app::{from, print::WatchFilter},
    cli::WatchArgs,
    inventory::{
        Inventory, Namespace, NsKey,
        live::{Change, ChangeKind, TaskEvent, TaskEventKind},
    },
    output::{
        Selection,
        contract::{self, ApiError, Container, Task, Time, VerdictKind, Which},
        fit,
        sink::Sink,
        stream::{self, EventWriter},
    },
    scan::{Details, attribution::Containers},
};

/// Follows the watcher at `args.from` until the stream ends, `--duration`
/// passes or a signal comes.
pub fn watch(args: &WatchArgs, from: &str) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args, from))
}

async fn run(args: &WatchArgs, from: &str) -> anyhow::Result<ExitCode> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let filter = args
        .filter
        .as_deref()
        .map(stream::event_filter)
        .transpose()?;
    let client = Client::new(from, args.token_file.as_deref())?;
    let local = matches!(client.target(), Target::Unix(_));
    if args.container.is_some() && !local {
        fit::note(
            "--container over TCP: the tasks of created, joined and left events cannot be \
             looked up from here; only gone, hidden and discovered lines (their creator's \
             container) match",
        );
    }
    // The stream first, so that nothing between the inventory and it is missed.
    let mut events = client.stream("/v1/events/stream").await?;
    let mut out = EventWriter::new(Sink::open(args.events_file.as_deref())?, args.json)
        .with_filter(filter)
        .with_width(
            args.events_file
                .is_none()
                .then(fit::terminal_width)
                .flatten(),
        );
    let print = WatchFilter {
        types: args.types.clone(),
        container: args.container.clone(),
        follow: false,
    };
    if !args.events_only {
        let (inv, _) = from::fetch(&client, Details::Representatives, "/proc".as_ref()).await?;
        let selection = Selection {
            types: args.types.clone(),
            ..Selection::default()
        };
        out.existing(&inv, &selection, |cells, k, ns| {
            print.existing(cells, k, ns)
        })?;
        out.flush()?;
    }
    // The tasks' containers, where the watcher is on this host.
    let mut containers =
        (local && args.container.is_some()).then(|| Containers::new("/proc".into()));
    let stop = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            ev = events.next() => {
                let ev = ev.with_context(|| {
                    format!("{}: the event stream ended", client.target())
                })?;
                let Some(ev) = ev else {
                    bail!("{}: the watcher ended the event stream (did it stop?)", client.target());
                };
                if ev.event.as_deref() == Some("cut") {
                    let why = serde_json::from_str::<ApiError>(&ev.data)
                        .map_or_else(|_| ev.data.clone(), |e| e.error);
                    bail!("{}: the watcher cut the event stream: {}", client.target(),
                          crate::output::sanitize::escape(&why));
                }
                let line: Value = serde_json::from_str(&ev.data)
                    .with_context(|| format!("{}: an event that is not JSON", client.target()))?;
                write(&mut out, &print, containers.as_mut(), &line)
                    .with_context(|| format!("{}: event {}", client.target(), ev.id.unwrap_or_default()))?;
                out.flush()?;
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = &mut stop => break,
        }
    }
    drop(events);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A change line (`created`, `joined`, `left`) as the stream has it.
#[derive(Deserialize)]
struct ChangeIn<'a> {
    time: Time,
    #[serde(flatten)]
    which: Which,
    link: Cow<'a, str>,
    #[serde(flatten, borrow)]
    task: Task<'a>,
    ppid: u32,
    uid: u32,
    fd: Option<i32>,
    cgroup_id: u64,
    /// Absent from watchers older than this field.
    #[serde(default, borrow)]
    container: Option<Container<'a>>,
}

/// A verdict line (`gone`, `hidden`, `discovered`).
#[derive(Deserialize)]
struct VerdictIn<'a> {
    time: Time,
    #[serde(flatten)]
    which: Which,
    pid: Option<u32>,
    #[serde(borrow)]
    comm: Option<contract::Text<'a>>,
    comm_hex: Option<contract::Hex>,
    syscall: Option<Cow<'a, str>>,
    created: Option<Time>,
    container: Option<Container<'a>>,
    hidden: bool,
}

/// Writes one event of the stream as the local path would.
fn write<W: std::io::Write>(
    out: &mut EventWriter<W>,
    print: &WatchFilter,
    containers: Option<&mut Containers>,
    line: &Value,
) -> anyhow::Result<()> {
    let event = line["event"].as_str().unwrap_or_default();
    let kind = match event {
        "created" => Some(ChangeKind::Created),
        "joined" => Some(ChangeKind::Joined),
        "left" => Some(ChangeKind::Left),
        _ => None,
    };
    if let Some(kind) = kind {
        let mut c = ChangeIn::deserialize(line)?;
        let sent = c.container.take().map(crate::inventory::Container::from);
        let (ev, change) = task_event(kind, c)?;
        // The watcher's word, else a lookup here for --container.
        let container = sent.or_else(|| containers.and_then(|c| c.of(&ev)));
        if print.change(&ev, container.as_ref(), &change) {
            out.task(&ev, &[&change], container.as_ref())?;
        }
        return Ok(());
    }
    let verdict = match event {
        "gone" => VerdictKind::Gone,
        "hidden" => VerdictKind::Hidden,
        "discovered" => VerdictKind::Discovered,
        "lost" => {
            let n = |k: &str| line[k].as_u64().unwrap_or(0);
            out.lost(n("count"), n("missed"))?;
            return Ok(());
        }
        "rescan" => {
            let n = |k: &str| line[k].as_u64().unwrap_or(0) as usize;
            out.rescan(n("namespaces"), n("discovered"))?;
            return Ok(());
        }
        // Not the watcher's to send (existing, summary) or newer than us.
        _ => return Ok(()),
    };
    let v = VerdictIn::deserialize(line)?;
    let time = v.time.0;
    let (key, ns) = namespace(v)?;
    let mut one = Inventory::new();
    one.insert(key, ns);
    if print.verdict(&key, &one, None) {
        out.verdicts(verdict, &[key], &one, time)?;
    }
    Ok(())
}

/// The task event and change a change line stands for.
fn task_event(kind: ChangeKind, c: ChangeIn<'_>) -> anyhow::Result<(TaskEvent, Change)> {
    let task = c.task;
    let ev = TaskEvent {
        kind: match task.syscall {
            "clone" => TaskEventKind::Fork,
            "unshare" => TaskEventKind::Unshare,
            "setns" => TaskEventKind::Setns,
            _ => TaskEventKind::Exit,
        },
        time_ns: c.time.0,
        pid: task.pid,
        tid: task.tid,
        ppid: c.ppid,
        uid: c.uid,
        comm: contract::exact_bytes(task.comm, task.comm_hex).into(),
        cgroup_id: c.cgroup_id,
        cgroup: 0,
        flags: task.flags.0,
        fd: c.fd.unwrap_or(-1),
        slots: Vec::new(),
        followed: false,
        group_dead: None,
    };
    let link = contract::known_link(&c.link)
        .with_context(|| format!("unknown namespace link {:?}", c.link))?;
    let key = NsKey::new(c.which.ty, c.which.ns, c.which.id);
    Ok((ev, Change { kind, key, link }))
}

/// The namespace a verdict line is about, with its creator.
fn namespace(v: VerdictIn<'_>) -> anyhow::Result<(NsKey, Namespace)> {
    let origin = match (v.pid, v.syscall, v.created) {
        (Some(pid), Some(syscall), Some(created)) => Some(crate::inventory::Origin {
            pid,
            tid: pid,
            comm: v
                .comm
                .map(|c| contract::exact_bytes(c, v.comm_hex))
                .unwrap_or_default()
                .into(),
            syscall: contract::known_syscall(&syscall)
                .with_context(|| format!("unknown syscall {syscall:?}"))?,
            flags: 0,
            time_ns: created.0,
            container: v.container.map(Into::into),
        }),
        _ => None,
    };
    let ns = Namespace {
        origin,
        hidden: v.hidden,
        ..Namespace::default()
    };
    Ok((NsKey::new(v.which.ty, v.which.ns, v.which.id), ns))
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
