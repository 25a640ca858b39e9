//! The ESP32-S3 firmware's own code path on a host: `device::open` with the firmware's
//! `DeviceConfig`, the `Sampler` it runs in its sampling thread and the
//! `UploadLoop::run` it runs in its upload thread, with URLs from the presign broker
//! (`AnyUrlSource::Broker`, as provisioned) and PUTs through the host's embedded-svc
//! `Connection` (`HostConnection`, where the firmware has `EspHttpConnection`), against
//! the embedded S3 server with SigV4 on. What the device does not have here: the radio,
//! the sensors (a counting sensor stands in), NVS (`FileTimeStore`), LittleFS (a
//! directory), esp_timer (test-chosen uptimes) and SNTP (a reported sync).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sensorlake::batch::Value;
use sensorlake::clock::SystemClock;
use sensorlake::decode::decode;
use sensorlake::device::{self, DeviceConfig, Loops};
use sensorlake::encode::{META_OBJECT_KEY, META_TIME_ESTIMATED};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{Credentials, S3Target};
use sensorlake::provision::Provisioning;
use sensorlake::schema::{Channel, ChannelType};
use sensorlake::sensor::{SensorError, SensorSource, Sensors};
use sensorlake::storage::StdStorage;
use sensorlake::timebase::FileTimeStore;
use sensorlake::url_source::AnyUrlSource;
use sensorlake_cli::broker::registry::Registry;
use sensorlake_cli::broker::{Broker, BrokerConfig};
use sensorlake_cli::http::{HostConnection, HttpConfig, HttpError};
use sensorlake_cli::s3server::{S3Server, ServerConfig};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BUCKET: &str = "lake";
const S: i64 = 1_000_000;

/// A sensor whose reading is the number of the read, so every row can be traced.
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

/// A stored object: key, rows (ts, n), whether its times are estimated.
type StoredObject = (String, Vec<(i64, i64)>, bool);

struct Env {
    dir: tempfile::TempDir,
    _s3: S3Server,
    broker: Broker,
    settings: Provisioning,
}

impl Env {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s3 = ServerConfig::new(dir.path().join("s3"), ACCESS_KEY, SECRET_KEY);
        s3.create_buckets = vec![BUCKET.into()];
        let s3 = S3Server::start(s3).unwrap();
        let registry = Registry::new(dir.path().join("devices.json"));
        let device = DeviceId::new("esp-7").unwrap();
        let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
        let token = registry.add_device(&device, &template, false).unwrap();
        let mut broker = BrokerConfig::new(
            registry.path(),
            dir.path().join("audit.jsonl"),
            S3Target {
                endpoint: s3.endpoint(),
                bucket: BUCKET.into(),
                region: "us-east-1".into(),
                path_style: true,
            },
            Credentials::new(ACCESS_KEY, SECRET_KEY),
        );
        broker.rate_limit = None;
        let broker = Broker::start(broker).unwrap();
        // The device's settings, as `sensorlake provision` writes them to NVS.
        let settings = Provisioning::new("lab", "", "esp-7", &broker.url(), &token).unwrap();
        Self {
            dir,
            _s3: s3,
            broker,
            settings,
        }
    }

    /// The firmware's configuration, built as its main.rs builds it (small batches so
    /// that a few rows make several files).
    fn config(&self) -> DeviceConfig {
        let mut config = DeviceConfig::new(
            self.settings.device_id.clone(),
            self.settings.key_template(),
        );
        config.sample_period = self.settings.sample_period;
        config.batch.max_rows = 8;
        config.idle_poll = Duration::from_millis(50);
        config.reconnect_delay = Duration::from_millis(50);
        config
    }

    /// One boot of the device over the same spool and time record.
    fn boot(&self, first_reading: i64) -> Loops<StdStorage, FileTimeStore, AnyUrlSource> {
        device::open(
            StdStorage::new(self.dir.path().join("spool")),
            FileTimeStore::new(self.dir.path().join("nvs")),
            Sensors::new(vec![Box::new(Counter(first_reading))]).unwrap(),
            AnyUrlSource::Broker(self.settings.broker_client()),
            &self.config(),
        )
        .unwrap()
    }

    /// Every stored object: (key, rows (ts, n), time_estimated).
    fn objects(&self) -> Vec<StoredObject> {
        let mut out = Vec::new();
        walk(&self.dir.path().join("s3").join(BUCKET), &mut |path| {
            if path.extension().is_some_and(|e| e == "parquet") {
                let file = decode(Bytes::from(std::fs::read(path).unwrap())).unwrap();
                let mut rows = Vec::new();
                file.batch.for_each_row(|ts, values| {
                    let Value::Int(n) = values[0] else { panic!() };
                    rows.push((ts, n));
                });
                out.push((
                    file.meta(META_OBJECT_KEY).unwrap().to_string(),
                    rows,
                    file.meta(META_TIME_ESTIMATED) == Some("true"),
                ));
            }
        });
        out
    }

    fn broker_requests(&self) -> usize {
        std::fs::read_to_string(self.broker.audit_log()).map_or(0, |t| t.lines().count())
    }
}

fn walk(dir: &Path, f: &mut impl FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn connect() -> Result<HostConnection, HttpError> {
    HostConnection::new(HttpConfig::default())
}

#[test]
fn the_firmware_loops_upload_every_row_once_with_exact_or_marked_estimated_times() {
    let env = Env::start();
    // Boot 1 synced an hour ago and ran for ten minutes: the time record holds its floor.
    let boot1_wall = now_us() - 3_600 * S;
    {
        let (mut sampler, _) = env.boot(0);
        sampler.sync_signal().post(boot1_wall, S);
        for minute in 0..=10 {
            sampler.poll(S + minute * 60 * S);
        }
    }
    // Boot 2: no network, 10 rows every 5 s, then the power goes.
    let anchor2 = {
        let (mut sampler, _) = env.boot(0);
        for i in 0..10 {
            sampler.sample(2 * S + i * 5 * S);
        }
        sampler.flush();
        sampler.timebase().anchor_us()
    };

    // Boot 3: boot 2's rows are stamped at start (estimates); then 12 rows before SNTP.
    let (mut sampler, mut uploads) = env.boot(100);
    for i in 0..12 {
        sampler.sample(S + i * 5 * S);
        sampler.poll(S + i * 5 * S);
    }
    // The upload loop's own step, as its thread runs it: before the clock is valid it
    // signs and sends nothing, though the spool holds boot 2's files.
    let mut conn = None;
    let mut connect = connect;
    for _ in 0..3 {
        let step = uploads.step(&mut conn, &mut connect, &SystemClock);
        assert_eq!(step.event, None);
    }
    assert!(conn.is_none(), "not even a connection");
    assert_eq!(env.broker_requests(), 0, "no URL was asked for");
    assert!(env.objects().is_empty());
    assert!(uploads.sender().spool_stats().ready_files > 0);

    // SNTP answers at uptime 70 s.
    let sync_wall = now_us();
    sampler.sync_signal().post(sync_wall, 70 * S);
    sampler.poll(70 * S);
    for i in 0..6 {
        sampler.sample(75 * S + i * 5 * S);
    }
    sampler.flush();

    // The upload thread, exactly as the firmware runs it, until the spool is empty.
    let stop = AtomicBool::new(false);
    let spool = uploads.sender().spool().clone();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut feeds = 0u64;
            uploads.run(connect, &SystemClock, &stop, &mut || feeds += 1);
            assert!(feeds > 0, "the watchdog was fed");
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !spool.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the spool did not drain"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let counters = uploads.sender().uploader().counters().clone();
    assert_eq!(counters.quarantined, 0, "{counters:?}");
    assert_eq!(counters.uploaded_rows, 28);

    // Every row is stored once, with the time the firmware's clock logic gives it.
    let objects = env.objects();
    let mut seen = Vec::new();
    for (key, rows, estimated) in &objects {
        assert!(key.starts_with("raw/device_id=esp-7/dt="), "{key}");
        for &(ts, n) in rows {
            let expected = if n <= 10 {
                // Boot 2, never synced: its anchor plus the uptime, marked.
                assert!(estimated, "{key}");
                anchor2 + 2 * S + (n - 1) * 5 * S
            } else if n <= 112 {
                // Boot 3 before SNTP: exact, from the sync.
                assert!(!estimated, "{key}");
                sync_wall - 70 * S + S + (n - 101) * 5 * S
            } else {
                assert!(!estimated, "{key}");
                sync_wall - 70 * S + 75 * S + (n - 113) * 5 * S
            };
            assert_eq!(ts, expected, "row {n} in {key}");
            seen.push(n);
        }
    }
    seen.sort();
    let all: Vec<i64> = (1..=10).chain(101..=118).collect();
    assert_eq!(seen, all, "every row once");
    assert!(
        anchor2 >= boot1_wall + 600 * S,
        "boot 2's estimate starts after boot 1"
    );
    assert!(
        objects.iter().any(|o| o.2) && objects.iter().any(|o| !o.2),
        "both kinds of file"
    );
}
