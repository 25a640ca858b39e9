//! What a long-lived encoder costs in heap, counted by a counting global allocator: a
//! warm encoder writing into a reused buffer allocates nothing, and a fresh one stays
//! within the device budget of 28 KiB per 178-row file, output included.
//!
//! The counters are per thread, so what the test harness or any other thread allocates
//! meanwhile is never counted (process-wide counters made this test fail on a loaded
//! machine). Only allocations made by the measuring thread itself are seen.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sensorlake::batch::Batch;
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::DeviceId;
use sensorlake::simulate::{Profile, Simulator};

struct Counting;

/// This thread's heap accounting. `const` initialisers and `Cell<usize>` need no
/// allocation and no destructor, so the allocator may touch them at any time; a thread
/// being torn down (where the slot is gone) is simply not counted.
#[derive(Clone, Copy)]
struct Counters {
    current: usize,
    peak: usize,
    allocations: usize,
}

thread_local! {
    static COUNTERS: Cell<Counters> = const {
        Cell::new(Counters { current: 0, peak: 0, allocations: 0 })
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

#[test]
fn warm_encoder_allocates_nothing_and_a_cold_one_fits_the_budget() {
    let device = DeviceId::new("0195ae3c-43e0-7624-8c5c-7424adbcc30d").unwrap();
    let key = "raw/device_id=0195ae3c-43e0-7624-8c5c-7424adbcc30d/dt=2024-03-01/hour=08/1709280000000000-0123abcd.parquet";
    let meta = FileMetadata {
        device_id: &device,
        object_key: key,
    };
    for profile in [Profile::Enviro, Profile::Imu, Profile::ImuRaw] {
        let batches = batches(profile);
        let base = counters().current;
        update(|c| c.peak = base);
        let mut encoder =
            Encoder::new(batches[0].schema().clone(), EncodeOptions::default()).unwrap();
        let mut out = Vec::new();
        encoder.encode_into(&batches[0], &meta, &mut out).unwrap();
        let cold_peak = counters().peak - base;
        assert!(
            cold_peak <= 28 * 1024,
            "{profile:?}: a fresh encoder's first file peaked at {cold_peak} bytes of heap"
        );

        let before = counters().allocations;
        encoder.encode_into(&batches[1], &meta, &mut out).unwrap();
        encoder.encode_into(&batches[0], &meta, &mut out).unwrap();
        assert_eq!(
            counters().allocations - before,
            0,
            "{profile:?}: a warm encoder allocated"
        );
    }
}
