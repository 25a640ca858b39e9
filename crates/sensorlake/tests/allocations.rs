//! What a long-lived encoder costs in heap, counted by a counting global allocator (one
//! test in this binary, so no other test allocates meanwhile): a warm encoder writing
//! into a reused buffer allocates nothing, and a fresh one stays within the device
//! budget of 28 KiB per 178-row file, output included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use sensorlake::batch::Batch;
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::DeviceId;
use sensorlake::simulate::{Profile, Simulator};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        grew(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
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
        let base = CURRENT.load(Relaxed);
        PEAK.store(base, Relaxed);
        let mut encoder =
            Encoder::new(batches[0].schema().clone(), EncodeOptions::default()).unwrap();
        let mut out = Vec::new();
        encoder.encode_into(&batches[0], &meta, &mut out).unwrap();
        let cold_peak = PEAK.load(Relaxed) - base;
        assert!(
            cold_peak <= 28 * 1024,
            "{profile:?}: a fresh encoder's first file peaked at {cold_peak} bytes of heap"
        );

        let before = ALLOCATIONS.load(Relaxed);
        encoder.encode_into(&batches[1], &meta, &mut out).unwrap();
        encoder.encode_into(&batches[0], &meta, &mut out).unwrap();
        assert_eq!(
            ALLOCATIONS.load(Relaxed) - before,
            0,
            "{profile:?}: a warm encoder allocated"
        );
    }
}
