//! The Prometheus metrics of `listns watch --metrics`, through the official
//! client (`prometheus-client`): its registry renders the text format. Every
//! label value is bounded (a namespace type, a hook name, the version):
//! never a pid, comm, path or container.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::ns::NsType;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabel {
    pub hook: String,
}

/// An API request: the endpoint (a fixed set) and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub code: u16,
}

/// A kind of thing a scan reads (`listns_last_scan_unread`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnreadLabel {
    pub what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub kernel: String,
}

/// The metrics, shared (all atomic) between the watch loop and the server.
pub struct Metrics {
    pub registry: Registry,
    pub alive: Family<TypeLabel, Gauge>,
    pub hidden: Family<TypeLabel, Gauge>,
    pub created: Family<TypeLabel, Counter>,
    pub joined: Family<TypeLabel, Counter>,
    pub left: Family<TypeLabel, Counter>,
    pub gone: Family<TypeLabel, Counter>,
    pub lost: Counter,
    pub rescans: Counter,
    pub scan_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub scan_unread: Family<UnreadLabel, Gauge>,
    /// Unix time of the watch loop's last tick (once a second).
    pub tick_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub lag: Histogram,
    pub hooks: Family<HookLabel, Gauge>,
    pub api_requests: Family<RequestLabels, Counter>,
    /// Connections closed at accept: too many at once.
    pub api_refused: Counter,
    /// Clients cut off because they could not keep up.
    pub api_cut: Counter,
    pub api_streams: Gauge,
    /// The watch loop's time copying its inventory for the API.
    pub api_snapshot: Histogram,
    /// `{type="..."}` of each type in `NsType::ALL` order, made once (the
    /// event path counts every change).
    type_labels: Vec<TypeLabel>,
}

/// `{type="net"}`.
pub fn of_type(ty: NsType) -> TypeLabel {
    TypeLabel {
        r#type: ty.name().to_string(),
    }
}

impl Metrics {
    pub fn new(kernel: &str) -> Metrics {
        let mut registry = Registry::with_prefix("listns");
        let m = Metrics {
            registry: Registry::default(),
            alive: Family::default(),
            hidden: Family::default(),
            created: Family::default(),
            joined: Family::default(),
            left: Family::default(),
            gone: Family::default(),
            lost: Counter::default(),
            rescans: Counter::default(),
            scan_seconds: Gauge::default(),
            scan_unread: Family::default(),
            tick_seconds: Gauge::default(),
            // 1 ms to about 16 s.
            lag: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 15,
            )),
            hooks: Family::default(),
            api_requests: Family::default(),
            api_refused: Counter::default(),
            api_cut: Counter::default(),
            api_streams: Gauge::default(),
            // 0.1 ms to about 1.6 s.
            api_snapshot: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 15),
            ),
            type_labels: NsType::ALL.into_iter().map(of_type).collect(),
        };
        registry.register(
            "namespaces",
            "Namespaces alive now, by type",
            m.alive.clone(),
        );
        registry.register(
            "namespaces_hidden",
            "Namespaces alive that nothing a scan can see holds, by type",
            m.hidden.clone(),
        );
        registry.register(
            "namespaces_created",
            "Namespaces the tracer saw created, by type",
            m.created.clone(),
        );
        registry.register(
            "namespaces_joined",
            "Tasks that joined an existing namespace, by type",
            m.joined.clone(),
        );
        registry.register(
            "namespaces_left",
            "Tasks that left a namespace, by type",
            m.left.clone(),
        );
        registry.register(
            "namespaces_gone",
            "Namespaces found dead, by type",
            m.gone.clone(),
        );
        registry.register(
            "ringbuf_lost_records",
            "Kernel records lost because the ring buffer was full",
            m.lost.clone(),
        );
        registry.register(
            "rescans",
            "Full rescans of /proc after lost records or without the tracer",
            m.rescans.clone(),
        );
        registry.register_with_unit(
            "last_scan_duration",
            "Duration of the last full scan",
            prometheus_client::registry::Unit::Seconds,
            m.scan_seconds.clone(),
        );
        registry.register(
            "last_scan_unread",
            "What the last full scan could not read, by kind (denied, failed; not processes that ended mid-scan)",
            m.scan_unread.clone(),
        );
        registry.register_with_unit(
            "loop_heartbeat_timestamp",
            "Unix time of the watch loop's last tick (once a second): an alert on time() minus it finds a stalled loop",
            prometheus_client::registry::Unit::Seconds,
            m.tick_seconds.clone(),
        );
        registry.register_with_unit(
            "event_lag",
            "Time from the kernel's timestamp of an event to its line being written",
            prometheus_client::registry::Unit::Seconds,
            m.lag.clone(),
        );
        registry.register(
            "hook_attached",
            "1 when the kernel hook is attached, 0 when it is missing",
            m.hooks.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint and status code",
            m.api_requests.clone(),
        );
        registry.register(
            "http_connections_refused",
            "Connections closed at once: too many were open",
            m.api_refused.clone(),
        );
        registry.register(
            "http_clients_cut",
            "Clients cut off because they could not keep up: an event stream fell behind, or a write made no progress for 10 s",
            m.api_cut.clone(),
        );
        registry.register(
            "api_streams",
            "Event streams open now",
            m.api_streams.clone(),
        );
        registry.register_with_unit(
            "api_snapshot_duration",
            "Time the watch loop spent copying its inventory for the API's requests",
            prometheus_client::registry::Unit::Seconds,
            m.api_snapshot.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                kernel: kernel.to_string(),
            })
            .set(1);
        registry.register("build_info", "listns version and kernel release", build);
        // Every type appears from the start, at 0, so rates work at once.
        for ty in NsType::ALL {
            for f in [&m.created, &m.joined, &m.left, &m.gone] {
                let _ = f.get_or_create(&of_type(ty));
            }
            let _ = m.alive.get_or_create(&of_type(ty));
            let _ = m.hidden.get_or_create(&of_type(ty));
        }
        Metrics { registry, ..m }
    }

    /// The label of namespace type `ty`, without allocating.
    pub fn type_label(&self, ty: NsType) -> &TypeLabel {
        let i = NsType::ALL.iter().position(|t| *t == ty).unwrap_or(0);
        &self.type_labels[i]
    }

    /// One request answered.
    pub fn api_request(&self, endpoint: &'static str, code: u16) {
        self.api_requests
            .get_or_create(&RequestLabels { endpoint, code })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_rules() {
        let m = Metrics::new("6.18.0");
        m.created.get_or_create(&of_type(NsType::Net)).inc_by(3);
        m.hooks
            .get_or_create(&HookLabel {
                hook: "sched_process_fork".into(),
            })
            .set(1);
        m.lag.observe(0.002);
        m.scan_seconds.set(0.25);
        m.scan_unread
            .get_or_create(&UnreadLabel { what: "fds" })
            .set(2);
        let text = m.encode();
        for line in [
            "listns_namespaces_created_total{type=\"net\"} 3",
            "listns_namespaces_created_total{type=\"uts\"} 0",
            "listns_namespaces{type=\"pid\"} 0",
            "listns_hook_attached{hook=\"sched_process_fork\"} 1",
            "listns_last_scan_duration_seconds 0.25",
            "listns_last_scan_unread{what=\"fds\"} 2",
            "listns_event_lag_seconds_count 1",
            "listns_ringbuf_lost_records_total 0",
            "listns_rescans_total 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let build = format!(
            "listns_build_info{{version=\"{}\",kernel=\"6.18.0\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
