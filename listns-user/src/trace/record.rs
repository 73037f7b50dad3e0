//! Decoding ring-buffer records into the inventory's `TaskEvent`s.

use listns_common::{
    EVENT_SIZE, Event, EventKind, NS_SLOTS, TASK_FOLLOWED, TASK_GROUP_DEAD, TASK_GROUP_UNKNOWN,
};

use crate::inventory::live::{Slot, TaskEvent, TaskEventKind};
use crate::ns::NsType;
use crate::text::RawText;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes, expected {EVENT_SIZE}")]
    Size(usize),
    #[error("unknown record kind {0}")]
    Kind(u32),
}

/// Converts CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// realtime - monotonic, sampled at start-up.
    offset_ns: i128,
}

impl Clock {
    pub fn now() -> Clock {
        use nix::time::{ClockId, clock_gettime};
        // Both clocks always exist on Linux; 0 keeps times monotonic if not.
        let ns = |id| {
            clock_gettime(id).map_or(0, |t| {
                t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128
            })
        };
        Clock {
            offset_ns: ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_MONOTONIC),
        }
    }

    pub fn fixed(offset_ns: i128) -> Clock {
        Clock { offset_ns }
    }

    /// Held to u64's range: a stamp past it would otherwise wrap to 1970.
    pub fn wall_ns(&self, mono_ns: u64) -> u64 {
        (mono_ns as i128 + self.offset_ns).clamp(0, u64::MAX as i128) as u64
    }
}

/// Decodes one record. Checks the length before reading and the kind
/// before trusting it.
pub fn decode(bytes: &[u8], clock: &Clock) -> Result<TaskEvent, DecodeError> {
    if bytes.len() < EVENT_SIZE {
        return Err(DecodeError::Size(bytes.len()));
    }
    // Event is plain data (bytemuck::Pod); the copy copes with the ring
    // buffer's alignment.
    let raw: Event = bytemuck::pod_read_unaligned(&bytes[..EVENT_SIZE]);
    let kind = match EventKind::from_u32(raw.kind) {
        Some(EventKind::Fork) => TaskEventKind::Fork,
        Some(EventKind::Unshare) => TaskEventKind::Unshare,
        Some(EventKind::Setns) => TaskEventKind::Setns,
        Some(EventKind::Exit) => TaskEventKind::Exit,
        None => return Err(DecodeError::Kind(raw.kind)),
    };
    let comm_len = raw
        .comm
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(raw.comm.len());
    let mut slots = Vec::with_capacity(NS_SLOTS);
    for i in 0..NS_SLOTS {
        let now = raw.ns[i];
        if raw.valid & (1 << i) == 0 || now.inum == 0 {
            continue;
        }
        let id = |id: u64| (id != 0).then_some(id);
        let prev = raw.prev[i];
        slots.push(Slot {
            slot: i,
            ty: NsType::of_slot(i),
            inum: now.inum as u64,
            id: id(now.id),
            prev: (prev.inum != 0).then(|| (prev.inum as u64, id(prev.id))),
            changed: raw.changed & (1 << i) != 0,
            created: raw.created & (1 << i) != 0,
        });
    }
    // For a fork the kernel cannot see the clone flags; the namespaces that
    // differ from the parent's say which CLONE_NEW* flags were in effect.
    let flags = if kind == TaskEventKind::Fork {
        slots
            .iter()
            .filter(|s| s.changed)
            .fold(0, |f, s| f | s.ty.clone_flag() as u64)
    } else {
        raw.flags
    };
    Ok(TaskEvent {
        kind,
        time_ns: clock.wall_ns(raw.ts_ns),
        pid: raw.pid,
        tid: raw.tid,
        ppid: raw.ppid,
        uid: raw.uid,
        comm: RawText::new(&raw.comm[..comm_len]),
        cgroup_id: raw.cgroup_id,
        cgroup: raw.cgroup,
        flags,
        fd: raw.fd,
        slots,
        followed: raw.task_flags & TASK_FOLLOWED != 0,
        group_dead: (kind == TaskEventKind::Exit && raw.task_flags & TASK_GROUP_UNKNOWN == 0)
            .then_some(raw.task_flags & TASK_GROUP_DEAD != 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use listns_common::{NsRef, SLOT_NET, SLOT_USER};

    fn raw() -> Event {
        let mut ev = Event {
            ts_ns: 1_000,
            cgroup_id: 7,
            cgroup: 8,
            flags: 0x4000_0000,
            ret: 0,
            kind: EventKind::Unshare as u32,
            pid: 100,
            tid: 101,
            ppid: 1,
            uid: 0,
            fd: -1,
            changed: 1 << SLOT_NET,
            created: 1 << SLOT_NET,
            valid: (1 << SLOT_NET) | (1 << SLOT_USER),
            task_flags: 0,
            comm: [0; 16],
            ns: [NsRef::default(); NS_SLOTS],
            prev: [NsRef::default(); NS_SLOTS],
        };
        ev.comm[..7].copy_from_slice(b"unshare");
        ev.ns[SLOT_NET] = NsRef {
            id: 99,
            inum: 4026532000,
            _pad: 0,
        };
        ev.prev[SLOT_NET] = NsRef {
            id: 3,
            inum: 4026531840,
            _pad: 0,
        };
        ev.ns[SLOT_USER] = NsRef {
            id: 0,
            inum: 4026531837,
            _pad: 0,
        };
        ev
    }

    fn bytes(ev: &Event) -> Vec<u8> {
        bytemuck::bytes_of(ev).to_vec()
    }

    #[test]
    fn round_trip() {
        let ev = decode(&bytes(&raw()), &Clock::fixed(500)).unwrap();
        assert_eq!(ev.kind, TaskEventKind::Unshare);
        assert_eq!((ev.pid, ev.tid, ev.time_ns), (100, 101, 1_500));
        assert_eq!(ev.comm, "unshare");
        assert_eq!(ev.slots.len(), 2);
        let net = ev.slots[0];
        assert_eq!(
            (net.ty, net.inum, net.id),
            (NsType::Net, 4026532000, Some(99))
        );
        assert_eq!(net.prev, Some((4026531840, Some(3))));
        assert!(net.changed && net.created);
        let user = ev.slots[1];
        assert_eq!(
            (user.ty, user.id, user.changed),
            (NsType::User, None, false)
        );
    }

    #[test]
    fn fork_flags_come_from_changed_slots() {
        let mut ev = raw();
        ev.kind = EventKind::Fork as u32;
        ev.flags = 0;
        let d = decode(&bytes(&ev), &Clock::fixed(0)).unwrap();
        assert_eq!(d.flags, listns_common::CLONE_NEWNET as u64);
    }

    #[test]
    fn task_flags_say_followed_and_whether_the_process_is_gone() {
        let d = decode(&bytes(&raw()), &Clock::fixed(0)).unwrap();
        assert!(!d.followed);
        assert_eq!(d.group_dead, None, "only exits say");
        let mut ev = raw();
        ev.kind = EventKind::Exit as u32;
        ev.task_flags = TASK_FOLLOWED | TASK_GROUP_DEAD;
        let d = decode(&bytes(&ev), &Clock::fixed(0)).unwrap();
        assert!(d.followed && d.process_gone());
        ev.task_flags = 0;
        let d = decode(&bytes(&ev), &Clock::fixed(0)).unwrap();
        assert_eq!(d.group_dead, Some(false));
        assert!(!d.process_gone(), "a thread of a live process");
        // Unknown: the leader's exit stands for the process's (tid 101 is not pid 100).
        ev.task_flags = TASK_GROUP_UNKNOWN;
        let d = decode(&bytes(&ev), &Clock::fixed(0)).unwrap();
        assert_eq!(d.group_dead, None);
        assert!(!d.process_gone());
        ev.tid = ev.pid;
        assert!(
            decode(&bytes(&ev), &Clock::fixed(0))
                .unwrap()
                .process_gone()
        );
    }

    #[test]
    fn short_record_and_unknown_kind_are_errors() {
        let b = bytes(&raw());
        assert_eq!(
            decode(&b[..10], &Clock::fixed(0)),
            Err(DecodeError::Size(10))
        );
        let mut bad = raw();
        bad.kind = 99;
        assert_eq!(
            decode(&bytes(&bad), &Clock::fixed(0)),
            Err(DecodeError::Kind(99))
        );
    }

    /// Found by the record fuzz target: the largest stamp plus today's
    /// offset wrapped around to a time near 1970.
    #[test]
    fn fuzz_wall_clock_does_not_wrap() {
        let mut ev = raw();
        ev.ts_ns = u64::MAX;
        let d = decode(&bytes(&ev), &Clock::fixed(1_795_940_075_495_153_571)).unwrap();
        assert_eq!(d.time_ns, u64::MAX);
        assert_eq!(Clock::fixed(-5).wall_ns(3), 0);
    }

    #[test]
    fn hostile_comm_is_kept_exactly() {
        let mut ev = raw();
        ev.comm = *b"\x1b[2J\xff\xfeevil\0\0\0\0\0\0";
        let d = decode(&bytes(&ev), &Clock::fixed(0)).unwrap();
        // The bytes up to the NUL, unchanged: output escapes them.
        assert_eq!(d.comm.as_bytes(), b"\x1b[2J\xff\xfeevil");
    }
}
