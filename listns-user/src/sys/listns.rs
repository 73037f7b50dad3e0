//! `listns(2)` (Linux 6.19+, syscall 470 on x86_64): a page of namespace
//! ids. Kernels without it answer ENOSYS.

use nix::errno::Errno;

pub const SYS_LISTNS: libc::c_long = 470;

/// `struct ns_id_req` (include/uapi/linux/nsfs.h), NS_ID_REQ_SIZE_VER0 = 32.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NsIdReq {
    pub size: u32,
    pub spare: u32,
    /// Last id of the previous page (0 for the first).
    pub ns_id: u64,
    /// CLONE_NEW* mask of the types wanted (0 = all).
    pub ns_type: u32,
    pub spare2: u32,
    /// Only namespaces owned by this user namespace (0 = any).
    pub user_ns_id: u64,
}

const _: () = assert!(std::mem::size_of::<NsIdReq>() == 32);

/// One `listns(req, buf, buf.len(), 0)`: fills `buf` from the start and
/// returns how many ids it wrote (never more than `buf.len()`).
pub fn listns(req: &NsIdReq, buf: &mut [u64]) -> Result<usize, Errno> {
    // SAFETY: req points to a whole ns_id_req of the size it declares (or
    // the kernel refuses it); the kernel writes at most buf.len() ids.
    let r = unsafe {
        libc::syscall(
            SYS_LISTNS,
            req as *const NsIdReq,
            buf.as_mut_ptr(),
            buf.len(),
            0u32,
        )
    };
    Errno::result(r).map(|n| (n as usize).min(buf.len()))
}
