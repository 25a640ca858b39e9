//! A counting global allocator for the heap tests (allocations.rs, verify_heap.rs), and
//! the benchmark's batches they measure. The counters are per thread, so what the test
//! harness or any other thread allocates meanwhile is never counted (process-wide
//! counters made these tests fail on a loaded machine).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sensorlake::batch::Batch;
use sensorlake::simulate::{Profile, Simulator};

/// Forwards to the system allocator, counting on the calling thread.
pub struct Counting;

/// This thread's heap accounting. `const` initialisers and `Cell<usize>` need no
/// allocation and no destructor, so the allocator may touch them at any time; a thread
/// being torn down (where the slot is gone) is simply not counted.
#[derive(Clone, Copy)]
pub struct Counters {
    /// Bytes allocated now.
    pub current: usize,
    /// The most bytes allocated at once.
    pub peak: usize,
    /// Allocations and reallocations made.
    pub allocations: usize,
    /// The largest single allocation (or growth by realloc).
    pub largest: usize,
}

thread_local! {
    static COUNTERS: Cell<Counters> = const {
        Cell::new(Counters { current: 0, peak: 0, allocations: 0, largest: 0 })
    };
}

/// Changes this thread's counters.
pub fn update(f: impl FnOnce(&mut Counters)) {
    let _ = COUNTERS.try_with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

/// This thread's counters.
pub fn counters() -> Counters {
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

/// Two 178-row batches of a simulated data set.
pub fn batches(profile: Profile) -> Vec<Batch> {
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
