//! Maps shared by the hooks, and the one place that writes to the ring
//! buffer: records are reserved in it and written in place.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_cgroup_id, bpf_ktime_get_ns, generated},
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf, ring_buf::RingBufEntry},
};
use listns_common::{
    Config, EVENT_SIZE, Event, EventKind, KNOWN_MAX, NS_SLOTS, RINGBUF_BYTES, known_key,
};

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(RINGBUF_BYTES, 0);

/// Records that could not be written to `EVENTS` (ring buffer full).
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Namespaces already seen (seeded by userspace from the scan), keyed by
/// `known_key`: the first sighting of a key is a creation.
#[map]
pub static KNOWN: LruHashMap<u64, u8> = LruHashMap::with_max_entries(KNOWN_MAX, 0);

#[unsafe(no_mangle)]
static CONFIG: Config = Config::DEFAULT;

/// A record reserved in the ring buffer. Its owner writes `ns` and `prev`
/// (`reserve` writes the rest) and submits it on every path: the verifier
/// refuses a program that could leave a reservation open.
pub struct Record(RingBufEntry<Event>);

impl core::ops::Deref for Record {
    type Target = Event;
    fn deref(&self) -> &Event {
        // SAFETY: every field is a plain integer (any bit pattern is
        // valid); `reserve` wrote all but `ns` and `prev`, which hold old
        // ring-buffer bytes until the owner writes them, before submitting.
        unsafe { self.0.assume_init_ref() }
    }
}

impl core::ops::DerefMut for Record {
    fn deref_mut(&mut self) -> &mut Event {
        // SAFETY: as for Deref.
        unsafe { self.0.assume_init_mut() }
    }
}

impl Record {
    /// Gives the reservation back unsent.
    pub fn discard(self) {
        self.0.discard(BPF_RB_NO_WAKEUP as u64);
    }
}

/// Reserves a record of `kind` in the ring buffer with what every record
/// carries (time, cgroup, comm of the current task) and the other fields
/// cleared except `ns` and `prev`, or counts it in `LOST` when there is no
/// room. (Clearing those 320 bytes here compiled to a byte-by-byte memset
/// that the verifier walked once per path and gave up on.)
#[inline(always)]
pub fn reserve(kind: EventKind) -> Option<Record> {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        if let Some(lost) = LOST.get_ptr_mut(0) {
            unsafe { *lost += 1 };
        }
        return None;
    };
    let ev = entry.as_mut_ptr();
    // Volatile stores, through the raw pointer before any reference to the
    // record exists: plain ones get merged into byte-by-byte memset calls.
    macro_rules! put {
        ($field:ident, $v:expr) => {
            // SAFETY: `ev` is the reserved record, 8-byte aligned.
            unsafe { core::ptr::write_volatile(&raw mut (*ev).$field, $v) }
        };
    }
    put!(ts_ns, bpf_ktime_get_ns());
    put!(cgroup_id, bpf_get_current_cgroup_id());
    put!(cgroup, 0);
    put!(flags, 0);
    put!(ret, 0);
    put!(kind, kind as u32);
    put!(pid, 0);
    put!(tid, 0);
    put!(ppid, 0);
    put!(uid, 0);
    put!(fd, -1);
    put!(changed, 0);
    put!(created, 0);
    put!(valid, 0);
    put!(task_flags, 0);
    // SAFETY: the helper writes (or, failing, zeroes) the 16 bytes of comm.
    unsafe { generated::bpf_get_current_comm((&raw mut (*ev).comm).cast(), 16) };
    Some(Record(entry))
}

/// Sets `valid` (slot read), `changed` (differs from `prev`) and `created`
/// (changed, and not yet in the known map, which it is now marked in).
/// With `compare` false only `valid` is set.
///
/// The masks are accumulated in the record (map memory) with volatile
/// accesses: kept in registers as per-branch constants they would make the
/// verifier explore all 2^10 combinations of slots.
#[inline(always)]
pub fn classify(ev: &mut Event, compare: bool) {
    for slot in 0..NS_SLOTS {
        let bit = 1u16 << slot;
        let (now, before) = (ev.ns[slot], ev.prev[slot]);
        if now.inum == 0 {
            continue;
        }
        or_volatile(&mut ev.valid, bit);
        if !compare || before.inum == 0 || (now.inum == before.inum && now.id == before.id) {
            continue;
        }
        or_volatile(&mut ev.changed, bit);
        let key = known_key(slot, &now);
        // BPF_NOEXIST: of two CPUs racing on one namespace, one wins.
        if KNOWN.get_ptr(key).is_none() && KNOWN.insert(key, 1u8, 1).is_ok() {
            or_volatile(&mut ev.created, bit);
        }
    }
}

#[inline(always)]
fn or_volatile(field: &mut u16, bit: u16) {
    unsafe { core::ptr::write_volatile(field, core::ptr::read_volatile(field) | bit) };
}

/// Submits the record without waking the consumer (which polls on a
/// short timer) unless enough data is waiting: wakeups cost more than the
/// records.
#[inline(always)]
pub fn submit(record: Record) {
    let threshold = unsafe { core::ptr::read_volatile(&raw const CONFIG.wakeup_bytes) } as u64;
    let flags = if EVENTS.query(BPF_RB_AVAIL_DATA as u64) + EVENT_SIZE as u64 >= threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    record.0.submit(flags as u64);
}

/// Initial namespace inode of a slot (for the exit filter).
#[inline(always)]
pub fn init_inum(slot: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&raw const CONFIG.init_inum[slot]) }
}
