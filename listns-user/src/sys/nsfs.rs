//! nsfs: the namespace ioctls (include/uapi/linux/nsfs.h), the two ioctls
//! that open the network namespace behind a socket or a tun device, and
//! nsfs file handles (Linux 6.18+).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

const NSIO: u8 = 0xb7;
nix::ioctl_none!(ns_get_userns_raw, NSIO, 0x1);
nix::ioctl_none!(ns_get_parent_raw, NSIO, 0x2);
nix::ioctl_none!(ns_get_nstype_raw, NSIO, 0x3);
nix::ioctl_read!(ns_get_id_raw, NSIO, 0xd, u64);
// _IO(NSIO, 0x4), but the kernel writes a uid_t through the argument.
nix::ioctl_read_bad!(
    ns_get_owner_uid_raw,
    nix::request_code_none!(NSIO, 0x4),
    libc::uid_t
);
// SIOCGSKNS (include/uapi/linux/sockios.h): no argument, returns an fd.
nix::ioctl_none_bad!(siocgskns_raw, 0x894C);
// TUNGETDEVNETNS = _IO('T', 227) (include/uapi/linux/if_tun.h), Linux 5.2+.
nix::ioctl_none!(tungetdevnetns_raw, b'T', 227);

/// Takes ownership of the fd an ioctl returned.
fn owned(raw: Result<libc::c_int, Errno>) -> Result<OwnedFd, Errno> {
    // SAFETY: the ioctls passed here return a new fd on success, which
    // nothing else owns.
    raw.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `NS_GET_OWNER_UID`: for a user namespace, the effective uid of the
/// process that created it (EINVAL for other types).
pub fn ns_get_owner_uid(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t into `uid`.
    unsafe { ns_get_owner_uid_raw(fd.as_raw_fd(), &mut uid) }?;
    Ok(uid)
}

/// `NS_GET_ID` (Linux 6.18+): the 64-bit namespace id.
pub fn ns_get_id(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut id = 0u64;
    // SAFETY: NS_GET_ID writes one u64 into `id`.
    unsafe { ns_get_id_raw(fd.as_raw_fd(), &mut id) }?;
    Ok(id)
}

/// `NS_GET_NSTYPE`: the namespace's CLONE_NEW* flag.
pub fn ns_get_nstype(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type.
    unsafe { ns_get_nstype_raw(fd.as_raw_fd()) }.map(|t| t as u32)
}

/// `NS_GET_USERNS`: opens the user namespace that owns this one (EPERM
/// when it lies above the caller's own user namespace).
pub fn ns_get_userns(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd.
    owned(unsafe { ns_get_userns_raw(fd.as_raw_fd()) })
}

/// `NS_GET_PARENT`: opens the parent of a pid or user namespace (EINVAL
/// for other types, EPERM above the caller's reach).
pub fn ns_get_parent(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: NS_GET_PARENT takes no argument and returns a new fd.
    owned(unsafe { ns_get_parent_raw(fd.as_raw_fd()) })
}

/// `SIOCGSKNS`: opens the network namespace a socket was created in.
pub fn socket_netns(sock: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: SIOCGSKNS takes no argument and returns a new fd.
    owned(unsafe { siocgskns_raw(sock.as_raw_fd()) })
}

/// `TUNGETDEVNETNS` (Linux 5.2+): opens the network namespace of the
/// device a tun/tap fd is attached to.
pub fn tun_netns(tun: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: TUNGETDEVNETNS takes no argument and returns a new fd.
    owned(unsafe { tungetdevnetns_raw(tun.as_raw_fd()) })
}

/// Bytes of an nsfs file handle: {u64 id, u32 type, u32 inode}.
pub const NSFS_HANDLE_BYTES: usize = 16;

/// `struct file_handle` with room for an nsfs handle.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; NSFS_HANDLE_BYTES],
}

/// A file handle as `name_to_handle_at` returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    pub handle_type: i32,
    /// How many of `bytes` the kernel filled.
    pub len: usize,
    pub bytes: [u8; NSFS_HANDLE_BYTES],
}

/// `name_to_handle_at(fd, "", AT_EMPTY_PATH)`: the file handle of an open
/// file. EOVERFLOW when its handle needs more than 16 bytes.
pub fn name_to_handle(fd: BorrowedFd<'_>) -> Result<Handle, Errno> {
    let mut fh = FileHandle {
        handle_bytes: NSFS_HANDLE_BYTES as u32,
        handle_type: 0,
        f_handle: [0; NSFS_HANDLE_BYTES],
    };
    let mut mnt_id = 0i32;
    // SAFETY: fh has room for the handle_bytes bytes it declares; the path
    // is an empty C string, used with AT_EMPTY_PATH.
    let r = unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            c"".as_ptr(),
            (&raw mut fh).cast(),
            &mut mnt_id,
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(r)?;
    Ok(Handle {
        handle_type: fh.handle_type,
        len: (fh.handle_bytes as usize).min(NSFS_HANDLE_BYTES),
        bytes: fh.f_handle,
    })
}

/// `open_by_handle_at(mount_fd, handle, O_RDONLY | O_CLOEXEC)`: reopens
/// the file a 16-byte handle names, on the filesystem of `mount_fd`.
pub fn open_by_handle(
    mount_fd: BorrowedFd<'_>,
    handle_type: i32,
    bytes: [u8; NSFS_HANDLE_BYTES],
) -> Result<OwnedFd, Errno> {
    let mut fh = FileHandle {
        handle_bytes: NSFS_HANDLE_BYTES as u32,
        handle_type,
        f_handle: bytes,
    };
    // SAFETY: fh is a complete file_handle of the handle_bytes it declares.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&raw mut fh).cast(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: on success, a new fd that nothing else owns.
    Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `FILEID_KERNFS`: the handle type of kernfs (cgroup) files, whose 8
/// bytes are the node's id.
const FILEID_KERNFS: i32 = 0xfe;

/// Opens the cgroup directory with kernfs node id `id` on the cgroup mount
/// `mount_fd` (CAP_DAC_READ_SEARCH): it need not be anyone's cgroup any
/// more, only still exist. ESTALE once it is removed.
pub fn open_cgroup_by_id(mount_fd: BorrowedFd<'_>, id: u64) -> Result<OwnedFd, Errno> {
    let mut bytes = [0u8; NSFS_HANDLE_BYTES];
    bytes[..8].copy_from_slice(&id.to_ne_bytes());
    open_by_handle(mount_fd, FILEID_KERNFS, bytes)
}

#[cfg(test)]
mod tests {
    use std::os::{fd::AsFd, unix::fs::MetadataExt};

    use super::*;

    #[test]
    fn ioctls_answer_for_our_own_namespaces() {
        let net = std::fs::File::open("/proc/self/ns/net").unwrap();
        // CLONE_NEWNET, written out (include/uapi/linux/sched.h).
        assert_eq!(ns_get_nstype(net.as_fd()), Ok(0x4000_0000));
        // A network namespace has no parent: EINVAL.
        assert_eq!(ns_get_parent(net.as_fd()).err(), Some(Errno::EINVAL));
        let user = std::fs::File::open("/proc/self/ns/user").unwrap();
        let owner = ns_get_userns(net.as_fd());
        if let Ok(owner) = owner {
            // The netns's owner is a user namespace (CLONE_NEWUSER).
            assert_eq!(ns_get_nstype(owner.as_fd()), Ok(0x1000_0000));
        }
        assert!(ns_get_owner_uid(user.as_fd()).is_ok());
        assert_eq!(ns_get_owner_uid(net.as_fd()), Err(Errno::EINVAL));
        // Not a namespace at all.
        let f = tempfile::tempfile().unwrap();
        assert!(ns_get_nstype(f.as_fd()).is_err());
    }

    #[test]
    fn a_handle_reopens_the_same_namespace() {
        // Decided by the skip crate's own raw probe, not by the code tested.
        if !listns_skip::require_root()
            || !listns_skip::require_kernel(
                listns_skip::kernel_has_nsfs_handles(),
                "nsfs file handles",
                (6, 18),
            )
        {
            return;
        }
        let net = std::fs::File::open("/proc/self/ns/net").unwrap();
        let h = name_to_handle(net.as_fd()).expect("nsfs handles exist here");
        assert_eq!(h.len, NSFS_HANDLE_BYTES);
        let fd = open_by_handle(net.as_fd(), h.handle_type, h.bytes)
            .expect("root reopens its own netns by handle");
        let st = nix::sys::stat::fstat(fd.as_fd()).unwrap();
        assert_eq!(st.st_ino, net.metadata().unwrap().ino());
    }
}
