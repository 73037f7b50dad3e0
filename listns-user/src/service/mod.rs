//! listns as a monitoring service: the metrics and health endpoints of
//! `listns watch --metrics ADDR:PORT`.
//!
//! The HTTP server runs on a thread of its own with its own small tokio
//! runtime, so that it still answers, with a 503 that says why, when the
//! watch loop is stuck (a consumer that stopped reading our stdout, a scan
//! that hangs).

pub mod health;
pub mod metrics;
pub mod privileges;
mod server;
mod telemetry;

pub use health::Health;
pub use metrics::Metrics;
pub use server::serve;
pub use telemetry::Telemetry;
