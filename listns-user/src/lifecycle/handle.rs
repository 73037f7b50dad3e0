//! Liveness by nsfs file handle (Linux 6.18+).
//!
//! A namespace's handle is {u64 id, u32 type (CLONE_NEW*), u32 inode};
//! `open_by_handle_at` reopens the namespace while anything at all keeps it
//! alive, and answers ESTALE once it is dead, without any holder being
//! known. One syscall per check.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;

use crate::{
    inventory::NsKey,
    sys::nsfs::{self, NSFS_HANDLE_BYTES as HANDLE_BYTES},
};

/// `FILEID_NSFS`, the handle type nsfs hands out.
const FILEID_NSFS: i32 = 0xf1;

/// What a liveness check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// The check itself failed (no permission, no id, ...).
    Unknown,
}

/// Reopens namespaces by handle. [`Handles::probe`] returns an error saying
/// why when this kernel or this process cannot.
#[derive(Debug)]
pub struct Handles {
    /// Any fd on nsfs: the mount that `open_by_handle_at` resolves against.
    mount_fd: OwnedFd,
}

impl Handles {
    /// Checks that handles work here by round-tripping our own netns.
    pub fn probe() -> Result<Handles, String> {
        let file = std::fs::File::open("/proc/self/ns/net")
            .map_err(|e| format!("/proc/self/ns/net: {e}"))?;
        let mount_fd = OwnedFd::from(file);
        let fh = nsfs::name_to_handle(mount_fd.as_fd()).map_err(|e| {
            format!(
                "nsfs has no file handles on this kernel ({}; they arrived in 6.18)",
                std::io::Error::from(e)
            )
        })?;
        if fh.handle_type != FILEID_NSFS || fh.len != HANDLE_BYTES {
            return Err(format!(
                "unexpected nsfs handle (type {:#x}, {} bytes)",
                fh.handle_type, fh.len
            ));
        }
        let handles = Handles { mount_fd };
        let (id, ty, inum) = decode(&fh.bytes);
        let own = match crate::ns::NsType::from_clone_flag(ty) {
            Some(t) => NsKey::new(t, inum as u64, Some(id)),
            None => return Err(format!("unknown namespace type {ty:#x} in an nsfs handle")),
        };
        match handles.check(&own) {
            Liveness::Alive => Ok(handles),
            other => Err(format!(
                "reopening our own netns by handle gave {other:?} (needs CAP_DAC_READ_SEARCH)"
            )),
        }
    }

    /// One `open_by_handle_at`. A namespace without an id cannot be checked.
    ///
    /// ESTALE: no such namespace (dead). ENOENT (Linux 6.19+, which counts
    /// "active" references: tasks and open nsfs files): the namespace is
    /// still in the kernel's tree but inactive, alive only through a bind
    /// mount or a socket (or being torn down), so not gone.
    pub fn check(&self, key: &NsKey) -> Liveness {
        let Some(id) = key.id else {
            return Liveness::Unknown;
        };
        match self.open(id, key.ty.clone_flag(), key.inum as u32) {
            Ok(_) => Liveness::Alive,
            Err(Errno::ESTALE) => Liveness::Dead,
            Err(Errno::ENOENT) => Liveness::Alive,
            Err(_) => Liveness::Unknown,
        }
    }

    /// The inode of the namespace with this id, opened by id alone (a
    /// handle with neither type nor inode: Linux 6.19+ accepts that, 6.18
    /// does not). For namespaces `listns(2)` names by id only.
    pub fn inode_of(&self, id: u64) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let fd = self.open(id, 0, 0).ok()?;
        std::fs::File::from(fd).metadata().ok().map(|m| m.ino())
    }

    /// `open_by_handle_at` of {id, type, inode}; a key whose inode is not
    /// known (0) is opened by id alone.
    fn open(&self, id: u64, ty: u32, inum: u32) -> Result<OwnedFd, Errno> {
        let (ty, inum) = if inum == 0 { (0, 0) } else { (ty, inum) };
        nsfs::open_by_handle(self.mount_fd.as_fd(), FILEID_NSFS, encode(id, ty, inum))
    }
}

/// The 16 handle bytes: id, type, inode, native-endian as the kernel writes them.
pub fn encode(id: u64, ty: u32, inum: u32) -> [u8; HANDLE_BYTES] {
    let mut b = [0; HANDLE_BYTES];
    b[..8].copy_from_slice(&id.to_ne_bytes());
    b[8..12].copy_from_slice(&ty.to_ne_bytes());
    b[12..].copy_from_slice(&inum.to_ne_bytes());
    b
}

pub fn decode(b: &[u8; HANDLE_BYTES]) -> (u64, u32, u32) {
    let id = u64::from_ne_bytes(b[..8].try_into().unwrap());
    let ty = u32::from_ne_bytes(b[8..12].try_into().unwrap());
    let inum = u32::from_ne_bytes(b[12..].try_into().unwrap());
    (id, ty, inum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_bytes_round_trip() {
        // As name_to_handle_at wrote it for net:[4026531833] with id 3.
        let kernel: [u8; 16] = [
            3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0xf9, 0xff, 0xff, 0xef,
        ];
        assert_eq!(decode(&kernel), (3, 0x4000_0000, 4026531833));
        assert_eq!(encode(3, 0x4000_0000, 4026531833), kernel);
    }
}
