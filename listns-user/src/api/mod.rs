//! The inventory API: what the watcher knows, reachable while it runs.
//! The watch loop publishes a snapshot of its inventory and every event
//! it sees (`state`); the service's HTTP server answers `/v1/...` from
//! them (`routes`), never holding the loop's inventory while it writes;
//! `client` is the other end, for `listns --from`; `openapi` describes
//! the endpoints with the contract's schema; `web` is the page served
//! at `/` that draws them.

pub mod client;
pub mod openapi;
mod record;
pub mod routes;
mod state;
pub mod stream;
pub mod web;

pub use record::Kept;
pub use state::{Publisher, Shared, Snapshot};

/// Where the watcher serves the API unless told otherwise, and where
/// `listns --from` looks.
pub const DEFAULT_SOCKET: &str = "/run/listns/api.sock";
