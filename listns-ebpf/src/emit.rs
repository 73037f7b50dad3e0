//! Maps shared by the hooks, the per-CPU scratch record, and the one place
//! that writes to the ring buffer.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_ktime_get_ns},
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf},
};
use listns_common::{Config, EVENT_SIZE, Event, KNOWN_MAX, NS_SLOTS, RINGBUF_BYTES, known_key};

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(RINGBUF_BYTES, 0);

/// Records that could not be written to `EVENTS` (ring buffer full).
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Namespaces already seen (seeded by userspace from the scan), keyed by
/// `known_key`: the first sighting of a key is a creation.
#[map]
pub static KNOWN: LruHashMap<u64, u8> = LruHashMap::with_max_entries(KNOWN_MAX, 0);

/// Scratch space for one record (too large for the 512-byte BPF stack).
#[map]
static SCRATCH: PerCpuArray<Event> = PerCpuArray::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static CONFIG: Config = Config::DEFAULT;

/// The per-CPU scratch record, cleared of what the last event left there.
#[inline(always)]
pub fn scratch() -> Option<&'static mut Event> {
    let ev = unsafe { &mut *SCRATCH.get_ptr_mut(0)? };
    ev.ts_ns = unsafe { bpf_ktime_get_ns() };
    ev.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    ev.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    ev.flags = 0;
    ev.ret = 0;
    ev.fd = -1;
    ev.changed = 0;
    ev.created = 0;
    ev.valid = 0;
    ev.task_flags = 0;
    Some(ev)
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

/// Copies the record into the ring buffer, counting it in `LOST` when there
/// is no room. Submits without waking the consumer (which polls on a short
/// timer) unless enough data is waiting: wakeups cost more than the records.
#[inline(always)]
pub fn submit(ev: &Event) {
    let threshold = unsafe { core::ptr::read_volatile(&raw const CONFIG.wakeup_bytes) } as u64;
    let flags = if EVENTS.query(BPF_RB_AVAIL_DATA as u64) + EVENT_SIZE as u64 >= threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    if EVENTS.output::<Event>(ev, flags as u64).is_err() {
        if let Some(lost) = LOST.get_ptr_mut(0) {
            unsafe { *lost += 1 };
        }
    }
}

/// Initial namespace inode of a slot (for the exit filter).
#[inline(always)]
pub fn init_inum(slot: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&raw const CONFIG.init_inum[slot]) }
}
