//! What a long-lived encoder costs in heap, counted by a counting global allocator: a
//! warm encoder writing into a reused buffer allocates nothing, and a fresh one stays
//! within the device budget of 28 KiB per 178-row file, output included.
//!
//! The counters are per thread, so what the test harness or any other thread allocates
//! meanwhile is never counted (process-wide counters made this test fail on a loaded
//! machine). Only allocations made by the measuring thread itself are seen.

mod heap;

use heap::{batches, counters, update};
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::DeviceId;
use sensorlake::simulate::Profile;

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
