//! Power loss, which SIGKILL does not simulate (the page cache survives a killed
//! process): the library pipeline runs on the crash-simulating storage, which at a
//! random operation cuts the power and then drops or tears every write and directory
//! entry that was not synced (FAT rename semantics: no rename onto an existing name).
//! The device reboots, resumes and goes on, uploading to the real embedded S3 server.
//! At the end every row must be in the bucket exactly once.
//!
//! Two devices: one whose source can be re-read (positions, like the csv and simulate
//! sources: every generated row must arrive), and a live one with the row journal
//! synced every row (every row whose push returned Ok must arrive; none twice).
//!
//! `SENSORLAKE_POWER_LOSS_CRASHES=N` sets the crashes per device (default 150; the
//! full run in docs/reliability.md uses 1000).

mod common;

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use common::{Comparison, Lake, SECRET_KEY, compare};
use sensorlake::backoff::Rng;
use sensorlake::batch::{BatchConfig, Value};
use sensorlake::clock::Clock;
use sensorlake::encode::EncodeOptions;
use sensorlake::journal::JournalConfig;
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::pipeline::{Pipeline, PipelineConfig, Recorder, Sender};
use sensorlake::presign::Signer;
use sensorlake::sim_storage::{SimStats, SimStorage};
use sensorlake::simulate::{Profile, Simulator};
use sensorlake::spool::{SpoolConfig, WhenFull};
use sensorlake::uploader::{Next, UploadConfig};
use sensorlake_cli::http::{HostConnection, HttpConfig};

const T0: i64 = 1_709_280_000_000_000;

fn crashes() -> u64 {
    std::env::var("SENSORLAKE_POWER_LOSS_CRASHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

/// Real wall time; monotonic time that jumps to each wait's end (no sleeping).
struct TestClock(Mutex<Instant>);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn monotonic(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

fn config(device: &str, journal: Option<JournalConfig>) -> PipelineConfig {
    PipelineConfig {
        device_id: DeviceId::new(device).unwrap(),
        schema: Simulator::new(Profile::Enviro, device, 7, T0)
            .schema()
            .clone(),
        batch: BatchConfig {
            max_rows: 40,
            max_age: None,
            window: None,
            max_pending: 2,
        },
        encode: EncodeOptions::default(),
        keys: KeyTemplate::new(Layout::Hive, "raw").unwrap(),
        spool: SpoolConfig {
            max_bytes: 1 << 20,
            max_files: 12,
            when_full: WhenFull::RefuseNew,
        },
        journal,
        upload: UploadConfig::default(),
        seed: 3,
    }
}

struct Device {
    sim: SimStorage,
    simulator: Simulator,
    config: PipelineConfig,
    signer: Signer,
    conn: HostConnection,
    clock: TestClock,
    rng: Rng,
    /// Files stored (2xx) and answered 412, over all boots.
    uploads: u64,
    already_stored: u64,
}

struct Report {
    crashes: u64,
    boots: u64,
    comparison: Comparison,
    uploads: u64,
    already_stored: u64,
    quarantined: usize,
    storage: SimStats,
}

impl Device {
    fn new(lake: &Lake, name: &str, journal: Option<JournalConfig>, seed: u64) -> Self {
        Self {
            sim: SimStorage::new(seed),
            simulator: Simulator::new(Profile::Enviro, name, 7, T0),
            config: config(name, journal),
            signer: lake.signer(&lake.server.endpoint(), SECRET_KEY),
            conn: HostConnection::new(HttpConfig::default()).unwrap(),
            clock: TestClock(Mutex::new(Instant::now())),
            rng: Rng::new(seed),
            uploads: 0,
            already_stored: 0,
        }
    }

    fn boot(&self) -> Option<(Recorder<SimStorage>, Sender<SimStorage, Signer>)> {
        Pipeline::open(self.sim.clone(), self.config.clone(), self.signer.clone())
            .ok()
            .map(Pipeline::split)
    }

    /// Adds a boot's upload counters to the totals.
    fn tally(&mut self, sender: &Sender<SimStorage, Signer>) {
        let c = sender.uploader().counters();
        self.uploads += c.uploaded_files;
        self.already_stored += c.already_stored;
    }

    /// Up to `n` upload steps; false once the spool is empty.
    fn upload(&mut self, sender: &mut Sender<SimStorage, Signer>, n: u64) -> bool {
        for _ in 0..n {
            let step = sender.step(&mut self.conn, &self.clock);
            match step.next {
                Next::Idle => return false,
                Next::WaitUntil(t) => *self.clock.0.lock().unwrap() = t,
                Next::Now => {}
            }
        }
        true
    }

    /// Boots until the spool is empty (no crash scheduled).
    fn drain(
        &mut self,
        recorder: &mut Recorder<SimStorage>,
        sender: &mut Sender<SimStorage, Signer>,
    ) {
        for _ in 0..100_000 {
            // The flush may find the spool full: upload, then try again.
            let flushed = recorder.flush().is_ok();
            if !self.upload(sender, 1) && flushed {
                assert!(recorder.is_flushed());
                return;
            }
        }
        panic!("the spool never drained");
    }
}

/// A device whose source is re-read from the spool's position after each boot.
fn replayable_device(lake: &Lake, crashes: u64) -> Report {
    let mut d = Device::new(lake, "replay-1", None, 11);
    let total = crashes * 150;
    let mut values = Vec::new();
    let mut boots = 0;
    let mut exhausted_at = None;
    for crash in 0..crashes {
        d.sim.crash_after(1 + d.rng.below(100));
        boots += 1;
        if let Some((mut recorder, mut sender)) = d.boot() {
            let mut next = recorder.resume_position().unwrap_or(0);
            if next >= total && exhausted_at.is_none() {
                exhausted_at = Some(crash);
            }
            while d.sim.is_powered() {
                for _ in 0..d.rng.below(60) {
                    if next >= total || !d.sim.is_powered() {
                        break;
                    }
                    let ts = d.simulator.row(next, &mut values);
                    if recorder.push_at(ts, &values, next + 1).is_err() {
                        break;
                    }
                    next += 1;
                }
                let n = d.rng.below(4);
                if !d.upload(&mut sender, n) && next >= total {
                    let _ = recorder.flush();
                    if !d.upload(&mut sender, 1000) {
                        d.sim.cut_power(); // nothing left to do: the power goes anyway
                    }
                }
            }
            d.tally(&sender);
        }
        d.sim.reboot();
    }
    boots += 1;
    let (mut recorder, mut sender) = d.boot().expect("a boot without a crash");
    let mut next = recorder.resume_position().unwrap_or(0);
    while next < total {
        let ts = d.simulator.row(next, &mut values);
        match recorder.push_at(ts, &values, next + 1) {
            Ok(()) => next += 1,
            Err(_) => {
                d.upload(&mut sender, 1);
            }
        }
    }
    d.drain(&mut recorder, &mut sender);
    d.tally(&sender);
    let expected: Vec<(i64, Vec<Value>)> = (0..total)
        .map(|i| {
            let ts = d.simulator.row(i, &mut values);
            (ts, values.clone())
        })
        .collect();
    println!(
        "power loss [re-readable source]: the source was exhausted at crash {exhausted_at:?} of {crashes}"
    );
    let stored = lake.rows("raw/device_id=replay-1/");
    assert!(stored.bad_objects.is_empty(), "{:?}", stored.bad_objects);
    report(
        &d,
        crashes,
        boots,
        compare("replay-1", &expected, &stored),
        &sender,
    )
}

/// A live device: each row is offered once; the journal makes accepted rows durable.
fn live_device_with_journal(lake: &Lake, crashes: u64) -> (Report, usize) {
    let mut d = Device::new(lake, "live-1", Some(JournalConfig { sync_every: 1 }), 12);
    let mut values = Vec::new();
    let mut offered = 0u64;
    let mut durable: Vec<(i64, Vec<Value>)> = Vec::new();
    let mut accepted_in_memory_only = 0;
    let mut boots = 0;
    for _ in 0..crashes {
        d.sim.crash_after(1 + d.rng.below(100));
        boots += 1;
        if let Some((mut recorder, mut sender)) = d.boot() {
            while d.sim.is_powered() {
                for _ in 0..d.rng.below(60) {
                    if !d.sim.is_powered() {
                        break; // the CPU stops with the power
                    }
                    let ts = d.simulator.row(offered, &mut values);
                    offered += 1;
                    let journal_errors = recorder.stats().journal_errors;
                    match recorder.push(ts, &values) {
                        Ok(()) if recorder.stats().journal_errors == journal_errors => {
                            durable.push((ts, values.clone()))
                        }
                        Ok(()) => accepted_in_memory_only += 1,
                        Err(_) => break, // refused: a live source loses it, never stored
                    }
                }
                let n = d.rng.below(4);
                d.upload(&mut sender, n);
            }
            d.tally(&sender);
        }
        d.sim.reboot();
    }
    boots += 1;
    let (mut recorder, mut sender) = d.boot().expect("a boot without a crash");
    d.drain(&mut recorder, &mut sender);
    d.tally(&sender);
    let stored = lake.rows("raw/device_id=live-1/");
    assert!(stored.bad_objects.is_empty(), "{:?}", stored.bad_objects);
    let mut comparison = compare("live-1", &durable, &stored);
    // Rows accepted while the storage was already dead may or may not have survived;
    // they are not "unexpected", but never twice (checked by `duplicated`).
    let offered_ts: std::collections::BTreeSet<i64> =
        (0..offered).map(|i| d.simulator.ts_of(i)).collect();
    comparison.unexpected = stored
        .rows
        .keys()
        .filter(|(_, ts)| !offered_ts.contains(ts))
        .count();
    (
        report(&d, crashes, boots, comparison, &sender),
        accepted_in_memory_only,
    )
}

fn report(
    d: &Device,
    crashes: u64,
    boots: u64,
    comparison: Comparison,
    sender: &Sender<SimStorage, Signer>,
) -> Report {
    for q in sender.spool().lock().unwrap().quarantined().unwrap() {
        println!("quarantined: {} ({} bytes): {}", q.name, q.size, q.reason);
    }
    Report {
        crashes,
        boots,
        comparison,
        uploads: d.uploads,
        already_stored: d.already_stored,
        quarantined: sender.spool_stats().quarantined_files,
        storage: d.sim.stats(),
    }
}

fn print(name: &str, r: &Report) {
    let s = r.storage;
    println!(
        "power loss [{name}]: {} simulated crashes over {} boots; storage at the crashes: {} unsynced writes dropped, {} torn, {} kept; {} unsynced directory entries reverted, {} kept",
        r.crashes,
        r.boots,
        s.dropped_writes,
        s.torn_writes,
        s.kept_writes,
        s.reverted_entries,
        s.kept_entries
    );
    println!(
        "power loss [{name}]: {}; files stored {}, answered 412 (stored before a crash) {}; quarantined {}",
        r.comparison, r.uploads, r.already_stored, r.quarantined
    );
}

#[test]
fn every_row_arrives_exactly_once_across_power_losses() {
    let lake = Lake::start();
    let crashes = crashes();
    let started = Instant::now();
    let replay = replayable_device(&lake, crashes);
    print("re-readable source", &replay);
    let (live, memory_only) = live_device_with_journal(&lake, crashes);
    print("live source + journal", &live);
    println!(
        "power loss: {} crashes in total in {:.1} s ({memory_only} live rows were accepted only in memory, while the storage was already failing)",
        replay.crashes + live.crashes,
        started.elapsed().as_secs_f64()
    );
    assert!(replay.storage.crashes >= crashes && live.storage.crashes >= crashes);
    assert!(
        replay.storage.torn_writes > 0 && replay.storage.reverted_entries > 0,
        "the crashes did tear and revert"
    );
    for (name, r) in [("re-readable", &replay), ("live", &live)] {
        assert!(r.comparison.is_exact(), "{name}: {}", r.comparison);
        assert_eq!(r.quarantined, 0, "{name}: nothing is quarantined");
        assert!(r.comparison.generated > 0);
    }
}
