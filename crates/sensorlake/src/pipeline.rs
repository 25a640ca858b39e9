//! The whole device flow behind one configuration, for the firmware and the host agent
//! alike: a [`Recorder`] (sampling side: row → batcher → encoder → spool, optional row
//! journal) and a [`Sender`] (upload side: one upload step at a time through a given
//! HTTP connection). They share the spool behind a mutex, so they can run in two tasks
//! (the network never blocks sampling) or be called in turn from one loop.
//!
//! ```no_run
//! # use sensorlake::pipeline::*;
//! # fn demo<U: sensorlake::url_source::UrlSource, C: embedded_svc::http::client::Connection>(
//! #     config: PipelineConfig, urls: U, conn: &mut C) -> Result<(), PipelineError> {
//! use sensorlake::clock::SystemClock;
//! use sensorlake::storage::StdStorage;
//! use sensorlake::uploader::Next;
//!
//! let pipeline = Pipeline::open(StdStorage::new("/spool"), config, urls)?;
//! let (mut recorder, mut sender) = pipeline.split();
//! // sampling task: a refused row (backpressure) is kept and pushed again later
//! let _ = recorder.push(1_709_280_000_000_000, &[21.5.into()]);
//! // upload task
//! match sender.step(conn, &SystemClock).next {
//!     Next::Now => { /* step again */ }
//!     Next::WaitUntil(_t) => { /* sleep until t */ }
//!     Next::Idle => { /* wait for new files */ }
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use embedded_svc::http::client::Connection;

use crate::batch::{Batch, BatchConfig, BatchError, Batcher, Value};
use crate::clock::Clock;
use crate::encode::{EncodeError, EncodeOptions, Encoder, FileMetadata};
use crate::failpoint;
use crate::journal::{Journal, JournalConfig, JournalError, JournalRow};
use crate::key::{DeviceId, KeyTemplate};
use crate::schema::Schema;
use crate::spool::{Spool, SpoolConfig, SpoolEntry, SpoolError, SpoolStats};
use crate::storage::Storage;
use crate::uploader::{Step, UploadConfig, Uploader};
use crate::url_source::UrlSource;

/// How long automatic spooling waits after a failed attempt (explicit calls do not).
const SPOOL_RETRY: Duration = Duration::from_millis(200);

/// Everything the pipeline needs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The device id written into files and keys.
    pub device_id: DeviceId,
    /// The rows' schema.
    pub schema: Arc<Schema>,
    /// When batches close.
    pub batch: BatchConfig,
    /// Codec, encodings, statistics.
    pub encode: EncodeOptions,
    /// Key layout and prefix.
    pub keys: KeyTemplate,
    /// Spool capacity and policy.
    pub spool: SpoolConfig,
    /// The row journal, if wanted.
    pub journal: Option<JournalConfig>,
    /// Retry, backoff and verification settings.
    pub upload: UploadConfig,
    /// Seed of the backoff jitter (use something device-specific).
    pub seed: u64,
}

impl PipelineConfig {
    /// A config for `device_id`'s rows of `schema` under `keys`: batched as the key
    /// layout batches by default, with the library's default encoding, spool and upload
    /// settings, no journal and jitter seed 0; the `with_*` methods change one part.
    pub fn new(device_id: DeviceId, schema: Arc<Schema>, keys: KeyTemplate) -> Self {
        Self {
            device_id,
            schema,
            batch: keys.layout().batch_defaults(),
            encode: EncodeOptions::DEFAULT,
            keys,
            spool: SpoolConfig::default(),
            journal: None,
            upload: UploadConfig::default(),
            seed: 0,
        }
    }

    /// When batches close.
    pub fn with_batch(self, batch: BatchConfig) -> Self {
        Self { batch, ..self }
    }

    /// Codec, encodings, statistics.
    pub fn with_encode(self, encode: EncodeOptions) -> Self {
        Self { encode, ..self }
    }

    /// Spool capacity and policy.
    pub fn with_spool(self, spool: SpoolConfig) -> Self {
        Self { spool, ..self }
    }

    /// The row journal (`None`: no journal).
    pub fn with_journal(self, journal: Option<JournalConfig>) -> Self {
        Self { journal, ..self }
    }

    /// Retry, backoff and verification settings.
    pub fn with_upload(self, upload: UploadConfig) -> Self {
        Self { upload, ..self }
    }

    /// Seed of the backoff jitter (use something device-specific).
    pub fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }
}

/// The pipeline could not start.
#[derive(Debug)]
pub enum PipelineError {
    /// The spool cannot be opened.
    Spool(SpoolError),
    /// The journal cannot be opened.
    Journal(JournalError),
    /// Bad encoding options.
    Encode(EncodeError),
    /// Bad batch configuration.
    Batch(BatchError),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spool(e) => e.fmt(f),
            Self::Journal(e) => e.fmt(f),
            Self::Encode(e) => e.fmt(f),
            Self::Batch(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PipelineError {}

/// A row was not accepted.
#[derive(Debug)]
pub enum RecordError {
    /// The row is invalid (bad value, wrong arity, bad timestamp); it is dropped.
    Rejected(BatchError),
    /// Closed batches cannot be spooled (spool full, storage full): keep the row and
    /// push it again later.
    Backpressure {
        /// Why batches wait.
        reason: String,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(e) => write!(f, "row rejected: {e}"),
            Self::Backpressure { reason } => write!(f, "row not accepted yet: {reason}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Sampling-side counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Rows accepted (not counting journal replay).
    pub rows_in: u64,
    /// Rows rejected as invalid.
    pub rows_rejected: u64,
    /// Rows replayed from the journal at start.
    pub rows_replayed: u64,
    /// Batches spooled.
    pub files_spooled: u64,
    /// Rows in those batches.
    pub rows_spooled: u64,
    /// Bytes of those files.
    pub bytes_spooled: u64,
    /// Why closed batches wait, if they do (spool full, storage full).
    pub spool_error: Option<String>,
    /// Journal writes that failed (the rows stayed accepted in memory).
    pub journal_errors: u64,
    /// Rows in the open batch.
    pub open_rows: usize,
    /// Closed batches waiting for the spool.
    pub pending_batches: usize,
}

/// The spool shared by the [`Recorder`] and the [`Sender`].
pub type SharedSpool<S> = Arc<Mutex<Spool<S>>>;

fn lock<S>(spool: &Mutex<Spool<S>>) -> MutexGuard<'_, Spool<S>> {
    spool.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sampling side: rows in, durable spooled files out.
#[derive(Debug)]
pub struct Recorder<S: Storage> {
    spool: SharedSpool<S>,
    device: DeviceId,
    keys: KeyTemplate,
    batcher: Batcher,
    encoder: Encoder,
    journal: Option<Journal<S>>,
    /// Source position of each closed batch waiting in the batcher, oldest first.
    pending_positions: VecDeque<Option<u64>>,
    /// Source position of the open batch's last row.
    open_position: Option<u64>,
    /// The encoded bytes of the oldest waiting batch, kept across failed attempts.
    encoded_front: Option<Vec<u8>>,
    replay: VecDeque<JournalRow>,
    next_auto_position: Option<u64>,
    resume_position: Option<u64>,
    retry_after: Option<Instant>,
    stats: RecorderStats,
}

/// The upload side: one upload attempt per [`Sender::step`].
#[derive(Debug)]
pub struct Sender<S, U> {
    spool: SharedSpool<S>,
    uploader: Uploader<U>,
}

/// A recorder and a sender over one spool.
#[derive(Debug)]
pub struct Pipeline<S: Storage, U> {
    recorder: Recorder<S>,
    sender: Sender<S, U>,
}

impl<S: Storage + Clone, U: UrlSource> Pipeline<S, U> {
    /// Opens the spool (resuming it), replays the journal, and sets up both sides.
    pub fn open(storage: S, config: PipelineConfig, urls: U) -> Result<Self, PipelineError> {
        let spool = Spool::open(storage.clone(), config.spool).map_err(PipelineError::Spool)?;
        let spool = Arc::new(Mutex::new(spool));
        let recorder = Recorder::open(storage, &config, spool.clone())?;
        let sender = Sender {
            spool,
            uploader: Uploader::new(urls, config.upload.clone(), config.seed),
        };
        Ok(Self { recorder, sender })
    }

    /// The sampling side.
    pub fn recorder(&mut self) -> &mut Recorder<S> {
        &mut self.recorder
    }

    /// The upload side.
    pub fn sender(&mut self) -> &mut Sender<S, U> {
        &mut self.sender
    }

    /// Both sides, to run in separate tasks.
    pub fn split(self) -> (Recorder<S>, Sender<S, U>) {
        (self.recorder, self.sender)
    }
}

impl<S: Storage, U: UrlSource> Sender<S, U> {
    /// One upload attempt of the oldest spooled file; see [`Uploader::step`].
    pub fn step<C: Connection>(&mut self, conn: &mut C, clock: &impl Clock) -> Step {
        self.uploader.step(&self.spool, conn, clock)
    }

    /// The state machine (pause reason, counters, clock offset).
    pub fn uploader(&self) -> &Uploader<U> {
        &self.uploader
    }

    /// The state machine, mutably (e.g. to replace the URL source).
    pub fn uploader_mut(&mut self) -> &mut Uploader<U> {
        &mut self.uploader
    }

    /// The shared spool.
    pub fn spool(&self) -> &SharedSpool<S> {
        &self.spool
    }

    /// Spool counters and sizes.
    pub fn spool_stats(&self) -> SpoolStats {
        lock(&self.spool).stats()
    }
}

impl<S: Storage + Clone> Recorder<S> {
    /// A recorder over an open spool; replays the journal if `config.journal` is set.
    pub fn open(
        storage: S,
        config: &PipelineConfig,
        spool: SharedSpool<S>,
    ) -> Result<Self, PipelineError> {
        let batcher = Batcher::new(config.schema.clone(), config.batch.clone())
            .map_err(PipelineError::Batch)?;
        let encoder =
            Encoder::new(config.schema.clone(), config.encode).map_err(PipelineError::Encode)?;
        let spooled = lock(&spool).position();
        let mut recorder = Self {
            spool,
            device: config.device_id.clone(),
            keys: config.keys.clone(),
            batcher,
            encoder,
            journal: None,
            pending_positions: VecDeque::new(),
            open_position: None,
            encoded_front: None,
            replay: VecDeque::new(),
            next_auto_position: None,
            resume_position: spooled,
            retry_after: None,
            stats: RecorderStats::default(),
        };
        if let Some(journal_config) = config.journal {
            let (mut journal, rows) = Journal::open(storage, journal_config, &config.schema)
                .map_err(PipelineError::Journal)?;
            let last = rows.iter().map(|r| r.position).max();
            recorder.replay = rows
                .into_iter()
                .filter(|r| spooled.is_none_or(|s| r.position > s))
                .collect();
            if let Some(spooled) = spooled {
                journal
                    .release_through(spooled)
                    .map_err(|e| PipelineError::Journal(JournalError::Io(e)))?;
            }
            recorder.journal = Some(journal);
            let high = spooled.max(last);
            recorder.resume_position = high;
            recorder.next_auto_position = Some(high.map_or(1, |p| p + 1));
            let replaying = recorder.replay.len();
            recorder.drain_replay();
            if replaying > 0 {
                log::info!(
                    "journal: replayed {} of {replaying} rows not yet spooled",
                    replaying - recorder.replay.len()
                );
            }
        }
        Ok(recorder)
    }
}

impl<S: Storage> Recorder<S> {
    /// Where a re-readable source resumes: the position after the last row this
    /// recorder holds (spooled, or replayed from the journal) at open.
    pub fn resume_position(&self) -> Option<u64> {
        self.resume_position
    }

    /// Counters.
    pub fn stats(&self) -> RecorderStats {
        RecorderStats {
            open_rows: self.batcher.open_rows(),
            pending_batches: self.batcher.pending(),
            ..self.stats.clone()
        }
    }

    /// The shared spool.
    pub fn spool(&self) -> &SharedSpool<S> {
        &self.spool
    }

    /// Whether every accepted row is in the spool.
    pub fn is_flushed(&self) -> bool {
        self.batcher.open_rows() == 0 && self.batcher.pending() == 0 && self.replay.is_empty()
    }

    /// Accepts one row (from a source without positions). With the journal on, the row
    /// is journaled under the next row number.
    pub fn push(&mut self, ts_us: i64, values: &[Value]) -> Result<(), RecordError> {
        let position = self.next_auto_position;
        self.push_inner(ts_us, values, position)?;
        if let Some(p) = &mut self.next_auto_position {
            *p += 1;
        }
        Ok(())
    }

    /// Accepts one row whose source position (after the row; strictly increasing) is
    /// `position`: the source resumes there after a restart (see [`crate::spool`]).
    pub fn push_at(
        &mut self,
        ts_us: i64,
        values: &[Value],
        position: u64,
    ) -> Result<(), RecordError> {
        self.push_inner(ts_us, values, Some(position))
    }

    fn push_inner(
        &mut self,
        ts_us: i64,
        values: &[Value],
        position: Option<u64>,
    ) -> Result<(), RecordError> {
        if !self.drain_replay() {
            return Err(self.backpressure());
        }
        self.spool_pending_auto();
        self.accept(ts_us, values, position, true)?;
        self.stats.rows_in += 1;
        self.spool_pending_auto();
        Ok(())
    }

    fn backpressure(&self) -> RecordError {
        RecordError::Backpressure {
            reason: self
                .stats
                .spool_error
                .clone()
                .unwrap_or_else(|| "closed batches are waiting for the spool".to_string()),
        }
    }

    /// Feeds journal rows into the batcher; false while some wait for room.
    fn drain_replay(&mut self) -> bool {
        while let Some(row) = self.replay.front().cloned() {
            match self.accept(row.ts_us, &row.values, Some(row.position), false) {
                Ok(()) => {
                    self.replay.pop_front();
                    self.stats.rows_replayed += 1;
                }
                Err(RecordError::Backpressure { .. }) => {
                    let before = self.batcher.pending();
                    self.spool_pending_auto();
                    if self.batcher.pending() >= before {
                        return false;
                    }
                }
                Err(RecordError::Rejected(e)) => {
                    self.replay.pop_front();
                    log::error!(
                        "journal: row at position {} not replayed: {e}",
                        row.position
                    );
                }
            }
        }
        true
    }

    /// Adds a checked row to the batcher and the journal, tracking positions.
    fn accept(
        &mut self,
        ts_us: i64,
        values: &[Value],
        position: Option<u64>,
        journal: bool,
    ) -> Result<(), RecordError> {
        let before_pending = self.batcher.pending();
        let before_open = self.batcher.open_rows();
        match self.batcher.push(ts_us, values) {
            Ok(()) => {}
            Err(BatchError::Backpressure { .. }) => return Err(self.backpressure()),
            Err(e) => {
                self.stats.rows_rejected += 1;
                return Err(RecordError::Rejected(e));
            }
        }
        let closed = self.batcher.pending() - before_pending;
        let open_now = self.batcher.open_rows();
        // A batch closed before the row (a cut) carries the previous row's position;
        // one closed with the row (full) carries this row's.
        let starts_batch = open_now == 1 || (open_now == 0 && (closed == 2 || before_open == 0));
        match (closed, open_now) {
            (0, _) => {}
            (1, 0) => self.pending_positions.push_back(position),
            (1, _) => self.pending_positions.push_back(self.open_position),
            _ => {
                self.pending_positions.push_back(self.open_position);
                self.pending_positions.push_back(position);
            }
        }
        self.open_position = if open_now > 0 { position } else { None };
        if journal
            && let (Some(j), Some(p)) = (&mut self.journal, position)
            && let Err(e) = j.append(p, ts_us, values, starts_batch)
        {
            self.stats.journal_errors += 1;
            log::warn!("journal: cannot append a row (it stays accepted in memory): {e}");
        }
        Ok(())
    }

    /// Closes the open batch if `now_us` (wall clock, µs) reached its window end or
    /// `max_age`, and spools waiting batches. Call it periodically for live sources.
    pub fn poll(&mut self, now_us: i64) {
        self.drain_replay();
        let before = self.batcher.pending();
        self.batcher.poll(now_us);
        self.track_closed(before);
        self.spool_pending_auto();
    }

    fn track_closed(&mut self, before: usize) {
        for _ in before..self.batcher.pending() {
            self.pending_positions.push_back(self.open_position.take());
        }
    }

    /// Closes the open batch and spools every waiting batch (shutdown). On error the
    /// rows stay in memory (and the journal, if on).
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        loop {
            // Journal rows still waiting to be replayed go first.
            let replayed = self.drain_replay();
            let before = self.batcher.pending();
            self.batcher.flush();
            self.track_closed(before);
            if let Some(journal) = &mut self.journal
                && let Err(e) = journal.sync()
            {
                self.stats.journal_errors += 1;
                log::warn!("journal: cannot sync: {e}");
            }
            self.spool_pending()?;
            if replayed {
                return Ok(());
            }
        }
    }

    fn spool_pending_auto(&mut self) {
        if self.batcher.pending() == 0 || self.retry_after.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let _ = self.spool_pending();
    }

    /// Encodes and spools every closed batch, oldest first; stops at the first that the
    /// spool refuses (it stays, with later ones, for the next attempt).
    pub fn spool_pending(&mut self) -> Result<usize, SpoolError> {
        let mut spooled = 0;
        while let Some(batch) = self.batcher.peek_ready() {
            let position = self.pending_positions.front().copied().flatten();
            let rows = batch.len() as u64;
            let bytes = match self.encoded_front.take() {
                Some(bytes) => bytes,
                None => match encode(&mut self.encoder, &self.keys, &self.device, batch) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        let reason = format!("cannot encode a batch: {e}");
                        log::error!("{reason}");
                        self.stats.spool_error = Some(reason.clone());
                        self.retry_after = Some(Instant::now() + SPOOL_RETRY);
                        return Err(SpoolError::Io(std::io::Error::other(reason)));
                    }
                },
            };
            let pushed = lock(&self.spool).push(&bytes, position);
            match pushed {
                Ok(_) => {
                    self.batcher.pop_ready();
                    self.pending_positions.pop_front();
                    self.stats.files_spooled += 1;
                    self.stats.rows_spooled += rows;
                    self.stats.bytes_spooled += bytes.len() as u64;
                    self.stats.spool_error = None;
                    self.retry_after = None;
                    spooled += 1;
                    if let (Some(journal), Some(p)) = (&mut self.journal, position)
                        && let Err(e) = journal.release_through(p)
                    {
                        self.stats.journal_errors += 1;
                        log::warn!("journal: cannot remove spooled segments: {e}");
                    }
                }
                Err(e) => {
                    if self.stats.spool_error.is_none() {
                        log::warn!("batches wait in memory: {e}");
                    }
                    self.stats.spool_error = Some(e.to_string());
                    self.encoded_front = Some(bytes);
                    self.retry_after = Some(Instant::now() + SPOOL_RETRY);
                    return Err(e);
                }
            }
        }
        Ok(spooled)
    }

    /// Encodes and spools a batch built elsewhere (e.g. rows re-stamped once the clock
    /// became valid), bypassing the batcher.
    pub fn spool_batch(
        &mut self,
        batch: &Batch,
        position: Option<u64>,
    ) -> Result<SpoolEntry, SpoolError> {
        let bytes = encode(&mut self.encoder, &self.keys, &self.device, batch)
            .map_err(|e| SpoolError::Io(std::io::Error::other(format!("cannot encode: {e}"))))?;
        let entry = lock(&self.spool).push(&bytes, position)?;
        self.stats.files_spooled += 1;
        self.stats.rows_spooled += batch.len() as u64;
        self.stats.bytes_spooled += bytes.len() as u64;
        Ok(entry)
    }
}

fn encode(
    encoder: &mut Encoder,
    keys: &KeyTemplate,
    device: &DeviceId,
    batch: &Batch,
) -> Result<Vec<u8>, String> {
    let key = keys.render(device, batch).map_err(|e| e.to_string())?;
    let bytes = encoder
        .encode_to_vec(
            batch,
            &FileMetadata {
                device_id: device,
                object_key: &key,
            },
        )
        .map_err(|e| e.to_string())?;
    failpoint::hit(failpoint::AFTER_ENCODE);
    Ok(bytes)
}
