//! The sampling side of the pipeline: backpressure instead of loss when the spool is
//! full, source positions that move with spooled batches, the shutdown flush, and the
//! row journal across simulated power losses.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sensorlake::batch::{BatchConfig, Value};
use sensorlake::encode::EncodeOptions;
use sensorlake::journal::JournalConfig;
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::pipeline::{PipelineConfig, RecordError, Recorder};
use sensorlake::schema::{Channel, Schema};
use sensorlake::sim_storage::SimStorage;
use sensorlake::spool::{Spool, SpoolConfig, WhenFull};
use sensorlake::storage::Storage;
use sensorlake::uploader::UploadConfig;

const T0: i64 = 1_709_280_000_000_000; // 2024-03-01T08:00:00Z

fn config(max_rows: usize, spool: SpoolConfig, journal: Option<JournalConfig>) -> PipelineConfig {
    PipelineConfig {
        device_id: DeviceId::new("gw-1").unwrap(),
        schema: Arc::new(Schema::new(vec![Channel::f32("v")]).unwrap()),
        batch: BatchConfig {
            max_rows,
            max_age: None,
            window: None,
            max_pending: 2,
        },
        encode: EncodeOptions::default(),
        keys: KeyTemplate::new(Layout::Hive, "raw").unwrap(),
        spool,
        journal,
        upload: UploadConfig::default(),
        seed: 1,
    }
}

fn open(storage: &SimStorage, config: &PipelineConfig) -> Recorder<SimStorage> {
    let spool = Spool::open(storage.clone(), config.spool).unwrap();
    Recorder::open(storage.clone(), config, Arc::new(Mutex::new(spool))).unwrap()
}

/// Every row in `ready/`, by timestamp, with the number of times it occurs.
fn spooled_rows(storage: &SimStorage) -> BTreeMap<i64, (f32, usize)> {
    let mut rows = BTreeMap::new();
    for entry in storage.list("ready").unwrap() {
        let bytes = storage.read(&format!("ready/{}", entry.name)).unwrap();
        let decoded = sensorlake::decode::decode(Bytes::from(bytes)).unwrap();
        decoded.batch.for_each_row(|ts, values| {
            let Value::F32(v) = values[0] else { panic!() };
            rows.entry(ts).or_insert((v, 0)).1 += 1;
        });
    }
    rows
}

fn row(i: i64) -> (i64, [Value; 1]) {
    (T0 + i * 1_000_000, [Value::F32(i as f32)])
}

#[test]
fn a_full_spool_pushes_back_and_no_row_is_lost() {
    let storage = SimStorage::new(1);
    let spool_config = SpoolConfig {
        max_files: 2,
        when_full: WhenFull::RefuseNew,
        ..SpoolConfig::default()
    };
    let cfg = config(10, spool_config, None);
    let mut recorder = open(&storage, &cfg);
    let mut accepted = 0;
    let refused = loop {
        let (ts, v) = row(accepted);
        match recorder.push(ts, &v) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "the recorder never pushed back");
    };
    assert!(
        matches!(refused, RecordError::Backpressure { ref reason } if reason.contains("spool full")),
        "{refused}"
    );
    // 2 files spooled, 2 batches waiting in memory (max_pending), the open batch full-1.
    assert_eq!(accepted, 2 * 10 + 2 * 10 + 9);
    let stats = recorder.stats();
    assert_eq!((stats.files_spooled, stats.pending_batches), (2, 2));

    // The uploader frees the spool: the waiting batches go in, then the refused row.
    {
        let mut spool = recorder.spool().lock().unwrap();
        while let Some(e) = spool.take_oldest() {
            spool.complete(&e).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(250));
    let (ts, v) = row(accepted);
    recorder.push(ts, &v).unwrap();
    accepted += 1;
    {
        let mut spool = recorder.spool().lock().unwrap();
        while let Some(e) = spool.take_oldest() {
            spool.complete(&e).unwrap();
        }
    }
    recorder.flush().unwrap();
    assert_eq!(recorder.stats().rows_spooled, accepted as u64);
}

#[test]
fn positions_follow_spooled_batches_through_cuts_and_flush() {
    let storage = SimStorage::new(2);
    let cfg = config(3, SpoolConfig::default(), None);
    let mut recorder = open(&storage, &cfg);
    // Rows 0..5, then row 6 in the next UTC hour: batches [0,1,2] (full), [3,4] (hour cut).
    let hour = 3_600_000_000;
    let times = [0, 1, 2, 3, 4, hour];
    for (i, t) in times.iter().enumerate() {
        recorder
            .push_at(T0 + t, &[Value::F32(i as f32)], 100 + i as u64)
            .unwrap();
    }
    let spool = recorder.spool().clone();
    let positions: Vec<_> = spool
        .lock()
        .unwrap()
        .entries()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, [Some(102), Some(104)]);
    recorder.flush().unwrap();
    assert_eq!(spool.lock().unwrap().position(), Some(105));
    assert_eq!(spooled_rows(&storage).len(), 6);
    drop(recorder);
    let reopened = open(&storage, &cfg);
    assert_eq!(reopened.resume_position(), Some(105));
}

#[test]
fn the_journal_replays_the_open_batch_after_a_power_loss() {
    let storage = SimStorage::new(3);
    let cfg = config(
        50,
        SpoolConfig::default(),
        Some(JournalConfig { sync_every: 1 }),
    );
    let mut recorder = open(&storage, &cfg);
    for i in 0..120 {
        let (ts, v) = row(i);
        recorder.push(ts, &v).unwrap();
    }
    // Two files spooled, 20 rows in the open batch, only in memory and the journal.
    assert_eq!(spooled_rows(&storage).len(), 100);
    storage.cut_power();
    drop(recorder);
    storage.reboot();

    let mut recorder = open(&storage, &cfg);
    assert_eq!(recorder.stats().rows_replayed, 20);
    assert_eq!(recorder.stats().open_rows, 20);
    for i in 120..130 {
        let (ts, v) = row(i);
        recorder.push(ts, &v).unwrap();
    }
    recorder.flush().unwrap();
    let rows = spooled_rows(&storage);
    assert_eq!(rows.len(), 130, "every accepted row is spooled");
    assert!(rows.values().all(|&(_, n)| n == 1), "none twice");
    assert!(
        rows.iter()
            .all(|(ts, (v, _))| (ts - T0) / 1_000_000 == *v as i64)
    );
    assert_eq!(
        storage.list("journal").unwrap().len(),
        0,
        "spooled rows leave the journal"
    );
}

#[test]
fn the_journal_loses_at_most_the_unsynced_rows() {
    for seed in 0..30 {
        let storage = SimStorage::new(seed);
        let cfg = config(
            1000,
            SpoolConfig::default(),
            Some(JournalConfig { sync_every: 8 }),
        );
        let mut recorder = open(&storage, &cfg);
        for i in 0..45 {
            let (ts, v) = row(i);
            recorder.push(ts, &v).unwrap();
        }
        storage.cut_power();
        drop(recorder);
        storage.reboot();
        let mut recorder = open(&storage, &cfg);
        let replayed = recorder.stats().rows_replayed;
        assert!(
            (40..=45).contains(&replayed),
            "seed {seed}: {replayed} rows replayed"
        );
        recorder.flush().unwrap();
        let rows = spooled_rows(&storage);
        let expected: Vec<i64> = (0..replayed as i64).map(|i| row(i).0).collect();
        assert_eq!(
            rows.keys().copied().collect::<Vec<_>>(),
            expected,
            "seed {seed}: a prefix"
        );
    }
}

#[test]
fn a_journal_of_another_schema_is_refused_not_misread() {
    let storage = SimStorage::new(4);
    let cfg = config(1000, SpoolConfig::default(), Some(JournalConfig::default()));
    let mut recorder = open(&storage, &cfg);
    recorder.push(T0, &[Value::F32(1.0)]).unwrap();
    drop(recorder);
    let mut other = cfg.clone();
    other.schema = Arc::new(Schema::new(vec![Channel::f32("w")]).unwrap());
    let spool = Spool::open(storage.clone(), other.spool).unwrap();
    let err = Recorder::open(storage.clone(), &other, Arc::new(Mutex::new(spool))).unwrap_err();
    assert!(err.to_string().contains("another schema"), "{err}");
}

/// Moves every spooled file out (as an uploader would), recording its rows.
fn upload_all(
    recorder: &Recorder<SimStorage>,
    storage: &SimStorage,
    seen: &mut BTreeMap<i64, usize>,
) {
    let mut spool = recorder.spool().lock().unwrap();
    while let Some(entry) = spool.take_oldest() {
        let bytes = storage.read(&entry.path()).unwrap();
        let decoded = sensorlake::decode::decode(Bytes::from(bytes)).unwrap();
        decoded
            .batch
            .for_each_row(|ts, _| *seen.entry(ts).or_default() += 1);
        spool.complete(&entry).unwrap();
    }
}

#[test]
fn journal_rows_wait_for_room_after_a_restart_and_a_flush_spools_them_all() {
    let storage = SimStorage::new(5);
    let spool = SpoolConfig {
        max_files: 1,
        ..SpoolConfig::default()
    };
    let cfg = config(10, spool, Some(JournalConfig { sync_every: 1 }));
    let mut recorder = open(&storage, &cfg);
    let mut accepted = 0;
    while recorder.push(row(accepted).0, &row(accepted).1).is_ok() {
        accepted += 1;
    }
    // The power fails with one file spooled and 29 rows only in memory and the journal.
    assert_eq!(accepted, 39);
    storage.cut_power();
    drop(recorder);
    storage.reboot();

    // Restarted with less room in memory: the journal rows cannot all go in at once.
    let mut smaller = cfg.clone();
    smaller.batch.max_pending = 1;
    let mut recorder = open(&storage, &smaller);
    let replayed = recorder.stats().rows_replayed;
    assert!(replayed > 0 && replayed < 29, "{replayed} of 29 replayed");
    let (ts, v) = row(accepted);
    assert!(
        matches!(recorder.push(ts, &v), Err(RecordError::Backpressure { .. })),
        "journal rows go first"
    );
    let mut seen = BTreeMap::new();
    for _ in 0..100 {
        upload_all(&recorder, &storage, &mut seen);
        if recorder.flush().is_ok() {
            break;
        }
    }
    upload_all(&recorder, &storage, &mut seen);
    assert!(recorder.is_flushed());
    assert_eq!(
        seen.len(),
        accepted as usize,
        "every accepted row was spooled"
    );
    assert!(seen.values().all(|&n| n == 1), "none twice");
}
