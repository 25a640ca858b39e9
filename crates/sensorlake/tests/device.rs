//! The firmware's sampling loop (`device::Sampler`) over real files: rows taken before
//! the clock is valid are held, then re-stamped exactly at the boot's first sync, or as
//! marked estimates by a later boot when their boot never synced. Each "boot" is a new
//! `device::open` over the same spool directory and time record, as after a reset.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use sensorlake::batch::{BatchConfig, Value};
use sensorlake::decode::decode;
use sensorlake::device::{self, DeviceConfig};
use sensorlake::encode::META_TIME_ESTIMATED;
use sensorlake::holding::HELD;
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{Credentials, S3Target, Signer};
use sensorlake::schema::{Channel, ChannelType};
use sensorlake::sensor::{SensorError, SensorSource, Sensors};
use sensorlake::storage::{StdStorage, Storage};
use sensorlake::timebase::{FileTimeStore, Mapping, TimebaseConfig};

const S: i64 = 1_000_000;
/// 2026-03-01T10:00:00Z.
const T0: i64 = 1_772_359_200 * S;

/// A sensor whose reading is the number of the read: every row is identifiable.
struct Counter(i64);

impl SensorSource for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn channels(&self) -> Vec<Channel> {
        vec![Channel::new("n", ChannelType::I32)]
    }
    fn read(&mut self, out: &mut [Value]) -> Result<(), SensorError> {
        self.0 += 1;
        out[0] = Value::Int(self.0);
        Ok(())
    }
}

struct Device {
    dir: tempfile::TempDir,
}

type Loops = device::Loops<StdStorage, FileTimeStore, Signer>;

impl Device {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config() -> DeviceConfig {
        let mut config = DeviceConfig::new(
            DeviceId::new("gw-1").unwrap(),
            KeyTemplate::new(Layout::Hive, "raw").unwrap(),
        );
        config.batch = BatchConfig {
            max_rows: 10,
            ..BatchConfig::default()
        };
        config.timebase = TimebaseConfig {
            fallback_floor_us: T0 - 86_400 * S,
            save_every: Duration::from_secs(60),
        };
        config
    }

    /// One boot, counting from `first` (the sensor's previous reading).
    fn boot(&self, first: i64) -> Loops {
        self.boot_with(first, &Self::config())
    }

    fn boot_with(&self, first: i64, config: &DeviceConfig) -> Loops {
        let sensors = Sensors::new(vec![Box::new(Counter(first))]).unwrap();
        let signer = Signer::new(
            &S3Target {
                endpoint: "http://127.0.0.1:9".into(),
                bucket: "lake".into(),
                region: "us-east-1".into(),
                path_style: true,
            },
            &Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            Duration::from_secs(300),
        )
        .unwrap();
        device::open(
            StdStorage::new(self.dir.path().join("spool")),
            FileTimeStore::new(self.dir.path().join("nvs")),
            sensors,
            signer,
            config,
        )
        .unwrap()
    }

    fn storage(&self) -> StdStorage {
        StdStorage::new(self.dir.path().join("spool"))
    }

    fn held_files(&self) -> usize {
        self.storage().list(HELD).unwrap().len()
    }

    /// Every spooled file's rows: (ts, n, time_estimated).
    fn spooled_rows(&self) -> Vec<(i64, i64, bool)> {
        let storage = self.storage();
        let mut rows = Vec::new();
        for entry in storage.list("ready").unwrap() {
            let bytes = storage.read(&format!("ready/{}", entry.name)).unwrap();
            let file = decode(Bytes::from(bytes)).unwrap();
            let estimated = file.meta(META_TIME_ESTIMATED) == Some("true");
            assert_eq!(estimated, file.batch.time_estimated());
            file.batch.for_each_row(|ts, values| {
                let Value::Int(n) = values[0] else {
                    panic!("n is an integer")
                };
                rows.push((ts, n, estimated));
            });
        }
        rows.sort_by_key(|r| r.1);
        rows
    }
}

#[test]
fn rows_before_the_first_sync_are_held_then_stamped_exactly_and_spooled() {
    let device = Device::new();
    let (mut sampler, _uploads) = device.boot(0);
    assert!(!sampler.sync_flag().is_set());
    // 25 rows, one every 5 s from uptime 1 s, no clock: two full batches are held.
    for i in 0..25 {
        sampler.sample(S + i * 5 * S);
        sampler.poll(S + i * 5 * S);
    }
    assert_eq!(device.held_files(), 2);
    assert!(
        device.spooled_rows().is_empty(),
        "nothing is spooled unstamped"
    );
    assert_eq!(sampler.stats().rows_held, 25);

    // SNTP: at uptime 130 s the time is T0. The 25 held rows get T0 - 130 s + uptime.
    sampler.sync_signal().post(T0, 130 * S);
    sampler.poll(131 * S);
    assert!(sampler.sync_flag().is_set());
    for i in 0..5 {
        sampler.sample(135 * S + i * 5 * S);
    }
    sampler.flush();
    assert_eq!(device.held_files(), 0, "held files leave once spooled");

    let rows = device.spooled_rows();
    assert_eq!(rows.len(), 30);
    for (ts, n, estimated) in rows {
        let uptime = if n <= 25 {
            S + (n - 1) * 5 * S
        } else {
            135 * S + (n - 26) * 5 * S
        };
        assert_eq!(ts, T0 - 130 * S + uptime, "row {n}");
        assert!(!estimated);
    }
    assert_eq!(sampler.stats().rows_restamped, 25);
    assert_eq!(sampler.stats().rows_recorded, 5);
}

#[test]
fn a_boot_that_never_synced_is_stamped_by_the_next_boot_as_a_marked_estimate() {
    let device = Device::new();
    // Boot 1 syncs and runs for 10 minutes, saving the time as it goes.
    {
        let (mut sampler, _) = device.boot(0);
        sampler.sync_signal().post(T0, 2 * S);
        for minute in 0..=10 {
            sampler.poll(2 * S + minute * 60 * S);
        }
    }
    // Boot 2 (after an unknown time off): the network is down, 12 rows, power cut.
    let anchor = {
        let (mut sampler, _) = device.boot(0);
        for i in 0..12 {
            sampler.sample(3 * S + i * 10 * S);
        }
        sampler.flush();
        sampler.timebase().anchor_us()
    };
    assert_eq!(anchor, T0 + 600 * S, "the last time boot 1 saved");
    assert_eq!(device.held_files(), 2);

    // Boot 3 re-stamps them at start, before its own clock is valid.
    let (sampler, _) = device.boot(100);
    assert_eq!(device.held_files(), 0);
    assert_eq!(sampler.stats().rows_estimated, 12);
    let rows = device.spooled_rows();
    assert_eq!(rows.len(), 12);
    for (ts, n, estimated) in rows {
        assert!(estimated, "row {n} is marked time_estimated");
        assert_eq!(ts, anchor + 3 * S + (n - 1) * 10 * S);
    }
}

#[test]
fn held_rows_of_a_boot_that_synced_are_exact_even_if_spooled_by_a_later_boot() {
    let device = Device::new();
    {
        // A spool that takes nothing (full): the held rows cannot leave at the sync.
        let mut full = Device::config();
        full.spool.max_bytes = 1;
        let (mut sampler, _) = device.boot_with(0, &full);
        for i in 0..10 {
            sampler.sample(S + i * S);
        }
        assert_eq!(device.held_files(), 1);
        sampler.sync_signal().post(T0, 20 * S);
        sampler.poll(21 * S);
        assert!(sampler.sync_flag().is_set());
        assert_eq!(device.held_files(), 1, "the spool refused them: still held");
    } // power cut
    let (sampler, _) = device.boot(10);
    assert_eq!(device.held_files(), 0);
    assert_eq!(sampler.stats().rows_restamped, 10);
    let rows = device.spooled_rows();
    assert_eq!(rows.len(), 10);
    for (ts, n, estimated) in rows {
        assert!(!estimated, "boot 1 synced: its rows are exact");
        assert_eq!(ts, T0 - 20 * S + S + (n - 1) * S);
    }
}

#[test]
fn restamping_cuts_batches_at_the_hour_like_the_batcher() {
    let schema =
        Arc::new(sensorlake::Schema::new(vec![Channel::new("n", ChannelType::I32)]).unwrap());
    let rows: Vec<(i64, Vec<Value>)> = (0..6).map(|i| (i * 60 * S, vec![Value::Int(i)])).collect();
    let batch =
        sensorlake::Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice())))
            .unwrap();
    // Mapped so that the hour turns between the third and the fourth row.
    let hour = 3_600 * S;
    let mapping = Mapping {
        offset_us: 500 * hour - 150 * S,
        estimated: true,
    };
    let out = device::restamp_batch(&batch, &schema, &BatchConfig::default(), mapping).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].timestamps(),
        &[
            500 * hour - 150 * S,
            500 * hour - 90 * S,
            500 * hour - 30 * S
        ]
    );
    assert_eq!(
        out[1].timestamps(),
        &[
            500 * hour + 30 * S,
            500 * hour + 90 * S,
            500 * hour + 150 * S
        ]
    );
    assert!(out.iter().all(|b| b.time_estimated()));
}

#[test]
fn the_sampling_loop_stops_on_request_and_flushes() {
    let device = Device::new();
    let (mut sampler, _) = device.boot(0);
    sampler.sync_signal().post(T0, 0);
    let stop = AtomicBool::new(false);
    let start = std::time::Instant::now();
    let mut feeds = 0;
    let stop_after = |feeds: &mut u32| {
        *feeds += 1;
        if *feeds >= 3 {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    sampler.run(|| start.elapsed().as_micros() as i64, &stop, &mut || {
        stop_after(&mut feeds)
    });
    // The default period is 5 s: the first row is taken at once, and flushed at stop.
    let rows = device.spooled_rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].0 >= T0 && rows[0].0 < T0 + 5 * S);
}

/// The firmware moves the loops into their threads and returns `DeviceError` through
/// `anyhow`: they must stay `Send` (and the error `Send + Sync`).
#[test]
fn the_loops_move_to_threads_and_the_error_converts_to_anyhow() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync + 'static>() {}
    send::<device::Sampler<StdStorage, FileTimeStore>>();
    send::<device::UploadLoop<StdStorage, sensorlake::url_source::AnyUrlSource>>();
    send_sync::<device::DeviceError>();
    send_sync::<sensorlake::sensor::SensorsError>();
    send_sync::<sensorlake::provision::ProvisionError>();
}
