//! What the watch loop tells the metrics and the health check, one call per
//! thing that happened, so that the loop stays a loop.

use std::{net::SocketAddr, path::Path, sync::Arc};

use super::{
    Health, Metrics,
    metrics::{UnreadLabel, of_type},
    server::{self, Access, Listener, Routes},
    socket::{self, Bound, SocketFile},
};
use crate::{
    api::Shared,
    inventory::{
        Inventory, NsKey, State,
        live::{Change, ChangeKind},
    },
    stats::ScanStats,
};

pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// What the inventory API answers from, when it is served.
    pub api: Option<Arc<Shared>>,
    /// The API socket this watcher made (removed when it stops).
    pub socket: Option<SocketFile>,
}

/// What to serve.
#[derive(Default)]
pub struct Serving<'a> {
    /// `--metrics`: metrics and health on TCP.
    pub metrics: Option<SocketAddr>,
    /// The API's unix socket, and the group that may use it too.
    pub socket: Option<(&'a Path, Option<&'a str>)>,
    /// Whether a socket that cannot be made is only a note (the default
    /// path, for a watcher run by hand without root) or an error.
    pub socket_optional: bool,
    /// `--api`: the API on TCP, and the token it wants.
    pub api: Option<(SocketAddr, Option<String>)>,
    /// `--max-gone`.
    pub max_gone: usize,
}

impl Telemetry {
    /// Registers the metrics, binds every listener (so that an address in
    /// use is an error now) and starts serving. Returns what to tell the
    /// user about each.
    pub fn serve(s: Serving<'_>) -> anyhow::Result<(Telemetry, Vec<String>)> {
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let metrics = Arc::new(Metrics::new(&kernel));
        let health = Arc::new(Health::default());
        health.beat();
        let mut notes = Vec::new();
        let mut listeners = Vec::new();
        if let Some(addr) = s.metrics {
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| anyhow::anyhow!("--metrics {addr}: cannot listen: {e}"))?;
            let bound = l.local_addr()?;
            notes.push(format!(
                "metrics on http://{bound}/metrics, health on http://{bound}/healthz"
            ));
            listeners.push((Listener::Tcp(l), Access::Metrics));
        }
        let mut socket_file = None;
        if let Some((path, group)) = s.socket {
            match socket::bind(path, group) {
                Ok(Bound::Listening(l, file)) => {
                    notes.push(format!(
                        "inventory API on {} (`listns --from` reads it)",
                        path.display()
                    ));
                    socket_file = Some(file);
                    listeners.push((Listener::Unix(l), Access::Api { token: None }));
                }
                Ok(Bound::Taken) => notes.push(format!(
                    "another watcher serves the inventory API on {}; this one serves none there \
                     (--api-socket PATH for another)",
                    path.display()
                )),
                Err(e) if s.socket_optional => notes.push(format!(
                    "no inventory API: cannot make {}: {e} (--api-socket PATH for another, --no-api to \
                     say nothing)",
                    path.display()
                )),
                Err(e) => anyhow::bail!("--api-socket {}: {e}", path.display()),
            }
        }
        if let Some((addr, token)) = s.api {
            if token.is_none() && server::needs_token(addr) {
                anyhow::bail!(
                    "--api {addr} is reachable from other hosts and shows every command line: \
                     give --api-token-file FILE (or a loopback address)"
                );
            }
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| anyhow::anyhow!("--api {addr}: cannot listen: {e}"))?;
            let bound = l.local_addr()?;
            let how = if token.is_some() {
                ", bearer token required"
            } else {
                ""
            };
            notes.push(format!(
                "inventory API and web page on http://{bound}/{how}"
            ));
            listeners.push((
                Listener::Tcp(l),
                Access::Api {
                    token: token.map(Arc::from),
                },
            ));
        }
        let serves_api = listeners
            .iter()
            .any(|(_, a)| matches!(a, Access::Api { .. }));
        let api =
            serves_api.then(|| Shared::new(Inventory::new(), ScanStats::default(), s.max_gone));
        if !listeners.is_empty() {
            server::serve(
                listeners,
                Routes {
                    metrics: metrics.clone(),
                    health: health.clone(),
                    api: api.clone(),
                },
            )?;
        }
        Ok((
            Telemetry {
                metrics,
                health,
                api,
                socket: socket_file,
            },
            notes,
        ))
    }

    /// The hooks the tracer has and lacks; `None`: no tracer (rescans).
    pub fn tracer(&self, hooks: Option<(&[&str], &[&str])>) {
        match hooks {
            Some((attached, missing)) => {
                for (names, v) in [(attached, 1), (missing, 0)] {
                    for h in names {
                        self.metrics
                            .hooks
                            .get_or_create(&super::metrics::HookLabel {
                                hook: (*h).to_string(),
                            })
                            .set(v);
                    }
                }
                self.health
                    .set_missing_hooks(missing.iter().map(|s| s.to_string()).collect());
            }
            None => self.health.set_fallback(true),
        }
    }

    /// Start-up is over: /healthz may say 200 from now on.
    pub fn started(&self) {
        self.health.set_started();
    }

    pub fn change(&self, c: &Change) {
        let family = match c.kind {
            ChangeKind::Created => &self.metrics.created,
            ChangeKind::Joined => &self.metrics.joined,
            ChangeKind::Left => &self.metrics.left,
        };
        family
            .get_or_create(self.metrics.type_label(c.key.ty))
            .inc();
    }

    /// Events whose lines were just written: their lag from the kernel.
    /// `times`: the events' kernel timestamps.
    pub fn written(&self, times: &[u64], now_ns: u64) {
        for t in times {
            let lag = now_ns.saturating_sub(*t) as f64 / 1e9;
            self.metrics.lag.observe(lag);
        }
    }

    pub fn gone(&self, key: &NsKey) {
        self.metrics.gone.get_or_create(&of_type(key.ty)).inc();
    }

    pub fn lost(&self, n: u64) {
        self.metrics.lost.inc_by(n);
    }

    pub fn rescan(&self, stats: &ScanStats) {
        self.metrics.rescans.inc();
        self.scanned(stats);
    }

    /// A full scan ended: how long it took and what it could not read.
    pub fn scanned(&self, stats: &ScanStats) {
        self.metrics.scan_seconds.set(stats.elapsed_ms / 1e3);
        for (what, n) in unread(stats) {
            self.metrics
                .scan_unread
                .get_or_create(&UnreadLabel { what })
                .set(n as i64);
        }
    }

    /// Once a second: the loop is alive; namespaces alive and hidden now.
    pub fn tick(&self, inv: &Inventory) {
        self.health.beat();
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            self.metrics.tick_seconds.set(now.as_secs_f64());
        }
        if let Some(api) = &self.api {
            self.metrics.api_cut.inc_by(server::streams_cut(api));
            self.metrics.api_streams.set(api.streams() as i64);
        }
        let mut alive = [0i64; 8];
        let mut hidden = [0i64; 8];
        for (key, ns) in inv.iter() {
            if ns.state != State::Alive {
                continue;
            }
            let i = crate::ns::NsType::ALL
                .iter()
                .position(|t| *t == key.ty)
                .unwrap_or(0);
            alive[i] += 1;
            hidden[i] += ns.hidden as i64;
        }
        for (i, ty) in crate::ns::NsType::ALL.into_iter().enumerate() {
            self.metrics.alive.get_or_create(&of_type(ty)).set(alive[i]);
            self.metrics
                .hidden
                .get_or_create(&of_type(ty))
                .set(hidden[i]);
        }
    }
}

/// What a scan could not read, by kind, for `listns_last_scan_unread`
/// (processes that ended mid-scan are not counted: that is no error).
fn unread(s: &ScanStats) -> [(&'static str, usize); 10] {
    [
        ("processes", s.processes_denied + s.processes_failed),
        ("ns_links", s.links_failed),
        ("threads", s.threads_failed),
        ("fds", s.fds_failed + s.fd_dirs_failed),
        ("sockets", s.sockets_failed),
        ("tun", s.tun_failed),
        ("mount_namespaces", s.mount_namespaces_unentered),
        ("mountinfo", s.mountinfo_failed + s.mountinfo_bad_lines),
        ("netns_entries", s.netns_failed),
        ("netnsid", s.netnsid_failed),
    ]
}
