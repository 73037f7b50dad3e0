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
//! - [`users`]: user and group names, without NSS in a static build.
//!
//! This module imports nothing from the rest of the crate.

pub mod bpf;
pub mod child;
pub mod fs;
pub mod listns;
pub mod nsfs;
pub mod pidfd;
pub mod users;

pub use fs::{
    NumName, fstat, fstatat, list_names, list_numbers, open_dir, open_path_dir, open_read,
    parse_u32, read_at, readlink_at,
};
pub use nsfs::{socket_netns, tun_netns};
pub use pidfd::{pidfd_getfd, pidfd_open, pidfd_send_signal};

use std::os::fd::{BorrowedFd, OwnedFd};

use tokio::io::{Interest, unix::AsyncFd};

/// The system's page size.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// Registers an fd with tokio's reactor for readability. The AsyncFd owns
/// it, so it stays open and the same for as long as the registration
/// lives. Must be called inside a tokio runtime.
pub fn async_readable(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` is owned by the AsyncFd from here on: nothing else can
    // close it or make `as_raw_fd` return another fd while it is registered.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(std::io::Error::from)
}

/// Readiness of an fd that something else owns (an aya ring buffer, the log
/// reader): a duplicate of it, registered with tokio. The duplicate names
/// the same open file, so it is readable exactly when the original is, and
/// it stays valid whatever happens to the original.
pub fn readiness(fd: BorrowedFd<'_>) -> std::io::Result<AsyncFd<OwnedFd>> {
    let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0)?;
    async_readable(dup)
}
