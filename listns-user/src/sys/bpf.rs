//! The one bpf(2) command aya does not offer: `BPF_MAP_DELETE_BATCH`
//! (include/uapi/linux/bpf.h, Linux 5.6+). Takes the map as a plain fd so
//! that aya stays inside `trace`.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Deletes `keys` (u64 keys) from the BPF hash map `map` in one call. On
/// failure: how many were deleted (the kernel stops at the first key it
/// cannot delete, which is `keys[n]`) and the errno. `map` should have
/// 8-byte keys: the kernel reads `keys.len()` keys of the map's own key
/// size, so for another map it deletes the wrong keys or answers EFAULT
/// (it never writes to `keys`).
pub fn map_delete_batch(map: BorrowedFd<'_>, keys: &[u64]) -> Result<(), (usize, Errno)> {
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: map.as_raw_fd() as u32,
        ..Default::default()
    };
    // SAFETY: attr is a bpf_attr prefix of the size passed and lives for
    // the call; the kernel only reads through `keys` (copy_from_user, which
    // fails with EFAULT rather than fault) and writes back attr.count.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_DELETE_BATCH,
            &raw mut attr,
            std::mem::size_of::<BatchAttr>(),
        )
    };
    match Errno::result(r) {
        Ok(_) => Ok(()),
        Err(e) => Err((attr.count as usize, e)),
    }
}

/// A new BPF hash map of u64 keys and u8 values (`BPF_MAP_CREATE`), for
/// tests: aya creates maps only from an object file.
#[cfg(test)]
pub fn create_hash_map_u64_u8(max_entries: u32) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    #[repr(C)]
    struct Create {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    }
    let attr = Create {
        map_type: 1, // BPF_MAP_TYPE_HASH
        key_size: 8,
        value_size: 1,
        max_entries,
        map_flags: 0,
    };
    // SAFETY: a bpf_attr prefix of the size passed; returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0, // BPF_MAP_CREATE
            &raw const attr,
            std::mem::size_of::<Create>(),
        )
    };
    // SAFETY: on success, a new fd that nothing else owns.
    Errno::result(fd).map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}
