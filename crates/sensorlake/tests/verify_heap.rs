//! What verification before upload costs in heap (issue 12 item 3): `verify_rows` on a
//! 178-row file of each benchmark data set decodes it with the crate's own reader
//! (`pqread`) and checks the rows against the key, with peak heap and allocations
//! counted per thread as in allocations.rs. Run with `--nocapture` to see the numbers.
//! And: no length field of a damaged file makes the reader allocate more at once than
//! the intact file needs or the damaged input holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sensorlake::batch::Batch;
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout as KeyLayout};
use sensorlake::simulate::{Profile, Simulator};
use sensorlake::spool::verify_rows;

struct Counting;

/// This thread's heap accounting. `const` initialisers and `Cell<usize>` need no
/// allocation and no destructor, so the allocator may touch them at any time; a thread
/// being torn down (where the slot is gone) is simply not counted.
#[derive(Clone, Copy)]
struct Counters {
    current: usize,
    peak: usize,
    allocations: usize,
    /// The largest single allocation (or growth by realloc).
    largest: usize,
}

thread_local! {
    static COUNTERS: Cell<Counters> = const {
        Cell::new(Counters { current: 0, peak: 0, allocations: 0, largest: 0 })
    };
}

fn update(f: impl FnOnce(&mut Counters)) {
    let _ = COUNTERS.try_with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

fn counters() -> Counters {
    COUNTERS.with(Cell::get)
}

fn allocated(count: bool, grew_by: usize) {
    update(|c| {
        if count {
            c.allocations += 1;
        }
        c.current += grew_by;
        c.peak = c.peak.max(c.current);
        c.largest = c.largest.max(grew_by);
    });
}

fn freed(by: usize) {
    // Memory allocated by another thread may be freed here: never go below zero.
    update(|c| c.current = c.current.saturating_sub(by));
}

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        allocated(true, layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        freed(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            allocated(true, new_size - layout.size());
        } else {
            allocated(true, 0);
            freed(layout.size() - new_size);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn batches(profile: Profile) -> Vec<Batch> {
    let sim = Simulator::new(profile, "station-1", 1, 1_709_280_000_000_000);
    let mut values = Vec::new();
    let rows: Vec<_> = (0..356)
        .map(|i| {
            let ts = sim.row(i, &mut values);
            (ts, values.clone())
        })
        .collect();
    rows.chunks(178)
        .map(|c| {
            Batch::from_rows(
                sim.schema().clone(),
                c.iter().map(|(t, v)| (*t, v.as_slice())),
            )
            .unwrap()
        })
        .collect()
}

/// Peak heap of verifying one 178-row file, input excluded: a regression bound over
/// what is measured today (≈ 90 KB for Enviro, most of it the rows as `Value`s, 16
/// bytes per cell, that `Batch::from_rows` takes; a column-wise batch constructor
/// would cut it to about the batch itself).
const VERIFY_BUDGET: usize = 128 * 1024;

#[test]
fn verifying_a_file_before_upload_fits_the_device_budget() {
    let device = DeviceId::new("0195ae3c-43e0-7624-8c5c-7424adbcc30d").unwrap();
    let template = KeyTemplate::new(KeyLayout::Hive, "raw").unwrap();
    for profile in [Profile::Enviro, Profile::Imu, Profile::ImuRaw] {
        let batch = &batches(profile)[0];
        let key = template.render(&device, batch).unwrap();
        let meta = FileMetadata {
            device_id: &device,
            object_key: &key,
        };
        let mut encoder = Encoder::new(batch.schema().clone(), EncodeOptions::default()).unwrap();
        let bytes = encoder.encode_to_vec(batch, &meta).unwrap();
        let base = counters();
        update(|c| c.peak = base.current);
        let facts = verify_rows(&bytes).unwrap();
        let after = counters();
        let peak = after.peak - base.current;
        let allocations = after.allocations - base.allocations;
        eprintln!(
            "{profile:?}: verify_rows of a {}-byte, {}-row file: peak heap {peak} B, {allocations} allocations",
            bytes.len(),
            facts.rows
        );
        assert_eq!(facts.rows, 178);
        assert!(
            peak <= VERIFY_BUDGET,
            "{profile:?}: verification peaked at {peak} bytes of heap"
        );
    }
}

/// xorshift64*: deterministic.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// The largest single allocation while verifying `bytes` (whatever the outcome).
fn largest_allocation(bytes: &[u8]) -> usize {
    update(|c| c.largest = 0);
    let _ = verify_rows(bytes);
    counters().largest
}

#[test]
fn lying_lengths_never_drive_an_allocation() {
    let device = DeviceId::new("d-1").unwrap();
    let template = KeyTemplate::new(KeyLayout::Hive, "raw").unwrap();
    let mut state = 0x5EED_0007u64;
    for profile in [Profile::Enviro, Profile::Imu, Profile::ImuRaw] {
        let batch = &batches(profile)[0];
        let key = template.render(&device, batch).unwrap();
        let meta = FileMetadata {
            device_id: &device,
            object_key: &key,
        };
        let mut encoder = Encoder::new(batch.schema().clone(), EncodeOptions::default()).unwrap();
        let good = encoder.encode_to_vec(batch, &meta).unwrap();
        let honest = largest_allocation(&good);
        for _ in 0..1500 {
            let mut bytes = good.clone();
            let at = (next(&mut state) % bytes.len() as u64) as usize;
            match next(&mut state) % 3 {
                // A varint made huge, a u32 length replaced, a bit flipped.
                0 => {
                    let end = (at + 5).min(bytes.len());
                    bytes[at..end].fill(0xFF);
                }
                1 if at + 4 <= bytes.len() => {
                    bytes[at..at + 4].copy_from_slice(&(next(&mut state) as u32).to_le_bytes())
                }
                _ => bytes[at] ^= 1 << (next(&mut state) % 8),
            }
            let largest = largest_allocation(&bytes);
            assert!(
                largest <= honest.max(bytes.len()),
                "{profile:?}: a file damaged at byte {at} made a {largest}-byte allocation (intact file: {honest}, input {} bytes)",
                bytes.len()
            );
        }
    }
}
