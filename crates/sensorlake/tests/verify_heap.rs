//! What verification before upload costs in heap (issue 12 item 3): `verify_rows` on a
//! 178-row file of each benchmark data set decodes it with the crate's own reader
//! (`pqread`) and checks the rows against the key, with peak heap and allocations
//! counted per thread as in allocations.rs. Run with `--nocapture` to see the numbers.
//! And: no length field of a damaged file makes the reader allocate more at once than
//! the intact file needs or the damaged input holds.

mod heap;

use heap::{batches, counters, update};
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout as KeyLayout};
use sensorlake::simulate::Profile;
use sensorlake::spool::verify_rows;

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
