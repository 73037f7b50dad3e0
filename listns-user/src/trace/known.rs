//! The kernel's map of namespaces already seen: its keys are built from the
//! inventory's, so that the programs report a namespace the scan found as
//! joined, not created, and (on kernels without ids) forget a dead one so
//! that the next namespace with its inode is a creation again.

use listns_common::{NS_SLOTS, NsRef, SLOT_TYPE, known_key};

use super::Tracer;
use crate::inventory::{Inventory, NsKey, State};

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

    /// Removes a dead namespace from the kernel's map, so that a later
    /// namespace reusing its inode (kernels without ids) is seen as created.
    pub fn forget(&mut self, key: &NsKey) {
        let (slot, r) = known_ref(key);
        let _ = self.known.remove(&known_key(slot, &r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::NsType;

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
