//! The kernel's map of namespaces already seen: its keys are built from the
//! inventory's, so that the programs report a namespace the scan found as
//! joined, not created, and (on kernels without ids) forget a dead one so
//! that the next namespace with its inode is a creation again.

use std::os::fd::{AsFd, BorrowedFd};

use listns_common::{NS_SLOTS, NsRef, SLOT_TYPE, known_key};
use nix::errno::Errno;

use super::Tracer;
use crate::{
    inventory::{Inventory, NsKey, State},
    sys,
};

/// The kernel map's view of a namespace: a slot of its type and its identity.
fn known_ref(key: &NsKey) -> (usize, NsRef) {
    let slot = (0..NS_SLOTS)
        .find(|&s| SLOT_TYPE[s] == key.ty.clone_flag())
        .unwrap_or(0);
    (
        slot,
        NsRef {
            id: key.id.unwrap_or(0),
            inum: key.inum as u32,
            _pad: 0,
        },
    )
}

impl Tracer {
    /// Marks every live namespace of the inventory as known to the kernel.
    /// Returns how many could not be marked (the map is full).
    pub fn seed(&mut self, inv: &Inventory) -> usize {
        let mut failed = 0;
        for (key, _) in inv.iter().filter(|(_, ns)| ns.state == State::Alive) {
            let (slot, r) = known_ref(key);
            if self.known.insert(known_key(slot, &r), 1, 0).is_err() {
                failed += 1;
            }
        }
        failed
    }

    /// Removes dead namespaces from the kernel's map, so that a later
    /// namespace reusing an inode (kernels without ids) is seen as created,
    /// and live ones are not evicted from the LRU map in their place. One
    /// system call for all of them (`BPF_MAP_DELETE_BATCH`, Linux 5.6+)
    /// where the kernel has it, else one per key.
    pub fn forget(&mut self, keys: &[NsKey]) {
        let keys: Vec<u64> = keys
            .iter()
            .map(|k| {
                let (slot, r) = known_ref(k);
                known_key(slot, &r)
            })
            .collect();
        let rest = match self
            .known_fd
            .as_ref()
            .map(|fd| delete_keys(fd.as_fd(), &keys))
        {
            Some(Ok(())) => return,
            Some(Err(rest)) => {
                self.known_fd = None;
                rest
            }
            None => keys,
        };
        for k in &rest {
            let _ = self.known.remove(k);
        }
    }
}

/// Deletes `keys` from the hash map `fd` with batched deletes
/// (`BPF_MAP_DELETE_BATCH`). A key not in the map (evicted from the LRU
/// map, or never there) is skipped. When the kernel refuses batches,
/// returns the keys it did not delete.
fn delete_keys(fd: BorrowedFd<'_>, keys: &[u64]) -> Result<(), Vec<u64>> {
    let mut rest = keys;
    while !rest.is_empty() {
        match sys::bpf::map_delete_batch(fd, rest) {
            Ok(()) => return Ok(()),
            // The kernel stops at the first key it cannot delete: key `n`.
            Err((n, Errno::ENOENT)) => rest = rest.get(n + 1..).unwrap_or(&[]),
            Err((n, _)) => return Err(rest.get(n..).unwrap_or(&[]).to_vec()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::NsType;

    /// Batched deletes remove exactly the keys asked for, and go on past a
    /// key that is not in the map (an LRU map may have evicted it).
    #[test]
    fn batched_deletes_skip_missing_keys() {
        use aya::maps::{HashMap, Map, MapData};
        let fd = match sys::bpf::create_hash_map_u64_u8(64) {
            Ok(fd) => fd,
            Err(e) => {
                listns_skip::skip(format_args!("cannot create a BPF map: {e}"));
                return;
            }
        };
        let data = MapData::from_fd(fd.try_clone().unwrap()).unwrap();
        let mut map: HashMap<MapData, u64, u8> = Map::HashMap(data).try_into().unwrap();
        for k in 1..=6u64 {
            map.insert(k, 1, 0).unwrap();
        }
        assert_eq!(delete_keys(fd.as_fd(), &[1, 9, 3, 77, 5]), Ok(()));
        let mut left: Vec<u64> = map.keys().map(Result::unwrap).collect();
        left.sort_unstable();
        assert_eq!(left, vec![2, 4, 6]);
        assert_eq!(delete_keys(fd.as_fd(), &[]), Ok(()));
    }

    #[test]
    fn keys_use_a_slot_of_the_namespace_type() {
        for ty in NsType::ALL {
            let (slot, r) = known_ref(&NsKey::new(ty, 4026532000, Some(77)));
            assert_eq!(NsType::of_slot(slot), ty);
            assert_eq!((r.id, r.inum), (77, 4026532000));
        }
        let (_, r) = known_ref(&NsKey::new(NsType::Net, 5, None));
        assert_eq!(r.id, 0, "no id: keyed by inode alone");
    }
}
