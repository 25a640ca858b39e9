//! `sensorlake run`: the long-running host agent (gateway, Raspberry Pi, laptop), built
//! on the same library pipeline the firmware uses.
//!
//! Three threads: the source thread reads rows and pushes them into the
//! [`Recorder`] (batches → Parquet → spool; held back, never dropped, when the spool is
//! full); the upload thread drives the [`Sender`] through a [`HostConnection`]; the main
//! thread prints a one-line status every interval, rewrites the JSON status file, and
//! on SIGINT/SIGTERM stops both: the open batch is flushed into the spool, the upload in
//! flight finishes, and the agent exits 0.
//!
//! If a worker thread dies (a panic), the agent stops at once: the other thread is
//! stopped (the source flushes its open batch into the spool), the final status is
//! written, and `run` fails naming the thread — never a healthy status line over a dead
//! thread.
//!
//! Test hooks (environment): `SENSORLAKE_FAILPOINT=<phase>:<n>` aborts the process the
//! n-th time it passes `phase` (see [`sensorlake::failpoint::PHASES`]), and
//! `<phase>:<n>:panic` panics the thread passing it instead;
//! `SENSORLAKE_CLOCK_OFFSET_SECS=<s>` shifts the agent's clock by `s` seconds, like a
//! device whose clock is wrong (at most [`MAX_CLOCK_OFFSET_SECS`] either way).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use sensorlake::broker_client::BrokerClient;
use sensorlake::clock::SkewedClock;
use sensorlake::failpoint;
use sensorlake::journal::JournalConfig;
use sensorlake::layout::SchemaPreset;
use sensorlake::pipeline::{
    Pipeline, PipelineConfig, RecordError, Recorder, RecorderStats, Sender,
};
use sensorlake::presign::Signer;
use sensorlake::simulate::Simulator;
use sensorlake::spool::SpoolStats;
use sensorlake::storage::StdStorage;
use sensorlake::uploader::{Event, Next, UploadCounters};
use sensorlake::url_source::AnyUrlSource;

use crate::agent_config::{AgentConfig, CredentialsConfig, SourceConfig};
use crate::fsutil::write_atomically;
use crate::http::HostConnection;
use crate::sources::{self, CsvSource, Pull, SimulateSource, Source, StdinSource};

/// Environment variable of the fail point.
pub const FAILPOINT_ENV: &str = "SENSORLAKE_FAILPOINT";
/// Environment variable of the clock offset (test hook).
pub const CLOCK_OFFSET_ENV: &str = "SENSORLAKE_CLOCK_OFFSET_SECS";
/// The largest clock offset accepted either way: 100 years (a device whose clock
/// starts at 1970 is 56 years behind).
pub const MAX_CLOCK_OFFSET_SECS: i64 = 3_155_760_000;

/// How the agent runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit 0 once a finite source is exhausted, its last batch spooled and the spool
    /// empty.
    pub until_drained: bool,
}

/// What the status line and the JSON status file show.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Device id.
    pub device_id: String,
    /// Source kind.
    pub source: String,
    /// When this status was written (RFC 3339).
    pub updated_at: String,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Source rows skipped because they did not parse.
    pub rows_skipped: u64,
    /// Whether a finite source is exhausted and its last batch spooled.
    pub source_done: bool,
    /// Rows accepted by the recorder.
    pub rows_in: u64,
    /// Rows rejected (bad values).
    pub rows_rejected: u64,
    /// Rows replayed from the journal at start.
    pub rows_replayed: u64,
    /// Rows in the open batch.
    pub open_rows: usize,
    /// Closed batches waiting for the spool.
    pub pending_batches: usize,
    /// Files spooled since start.
    pub files_spooled: u64,
    /// Rows in those files.
    pub rows_spooled: u64,
    /// Files stored (2xx) since start.
    pub files_uploaded: u64,
    /// Rows that left the spool after a confirmed upload (a 2xx or 412 whose stored
    /// bytes are proven the same).
    pub rows_uploaded: u64,
    /// Bytes stored.
    pub bytes_uploaded: u64,
    /// Files found already stored (412, and the object reads back as the file).
    pub already_stored: u64,
    /// Retries after passing failures.
    pub retries: u64,
    /// Clock corrections.
    pub resigns: u64,
    /// Files waiting in the spool.
    pub spool_files: usize,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// Age of the oldest waiting file, seconds.
    pub oldest_unsent_secs: Option<u64>,
    /// Files in quarantine.
    pub quarantined_files: usize,
    /// Files dropped by drop-oldest since start.
    pub dropped_files: u64,
    /// Rows in those files.
    pub dropped_rows: u64,
    /// Why uploads are paused, if they are.
    pub paused_because: Option<String>,
    /// Why batches wait for the spool, if they do.
    pub spool_error: Option<String>,
    /// The last upload failure.
    pub last_error: Option<String>,
    /// Seconds added to the local clock when signing.
    pub clock_offset_secs: i64,
}

impl Status {
    /// The one-line form.
    pub fn line(&self) -> String {
        let oldest = self
            .oldest_unsent_secs
            .map_or("-".to_string(), |s| format!("{s}s"));
        let mut line = format!(
            "rows in {} (read {}, skipped {}), spooled {} files, uploaded {} files/{} rows ({} already there), retries {}, spool {} files {} bytes, oldest unsent {oldest}, quarantined {}",
            self.rows_in,
            self.rows_read,
            self.rows_skipped,
            self.files_spooled,
            self.files_uploaded,
            self.rows_uploaded,
            self.already_stored,
            self.retries,
            self.spool_files,
            self.spool_bytes,
            self.quarantined_files,
        );
        if self.dropped_files > 0 {
            line.push_str(&format!(
                ", DROPPED {} files/{} rows",
                self.dropped_files, self.dropped_rows
            ));
        }
        match &self.paused_because {
            Some(reason) => line.push_str(&format!(", PAUSED because: {reason}")),
            None => line.push_str(", paused: no"),
        }
        if let Some(e) = &self.spool_error {
            line.push_str(&format!(", SPOOL: {e}"));
        }
        line
    }
}

/// What the threads publish for the status.
#[derive(Debug, Default)]
struct Shared {
    recorder: RecorderStats,
    rows_read: u64,
    rows_skipped: u64,
    source_done: bool,
    spool: SpoolStats,
    upload: UploadCounters,
    paused: Option<String>,
    clock_offset: i64,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the `SENSORLAKE_FAILPOINT=<phase>:<n>[:panic]` hook, if set.
pub fn install_failpoint_from_env() -> Result<()> {
    let Ok(spec) = std::env::var(FAILPOINT_ENV) else {
        return Ok(());
    };
    let (spec_point, panics) = match spec.strip_suffix(":panic") {
        Some(point) => (point, true),
        None => (spec.as_str(), false),
    };
    let (phase, n) = spec_point
        .split_once(':')
        .and_then(|(p, n)| Some((p.to_string(), n.parse::<u64>().ok()?)))
        .ok_or_else(|| anyhow!("{FAILPOINT_ENV}={spec:?}: expected <phase>:<n>[:panic]"))?;
    if !failpoint::PHASES.contains(&phase.as_str()) {
        bail!(
            "{FAILPOINT_ENV}: unknown phase {phase:?}; phases: {}",
            failpoint::PHASES.join(", ")
        );
    }
    let passes = AtomicU64::new(0);
    failpoint::set_hook(move |hit| {
        if hit == phase && passes.fetch_add(1, Ordering::SeqCst) + 1 == n {
            if panics {
                panic!("fail point {hit}:{n} reached: panicking");
            }
            eprintln!("fail point {hit}:{n} reached: aborting");
            std::process::abort();
        }
    });
    Ok(())
}

fn clock_from_env() -> Result<SkewedClock> {
    let offset_secs = match std::env::var(CLOCK_OFFSET_ENV) {
        Ok(v) => {
            let secs: i64 = v.trim().parse().map_err(|_| {
                anyhow!("{CLOCK_OFFSET_ENV}={v:?} is not a whole number of seconds")
            })?;
            if secs.unsigned_abs() > MAX_CLOCK_OFFSET_SECS.unsigned_abs() {
                bail!(
                    "{CLOCK_OFFSET_ENV}={v:?} is outside the allowed range -{MAX_CLOCK_OFFSET_SECS} to {MAX_CLOCK_OFFSET_SECS} seconds (100 years)"
                );
            }
            secs
        }
        Err(_) => 0,
    };
    Ok(SkewedClock { offset_secs })
}

/// The text of a thread's panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Holds the spool directory's lock for as long as it lives.
#[derive(Debug)]
pub struct SpoolLock {
    _file: File,
}

/// Takes the exclusive lock of a spool directory (one agent per spool).
pub fn lock_spool(dir: &Path) -> Result<SpoolLock> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create spool dir {}", dir.display()))?;
    let path = dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(SpoolLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "spool dir {} is in use by another sensorlake process (stop it first)",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

fn sleep_while_running(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Sets `stop` on SIGINT or SIGTERM (and logs which).
fn watch_signals(stop: Arc<AtomicBool>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    #[cfg(unix)]
    let (mut term, mut int) = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            #[cfg(unix)]
            let name = runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                }
            });
            #[cfg(not(unix))]
            let name = runtime.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            });
            tracing::info!("{name}: flushing the open batch into the spool and stopping");
            stop.store(true, Ordering::SeqCst);
        })?;
    Ok(())
}

/// The URL source `[credentials]` chose: local signing with keys from the standard
/// chain (environment, then AWS profile), or the presign broker with this device's token.
fn url_source(config: &AgentConfig) -> Result<AnyUrlSource> {
    match &config.credentials {
        CredentialsConfig::Keys { profile } => {
            let (credentials, from) = crate::aws_credentials::resolve(profile.as_deref())?;
            tracing::info!("signing upload URLs with credentials from {from}");
            Ok(AnyUrlSource::LongTermKeys(Signer::new(
                &config.target,
                &credentials,
                config.url_expiry,
            )?))
        }
        CredentialsConfig::Broker { url, token_file } => {
            let token = std::fs::read_to_string(token_file)
                .with_context(|| format!("cannot read the token file {}", token_file.display()))?;
            let client = BrokerClient::new(url, token.trim())
                .map_err(|e| anyhow!("[credentials] broker: {e}"))?
                .with_expiry(config.url_expiry);
            tracing::info!("upload URLs from the presign broker at {url}");
            Ok(AnyUrlSource::Broker(client))
        }
    }
}

/// Runs the agent until a signal (or, with `until_drained`, until the source is
/// exhausted and everything is uploaded).
pub fn run(config: &AgentConfig, options: &RunOptions) -> Result<Status> {
    install_failpoint_from_env()?;
    let clock = clock_from_env()?;
    let urls = url_source(config)?;
    let _lock = lock_spool(&config.spool_dir)?;

    let stdin = match config.source {
        SourceConfig::Stdin => Some(sources::stdin_lines()?),
        _ => None,
    };
    let mut schema = sources::schema_for(
        &config.source,
        config.channels.as_deref(),
        stdin.as_ref().map(|(h, _)| h.as_str()),
        config.on_bad_row,
    )?;
    // The layout's column conventions (OpenSensor: `timestamp` in ms UTC and a
    // `station_id` string column; Hive: none).
    let preset = config.keys.layout().schema_preset();
    if preset != SchemaPreset::NONE {
        schema = Arc::new(schema.as_ref().clone().with_preset(&preset)?);
    }
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let pipeline_config = PipelineConfig::new(
        config.device_id.clone(),
        schema.clone(),
        config.keys.clone(),
    )
    .with_batch(config.batch.clone())
    .with_encode(config.encode)
    .with_spool(config.spool)
    .with_journal(
        config
            .journal_sync_every
            .map(|sync_every| JournalConfig { sync_every }),
    )
    .with_upload(config.upload.clone())
    .with_seed(seed);
    let pipeline = Pipeline::open(StdStorage::new(&config.spool_dir), pipeline_config, urls)
        .with_context(|| format!("cannot open spool dir {}", config.spool_dir.display()))?;
    let (recorder, sender) = pipeline.split();
    let resume = recorder.resume_position();
    let spool = recorder.spool().clone();

    let source: Box<dyn Source> = match &config.source {
        SourceConfig::Simulate {
            profile,
            seed,
            start_us,
            rows,
            rate_hz,
        } => {
            let start_us = sources::simulate_start(&config.spool_dir, *start_us, resume)?;
            Box::new(SimulateSource::new(
                Simulator::new(*profile, config.device_id.as_str(), *seed, start_us),
                *rows,
                *rate_hz,
                resume,
            ))
        }
        SourceConfig::Csv { path, rate_hz } => Box::new(CsvSource::open(
            path,
            &schema,
            *rate_hz,
            resume,
            config.on_bad_row,
        )?),
        SourceConfig::Stdin => {
            let (header, lines) = stdin.expect("read above");
            Box::new(StdinSource::new(
                &header,
                lines,
                &schema,
                config.on_bad_row,
            )?)
        }
    };
    let spool_at_start = sender.spool_stats();
    tracing::info!(
        "sensorlake run: device {}, source {}, spool {} ({} files waiting, {} quarantined{}), uploading to {} bucket {}",
        config.device_id,
        config.source.kind(),
        config.spool_dir.display(),
        spool_at_start.ready_files,
        spool_at_start.quarantined_files,
        match resume {
            Some(p) => format!(", resuming at position {p}"),
            None => String::new(),
        },
        config.target.endpoint,
        config.target.bucket,
    );

    let stop = Arc::new(AtomicBool::new(false));
    let source_done = Arc::new(AtomicBool::new(false));
    let drained = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Mutex::new(Shared::default()));
    watch_signals(stop.clone())?;

    let source_thread = {
        let (stop, source_done, shared) = (stop.clone(), source_done.clone(), shared.clone());
        std::thread::Builder::new()
            .name("source".into())
            .spawn(move || source_loop(source, recorder, &shared, &stop, &source_done))?
    };
    let upload_thread = {
        let conn = HostConnection::new(config.http.clone())?;
        let (stop, source_done, drained, shared) = (
            stop.clone(),
            source_done.clone(),
            drained.clone(),
            shared.clone(),
        );
        let until_drained = options.until_drained;
        std::thread::Builder::new()
            .name("upload".into())
            .spawn(move || {
                upload_loop(
                    sender,
                    conn,
                    clock,
                    &shared,
                    &stop,
                    &source_done,
                    until_drained,
                    &drained,
                )
            })?
    };

    let mut next_status = Instant::now() + config.status_interval;
    loop {
        // The source thread ends early only on an error or a panic, the upload thread
        // only when drained: either way the agent stops now.
        if stop.load(Ordering::SeqCst)
            || drained.load(Ordering::SeqCst)
            || source_thread.is_finished() && !source_done.load(Ordering::SeqCst)
            || upload_thread.is_finished()
        {
            break;
        }
        if Instant::now() >= next_status {
            let status = status_of(config, &shared);
            tracing::info!("status: {}", status.line());
            write_status(config, &status);
            next_status = Instant::now() + config.status_interval;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    let source_result = source_thread.join();
    let upload_result = upload_thread.join();
    // The source's last flush came after the upload thread's last count: the final
    // status shows the spool as it is now.
    lock(&shared).spool = spool.lock().unwrap_or_else(|e| e.into_inner()).stats();
    let status = status_of(config, &shared);
    tracing::info!("status: {}", status.line());
    write_status(config, &status);
    let source_result = source_result.map_err(|p| {
        anyhow!(
            "the source thread died ({}): the agent stopped; what was spooled is kept",
            panic_message(p.as_ref())
        )
    })?;
    upload_result.map_err(|p| {
        anyhow!(
            "the upload thread died ({}): the agent stopped; the spool keeps every file",
            panic_message(p.as_ref())
        )
    })?;
    source_result?;
    if drained.load(Ordering::SeqCst) && status.rows_skipped > 0 {
        bail!(
            "drained, but {} source rows were skipped ([source] on_bad_row = \"skip\"; each is logged with its line): they are not in the lake",
            status.rows_skipped
        );
    }
    if drained.load(Ordering::SeqCst) {
        if status.quarantined_files == 0 {
            tracing::info!("drained: the source is exhausted and every row is uploaded");
        } else {
            tracing::warn!(
                "drained: the source is exhausted and the queue is empty, but {} file(s) wait in quarantine",
                status.quarantined_files
            );
        }
    }
    Ok(status)
}

fn write_status(config: &AgentConfig, status: &Status) {
    if let Some(path) = &config.status_file {
        let json = serde_json::to_vec_pretty(status).unwrap_or_default();
        if let Err(e) = write_atomically(path, &json) {
            tracing::warn!("cannot write the status file: {e:#}");
        }
    }
}

fn status_of(config: &AgentConfig, shared: &Mutex<Shared>) -> Status {
    let s = lock(shared);
    let r = &s.recorder;
    Status {
        device_id: config.device_id.to_string(),
        source: config.source.kind().to_string(),
        updated_at: jiff::Timestamp::now().to_string(),
        rows_read: s.rows_read,
        rows_skipped: s.rows_skipped,
        source_done: s.source_done,
        rows_in: r.rows_in,
        rows_rejected: r.rows_rejected,
        rows_replayed: r.rows_replayed,
        open_rows: r.open_rows,
        pending_batches: r.pending_batches,
        files_spooled: r.files_spooled,
        rows_spooled: r.rows_spooled,
        files_uploaded: s.upload.uploaded_files,
        rows_uploaded: s.upload.uploaded_rows,
        bytes_uploaded: s.upload.uploaded_bytes,
        already_stored: s.upload.already_stored,
        retries: s.upload.retries,
        resigns: s.upload.resigns,
        spool_files: s.spool.ready_files,
        spool_bytes: s.spool.ready_bytes,
        oldest_unsent_secs: s
            .spool
            .oldest
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs()),
        quarantined_files: s.spool.quarantined_files,
        dropped_files: s.spool.dropped_files,
        dropped_rows: s.spool.dropped_rows,
        paused_because: s.paused.clone(),
        spool_error: r.spool_error.clone(),
        last_error: s.upload.last_error.clone(),
        clock_offset_secs: s.clock_offset,
    }
}

fn source_loop(
    mut source: Box<dyn Source>,
    mut recorder: Recorder<StdStorage>,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
    source_done: &AtomicBool,
) -> Result<()> {
    let mut rows_read = 0u64;
    let mut last_publish = Instant::now();
    let publish =
        |recorder: &Recorder<StdStorage>, source: &dyn Source, rows_read: u64, done: bool| {
            let mut s = lock(shared);
            s.recorder = recorder.stats();
            s.rows_read = rows_read;
            s.rows_skipped = source.skipped();
            s.source_done = done;
        };
    let mut result = Ok(());
    'rows: while !stop.load(Ordering::SeqCst) {
        if last_publish.elapsed() >= Duration::from_millis(100) {
            if source.is_live() {
                recorder.poll(now_us());
            }
            publish(&recorder, source.as_ref(), rows_read, false);
            last_publish = Instant::now();
        }
        match source.pull() {
            Err(e) => {
                result = Err(e);
                break;
            }
            Ok(Pull::Wait(d)) => {
                if !d.is_zero() {
                    std::thread::sleep(d.min(Duration::from_millis(50)));
                }
            }
            Ok(Pull::End) => {
                let mut warned = false;
                loop {
                    match recorder.flush() {
                        Ok(()) => break,
                        Err(e) => {
                            if !warned {
                                tracing::warn!(
                                    "the source is exhausted; the last batches wait for the spool: {e}"
                                );
                                warned = true;
                            }
                            sleep_while_running(Duration::from_millis(100), stop);
                            if stop.load(Ordering::SeqCst) {
                                break 'rows;
                            }
                        }
                    }
                }
                source_done.store(true, Ordering::SeqCst);
                publish(&recorder, source.as_ref(), rows_read, true);
                tracing::info!("the source is exhausted: {rows_read} rows read, all spooled");
                return Ok(());
            }
            Ok(Pull::Row {
                ts_us,
                values,
                position,
            }) => {
                rows_read += 1;
                loop {
                    let pushed = match position {
                        Some(p) => recorder.push_at(ts_us, &values, p),
                        None => recorder.push(ts_us, &values),
                    };
                    match pushed {
                        Ok(()) => break,
                        Err(RecordError::Rejected(e)) => {
                            let origin =
                                source.origin().map_or(String::new(), |o| format!(" ({o})"));
                            tracing::warn!("row at {ts_us} µs{origin} rejected: {e}");
                            break;
                        }
                        Err(RecordError::Backpressure { .. }) => {
                            if last_publish.elapsed() >= Duration::from_millis(100) {
                                publish(&recorder, source.as_ref(), rows_read, false);
                                last_publish = Instant::now();
                            }
                            if stop.load(Ordering::SeqCst) {
                                if position.is_none() {
                                    tracing::warn!(
                                        "stopping while the spool is full: 1 row read from a live source was not accepted"
                                    );
                                }
                                break 'rows;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            }
        }
    }
    match recorder.flush() {
        Ok(()) => tracing::info!("flushed: every accepted row is in the spool"),
        Err(e) => {
            let stats = recorder.stats();
            tracing::error!(
                "{} rows in the open batch and {} closed batches could not be spooled ({e}){}",
                stats.open_rows,
                stats.pending_batches,
                if source.is_live() {
                    ""
                } else {
                    "; they are read again at the next start"
                }
            );
        }
    }
    publish(
        &recorder,
        source.as_ref(),
        rows_read,
        source_done.load(Ordering::SeqCst),
    );
    result
}

#[allow(clippy::too_many_arguments)]
fn upload_loop(
    mut sender: Sender<StdStorage, AnyUrlSource>,
    mut conn: HostConnection,
    clock: SkewedClock,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
    source_done: &AtomicBool,
    until_drained: bool,
    drained: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let done_before = source_done.load(Ordering::SeqCst);
        let step = sender.step(&mut conn, &clock);
        match &step.event {
            Event::Uploaded { key, rows, .. } => tracing::debug!("uploaded {key} ({rows} rows)"),
            Event::AlreadyStored { key, .. } => {
                tracing::info!("{key} was already stored (an earlier answer was lost)")
            }
            _ => {}
        }
        {
            let stats = sender.spool_stats();
            let mut s = lock(shared);
            s.spool = stats;
            s.upload = sender.uploader().counters().clone();
            s.paused = sender.uploader().paused().map(str::to_string);
            s.clock_offset = sender.uploader().clock_offset_secs();
        }
        match step.next {
            Next::Now => {}
            Next::WaitUntil(t) => {
                sleep_while_running(t.saturating_duration_since(Instant::now()), stop)
            }
            Next::Idle => {
                if until_drained && done_before {
                    drained.store(true, Ordering::SeqCst);
                    return;
                }
                sleep_while_running(Duration::from_millis(100), stop);
            }
        }
    }
}
