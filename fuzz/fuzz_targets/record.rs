//! Ring-buffer records (trace/record.rs `decode`): any bytes decode or give
//! the right error without a panic, and a decoded event says exactly what
//! the record's fields say: same ids, only readable slots with their type,
//! the fork's flags from its changed slots, the comm up to its NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use listns::fuzzing::{Clock, DecodeError, NsType, TaskEventKind, decode_record};
use listns_common::{EVENT_SIZE, Event, EventKind, NS_SLOTS};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes are the clock's wall-minus-monotonic offset.
    let Some((offset, bytes)) = data.split_first_chunk::<8>() else {
        return;
    };
    let offset = i64::from_le_bytes(*offset) as i128;
    let got = decode_record(bytes, &Clock::fixed(offset));
    if bytes.len() < EVENT_SIZE {
        assert_eq!(got, Err(DecodeError::Size(bytes.len())));
        return;
    }
    // SAFETY: the length is checked and Event is plain data.
    let raw: Event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let kind = match EventKind::from_u32(raw.kind) {
        Some(EventKind::Fork) => TaskEventKind::Fork,
        Some(EventKind::Unshare) => TaskEventKind::Unshare,
        Some(EventKind::Setns) => TaskEventKind::Setns,
        Some(EventKind::Exit) => TaskEventKind::Exit,
        None => {
            assert_eq!(got, Err(DecodeError::Kind(raw.kind)));
            return;
        }
    };
    let ev = got.expect("a full record of a known kind decodes");
    assert_eq!(ev.kind, kind);
    assert_eq!(
        (ev.pid, ev.tid, ev.ppid, ev.uid, ev.cgroup_id, ev.fd),
        (raw.pid, raw.tid, raw.ppid, raw.uid, raw.cgroup_id, raw.fd)
    );
    // Wall time is the monotonic stamp moved by the offset, held to u64's range.
    let wall = (raw.ts_ns as i128 + offset).clamp(0, u64::MAX as i128) as u64;
    assert_eq!(ev.time_ns, wall, "ts {} offset {offset}", raw.ts_ns);

    let nul = raw.comm.iter().position(|&b| b == 0).unwrap_or(16);
    assert_eq!(ev.comm.as_bytes(), &raw.comm[..nul]);
    assert!(!ev.comm.as_bytes().contains(&0));

    let readable: Vec<usize> = (0..NS_SLOTS)
        .filter(|&i| raw.valid & (1 << i) != 0 && raw.ns[i].inum != 0)
        .collect();
    assert_eq!(
        ev.slots.iter().map(|s| s.slot).collect::<Vec<_>>(),
        readable
    );
    let nonzero = |id: u64| (id != 0).then_some(id);
    let mut changed_flags = 0u64;
    for s in &ev.slots {
        let (now, prev) = (raw.ns[s.slot], raw.prev[s.slot]);
        assert_eq!(s.ty, NsType::of_slot(s.slot));
        assert_eq!((s.inum, s.id), (now.inum as u64, nonzero(now.id)));
        let want_prev = (prev.inum != 0).then(|| (prev.inum as u64, nonzero(prev.id)));
        assert_eq!(s.prev, want_prev);
        assert_eq!(s.changed, raw.changed & (1 << s.slot) != 0);
        assert_eq!(s.created, raw.created & (1 << s.slot) != 0);
        if s.changed {
            changed_flags |= s.ty.clone_flag() as u64;
        }
    }
    let flags = if kind == TaskEventKind::Fork {
        changed_flags
    } else {
        raw.flags
    };
    assert_eq!(ev.flags, flags);
});
