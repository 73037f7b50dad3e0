//! listns eBPF programs: namespace creation and membership changes.
//!
//! One file per hook. Every hook reads the namespaces of the task concerned
//! in the kernel, at the moment of the event (see `task.rs`), filters out
//! what did not change, and writes one `listns_common::Event` to `EVENTS`.
#![no_std]
#![no_main]

mod emit;
mod exit;
mod follow;
mod forget;
mod fork;
mod initial;
mod iter;
mod syscalls;
mod task;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// The licence the kernel is told: GPL-compatible, as the helpers the
/// programs call (bpf_probe_read_kernel, ...) require. This crate is
/// MIT OR GPL-2.0-only (LICENSE-MIT, LICENSE-GPL-2.0), which the kernel
/// knows as "Dual MIT/GPL"; the rest of the workspace is MIT OR Apache-2.0.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
