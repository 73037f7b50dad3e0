//! listns: a Linux namespace inventory and live tracer.
//!
//! The rooms, and the one direction data flows through them:
//! - `scan` reads procfs into an `inventory` (pure data: namespaces, what
//!   holds them, processes; text from outside kept as raw bytes, `text`);
//!   what it could and could not read goes into `stats`.
//! - `trace` (the only module that touches aya) loads the eBPF programs and
//!   turns their records into events that the inventory applies.
//! - `lifecycle` decides when a namespace is gone or hidden.
//! - `output` renders inventory, stats and events: it alone escapes text
//!   for terminals and encodes it for JSON.
//! - `app` wires them together for the binary's modes; `cli` is its
//!   command line. `ns` holds the namespace types and nsfs ioctls they all
//!   share.
//!
//! - `sys` is the one room for unsafe code: every raw system call, as safe
//!   functions with documented contracts. It imports nothing from the
//!   crate; the rest of the crate denies `unsafe_code`.
//!
//! scan, trace, lifecycle and output import inventory, ns, stats and text,
//! never each other (trace and lifecycle take a scan as a closure from app).

#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod inventory;
pub mod lifecycle;
pub mod ns;
pub mod output;
pub mod scan;
pub mod service;
pub mod stats;
#[allow(unsafe_code)]
mod sys;
pub mod text;
pub mod trace;
