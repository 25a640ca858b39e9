//! `sensorlake demo`: simulated devices run the library's pipeline (batcher → encoder →
//! durable spool → uploader, the code the agent and the firmware run) and upload Parquet
//! through presigned PUTs to the embedded SigV4-checking S3 server; then everything is
//! read back through the S3 API and every generated row must be there exactly once with
//! equal values.
//!
//! Devices get their URLs from a [`UrlSource`]: by default they sign with the server's
//! keys; with `--broker` ([`DemoConfig::broker`]) each holds only a token of its own and
//! asks an in-process presign broker ([`crate::broker`]) over HTTP.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use sensorlake::batch::{BatchConfig, Value};
use sensorlake::broker_client::BrokerClient;
use sensorlake::clock::SystemClock;
use sensorlake::encode::{EncodeOptions, META_DEVICE_ID, META_OBJECT_KEY};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::pipeline::{Pipeline, PipelineConfig, RecordError, Sender};
use sensorlake::presign::{Credentials, S3Target, Signer};
use sensorlake::schema::Schema;
use sensorlake::simulate::{Profile, Simulator};
use sensorlake::storage::StdStorage;
use sensorlake::uploader::{Event, Next};
use sensorlake::url_source::{AnyUrlSource, UrlSource};

use crate::broker::registry::Registry;
use crate::broker::{Broker, BrokerConfig};
use crate::http::{HostConnection, HttpConfig};
use crate::s3client;
use crate::s3server::{S3Server, ServerConfig};

/// The bucket the demo writes to.
pub const BUCKET: &str = "lake";
/// The key prefix of the demo's objects.
pub const PREFIX: &str = "raw";

/// What the demo simulates and how it writes.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Number of simulated devices.
    pub devices: usize,
    /// Simulated time per device.
    pub duration: Duration,
    /// Sensor profile.
    pub profile: Profile,
    /// Server data directory (kept); `None` = a fresh temporary directory, removed at
    /// the end unless [`DemoConfig::keep`].
    pub dir: Option<PathBuf>,
    /// Keep the temporary data directory (and the broker's) instead of removing it.
    pub keep: bool,
    /// Empty a non-empty `dir` first.
    pub clean: bool,
    /// Codec, encodings, statistics.
    pub options: EncodeOptions,
    /// Key layout (and, for `opensensor`, its column conventions and 15-min windows).
    pub layout: Layout,
    /// Seed of the simulated signals.
    pub seed: u64,
    /// Devices get URLs from an in-process presign broker (holding only a token each)
    /// instead of signing with keys.
    pub broker: bool,
    /// Upload to this S3 service instead of starting the embedded server.
    pub s3: Option<ExternalS3>,
}

/// An S3 service the demo uploads to instead of its embedded server. Each run writes
/// under a prefix of its own (`raw/demo-<id>/`), reads that back, and leaves it there.
#[derive(Debug, Clone)]
pub struct ExternalS3 {
    /// Endpoint, bucket, region and address style.
    pub target: S3Target,
    /// Keys that may list, read and write the bucket.
    pub credentials: Credentials,
}

/// What the broker did in a `--broker` demo.
#[derive(Debug, Clone)]
pub struct BrokerReport {
    /// Devices registered (each holding only its token).
    pub devices: usize,
    /// URLs issued.
    pub issued: u64,
    /// Files refused.
    pub refused: u64,
    /// Requests denied as a whole.
    pub denied: u64,
    /// The broker's directory (registry and audit log).
    pub dir: PathBuf,
    /// The audit log.
    pub audit_log: PathBuf,
    /// Whether [`BrokerReport::dir`] was kept (`--keep`); otherwise it was removed.
    pub kept: bool,
}

/// What the demo did and found.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The server's data directory.
    pub dir: PathBuf,
    /// Whether [`DemoReport::dir`] is still there (`--dir` or `--keep`); a temporary
    /// directory is otherwise removed at the end.
    pub dir_kept: bool,
    /// With an external S3 service: where this run's objects are (`s3://bucket/prefix/`
    /// at the endpoint), kept; `dir` is then unused.
    pub s3_location: Option<String>,
    /// Files uploaded.
    pub files: usize,
    /// Rows generated.
    pub rows: usize,
    /// Parquet bytes uploaded.
    pub bytes: u64,
    /// Bytes of the same rows in raw binary form (8-byte timestamp + channel widths).
    pub raw_bytes: u64,
    /// Bytes of the same rows as CSV text (RFC 3339 timestamps).
    pub csv_bytes: u64,
    /// Wall time of the upload phase.
    pub upload_time: Duration,
    /// Rows read back through the S3 API.
    pub rows_read: usize,
    /// Generated rows not found in the bucket.
    pub missing: usize,
    /// Rows found more than once.
    pub duplicated: usize,
    /// Rows found with other values.
    pub changed: usize,
    /// Objects whose content did not match their key or device.
    pub bad_objects: Vec<String>,
    /// A query to paste into DuckDB.
    pub duckdb_query: String,
    /// The broker's part, with `--broker`.
    pub broker: Option<BrokerReport>,
}

impl DemoReport {
    /// Whether every row arrived exactly once with equal values.
    pub fn verified(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.changed == 0
            && self.bad_objects.is_empty()
            && self.rows_read == self.rows
    }
}

/// A random-enough secret for a throwaway local server (std's per-process SipHash keys).
fn random_hex(chars: usize) -> String {
    let mut out = String::with_capacity(chars);
    while out.len() < chars {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(out.len());
        let _ = write!(out, "{:016X}", h.finish());
    }
    out.truncate(chars);
    out
}

/// A row's values as a 64-bit fingerprint (FNV-1a over tagged value bits).
fn fingerprint(values: &[Value]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    for v in values {
        match v {
            Value::Null => feed(&[0]),
            Value::F32(f) => {
                feed(&[1]);
                feed(&f.to_bits().to_le_bytes());
            }
            Value::F64(f) => {
                feed(&[3]);
                feed(&f.to_bits().to_le_bytes());
            }
            Value::Int(i) => {
                feed(&[2]);
                feed(&i.to_le_bytes());
            }
        }
    }
    h
}

fn csv_line_len(ts_us: i64, values: &[Value], buf: &mut String) -> usize {
    buf.clear();
    let ts = jiff::Timestamp::from_microsecond(ts_us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let _ = write!(buf, "{ts:.6}");
    for v in values {
        buf.push(',');
        match v {
            Value::Null => {}
            Value::F32(f) => {
                let _ = write!(buf, "{f}");
            }
            Value::F64(f) => {
                let _ = write!(buf, "{f}");
            }
            Value::Int(i) => {
                let _ = write!(buf, "{i}");
            }
        }
    }
    buf.len() + 1
}

/// The data directory, and the guard that removes it when it is a fresh temporary one.
fn prepare_dir(config: &DemoConfig) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &config.dir {
        Some(dir) => {
            let non_empty = dir.exists()
                && std::fs::read_dir(dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?
                    .next()
                    .is_some();
            if non_empty {
                if !config.clean {
                    bail!(
                        "--dir {} is not empty; pass --clean to empty it first",
                        dir.display()
                    );
                }
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("cannot empty {}", dir.display()))?;
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok((dir.canonicalize()?, None))
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("sensorlake-demo-")
                .tempdir()?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

/// Per-device results of the upload phase.
struct DeviceRun {
    id: DeviceId,
    expected: Vec<(i64, u64)>,
    files: usize,
    bytes: u64,
    csv_bytes: u64,
}

/// Everything a simulated device needs.
struct DeviceSetup<'a> {
    id: DeviceId,
    sim: Simulator,
    schema: Arc<Schema>,
    rows: u64,
    batch: BatchConfig,
    template: &'a KeyTemplate,
    options: EncodeOptions,
    source: AnyUrlSource,
    spool_dir: PathBuf,
    progress: &'a ProgressBar,
}

/// Drives the upload side until the spool is empty; counts what left it.
fn drain<U: UrlSource>(
    sender: &mut Sender<StdStorage, U>,
    conn: &mut HostConnection,
    run: &mut DeviceRun,
    progress: &ProgressBar,
) -> Result<()> {
    let mut pauses = 0;
    loop {
        let step = sender.step(conn, &SystemClock);
        match step.event {
            Event::Uploaded { bytes, rows, .. } => {
                run.files += 1;
                run.bytes += bytes;
                progress.inc(rows);
            }
            Event::AlreadyStored { rows, .. } => {
                run.files += 1;
                progress.inc(rows);
            }
            Event::Quarantined { file, reason } => {
                bail!("{}: spool file {file} quarantined: {reason}", run.id)
            }
            Event::Paused { reason, .. } => {
                pauses += 1;
                if pauses >= 3 {
                    bail!("{}: uploads paused: {reason}", run.id);
                }
            }
            Event::Retry { reason, .. } | Event::Resigned { reason, .. } => {
                tracing::warn!(device = %run.id, %reason, "upload retried");
            }
            _ => {}
        }
        match step.next {
            Next::Now => {}
            Next::WaitUntil(at) => std::thread::sleep(at.saturating_duration_since(Instant::now())),
            Next::Idle => return Ok(()),
        }
    }
}

/// One simulated device: the library's pipeline (recorder → spool → sender), the same
/// code the agent and the firmware run, with its spool in `spool_dir`.
fn run_device(setup: DeviceSetup<'_>) -> Result<DeviceRun> {
    let mut conn = HostConnection::new(HttpConfig::default())?;
    let config = PipelineConfig::new(
        setup.id.clone(),
        setup.schema.clone(),
        setup.template.clone(),
    )
    .with_batch(setup.batch.clone())
    .with_encode(setup.options)
    .with_seed(setup.sim.ts_of(0) as u64);
    let pipeline = Pipeline::open(StdStorage::new(&setup.spool_dir), config, setup.source)?;
    let (mut recorder, mut sender) = pipeline.split();
    let unit = setup.schema.ts_unit.micros();
    let mut run = DeviceRun {
        id: setup.id.clone(),
        expected: Vec::with_capacity(setup.rows as usize),
        files: 0,
        bytes: 0,
        csv_bytes: 0,
    };
    let mut values = Vec::new();
    let mut line = String::new();
    for index in 0..setup.rows {
        let ts = setup.sim.row(index, &mut values);
        loop {
            match recorder.push_at(ts, &values, index + 1) {
                Ok(()) => break,
                // The spool is full: send some files, then offer the row again.
                Err(RecordError::Backpressure { .. }) => {
                    drain(&mut sender, &mut conn, &mut run, setup.progress)?
                }
                Err(e) => bail!("{}: {e}", setup.id),
            }
        }
        run.expected
            .push((ts - ts.rem_euclid(unit), fingerprint(&values)));
        run.csv_bytes += csv_line_len(ts, &values, &mut line) as u64;
        if recorder.stats().files_spooled as usize > run.files {
            drain(&mut sender, &mut conn, &mut run, setup.progress)?;
        }
    }
    recorder.flush()?;
    drain(&mut sender, &mut conn, &mut run, setup.progress)?;
    Ok(run)
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} uploading [{bar:40}] {pos}/{len} rows ({rate}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&rows_per_second(state.per_sec()));
            },
        )
        .progress_chars("=> "),
    );
    bar
}

/// A rate for people: whole rows per second (`14559 rows/s`), one decimal below 10.
fn rows_per_second(rate: f64) -> String {
    if !rate.is_finite() {
        return "- rows/s".to_string();
    }
    if rate < 10.0 {
        format!("{rate:.1} rows/s")
    } else {
        format!("{rate:.0} rows/s")
    }
}

/// Runs the demo.
pub fn run(config: &DemoConfig) -> Result<DemoReport> {
    if config.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if config.s3.is_some() && (config.dir.is_some() || config.clean) {
        bail!(
            "--dir and --clean are for the embedded server; with --endpoint the objects stay in the bucket"
        );
    }
    let (dir, temp_dir) = match config.s3 {
        None => prepare_dir(config)?,
        Some(_) => (PathBuf::new(), None),
    };
    let (server, target, credentials, prefix) = match &config.s3 {
        None => {
            let access_key = format!("SLDEMO{}", random_hex(14));
            let secret_key = random_hex(40);
            let server = S3Server::start(ServerConfig {
                create_buckets: vec![BUCKET.to_string()],
                ..ServerConfig::new(dir.clone(), access_key.clone(), secret_key.clone())
            })?;
            let target = S3Target {
                endpoint: server.endpoint(),
                bucket: BUCKET.to_string(),
                region: "us-east-1".to_string(),
                path_style: true,
            };
            let credentials = Credentials::new(&access_key, &secret_key);
            (Some(server), target, credentials, PREFIX.to_string())
        }
        Some(external) => (
            None,
            external.target.clone(),
            external.credentials.clone(),
            format!("{PREFIX}/demo-{}", random_hex(12)),
        ),
    };
    let signer = Signer::new(&target, &credentials, sensorlake::presign::DEFAULT_EXPIRY)?;
    let template = KeyTemplate::new(config.layout, &prefix)?;
    let broker = if config.broker {
        Some(DemoBroker::start(config, &target, &credentials)?)
    } else {
        None
    };
    let schema = Arc::new(
        Simulator::schema_for(config.profile)
            .with_preset(&config.layout.schema_preset())?
            .validated()?,
    );
    let batch = config.layout.batch_defaults();
    let interval = config.profile.interval_us();
    let rows_per_device = (config.duration.as_micros() as i64 / interval).max(1) as u64;
    let now_us = jiff::Timestamp::now().as_microsecond();
    let start_us = now_us - now_us.rem_euclid(3_600_000_000) - config.duration.as_micros() as i64;
    let total = rows_per_device * config.devices as u64;
    let progress = progress_bar(total);

    // Each device's durable spool; removed once everything is uploaded.
    let spools = tempfile::Builder::new()
        .prefix("sensorlake-spool-")
        .tempdir()?;
    let started = Instant::now();
    let runs: Vec<DeviceRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..=config.devices)
            .map(|n| {
                let id = DeviceId::new(&format!("{}-{n:02}", config.profile.name()))?;
                let id_dir = id.as_str().to_string();
                let source = match &broker {
                    Some(broker) => AnyUrlSource::Broker(broker.register(&id, &template)?),
                    None => AnyUrlSource::LongTermKeys(signer.clone()),
                };
                let setup = DeviceSetup {
                    sim: Simulator::new(config.profile, id.as_str(), config.seed, start_us),
                    id,
                    schema: schema.clone(),
                    rows: rows_per_device,
                    batch: batch.clone(),
                    template: &template,
                    options: config.options,
                    source,
                    spool_dir: spools.path().join(id_dir),
                    progress: &progress,
                };
                Ok(scope.spawn(move || run_device(setup)))
            })
            .collect::<Result<_>>()?;
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a device thread panicked"))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let upload_time = started.elapsed();
    progress.finish_and_clear();

    let s3_location = config
        .s3
        .as_ref()
        .map(|_| format!("s3://{}/{prefix}/ at {}", target.bucket, target.endpoint));
    let glob_base = match &config.s3 {
        None => format!("{}/{BUCKET}/{prefix}", dir.display()),
        Some(_) => format!("s3://{}/{prefix}", target.bucket),
    };
    let mut report = DemoReport {
        dir: dir.clone(),
        dir_kept: config.s3.is_none(),
        s3_location,
        files: runs.iter().map(|r| r.files).sum(),
        rows: runs.iter().map(|r| r.expected.len()).sum(),
        bytes: runs.iter().map(|r| r.bytes).sum(),
        raw_bytes: total * schema.raw_row_bytes() as u64,
        csv_bytes: runs.iter().map(|r| r.csv_bytes).sum(),
        upload_time,
        rows_read: 0,
        missing: 0,
        duplicated: 0,
        changed: 0,
        bad_objects: Vec::new(),
        duckdb_query: duckdb_query(&glob_base, config.layout, &schema),
        broker: broker.map(|b| b.report(config.devices, config.keep)),
    };
    verify(&signer, &template, runs, &mut report)?;
    drop(server);
    if let Some(temp) = temp_dir {
        if config.keep {
            let _ = temp.keep();
        } else {
            temp.close()
                .with_context(|| format!("cannot remove {}", dir.display()))?;
            report.dir_kept = false;
        }
    }
    Ok(report)
}

/// The in-process broker of a `--broker` demo: it holds the keys; devices get tokens.
struct DemoBroker {
    broker: Broker,
    registry: Registry,
    dir: tempfile::TempDir,
}

impl DemoBroker {
    fn start(config: &DemoConfig, target: &S3Target, credentials: &Credentials) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sensorlake-broker-")
            .tempdir()?;
        let registry = Registry::new(dir.path().join("devices.json"));
        let mut broker = BrokerConfig::new(
            registry.path(),
            dir.path().join("audit.jsonl"),
            target.clone(),
            credentials.clone(),
        );
        // Hours of simulated data are uploaded in seconds: no rate limit, and keys as old
        // as the simulated span are accepted.
        broker.rate_limit = None;
        broker.window.max_age = config.duration + Duration::from_secs(86_400);
        Ok(Self {
            broker: Broker::start(broker)?,
            registry,
            dir,
        })
    }

    /// Registers `device` and returns its client, holding only the device's token.
    fn register(&self, device: &DeviceId, template: &KeyTemplate) -> Result<BrokerClient> {
        let token = self.registry.add_device(device, template, false)?;
        Ok(BrokerClient::new(&self.broker.url(), &token)?)
    }

    /// Stops the broker; its directory is kept with `keep`, else removed.
    fn report(self, devices: usize, keep: bool) -> BrokerReport {
        let stats = self.broker.stats();
        let audit_log = self.broker.audit_log().to_path_buf();
        self.broker.shutdown();
        let dir = self.dir.path().to_path_buf();
        let kept = if keep {
            let _ = self.dir.keep();
            true
        } else {
            if let Err(e) = self.dir.close() {
                tracing::warn!("cannot remove the broker directory {}: {e}", dir.display());
            }
            false
        };
        BrokerReport {
            devices,
            issued: stats.issued,
            refused: stats.refused,
            denied: stats.denied,
            dir,
            audit_log,
            kept,
        }
    }
}

fn verify(
    signer: &Signer,
    template: &KeyTemplate,
    runs: Vec<DeviceRun>,
    report: &mut DemoReport,
) -> Result<()> {
    let mut conn = HostConnection::new(HttpConfig::default())?;
    let objects = s3client::list_objects(&mut conn, signer, template.prefix(), SystemTime::now)?;
    let mut found: std::collections::HashMap<String, Vec<(i64, u64)>> = Default::default();
    for object in &objects {
        let body = s3client::get_object(&mut conn, signer, &object.key, SystemTime::now())?;
        let decoded = match sensorlake::decode::decode(Bytes::from(body)) {
            Ok(d) => d,
            Err(e) => {
                report.bad_objects.push(format!("{}: {e}", object.key));
                continue;
            }
        };
        let device = decoded.meta(META_DEVICE_ID).unwrap_or_default().to_string();
        let Ok(device_id) = DeviceId::new(&device) else {
            report
                .bad_objects
                .push(format!("{}: bad device id {device:?}", object.key));
            continue;
        };
        if let Err(why) = template.check(&object.key, &device_id, &decoded.batch) {
            report.bad_objects.push(format!("{}: {why}", object.key));
        }
        let in_file = decoded.meta(META_OBJECT_KEY);
        if in_file != Some(object.key.as_str()) {
            report
                .bad_objects
                .push(format!("{}: the file names key {in_file:?}", object.key));
        }
        let rows = found.entry(device).or_default();
        decoded
            .batch
            .for_each_row(|ts, values| rows.push((ts, fingerprint(values))));
    }
    for mut run in runs {
        let mut actual = found.remove(run.id.as_str()).unwrap_or_default();
        report.rows_read += actual.len();
        run.expected.sort_unstable();
        actual.sort_unstable();
        let (missing, duplicated, changed) = compare(&run.expected, &actual);
        report.missing += missing;
        report.duplicated += duplicated;
        report.changed += changed;
    }
    for (device, rows) in found {
        report.rows_read += rows.len();
        report
            .bad_objects
            .push(format!("{} rows of unknown device {device:?}", rows.len()));
    }
    Ok(())
}

/// Compares sorted (ts, fingerprint) lists: (missing, duplicated, changed).
fn compare(expected: &[(i64, u64)], actual: &[(i64, u64)]) -> (usize, usize, usize) {
    let (mut i, mut j) = (0, 0);
    let (mut missing, mut duplicated, mut changed) = (0, 0, 0);
    while i < expected.len() || j < actual.len() {
        match (expected.get(i), actual.get(j)) {
            (Some(e), Some(a)) if e == a => {
                i += 1;
                j += 1;
                while actual.get(j) == Some(e) {
                    duplicated += 1;
                    j += 1;
                }
            }
            (Some(e), Some(a)) if e.0 == a.0 => {
                changed += 1;
                i += 1;
                j += 1;
            }
            (Some(e), Some(a)) if e < a => {
                missing += 1;
                i += 1;
            }
            (Some(_), None) => {
                missing += 1;
                i += 1;
            }
            _ => {
                duplicated += 1;
                j += 1;
            }
        }
    }
    (missing, duplicated, changed)
}

/// A DuckDB query over the files under `base` (a directory or an `s3://` prefix).
fn duckdb_query(base: &str, layout: Layout, schema: &Schema) -> String {
    let glob = format!("{base}/**/*.parquet");
    let (device, ts) = (layout.device_partition(), &schema.ts_column);
    format!(
        "SELECT {device}, count(*) AS rows, min({ts}) AS first, max({ts}) AS last FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY {device} ORDER BY {device};"
    )
}

/// The summary printed at the end of a demo.
pub fn render_summary(config: &DemoConfig, report: &DemoReport) -> String {
    let mut out = String::new();
    let rows = report.rows.max(1) as f64;
    let secs = report.upload_time.as_secs_f64().max(1e-9);
    let raw_per_row = report.raw_bytes as f64 / rows;
    let _ = writeln!(
        out,
        "sensorlake demo: {} device(s) x {} of simulated {} data ({} layout, {} codec)",
        config.devices,
        crate::duration::format_duration(config.duration),
        config.profile.name(),
        config.layout.name(),
        config.options.codec.name()
    );
    let _ = writeln!(
        out,
        "  uploaded  {} files, {} rows, {} bytes = {:.1} bytes/row, in {:.2} s ({}, {:.1} files/s)",
        report.files,
        report.rows,
        report.bytes,
        report.bytes as f64 / rows,
        secs,
        rows_per_second(report.rows as f64 / secs),
        report.files as f64 / secs
    );
    let _ = writeln!(
        out,
        "  size      {:.2}x raw ({raw_per_row:.0} bytes/row), {:.2}x CSV ({:.1} bytes/row)",
        report.bytes as f64 / report.raw_bytes.max(1) as f64,
        report.bytes as f64 / report.csv_bytes.max(1) as f64,
        report.csv_bytes as f64 / rows
    );
    let _ = writeln!(
        out,
        "  verified  {} of {} rows read back via ListObjectsV2 + GetObject: {} missing, {} duplicated, {} changed{}",
        report.rows_read,
        report.rows,
        report.missing,
        report.duplicated,
        report.changed,
        if report.verified() {
            " - OK"
        } else {
            " - MISMATCH"
        }
    );
    if let Some(broker) = &report.broker {
        let _ = writeln!(
            out,
            "  broker    {} URLs issued to {} devices holding only a token, no keys ({} refused, {} denied); audit log {}",
            broker.issued,
            broker.devices,
            broker.refused,
            broker.denied,
            if broker.kept {
                broker.audit_log.display().to_string()
            } else {
                "removed with its directory (--keep keeps it)".to_string()
            }
        );
    }
    for bad in &report.bad_objects {
        let _ = writeln!(out, "  bad object: {bad}");
    }
    if let Some(location) = &report.s3_location {
        let _ = writeln!(out, "  data      kept in {location}");
        let _ = writeln!(
            out,
            "query it with DuckDB (INSTALL httpfs; LOAD httpfs; CREATE SECRET (TYPE s3, PROVIDER credential_chain) first):\n  {}",
            report.duckdb_query
        );
    } else if report.dir_kept {
        let _ = writeln!(
            out,
            "  data      {} (objects at <dir>/{BUCKET}/<key>)",
            report.dir.display()
        );
        let _ = writeln!(out, "query it with DuckDB:\n  {}", report.duckdb_query);
    } else {
        let _ = writeln!(
            out,
            "  data      removed {} (--keep or --dir DIR keeps the files)",
            report.dir.display()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_counts_missing_duplicated_changed() {
        let e = [(1, 10), (2, 20), (3, 30), (4, 40)];
        let a = [(1, 10), (1, 10), (2, 21), (4, 40), (5, 50)];
        assert_eq!(compare(&e, &a), (1, 2, 1));
        assert_eq!(compare(&e, &e), (0, 0, 0));
    }
}
