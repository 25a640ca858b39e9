//! The firmware's two loops, as library code tested on the host: the ESP32-S3 firmware
//! (`firmware/esp32s3`) only opens the hardware and calls [`open`], [`Sampler::run`]
//! and [`UploadLoop::run`] in two threads.
//!
//! - [`Sampler`]: every [`DeviceConfig::sample_period`] it reads the [`Sensors`] into a
//!   row and records it. While the clock is not valid (no SNTP sync yet this boot) rows
//!   are batched with their time since boot and held ([`crate::holding`]); at the
//!   boot's first sync they are re-stamped exactly and spooled, and held files of
//!   earlier boots are re-stamped when the device starts — exactly if that boot synced,
//!   else as an estimate marked `time_estimated` ([`crate::timebase`]). The network
//!   never blocks it: it only writes to the spool.
//! - [`UploadLoop`]: drains the spool through the [`crate::uploader`] state machine
//!   over any `embedded_svc` HTTP connection (ESP-IDF's `EspHttpConnection` on the
//!   device). It signs and sends nothing before the clock is valid, opens a fresh
//!   connection after a transport failure, and sleeps as the uploader says.
//!
//! Both loops take a stop flag and a `feed` callback they call at least once a second
//! (the firmware feeds the task watchdog with it).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use embedded_svc::http::client::Connection;
use sha2::{Digest, Sha256};

use crate::batch::{Batch, BatchConfig, BatchError, Batcher, Value};
use crate::clock::Clock;
use crate::encode::EncodeOptions;
use crate::holding::{HeldFile, Holding, HoldingError};
use crate::key::{DeviceId, KeyTemplate};
use crate::pipeline::{Pipeline, PipelineConfig, PipelineError, RecordError, Recorder, Sender};
use crate::schema::Schema;
use crate::sensor::Sensors;
use crate::spool::{SpoolConfig, WhenFull};
use crate::storage::Storage;
use crate::timebase::{Mapping, Stamp, SyncFlag, SyncSignal, TimeStore, Timebase, TimebaseConfig};
use crate::uploader::{Event, Next, UploadConfig};
use crate::url_source::UrlSource;

/// The longest sleep between two `feed` calls.
const FEED_EVERY: Duration = Duration::from_secs(1);

/// Everything the device loops need besides the hardware.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// The device id in files and keys.
    pub device_id: DeviceId,
    /// Key layout and prefix.
    pub keys: KeyTemplate,
    /// When batches close.
    pub batch: BatchConfig,
    /// Codec, encodings, statistics.
    pub encode: EncodeOptions,
    /// Spool capacity and policy.
    pub spool: SpoolConfig,
    /// Retry, backoff and pause settings.
    pub upload: UploadConfig,
    /// Clock record settings.
    pub timebase: TimebaseConfig,
    /// How often the sensors are read (default 5 s).
    pub sample_period: Duration,
    /// How long the upload loop waits when the spool is empty or the clock not yet
    /// valid (default 5 s).
    pub idle_poll: Duration,
    /// How long the upload loop waits after a connection could not be made (default 5 s).
    pub reconnect_delay: Duration,
    /// Rows kept in memory while the spool refuses them (default 1024); beyond that the
    /// oldest are dropped and counted.
    pub max_waiting_rows: usize,
    /// Seed of the backoff jitter (default: from the device id).
    pub seed: u64,
}

impl DeviceConfig {
    /// Defaults for an ESP32-S3 with an 8 MB spool partition: a 6 MiB spool that
    /// refuses new files when full, default batching and encoding.
    pub fn new(device_id: DeviceId, keys: KeyTemplate) -> Self {
        let digest = Sha256::digest(device_id.as_str().as_bytes());
        let seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        Self {
            device_id,
            keys,
            batch: BatchConfig::default(),
            encode: EncodeOptions::default(),
            spool: SpoolConfig {
                max_bytes: 6 << 20,
                max_files: 2048,
                when_full: WhenFull::RefuseNew,
            },
            upload: UploadConfig::default(),
            timebase: TimebaseConfig::default(),
            sample_period: Duration::from_secs(5),
            idle_poll: Duration::from_secs(5),
            reconnect_delay: Duration::from_secs(5),
            max_waiting_rows: 1024,
            seed,
        }
    }
}

/// The device could not start.
#[derive(Debug)]
pub enum DeviceError {
    /// The spool or the batcher could not be set up.
    Pipeline(PipelineError),
    /// The held-rows directory could not be set up.
    Holding(HoldingError),
    /// Bad batch configuration.
    Batch(BatchError),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pipeline(e) => e.fmt(f),
            Self::Holding(e) => e.fmt(f),
            Self::Batch(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DeviceError {}

/// The sampling loop and the upload loop of one device.
pub type Loops<S, T, U> = (Sampler<S, T>, UploadLoop<S, U>);

/// Opens the spool (resuming it), the held rows and the clock record, re-stamps rows
/// held by earlier boots, and returns the two loops.
pub fn open<S, T, U>(
    storage: S,
    time_store: T,
    sensors: Sensors,
    urls: U,
    config: &DeviceConfig,
) -> Result<Loops<S, T, U>, DeviceError>
where
    S: Storage + Clone,
    T: TimeStore,
    U: UrlSource,
{
    let schema = sensors.schema().clone();
    let pipeline = Pipeline::open(
        storage.clone(),
        PipelineConfig::new(
            config.device_id.clone(),
            schema.clone(),
            config.keys.clone(),
        )
        .with_batch(config.batch.clone())
        .with_encode(config.encode)
        .with_spool(config.spool)
        .with_upload(config.upload.clone())
        .with_seed(config.seed),
        urls,
    )
    .map_err(DeviceError::Pipeline)?;
    let (recorder, sender) = pipeline.split();
    let holding = Holding::open(
        storage,
        schema.clone(),
        config.encode,
        config.device_id.clone(),
    )
    .map_err(DeviceError::Holding)?;
    let held = Batcher::new(schema.clone(), config.batch.clone()).map_err(DeviceError::Batch)?;
    let timebase = Timebase::start(time_store, config.timebase);
    let earlier = holding.files().map_err(DeviceError::Holding)?;
    let clock_valid = timebase.sync_flag();
    log::info!(
        "boot {}: sampling every {:?}; {} held file(s) of earlier boots to re-stamp",
        timebase.boot(),
        config.sample_period,
        earlier.len()
    );
    let mut sampler = Sampler {
        sensors,
        recorder,
        timebase,
        held,
        holding,
        schema,
        batch: config.batch.clone(),
        signal: SyncSignal::default(),
        period: config.sample_period,
        waiting: VecDeque::new(),
        max_waiting: config.max_waiting_rows.max(1),
        row: Vec::new(),
        earlier,
        mine: Vec::new(),
        stats: SamplerStats::default(),
    };
    sampler.restamp_earlier();
    let uploads = UploadLoop {
        sender,
        clock_valid,
        idle_poll: config.idle_poll,
        reconnect_delay: config.reconnect_delay,
        said_waiting: false,
    };
    Ok((sampler, uploads))
}

/// Sampling-side counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SamplerStats {
    /// Rows read from the sensors (or given to [`Sampler::record`]).
    pub rows_sampled: u64,
    /// Rows accepted with a wall-clock time.
    pub rows_recorded: u64,
    /// Rows accepted with a time since boot (before the clock was valid).
    pub rows_held: u64,
    /// Held rows re-stamped exactly and spooled.
    pub rows_restamped: u64,
    /// Held rows of boots that never synced, stamped as estimates and spooled.
    pub rows_estimated: u64,
    /// Rows refused as invalid.
    pub rows_rejected: u64,
    /// Rows dropped because more than `max_waiting_rows` waited for the spool.
    pub rows_dropped: u64,
}

/// What became of a waiting row.
enum Accept {
    Recorded,
    Held,
    Wait,
    Rejected(BatchError),
}

/// The sampling loop; see the [module docs](self).
#[derive(Debug)]
pub struct Sampler<S: Storage, T> {
    sensors: Sensors,
    recorder: Recorder<S>,
    timebase: Timebase<T>,
    held: Batcher,
    holding: Holding<S>,
    schema: Arc<Schema>,
    batch: BatchConfig,
    signal: SyncSignal,
    period: Duration,
    /// Rows not yet accepted (uptime µs, values), oldest first.
    waiting: VecDeque<(i64, Vec<Value>)>,
    max_waiting: usize,
    row: Vec<Value>,
    /// Held files of earlier boots not yet re-stamped.
    earlier: Vec<HeldFile>,
    /// Held files written by this boot, not yet re-stamped.
    mine: Vec<HeldFile>,
    stats: SamplerStats,
}

impl<S: Storage, T: TimeStore> Sampler<S, T> {
    /// Where the SNTP callback reports syncs (wall µs, uptime µs).
    pub fn sync_signal(&self) -> SyncSignal {
        self.signal.clone()
    }

    /// Whether the clock is valid; the [`UploadLoop`] checks the same flag.
    pub fn sync_flag(&self) -> SyncFlag {
        self.timebase.sync_flag()
    }

    /// This boot's clock state.
    pub fn timebase(&self) -> &Timebase<T> {
        &self.timebase
    }

    /// The recorder (counters, spool).
    pub fn recorder(&self) -> &Recorder<S> {
        &self.recorder
    }

    /// Counters.
    pub fn stats(&self) -> &SamplerStats {
        &self.stats
    }

    /// Reads the sensors and records the row, taken at `uptime_us`.
    pub fn sample(&mut self, uptime_us: i64) {
        let mut row = std::mem::take(&mut self.row);
        self.sensors.read_row(&mut row);
        self.record(uptime_us, &row);
        self.row = row;
    }

    /// Records a row taken at `uptime_us` (µs since boot): with its wall-clock time
    /// once the clock is valid, else held with its time since boot. A row the spool
    /// cannot take yet waits in memory (up to `max_waiting_rows`).
    pub fn record(&mut self, uptime_us: i64, values: &[Value]) {
        self.stats.rows_sampled += 1;
        if self.waiting.len() >= self.max_waiting {
            self.waiting.pop_front();
            self.stats.rows_dropped += 1;
            if self.stats.rows_dropped == 1 || self.stats.rows_dropped.is_power_of_two() {
                log::error!(
                    "{} row(s) dropped so far: the spool has not taken rows for {} periods",
                    self.stats.rows_dropped,
                    self.max_waiting
                );
            }
        }
        self.waiting.push_back((uptime_us, values.to_vec()));
        self.drain_waiting();
    }

    /// Hands waiting rows to the recorder or the held batcher, oldest first.
    fn drain_waiting(&mut self) {
        while let Some((uptime, values)) = self.waiting.front() {
            let (uptime, outcome) = match self.timebase.stamp(*uptime) {
                Stamp::Wall(ts) => (
                    *uptime,
                    match self.recorder.push(ts, values) {
                        Ok(()) => Accept::Recorded,
                        Err(RecordError::Backpressure { .. }) => Accept::Wait,
                        Err(RecordError::Rejected(e)) => Accept::Rejected(e),
                    },
                ),
                Stamp::Boot(us) => {
                    let values = values.clone();
                    let mut result = self.held.push(us, &values);
                    if matches!(result, Err(BatchError::Backpressure { .. })) {
                        self.hold_closed();
                        result = self.held.push(us, &values);
                    }
                    (
                        us,
                        match result {
                            Ok(()) => Accept::Held,
                            Err(BatchError::Backpressure { .. }) => Accept::Wait,
                            Err(e) => Accept::Rejected(e),
                        },
                    )
                }
            };
            match outcome {
                Accept::Recorded => self.stats.rows_recorded += 1,
                Accept::Held => self.stats.rows_held += 1,
                Accept::Wait => break,
                Accept::Rejected(e) => {
                    self.stats.rows_rejected += 1;
                    log::warn!("row taken at uptime {uptime} us rejected: {e}");
                }
            }
            self.waiting.pop_front();
        }
        self.hold_closed();
    }

    /// Writes closed held batches to `held/`.
    fn hold_closed(&mut self) {
        while let Some(batch) = self.held.peek_ready() {
            match self
                .holding
                .hold(batch, self.timebase.boot(), self.timebase.anchor_us())
            {
                Ok(file) => {
                    self.held.pop_ready();
                    self.mine.push(file);
                }
                Err(e) => {
                    log::warn!("rows wait in memory: {e}");
                    break;
                }
            }
        }
    }

    /// Periodic work at `uptime_us`: takes a reported sync, saves the clock floor,
    /// closes due batches, re-stamps what can be.
    pub fn poll(&mut self, uptime_us: i64) {
        if let Some((wall_us, at_uptime_us)) = self.signal.take() {
            self.synced(wall_us, at_uptime_us);
        }
        self.timebase.tick(uptime_us);
        self.held.poll(uptime_us);
        self.drain_waiting();
        if let Stamp::Wall(now) = self.timebase.stamp(uptime_us) {
            self.recorder.poll(now);
        }
        if !self.earlier.is_empty() {
            self.restamp_earlier();
        }
        if !self.mine.is_empty() && self.timebase.is_synced() {
            self.restamp_mine();
        }
    }

    /// The clock became valid (or was corrected): at uptime `uptime_us` it was `wall_us`.
    pub fn synced(&mut self, wall_us: i64, uptime_us: i64) {
        let first = !self.timebase.is_synced();
        self.timebase.synced(wall_us, uptime_us);
        if first {
            self.held.flush();
            self.hold_closed();
            self.drain_waiting();
            self.restamp_mine();
        }
    }

    fn restamp_mine(&mut self) {
        let Some(mapping) = self.timebase.this_boot() else {
            return;
        };
        let files = std::mem::take(&mut self.mine);
        self.mine = self.restamp(files, |_| mapping);
    }

    fn restamp_earlier(&mut self) {
        let files = std::mem::take(&mut self.earlier);
        let timebase = &self.timebase;
        let mappings: Vec<Mapping> = files
            .iter()
            .map(|f| timebase.earlier_boot(f.boot, f.anchor_us))
            .collect();
        let mut index = 0;
        self.earlier = self.restamp(files, |_| {
            index += 1;
            mappings[index - 1]
        });
    }

    /// Re-stamps held files in order and spools their rows; returns the files left
    /// (the spool refused, or storage failed): they are tried again later.
    fn restamp(
        &mut self,
        files: Vec<HeldFile>,
        mut mapping_of: impl FnMut(&HeldFile) -> Mapping,
    ) -> Vec<HeldFile> {
        let mut left = Vec::new();
        let mut files = files.into_iter();
        for file in files.by_ref() {
            let mapping = mapping_of(&file);
            match self.restamp_file(&file, mapping) {
                Ok(rows) => {
                    if mapping.estimated {
                        self.stats.rows_estimated += rows;
                    } else {
                        self.stats.rows_restamped += rows;
                    }
                    log::info!(
                        "held/{}: {rows} row(s) of boot {} stamped {} and spooled",
                        file.name,
                        file.boot,
                        if mapping.estimated {
                            "as an estimate (time_estimated)"
                        } else {
                            "exactly"
                        }
                    );
                }
                Err(e) => {
                    log::warn!("held/{}: not re-stamped yet: {e}", file.name);
                    left.push(file);
                    break;
                }
            }
        }
        left.extend(files);
        left
    }

    /// Re-stamps one held file and spools its rows; the file is removed only after all
    /// of them are in the spool. Returns the number of rows.
    fn restamp_file(&mut self, file: &HeldFile, mapping: Mapping) -> Result<u64, String> {
        let batch = match self.holding.read(file) {
            Ok(batch) => batch,
            Err(e @ HoldingError::Corrupt { .. }) => {
                log::error!("{e}; moving it aside");
                self.holding.set_aside(file).map_err(|e| e.to_string())?;
                return Ok(0);
            }
            Err(e) => return Err(e.to_string()),
        };
        let batches = restamp_batch(&batch, &self.schema, &self.batch, mapping)?;
        let mut rows = 0;
        for batch in &batches {
            self.recorder
                .spool_batch(batch, None)
                .map_err(|e| e.to_string())?;
            rows += batch.len() as u64;
        }
        self.holding.remove(file).map_err(|e| e.to_string())?;
        Ok(rows)
    }

    /// Closes every open batch and spools or holds it (before a planned stop).
    pub fn flush(&mut self) {
        self.drain_waiting();
        self.held.flush();
        self.hold_closed();
        if let Err(e) = self.recorder.flush() {
            log::warn!("flush: {e}");
        }
    }

    /// Samples every period until `stop` is set, then flushes. `uptime_us` is the
    /// time since boot (esp_timer on the device); `feed` is called at least once a
    /// second.
    pub fn run(&mut self, uptime_us: impl Fn() -> i64, stop: &AtomicBool, feed: &mut dyn FnMut()) {
        let period = self.period.as_micros().max(1) as i64;
        let mut next = uptime_us();
        while !stop.load(Ordering::SeqCst) {
            let now = uptime_us();
            if now >= next {
                self.sample(now);
                next += period;
                if next <= now {
                    // Fell behind (a slow flash write): skip the missed periods.
                    next = now + period;
                }
            }
            self.poll(uptime_us());
            feed();
            let until_next = Duration::from_micros((next - uptime_us()).max(0) as u64);
            std::thread::sleep(until_next.min(FEED_EVERY));
        }
        self.flush();
    }
}

/// `batch` (timestamps since boot) with wall-clock timestamps per `mapping`, cut into
/// batches as the batcher would cut them (hour boundaries, `max_rows`, windows), each
/// marked `time_estimated` if the mapping is an estimate.
pub fn restamp_batch(
    batch: &Batch,
    schema: &Arc<Schema>,
    config: &BatchConfig,
    mapping: Mapping,
) -> Result<Vec<Batch>, String> {
    let config = BatchConfig {
        max_age: None,
        max_pending: usize::MAX,
        ..config.clone()
    };
    let mut batcher = Batcher::new(schema.clone(), config).map_err(|e| e.to_string())?;
    let mut error = None;
    batch.for_each_row(|uptime, values| {
        if error.is_none()
            && let Err(e) = batcher.push(mapping.wall_us(uptime), values)
        {
            error = Some(format!("row at uptime {uptime} us: {e}"));
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    batcher.flush();
    let mut out = Vec::new();
    while let Some(mut batch) = batcher.pop_ready() {
        batch.set_time_estimated(mapping.estimated);
        out.push(batch);
    }
    Ok(out)
}

/// What one [`UploadLoop::step`] did and how long to wait before the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopStep {
    /// The uploader's event; `None` if nothing was attempted (clock not valid, no
    /// connection).
    pub event: Option<Event>,
    /// How long to wait.
    pub wait: Duration,
}

/// The upload loop; see the [module docs](self).
#[derive(Debug)]
pub struct UploadLoop<S, U> {
    sender: Sender<S, U>,
    clock_valid: SyncFlag,
    idle_poll: Duration,
    reconnect_delay: Duration,
    said_waiting: bool,
}

impl<S: Storage, U: UrlSource> UploadLoop<S, U> {
    /// The upload side (counters, spool, URL source).
    pub fn sender(&self) -> &Sender<S, U> {
        &self.sender
    }

    /// One iteration: nothing before the clock is valid; else a connection (made with
    /// `connect` if there is none) and one uploader step. The connection is dropped
    /// after a transport failure or if it was left mid-request, so the next step starts
    /// a fresh one.
    pub fn step<C: Connection, E: fmt::Display>(
        &mut self,
        conn: &mut Option<C>,
        connect: &mut impl FnMut() -> Result<C, E>,
        clock: &impl Clock,
    ) -> LoopStep {
        if !self.clock_valid.is_set() {
            if !self.said_waiting {
                log::info!("uploads wait for a valid clock (SNTP): nothing is signed before");
                self.said_waiting = true;
            }
            return LoopStep {
                event: None,
                wait: self.idle_poll,
            };
        }
        let c = match conn {
            Some(c) => c,
            None => match connect() {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    log::warn!("no HTTP connection: {e}");
                    return LoopStep {
                        event: None,
                        wait: self.reconnect_delay,
                    };
                }
            },
        };
        let step = self.sender.step(c, clock);
        match &step.event {
            Event::Uploaded { key, bytes, rows } => {
                log::info!("uploaded {key} ({rows} rows, {bytes} bytes)")
            }
            Event::AlreadyStored { key, rows } => {
                log::info!("{key} was already stored ({rows} rows; an earlier answer was lost)")
            }
            Event::Retry { reason, delay } => log::warn!("upload retried in {delay:?}: {reason}"),
            Event::Resigned {
                reason,
                offset_secs,
            } => log::info!("clock offset now {offset_secs} s ({reason}); signing again"),
            Event::Paused { reason, delay } => log::warn!("uploads paused for {delay:?}: {reason}"),
            Event::Quarantined { file, reason } => log::error!("{file} quarantined: {reason}"),
            Event::Vanished { .. } | Event::Waiting | Event::Idle => {}
        }
        if matches!(step.event, Event::Retry { .. }) || c.is_request_initiated() {
            *conn = None;
        }
        let wait = match step.next {
            Next::Now => Duration::ZERO,
            Next::WaitUntil(t) => t.saturating_duration_since(clock.monotonic()),
            Next::Idle => self.idle_poll,
        };
        LoopStep {
            event: Some(step.event),
            wait,
        }
    }

    /// Steps until `stop` is set, sleeping as each step says; `feed` is called at least
    /// once a second.
    pub fn run<C: Connection, E: fmt::Display>(
        &mut self,
        mut connect: impl FnMut() -> Result<C, E>,
        clock: &impl Clock,
        stop: &AtomicBool,
        feed: &mut dyn FnMut(),
    ) {
        let mut conn = None;
        while !stop.load(Ordering::SeqCst) {
            let step = self.step(&mut conn, &mut connect, clock);
            feed();
            let mut left = step.wait;
            while !left.is_zero() && !stop.load(Ordering::SeqCst) {
                let nap = left.min(FEED_EVERY);
                std::thread::sleep(nap);
                left -= nap;
                feed();
            }
        }
    }
}
