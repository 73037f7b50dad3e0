//! Starting `listns watch`: the filters, the output, the tracer, the
//! first scan and the inventory printed.

use std::{path::PathBuf, time::Instant};

use super::{FALLBACK_RESCAN, Watch};
use crate::{
    api::Publisher,
    app::print::WatchFilter,
    cli::WatchArgs,
    inventory::followed::Followed,
    lifecycle::{Lifecycle, Method, Tuning, listns_syscall},
    output::{Selection, fit, sink::Sink, stream, stream::EventWriter},
    scan::{Scanner, attribution::Containers, host, initial},
    service::privileges,
    trace::{Options, Tracer},
};

use super::serving::serve;

impl Watch {
    /// Starts the tracer (or says why it cannot and what that misses),
    /// scans, seeds the kernel's map and prints the inventory.
    pub(super) fn start(args: &WatchArgs, following: bool) -> anyhow::Result<Watch> {
        // A bad -Q fails before any program loads.
        let filter = args
            .filter
            .as_deref()
            .map(stream::event_filter)
            .transpose()?;
        let proc_root = PathBuf::from("/proc");
        if let Some(partial) = host::check(&proc_root) {
            fit::note(&partial.to_string());
        }
        // A terminal gets lines that fit it; a file or a pipe whole lines.
        let width = args
            .events_file
            .is_none()
            .then(fit::terminal_width)
            .flatten();
        let out = EventWriter::new(Sink::open(args.events_file.as_deref())?, args.json)
            .with_filter(filter)
            .with_width(width);
        let telemetry = serve(args)?;
        let mut containers = Containers::on_host(proc_root.clone());
        let opts = Options {
            initial: initial::quick(&proc_root),
            cgroups: containers.hierarchy().cloned(),
            btf: args.btf.clone(),
            ring_bytes: args.ring_buffer_size,
            follow: following,
            ..Options::default()
        };
        let tracer = match Tracer::start(&opts) {
            Ok(t) => {
                for line in t.status.notes.iter().chain(&t.status.failed) {
                    fit::note(line);
                }
                if !t.status.cgroups {
                    containers.without_hierarchy();
                }
                Some(t)
            }
            Err(e) if following => {
                return Err(anyhow::Error::new(e)
                    .context("following a process tree needs the tracer, which cannot start"));
            }
            Err(e) => {
                fit::note(&format!(
                    "cannot start the tracer: {:#}",
                    anyhow::Error::new(e)
                ));
                fit::note(&format!(
                    "falling back to a rescan every {} s: namespaces that live shorter than that \
                     are missed and creators are unknown (`discovered` events instead of `created`)",
                    FALLBACK_RESCAN.as_secs()
                ));
                None
            }
        };
        if let Some(t) = &telemetry {
            t.tracer(
                tracer
                    .as_ref()
                    .map(|t| (t.status.attached.as_slice(), t.status.missing.as_slice())),
            );
        }
        let scanner = Scanner::new(&proc_root)
            .watching()
            .source(args.scan)
            .btf(&args.btf);
        let (mut inv, stats) = scanner.scan()?;
        if let Some(why) = &stats.pass_note {
            fit::note(&format!(
                "the kernel's iterators did not run ({why}): scans read /proc instead"
            ));
        } else if stats.pass == crate::scan::ScanPass::Iter {
            fit::note(&format!(
                "scanned {} processes in one pass of the kernel's BPF iterators in {:.0} ms \
                 (--scan=proc reads /proc)",
                stats.processes, stats.elapsed_ms
            ));
        }
        if let Some(t) = &telemetry {
            t.scanned(&stats);
        }
        // Loaded and attached: from here on only what the loop uses. A
        // command listns starts keeps the bounding set, so that it runs
        // with the privileges it was given.
        // Root, or a service given capabilities (systemd's
        // AmbientCapabilities= for an unprivileged user) alike.
        if let Err(e) = privileges::drop_unneeded(args.command.is_empty()) {
            fit::note(&format!(
                "could not drop unneeded capabilities ({e}); running with all of them"
            ));
        }
        if let Some(summary) = stats.summary() {
            fit::note(&summary);
        }
        let (method, how) = Method::detect();
        fit::note(&how);
        match listns_syscall::list_all() {
            Ok(ids) => {
                let n = inv.add_unexplained(&ids, |id| method.inode_of(id)).len();
                if n > 0 {
                    fit::note(&format!(
                        "listns() knows {n} namespaces that no scan explains: listed as hidden"
                    ));
                }
            }
            Err(e) => fit::note(&format!(
                "{e}: namespaces created before this start and held where no scan looks cannot \
                 be found"
            )),
        }
        let tuning = Tuning {
            forget_after: args.forget_after,
            max_gone: args.max_gone,
            ..Tuning::default()
        };
        let print = WatchFilter {
            types: args.types.clone(),
            container: args.container.clone(),
            follow: following,
        };
        if let Some(want) = &print.container
            && !inv
                .processes
                .values()
                .any(|p| p.container.as_ref().is_some_and(|c| c.matches(want)))
        {
            fit::note(&format!(
                "no running container is called {want:?}: only events of one that starts under \
                 that name or id will show"
            ));
        }
        let api = telemetry
            .as_ref()
            .and_then(|t| t.api.clone())
            .map(Publisher::new);
        let mut w = Watch {
            api,
            stats,
            containers,
            scanner,
            tracer,
            inv,
            lifecycle: Lifecycle::new(method, tuning, Instant::now()),
            out,
            telemetry,
            print,
            followed: following.then(Followed::new),
            loss_rescan: None,
        };
        w.seed();
        w.publish();
        // A command run here has no namespaces yet: its events say it all.
        if !args.events_only && args.command.is_empty() {
            let filter = Selection {
                types: args.types.clone(),
                pid: args.follow_pid,
                ..Selection::default()
            };
            let print = &w.print;
            w.out
                .existing(&w.inv, &filter, |cells, k, ns| print.existing(cells, k, ns))?;
        }
        w.out.flush()?;
        if let Some(t) = &w.telemetry {
            t.started();
        }
        Ok(w)
    }
}
