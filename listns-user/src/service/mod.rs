//! listns as a monitoring service: the metrics and health endpoints of
//! `listns watch --metrics ADDR:PORT`, and the HTTP server that also
//! carries the inventory API (`api`) on its unix socket and `--api`.
//!
//! The HTTP server runs on a thread of its own with its own small tokio
//! runtime, so that it still answers, with a 503 that says why, when the
//! watch loop is stuck (a consumer that stopped reading our stdout, a scan
//! that hangs).

pub mod health;
pub mod metrics;
pub mod privileges;
pub mod server;
mod socket;
mod telemetry;

pub use health::Health;
pub use metrics::Metrics;
pub use telemetry::{Serving, Telemetry};
