//! listns: a Linux namespace inventory and live tracer.
//!
//! The rooms: `scan` reads procfs into an `inventory` (pure data); `trace`
//! (the only module that touches aya) loads the eBPF programs and turns their
//! records into events the inventory applies; `output` renders both. `app`
//! wires them together for the binary.

pub mod app;
pub mod cli;
pub mod filter;
pub mod inventory;
pub mod lifecycle;
pub mod ns;
pub mod output;
pub mod scan;
pub mod trace;
