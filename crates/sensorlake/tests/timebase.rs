//! The device clock logic across simulated boots: each boot is a new `Timebase` over the
//! same `FileTimeStore` directory, as a device reboots over the same NVS.

use std::fs;
use std::time::Duration;

use sensorlake::timebase::{
    FileTimeStore, Mapping, SLOT_KEYS, Stamp, TimeRecord, TimeStore, Timebase, TimebaseConfig,
};

const S: i64 = 1_000_000;
/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200 * S;

fn config() -> TimebaseConfig {
    TimebaseConfig {
        fallback_floor_us: 1_700_000_000 * S,
        save_every: Duration::from_secs(60),
    }
}

fn boot(dir: &tempfile::TempDir) -> Timebase<FileTimeStore> {
    Timebase::start(FileTimeStore::new(dir.path()), config())
}

#[test]
fn rows_are_held_until_the_first_sync_then_stamped_with_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = boot(&dir);
    assert_eq!(tb.boot(), 1);
    assert_eq!(tb.anchor_us(), config().fallback_floor_us);
    let flag = tb.sync_flag();
    assert!(!flag.is_set() && !tb.is_synced());
    assert_eq!(tb.stamp(5 * S), Stamp::Boot(5 * S));
    assert_eq!(tb.this_boot(), None, "no mapping before the clock is valid");

    // SNTP answers 90 s after boot.
    tb.synced(T0, 90 * S);
    assert!(flag.is_set(), "the upload task sees the clock is valid");
    let held = tb.this_boot().unwrap();
    assert_eq!(
        held,
        Mapping {
            offset_us: T0 - 90 * S,
            estimated: false
        }
    );
    assert_eq!(
        held.wall_us(5 * S),
        T0 - 85 * S,
        "a row 85 s before the sync"
    );
    assert_eq!(tb.stamp(100 * S), Stamp::Wall(T0 + 10 * S));

    // A later resync corrects new stamps but not the held rows' offset.
    tb.synced(T0 + 3600 * S + 20_000, 3690 * S);
    assert_eq!(tb.stamp(3700 * S), Stamp::Wall(T0 + 3610 * S + 20_000));
    assert_eq!(tb.this_boot(), Some(held));
}

#[test]
fn a_later_boot_restamps_a_synced_boot_exactly_and_an_unsynced_one_as_an_estimate() {
    let dir = tempfile::tempdir().unwrap();
    // Boot 1 syncs at uptime 10 s, runs an hour, saving the floor on its way.
    let mut tb = boot(&dir);
    tb.synced(T0, 10 * S);
    for minute in 1..=60 {
        tb.tick(10 * S + minute * 60 * S);
    }
    let boot1_offset = T0 - 10 * S;
    drop(tb);

    // Power cut; the device is off for 2 hours. Boot 2 never syncs (network down):
    // it samples for 30 minutes, saving anchor + uptime as the floor.
    let boot2_true_start = T0 + 3650 * S + 7200 * S;
    let mut tb = boot(&dir);
    assert_eq!(tb.boot(), 2);
    let anchor2 = tb.anchor_us();
    assert_eq!(
        anchor2,
        T0 + 3600 * S,
        "the last floor boot 1 saved (at its last full minute)"
    );
    assert_eq!(tb.stamp(60 * S), Stamp::Boot(60 * S));
    for minute in 1..=30 {
        tb.tick(minute * 60 * S);
    }
    drop(tb);

    // Boot 3 syncs. Boot 1's held rows (if any were left) are exact; boot 2's are
    // estimated from its anchor: never later than the truth, early by the off time.
    let mut tb = boot(&dir);
    assert_eq!(tb.boot(), 3);
    assert_eq!(
        tb.earlier_boot(1, 123),
        Mapping {
            offset_us: boot1_offset,
            estimated: false
        }
    );
    let boot2 = tb.earlier_boot(2, anchor2);
    assert!(boot2.estimated);
    let row_at = 20 * 60 * S;
    let truth = boot2_true_start + row_at;
    let estimate = boot2.wall_us(row_at);
    assert!(estimate <= truth);
    assert_eq!(truth - estimate, boot2_true_start - anchor2);
    // Boot 3's anchor follows boot 2's last saved estimate, so boot 2's estimated rows
    // (up to its last save) do not overlap anything boot 3 estimates.
    assert_eq!(tb.anchor_us(), anchor2 + 30 * 60 * S);
    tb.synced(boot2_true_start + 40 * 60 * S, 5 * S);
    assert_eq!(tb.record().syncs.len(), 2);
    assert_eq!(tb.record().syncs[0].boot, 3);
    assert_eq!(tb.record().syncs[1].boot, 1);
}

#[test]
fn only_the_last_few_sync_offsets_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    for n in 1..=6 {
        let mut tb = boot(&dir);
        tb.synced(T0 + n * 3600 * S, S);
    }
    let tb = boot(&dir);
    let boots: Vec<u32> = tb.record().syncs.iter().map(|s| s.boot).collect();
    assert_eq!(boots, [6, 5, 4, 3]);
    assert!(tb.earlier_boot(2, T0).estimated, "boot 2 is forgotten");
    assert!(!tb.earlier_boot(3, T0).estimated);
}

#[test]
fn a_torn_record_write_falls_back_to_the_other_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = boot(&dir);
    tb.synced(T0, S);
    tb.tick(61 * S);
    let good = tb.record().clone();
    drop(tb);
    // The newest slot is cut short, as by a power cut during the write.
    let newest = SLOT_KEYS[(good.generation % 2) as usize];
    let path = dir.path().join(newest);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let tb = boot(&dir);
    assert_eq!(tb.boot(), 2, "the older slot still has boot 1");
    assert_eq!(
        tb.anchor_us(),
        T0,
        "the floor of the older slot (the sync, not the torn tick)"
    );
    assert!(!tb.earlier_boot(1, 0).estimated);
}

#[test]
fn the_record_round_trips_and_garbage_is_not_a_record() {
    let record = TimeRecord {
        generation: 7,
        boot: 42,
        floor_us: T0,
        syncs: vec![sensorlake::timebase::SyncPoint {
            boot: 41,
            offset_us: -5,
        }],
    };
    let bytes = record.to_bytes();
    assert_eq!(TimeRecord::from_bytes(&bytes), Some(record));
    for cut in 0..bytes.len() {
        assert_eq!(TimeRecord::from_bytes(&bytes[..cut]), None, "cut at {cut}");
    }
    let mut flipped = bytes.clone();
    flipped[12] ^= 1;
    assert_eq!(TimeRecord::from_bytes(&flipped), None);
}

/// A store that fails every write, as NVS does when its partition is full.
struct FullStore;

impl TimeStore for FullStore {
    fn load(&mut self, _key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    fn save(&mut self, key: &str, _value: &[u8]) -> Result<(), String> {
        Err(format!("{key}: ESP_ERR_NVS_NOT_ENOUGH_SPACE"))
    }
}

#[test]
fn store_errors_are_reported_but_never_stop_stamping() {
    let mut tb = Timebase::start(FullStore, config());
    assert!(tb.last_error().unwrap().contains("NOT_ENOUGH_SPACE"));
    assert_eq!(tb.stamp(S), Stamp::Boot(S));
    tb.synced(T0, 2 * S);
    assert_eq!(tb.stamp(3 * S), Stamp::Wall(T0 + S));
    assert!(tb.sync_flag().is_set());
}
