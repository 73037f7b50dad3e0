//! The one room for unsafe code in listns-user: every system call the
//! crate makes that std, rustix or nix does not already offer safely, as
//! safe functions whose doc comments state their contracts. Each `unsafe`
//! block here says why it is sound (`// SAFETY:`); the rest of the crate
//! denies `unsafe_code` (lib.rs and main.rs).
//!
//! - [`fs`]: files, links and directories relative to an open directory
//!   fd, into reused buffers (the scan's hot loop).
//! - [`pidfd`]: processes by pidfd.
//! - [`nsfs`]: namespace ioctls and nsfs file handles.
//! - [`listns`]: the `listns(2)` syscall.
//! - [`bpf`]: the batched map delete aya lacks.
//! - [`child`]: a command held before exec; a child inside a mount namespace.
//!
//! This module imports nothing from the rest of the crate.

pub mod bpf;
pub mod child;
pub mod fs;
pub mod listns;
pub mod nsfs;
pub mod pidfd;

pub use fs::{
    NumName, fstat, fstatat, list_names, list_numbers, open_dir, open_path_dir, open_read,
    parse_u32, read_at, readlink_at,
};
pub use nsfs::{socket_netns, tun_netns};
pub use pidfd::{pidfd_getfd, pidfd_open, pidfd_send_signal};

use std::os::fd::AsRawFd;

use tokio::io::{Interest, unix::AsyncFd};

/// The system's page size.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// Registers `inner` with tokio's reactor for readability.
///
/// Contract: `inner` owns its fd, keeps it open and returns the same one
/// from `as_raw_fd` for as long as it lives (an `OwnedFd`, aya's ring
/// buffer and log reader do), so that the registration always names that
/// fd. Must be called inside a tokio runtime.
pub fn async_readable<T: AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: by the contract above, the fd stays open and the same until
    // `inner` is dropped, which the AsyncFd does last, after deregistering.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }
        .map_err(std::io::Error::from)
}
