//! listns: a Linux namespace inventory and live tracer.
//!
//! The rooms, and which other rooms each may use. Data flows one way:
//! `scan` reads procfs into an `inventory` (pure data: namespaces, what
//! holds them, processes; text from outside kept as raw bytes, `text`),
//! `trace` turns the eBPF programs' records into events that the inventory
//! applies, `lifecycle` decides when a namespace is gone or hidden, and
//! `output` renders all of it; `app` wires them together for the binary's
//! modes. A test (`xtask/src/modmap.rs`) reads this table and every source
//! file and fails on a `crate::` path to a room that is not listed in the
//! last column, and on `aya` anywhere but `trace`.
//!
//! | room | what it is | may use |
//! | --- | --- | --- |
//! | `text` | raw bytes from outside (`RawText`) | |
//! | `sys` | every raw system call, as safe functions with documented contracts: the one room for `unsafe` code (the rest of the crate denies it) | |
//! | `ns` | the namespace types they all share, and what nsfs says of a namespace | `sys` |
//! | `stats` | what a scan could and could not read | `ns` |
//! | `filter` | `-Q` expressions (libsmartcols filters) over any row | |
//! | `inventory` | namespaces, holders, processes, and the events that change them | `ns`, `text` |
//! | `scan` | procfs, mounts, netlink: the inventory as it is now, container attribution; its kernel pass (`--scan=iter`) runs through `trace` | `inventory`, `ns`, `stats`, `sys`, `text`, `trace` |
//! | `trace` | the eBPF programs (the only room that touches aya) and their records | `inventory`, `ns`, `sys`, `text` |
//! | `lifecycle` | gone and hidden verdicts (nsfs handles, `listns(2)`) | `inventory`, `ns`, `sys` |
//! | `output` | tables, trees, the JSON contract, the watch stream; the only room that escapes text for terminals | `filter`, `inventory`, `ns`, `stats`, `sys`, `text` |
//! | `api` | the inventory API: the snapshot and events the watcher publishes, the `/v1` endpoints and their OpenAPI document, and the client of `--from` | `filter`, `inventory`, `ns`, `output`, `stats`, `text` |
//! | `service` | metrics, health, privileges of the long-running watcher, and the HTTP server that carries them and the API | `api`, `inventory`, `ns`, `stats`, `sys` |
//! | `cli` | the command line | `api`, `ns`, `output`, `scan`, `sys` |
//! | `app` | the binary's modes: list, watch, follow | `api`, `cli`, `filter`, `inventory`, `lifecycle`, `ns`, `output`, `scan`, `service`, `stats`, `sys`, `text`, `trace` |
//! | `fuzzing` | entry points for the fuzz targets (hidden) | `inventory`, `lifecycle`, `ns`, `scan`, `trace` |

#![deny(unsafe_code)]

pub mod api;
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
