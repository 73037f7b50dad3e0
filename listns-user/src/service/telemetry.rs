//! What the watch loop tells the metrics and the health check, one call per
//! thing that happened, so that the loop stays a loop.

use std::{net::SocketAddr, sync::Arc};

use super::{Health, Metrics, metrics::of_type};
use crate::inventory::{
    Inventory, NsKey, State,
    live::{Change, ChangeKind, TaskEvent},
};

pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl Telemetry {
    /// Registers the metrics and starts serving them on `addr`.
    pub fn serve(addr: SocketAddr) -> std::io::Result<(Telemetry, SocketAddr)> {
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let metrics = Arc::new(Metrics::new(&kernel));
        let health = Arc::new(Health::default());
        health.beat();
        let bound = super::serve(addr, metrics.clone(), health.clone())?;
        Ok((Telemetry { metrics, health }, bound))
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
        family.get_or_create(&of_type(c.key.ty)).inc();
    }

    /// Events whose lines were just written: their lag from the kernel.
    pub fn written(&self, events: &[TaskEvent], now_ns: u64) {
        for ev in events {
            let lag = now_ns.saturating_sub(ev.time_ns) as f64 / 1e9;
            self.metrics.lag.observe(lag);
        }
    }

    pub fn gone(&self, key: &NsKey) {
        self.metrics.gone.get_or_create(&of_type(key.ty)).inc();
    }

    pub fn lost(&self, n: u64) {
        self.metrics.lost.inc_by(n);
    }

    pub fn rescan(&self, elapsed_ms: f64) {
        self.metrics.rescans.inc();
        self.scanned(elapsed_ms);
    }

    pub fn scanned(&self, elapsed_ms: f64) {
        self.metrics.scan_seconds.set(elapsed_ms / 1e3);
    }

    /// Once a second: the loop is alive; namespaces alive and hidden now.
    pub fn tick(&self, inv: &Inventory) {
        self.health.beat();
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
