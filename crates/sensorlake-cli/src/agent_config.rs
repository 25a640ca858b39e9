//! The `sensorlake run` configuration file (TOML). Every key but `device_id`,
//! `[s3] endpoint` and `[s3] bucket` has a default; `sensorlake.example.toml` in the
//! repository documents each one. Relative paths are relative to the configuration
//! file's directory. Unknown keys are errors (a typo never silently falls back to a
//! default).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use sensorlake::batch::BatchConfig;
use sensorlake::encode::{Codec, EncodeOptions, FloatEncoding, IntEncoding, Statistics};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::S3Target;
use sensorlake::schema::{Channel, ChannelType};
use sensorlake::simulate::Profile;
use sensorlake::spool::{SpoolConfig, WhenFull};
use sensorlake::uploader::UploadConfig;

use crate::http::HttpConfig;

/// A size: bytes as an integer, or text with a unit (`64MiB`, `512KiB`, `1GB`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// Parses `64MiB`, `512 KiB`, `10MB`, `1GiB`, `4096` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let bad = || format!("size {text:?}: use e.g. 64MiB, 512KiB, 10MB or plain bytes");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    let factor: u128 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "size {text:?}: unknown unit {other:?} (B, KiB, MiB, GiB, kB, MB, GB)"
            ));
        }
    };
    // Exact decimal arithmetic: a size is a whole number of bytes, never rounded.
    let too_large = || format!("size {text:?} is too large");
    let digits_value = |d: &str| -> Result<u128, String> {
        if d.len() > 30 {
            return Err(too_large());
        }
        d.parse::<u128>().map_err(|_| bad())
    };
    let scale = 10u128
        .checked_pow(u32::try_from(fraction.len()).map_err(|_| too_large())?)
        .ok_or_else(too_large)?;
    let fraction_value = if fraction.is_empty() {
        0
    } else {
        digits_value(fraction)?
    };
    let scaled = digits_value(whole)?
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction_value))
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(too_large)?;
    if !scaled.is_multiple_of(scale) {
        return Err(format!("size {text:?} is not a whole number of bytes"));
    }
    u64::try_from(scaled / scale).map_err(|_| too_large())
}

/// The documented range of every numeric key (sensorlake.example.toml and the README
/// say the same); a value outside is refused at load, naming the key.
pub mod ranges {
    use std::time::Duration;

    /// `[source] rate_hz` (0 = as fast as possible is also accepted).
    pub const RATE_HZ: (f64, f64) = (0.000_001, 1_000_000.0);
    /// `[source] rows` (0 = endless is also accepted).
    pub const ROWS: (u64, u64) = (0, 1_000_000_000);
    /// `[source] start`, µs since the epoch: 1970-01-01 to 9000-01-01.
    pub const START_US: (i64, i64) = (0, 221_845_392_000_000_000);
    /// `[batch] max_rows`.
    pub const MAX_ROWS: (usize, usize) = (1, 1_000_000);
    /// `[batch] max_age` (or "none").
    pub const MAX_AGE: (Duration, Duration) =
        (Duration::from_millis(1), Duration::from_secs(366 * 86_400));
    /// `[batch] max_pending`.
    pub const MAX_PENDING: (usize, usize) = (1, 1024);
    /// `[spool] max_bytes`.
    pub const MAX_BYTES: (u64, u64) = (4 << 10, 1 << 40);
    /// `[spool] max_files`.
    pub const MAX_FILES: (usize, usize) = (1, 1_000_000);
    /// `[journal] sync_every_rows`.
    pub const SYNC_EVERY_ROWS: (u32, u32) = (1, 1_000_000);
    /// `[s3] url_expiry`.
    pub const URL_EXPIRY: (Duration, Duration) =
        (Duration::from_secs(1), Duration::from_secs(7 * 86_400));
    /// `[http] connect_timeout` and `[http] timeout`.
    pub const HTTP_TIMEOUT: (Duration, Duration) =
        (Duration::from_millis(100), Duration::from_secs(3600));
    /// `[upload] backoff_initial` and `[upload] backoff_max`.
    pub const BACKOFF: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(3600));
    /// `[upload] pause_initial` and `[upload] pause_max`.
    pub const PAUSE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(86_400));
    /// `[status] interval`.
    pub const STATUS_INTERVAL: (Duration, Duration) =
        (Duration::from_millis(100), Duration::from_secs(86_400));
}

/// Refuses `value` outside `range`, naming the key and the range.
fn check_range<T: PartialOrd + std::fmt::Debug>(key: &str, value: T, range: (T, T)) -> Result<T> {
    if value < range.0 || value > range.1 {
        bail!(
            "{key}: {value:?} is outside the allowed range {:?} to {:?}",
            range.0,
            range.1
        );
    }
    Ok(value)
}

/// The CLI's one duration parser ([`crate::duration`]).
pub use crate::duration::parse_duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    device_id: String,
    #[serde(default)]
    source: RawSource,
    #[serde(default)]
    channels: Vec<RawChannel>,
    #[serde(default)]
    batch: RawBatch,
    #[serde(default)]
    encode: RawEncode,
    #[serde(default)]
    spool: RawSpool,
    #[serde(default)]
    journal: RawJournal,
    s3: RawS3,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    upload: RawUpload,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    credentials: RawCredentials,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: Option<String>,
    path: Option<PathBuf>,
    rate_hz: Option<f64>,
    profile: Option<String>,
    seed: Option<u64>,
    start: Option<String>,
    rows: Option<u64>,
    on_bad_row: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: String,
    #[serde(rename = "type", default)]
    ty: Option<String>,
    #[serde(default)]
    nullable: bool,
    unit: Option<String>,
    scale: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    max_rows: Option<usize>,
    max_age: Option<String>,
    window: Option<String>,
    max_pending: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncode {
    codec: Option<String>,
    float_encoding: Option<String>,
    ts_encoding: Option<String>,
    int_encoding: Option<String>,
    statistics: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    dir: Option<PathBuf>,
    max_bytes: Option<Size>,
    max_files: Option<usize>,
    when_full: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    #[serde(default)]
    enabled: bool,
    sync_every_rows: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    endpoint: String,
    bucket: String,
    region: Option<String>,
    #[serde(default)]
    path_style: bool,
    prefix: Option<String>,
    layout: Option<String>,
    url_expiry: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    source: Option<String>,
    profile: Option<String>,
    broker_url: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    connect_timeout: Option<String>,
    timeout: Option<String>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
    backoff_initial: Option<String>,
    backoff_max: Option<String>,
    pause_initial: Option<String>,
    pause_max: Option<String>,
    verify_rows: Option<bool>,
    conditional_writes: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    interval: Option<String>,
    file: Option<PathBuf>,
}

/// Where rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// Deterministic simulated rows (like the demo).
    Simulate {
        /// Sensor profile.
        profile: Profile,
        /// Seed of the signals.
        seed: u64,
        /// Timestamp of row 0 (µs since the epoch); `None`: the time of the first run,
        /// kept in the spool directory (see [`crate::sources::simulate_start`]).
        start_us: Option<i64>,
        /// Rows in total (`None`: endless).
        rows: Option<u64>,
        /// Rows per second (`None`: as fast as possible).
        rate_hz: Option<f64>,
    },
    /// Replay of a CSV file.
    Csv {
        /// The file.
        path: PathBuf,
        /// Rows per second (`None`: as fast as possible).
        rate_hz: Option<f64>,
    },
    /// CSV lines on standard input (header first).
    Stdin,
}

impl SourceConfig {
    /// `simulate`, `csv` or `stdin`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Simulate { .. } => "simulate",
            Self::Csv { .. } => "csv",
            Self::Stdin => "stdin",
        }
    }
}

/// Where the agent's upload URLs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsConfig {
    /// Sign locally with keys from the standard chain: the `AWS_*` environment variables,
    /// else a profile of the AWS shared credentials/config files (as aws-cli does).
    Keys {
        /// The profile to use when the environment has no keys (default: `AWS_PROFILE`,
        /// else `default`).
        profile: Option<String>,
    },
    /// Ask a presign broker; the agent holds only its token.
    Broker {
        /// The broker's base URL (https, or http on loopback).
        url: String,
        /// A file holding this device's token.
        token_file: PathBuf,
    },
}

/// The whole agent configuration, validated.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// Device id.
    pub device_id: DeviceId,
    /// Row source.
    pub source: SourceConfig,
    /// What a CSV source does with a row that cannot be stored (`[source] on_bad_row`).
    pub on_bad_row: crate::sources::OnBadRow,
    /// Channels from the file (`None`: the source's own).
    pub channels: Option<Vec<Channel>>,
    /// Batching.
    pub batch: BatchConfig,
    /// Encoding.
    pub encode: EncodeOptions,
    /// Spool directory.
    pub spool_dir: PathBuf,
    /// Spool limits and policy.
    pub spool: SpoolConfig,
    /// Journal: rows between syncs, `None` when off.
    pub journal_sync_every: Option<u32>,
    /// Bucket and endpoint.
    pub target: S3Target,
    /// Key layout and prefix.
    pub keys: KeyTemplate,
    /// Lifetime of presigned URLs.
    pub url_expiry: Duration,
    /// HTTP client settings.
    pub http: HttpConfig,
    /// Retry and pause settings.
    pub upload: UploadConfig,
    /// Status line interval.
    pub status_interval: Duration,
    /// Status JSON file (`None`: off).
    pub status_file: Option<PathBuf>,
    /// Where upload URLs come from.
    pub credentials: CredentialsConfig,
}

fn opt_duration(value: &Option<String>, key: &str, default: Duration) -> Result<Duration> {
    match value {
        Some(text) => parse_duration(text).map_err(|e| anyhow!("{key}: {e}")),
        None => Ok(default),
    }
}

fn parse_with<T, E: std::fmt::Display>(
    value: &Option<String>,
    key: &str,
    default: T,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T> {
    match value {
        Some(text) => parse(text).map_err(|e| anyhow!("{key}: {e}")),
        None => Ok(default),
    }
}

impl AgentConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::parse(&text, base)
            .with_context(|| format!("configuration {}", path.display()))
            .map(|mut c| {
                c.file = path.to_path_buf();
                c
            })
    }

    /// Parses configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let raw: Raw = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let device_id = DeviceId::new(&raw.device_id).map_err(|e| anyhow!("device_id: {e}"))?;

        let s = &raw.source;
        let rate = |default: Option<f64>| -> Result<Option<f64>> {
            let (min, max) = ranges::RATE_HZ;
            match s.rate_hz {
                None => Ok(default),
                Some(0.0) => Ok(None),
                Some(r) if (min..=max).contains(&r) => Ok(Some(r)),
                Some(r) => bail!(
                    "[source] rate_hz: {r} is outside the allowed range {min} to {max} rows per second (0 = as fast as possible)"
                ),
            }
        };
        let kind = s.kind.as_deref().unwrap_or("simulate");
        let allowed: &[&str] = match kind {
            "simulate" => &["profile", "seed", "start", "rows", "rate_hz"],
            "csv" => &["path", "rate_hz", "on_bad_row"],
            "stdin" => &["on_bad_row"],
            other => bail!("[source] kind: {other:?} is not simulate, csv or stdin"),
        };
        for (key, set) in [
            ("path", s.path.is_some()),
            ("rate_hz", s.rate_hz.is_some()),
            ("profile", s.profile.is_some()),
            ("seed", s.seed.is_some()),
            ("start", s.start.is_some()),
            ("rows", s.rows.is_some()),
            ("on_bad_row", s.on_bad_row.is_some()),
        ] {
            if set && !allowed.contains(&key) {
                bail!("[source] {key} does not apply to kind = {kind:?}");
            }
        }
        let source = match kind {
            "simulate" => {
                let profile = parse_with(&s.profile, "[source] profile", Profile::Enviro, |t| {
                    Profile::parse(t)
                })?;
                let start_us = match s.start.as_deref() {
                    None => None,
                    Some(start) => {
                        let t: jiff::Timestamp = start.parse().map_err(|e| {
                            anyhow!("[source] start: {start:?} is not an RFC 3339 time: {e}")
                        })?;
                        let (min, max) = ranges::START_US;
                        if !(min..=max).contains(&t.as_microsecond()) {
                            bail!(
                                "[source] start: {start:?} is outside the allowed range 1970-01-01T00:00:00Z to 9000-01-01T00:00:00Z"
                            );
                        }
                        Some(t.as_microsecond())
                    }
                };
                SourceConfig::Simulate {
                    profile,
                    seed: s.seed.unwrap_or(1),
                    start_us,
                    rows: match s.rows {
                        None | Some(0) => None,
                        Some(r) => Some(check_range("[source] rows", r, ranges::ROWS)?),
                    },
                    rate_hz: rate(Some(1e6 / profile.interval_us() as f64))?,
                }
            }
            "csv" => SourceConfig::Csv {
                path: resolve(
                    s.path
                        .as_deref()
                        .ok_or_else(|| anyhow!("[source] path is required for kind = \"csv\""))?,
                ),
                rate_hz: rate(None)?,
            },
            _ => SourceConfig::Stdin,
        };

        let channels = if raw.channels.is_empty() {
            None
        } else {
            let mut out = Vec::new();
            for c in &raw.channels {
                let ty = parse_with(&c.ty, "[[channels]] type", ChannelType::F32, |t| {
                    ChannelType::parse(t).map_err(|e| e.to_string())
                })?;
                let mut channel = Channel::new(&c.name, ty);
                channel.nullable = c.nullable;
                channel.unit = c.unit.clone();
                if let Some(scale) = c.scale
                    && !scale.is_finite()
                {
                    bail!(
                        "[[channels]] scale of {:?}: {scale} is not a finite number",
                        c.name
                    );
                }
                channel.scale = c.scale;
                out.push(channel);
            }
            Some(out)
        };

        // The OpenSensor preset batches by 15-minute clock windows only (one file per
        // window of a 5 s station); explicit [batch] keys still override.
        let layout = parse_with(&raw.s3.layout, "[s3] layout", Layout::Hive, Layout::parse)?;
        let defaults = layout.batch_defaults();
        let b = &raw.batch;
        let batch = BatchConfig {
            max_rows: check_range(
                "[batch] max_rows",
                b.max_rows.unwrap_or(defaults.max_rows),
                ranges::MAX_ROWS,
            )?,
            max_age: match &b.max_age {
                Some(t) if t == "none" => None,
                Some(t) => Some(check_range(
                    "[batch] max_age",
                    parse_duration(t).map_err(|e| anyhow!("[batch] max_age: {e}"))?,
                    ranges::MAX_AGE,
                )?),
                None => defaults.max_age,
            },
            window: match &b.window {
                Some(t) if t == "none" => None,
                Some(t) => Some(parse_duration(t).map_err(|e| anyhow!("[batch] window: {e}"))?),
                None => defaults.window,
            },
            max_pending: check_range(
                "[batch] max_pending",
                b.max_pending.unwrap_or(defaults.max_pending),
                ranges::MAX_PENDING,
            )?,
        };
        batch.validate().map_err(|e| anyhow!("[batch]: {e}"))?;

        let e = &raw.encode;
        let d = EncodeOptions::default();
        let encode = EncodeOptions {
            codec: parse_with(&e.codec, "[encode] codec", d.codec, Codec::parse)?,
            float_encoding: parse_with(
                &e.float_encoding,
                "[encode] float_encoding",
                d.float_encoding,
                FloatEncoding::parse,
            )?,
            ts_encoding: parse_with(
                &e.ts_encoding,
                "[encode] ts_encoding",
                d.ts_encoding,
                IntEncoding::parse,
            )?,
            int_encoding: parse_with(
                &e.int_encoding,
                "[encode] int_encoding",
                d.int_encoding,
                IntEncoding::parse,
            )?,
            statistics: parse_with(
                &e.statistics,
                "[encode] statistics",
                d.statistics,
                Statistics::parse,
            )?,
        };

        let sp = &raw.spool;
        let spool_defaults = SpoolConfig::default();
        let spool = SpoolConfig {
            max_bytes: match &sp.max_bytes {
                None => spool_defaults.max_bytes,
                Some(Size::Bytes(b)) => *b,
                Some(Size::Text(t)) => {
                    parse_size(t).map_err(|e| anyhow!("[spool] max_bytes: {e}"))?
                }
            },
            max_files: sp.max_files.unwrap_or(spool_defaults.max_files),
            when_full: parse_with(
                &sp.when_full,
                "[spool] when_full",
                spool_defaults.when_full,
                WhenFull::parse,
            )?,
        };
        check_range("[spool] max_bytes", spool.max_bytes, ranges::MAX_BYTES)?;
        check_range("[spool] max_files", spool.max_files, ranges::MAX_FILES)?;
        let spool_dir = resolve(sp.dir.as_deref().unwrap_or(Path::new("spool")));

        // Checked even while the journal is off: a value in the file is never ignored.
        let sync_every = check_range(
            "[journal] sync_every_rows",
            raw.journal.sync_every_rows.unwrap_or(1),
            ranges::SYNC_EVERY_ROWS,
        )?;
        let journal_sync_every = raw.journal.enabled.then_some(sync_every);

        let s3 = &raw.s3;
        let target = S3Target {
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            region: s3.region.clone().unwrap_or_else(|| "us-east-1".to_string()),
            path_style: s3.path_style,
        };
        let keys = KeyTemplate::new(layout, s3.prefix.as_deref().unwrap_or(""))
            .map_err(|e| anyhow!("[s3] prefix: {e}"))?;
        let url_expiry = check_range(
            "[s3] url_expiry",
            opt_duration(&s3.url_expiry, "[s3] url_expiry", Duration::from_secs(300))?,
            ranges::URL_EXPIRY,
        )?;

        let h = &raw.http;
        let http_defaults = HttpConfig::default();
        let http = HttpConfig {
            connect_timeout: check_range(
                "[http] connect_timeout",
                opt_duration(
                    &h.connect_timeout,
                    "[http] connect_timeout",
                    http_defaults.connect_timeout,
                )?,
                ranges::HTTP_TIMEOUT,
            )?,
            timeout: check_range(
                "[http] timeout",
                opt_duration(&h.timeout, "[http] timeout", http_defaults.timeout)?,
                ranges::HTTP_TIMEOUT,
            )?,
            ca_file: h.ca_file.as_deref().map(resolve),
        };

        let u = &raw.upload;
        let ud = UploadConfig::default();
        let ranged = |value: &Option<String>, key: &str, default, range| {
            check_range(key, opt_duration(value, key, default)?, range)
        };
        let upload = UploadConfig {
            backoff_initial: ranged(
                &u.backoff_initial,
                "[upload] backoff_initial",
                ud.backoff_initial,
                ranges::BACKOFF,
            )?,
            backoff_max: ranged(
                &u.backoff_max,
                "[upload] backoff_max",
                ud.backoff_max,
                ranges::BACKOFF,
            )?,
            pause_initial: ranged(
                &u.pause_initial,
                "[upload] pause_initial",
                ud.pause_initial,
                ranges::PAUSE,
            )?,
            pause_max: ranged(
                &u.pause_max,
                "[upload] pause_max",
                ud.pause_max,
                ranges::PAUSE,
            )?,
            verify_rows: u.verify_rows.unwrap_or(ud.verify_rows),
            conditional_writes: u.conditional_writes.unwrap_or(ud.conditional_writes),
            ..ud
        };
        if upload.backoff_max < upload.backoff_initial {
            bail!(
                "[upload] backoff_max ({:?}) is below backoff_initial ({:?})",
                upload.backoff_max,
                upload.backoff_initial
            );
        }
        if upload.pause_max < upload.pause_initial {
            bail!(
                "[upload] pause_max ({:?}) is below pause_initial ({:?})",
                upload.pause_max,
                upload.pause_initial
            );
        }

        let st = &raw.status;
        let status_interval = ranged(
            &st.interval,
            "[status] interval",
            Duration::from_secs(10),
            ranges::STATUS_INTERVAL,
        )?;
        let status_file = match &st.file {
            None => Some(spool_dir.join("status.json")),
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(resolve(p)),
        };

        let cr = &raw.credentials;
        let credentials = match cr.source.as_deref().unwrap_or("keys") {
            "keys" => {
                if cr.broker_url.is_some() || cr.token_file.is_some() {
                    bail!("[credentials] broker_url and token_file go with source = \"broker\"");
                }
                CredentialsConfig::Keys {
                    profile: cr.profile.clone(),
                }
            }
            "broker" => {
                if cr.profile.is_some() {
                    bail!("[credentials] profile goes with source = \"keys\"");
                }
                CredentialsConfig::Broker {
                    url: cr.broker_url.clone().ok_or_else(|| {
                        anyhow!("[credentials] broker_url is required for source = \"broker\"")
                    })?,
                    token_file: resolve(cr.token_file.as_deref().ok_or_else(|| {
                        anyhow!("[credentials] token_file is required for source = \"broker\"")
                    })?),
                }
            }
            other => bail!("[credentials] source {other:?}: expected keys or broker"),
        };

        let on_bad_row = match &raw.source.on_bad_row {
            Some(text) => crate::sources::OnBadRow::parse(text)?,
            None => crate::sources::OnBadRow::Stop,
        };
        Ok(Self {
            on_bad_row,
            file: PathBuf::new(),
            device_id,
            source,
            channels,
            batch,
            encode,
            spool_dir,
            spool,
            journal_sync_every,
            target,
            keys,
            url_expiry,
            http,
            upload,
            status_interval,
            status_file,
            credentials,
        })
    }
}

/// Every `# Range: MIN to MAX` comment of an example configuration (such as
/// `sensorlake.example.toml`), as (table, key, MIN, MAX): the key is the next
/// `key = value` line, commented out or not. The tests use it to load and run every
/// documented range end.
pub fn documented_ranges(example: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut pending: Option<(String, String)> = None;
    for line in example.lines() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = t.to_string();
            continue;
        }
        if let Some(range) = line.strip_prefix("# Range: ") {
            let range = range.split(';').next().unwrap().split(" (").next().unwrap();
            let (min, max) = range.split_once(" to ").expect("Range: MIN to MAX");
            pending = Some((min.trim().to_string(), max.trim().to_string()));
            continue;
        }
        let assignment = line.strip_prefix("# ").unwrap_or(line);
        if let Some((key, _)) = assignment.split_once(" = ")
            && !key.contains(' ')
            && let Some((min, max)) = pending.take()
        {
            out.push((table.clone(), key.to_string(), min, max));
        }
    }
    out
}

/// `example` with `[table] key = value` set: the key's line replaced (or, if the key is
/// only shown commented out, that line). Panics if the key is not in `example`.
pub fn example_with(example: &str, table: &str, key: &str, value: &str) -> String {
    // The key's own line, else its commented-out line.
    for commented in [false, true] {
        let mut current = String::new();
        let mut done = false;
        let mut out = String::new();
        for line in example.lines() {
            let trimmed = line.trim();
            if let Some(t) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = t.to_string();
            }
            let assignment = match trimmed.strip_prefix("# ") {
                Some(rest) if commented => rest,
                Some(_) => "",
                None => trimmed,
            };
            if !done && current == table && assignment.starts_with(&format!("{key} = ")) {
                out.push_str(&format!("{key} = {value}\n"));
                done = true;
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        if done {
            return out;
        }
    }
    panic!("[{table}] {key} is not in the example")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minimal configuration of the issue, exactly as written there.
    const MINIMAL: &str = r#"
device_id = "gw-1"
[source]
kind = "csv"          # simulate | csv | stdin
path = "readings.csv" # header: timestamp,<channel>,...
rate_hz = 2000        # 0 = as fast as possible
[batch]
max_rows = 178
max_age = "60s"
[spool]
dir = "spool"
max_bytes = "64MiB"
when_full = "refuse-new"   # or drop-oldest
[s3]
endpoint = "http://127.0.0.1:9000"
bucket = "lake"
region = "us-east-1"
path_style = true
prefix = "raw"
"#;

    #[test]
    fn the_minimal_configuration_works_as_written() {
        let c = AgentConfig::parse(MINIMAL, Path::new("/etc/sensorlake")).unwrap();
        assert_eq!(c.device_id.as_str(), "gw-1");
        assert_eq!(
            c.source,
            SourceConfig::Csv {
                path: PathBuf::from("/etc/sensorlake/readings.csv"),
                rate_hz: Some(2000.0)
            }
        );
        assert_eq!(c.batch.max_rows, 178);
        assert_eq!(c.batch.max_age, Some(Duration::from_secs(60)));
        assert_eq!(c.spool_dir, PathBuf::from("/etc/sensorlake/spool"));
        assert_eq!(c.spool.max_bytes, 64 << 20);
        assert_eq!(c.spool.when_full, WhenFull::RefuseNew);
        assert_eq!(c.target.endpoint, "http://127.0.0.1:9000");
        assert!(c.target.path_style);
        assert_eq!(c.keys.prefix(), "raw");
        assert_eq!(c.journal_sync_every, None);
        assert_eq!(
            c.status_file,
            Some(PathBuf::from("/etc/sensorlake/spool/status.json"))
        );
    }

    #[test]
    fn the_opensensor_layout_batches_by_window_unless_told_otherwise() {
        let base = "device_id = \"st-1\"\n[s3]\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"lake\"\nlayout = \"opensensor\"\n";
        let c = AgentConfig::parse(base, Path::new("/x")).unwrap();
        assert_eq!(c.batch, sensorlake::opensensor::batch_config());
        assert_eq!(c.keys.layout(), Layout::OpenSensor);
        let text = format!("{base}[batch]\nwindow = \"5min\"\n");
        let c = AgentConfig::parse(&text, Path::new("/x")).unwrap();
        assert_eq!(c.batch.window, Some(Duration::from_secs(300)));
        assert_eq!(c.batch.max_age, None);
    }

    #[test]
    fn the_example_file_documents_a_valid_configuration() {
        let text = include_str!("../../../sensorlake.example.toml");
        let c = AgentConfig::parse(text, Path::new("/x")).unwrap();
        // The example shows every default: it must equal the defaults.
        assert_eq!(c.batch, BatchConfig::default());
        assert_eq!(c.spool, SpoolConfig::default());
        assert_eq!(c.upload, UploadConfig::default());
        assert_eq!(c.http, HttpConfig::default());
        assert_eq!(c.encode, EncodeOptions::default());
        assert_eq!(c.url_expiry, Duration::from_secs(300));
        assert_eq!(c.status_interval, Duration::from_secs(10));
        assert_eq!(c.credentials, CredentialsConfig::Keys { profile: None });
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| {
            format!(
                "{:#}",
                AgentConfig::parse(text, Path::new(".")).unwrap_err()
            )
        };
        let s3 = "[s3]\nendpoint = \"http://x\"\nbucket = \"lake\"\n";
        assert!(err(&format!("device_id = \"a/b\"\n{s3}")).contains("device_id"));
        let e = err(&format!("device_id = \"a\"\n[spool]\nmax_byte = 1\n{s3}"));
        assert!(e.contains("max_byte"), "{e}");
        let e = err(&format!(
            "device_id = \"a\"\n[spool]\nmax_bytes = \"64 parsecs\"\n{s3}"
        ));
        assert!(e.contains("[spool] max_bytes"), "{e}");
        let e = err(&format!(
            "device_id = \"a\"\n[source]\nkind = \"csv\"\n{s3}"
        ));
        assert!(e.contains("path is required"), "{e}");
        let e = err(&format!(
            "device_id = \"a\"\n[source]\nkind = \"stdin\"\nrate_hz = 3\n{s3}"
        ));
        assert!(e.contains("rate_hz does not apply"), "{e}");
        let e = err(&format!(
            "device_id = \"a\"\n[batch]\nmax_age = \"soon\"\n{s3}"
        ));
        assert!(e.contains("[batch] max_age"), "{e}");
        let e = err(&format!(
            "device_id = \"a\"\n[credentials]\nsource = \"broker\"\n{s3}"
        ));
        assert!(e.contains("[credentials] broker_url is required"), "{e}");
        let e = err(&format!(
            "device_id = \"a\"\n[credentials]\nsource = \"vault\"\n{s3}"
        ));
        assert!(e.contains("expected keys or broker"), "{e}");
        assert!(err("device_id = \"a\"\n").contains("s3"));
    }

    #[test]
    fn every_number_has_a_documented_range_checked_at_load() {
        let example = include_str!("../../../sensorlake.example.toml");
        let ranges = documented_ranges(example);
        let keys: Vec<String> = ranges
            .iter()
            .map(|(t, k, _, _)| format!("[{t}] {k}"))
            .collect();
        for key in [
            "[source] rate_hz",
            "[source] seed",
            "[source] start",
            "[source] rows",
            "[batch] max_rows",
            "[batch] max_age",
            "[batch] max_pending",
            "[spool] max_bytes",
            "[spool] max_files",
            "[journal] sync_every_rows",
            "[s3] url_expiry",
            "[http] connect_timeout",
            "[http] timeout",
            "[upload] backoff_initial",
            "[upload] backoff_max",
            "[upload] pause_initial",
            "[upload] pause_max",
            "[status] interval",
        ] {
            assert!(
                keys.contains(&key.to_string()),
                "{key} has no range: {keys:?}"
            );
        }
        for (table, key, min, max) in &ranges {
            for value in [min, max] {
                let text = example_with(example, table, key, value);
                let parsed = AgentConfig::parse(&text, Path::new("/x"));
                // A minimum backoff/pause maximum is below its default initial: set both.
                let parsed = match (table.as_str(), key.as_str()) {
                    ("upload", "backoff_max") => AgentConfig::parse(
                        &example_with(&text, "upload", "backoff_initial", value),
                        Path::new("/x"),
                    ),
                    ("upload", "pause_max") => AgentConfig::parse(
                        &example_with(&text, "upload", "pause_initial", value),
                        Path::new("/x"),
                    ),
                    ("upload", "backoff_initial") if value == max => AgentConfig::parse(
                        &example_with(&text, "upload", "backoff_max", value),
                        Path::new("/x"),
                    ),
                    ("upload", "pause_initial") if value == max => AgentConfig::parse(
                        &example_with(&text, "upload", "pause_max", value),
                        Path::new("/x"),
                    ),
                    _ => parsed,
                };
                if let Err(e) = parsed {
                    panic!("[{table}] {key} = {value} is documented but refused: {e:#}");
                }
            }
        }
    }

    #[test]
    fn values_beyond_a_range_are_refused_with_the_key_named() {
        let example = include_str!("../../../sensorlake.example.toml");
        for (table, key, value) in [
            ("source", "rate_hz", "1e-20"),
            ("source", "rate_hz", "1e7"),
            ("source", "rate_hz", "-1"),
            ("source", "rows", "1000000001"),
            ("source", "start", "\"9999-12-31T23:59:59Z\""),
            ("source", "start", "\"1969-12-31T23:59:59Z\""),
            ("batch", "max_rows", "0"),
            ("batch", "max_rows", "1000001"),
            ("batch", "max_age", "\"18446744073709551615\""),
            ("batch", "max_age", "\"8785h\""),
            ("batch", "max_pending", "1025"),
            ("spool", "max_bytes", "\"1025GiB\""),
            ("spool", "max_bytes", "\"1KiB\""),
            ("spool", "max_bytes", "\"1.5B\""),
            ("spool", "max_files", "0"),
            ("journal", "sync_every_rows", "0"),
            ("s3", "url_expiry", "\"169h\""),
            ("http", "timeout", "\"0s\""),
            ("http", "connect_timeout", "\"2h\""),
            ("upload", "backoff_max", "\"1ms\""),
            ("upload", "pause_max", "\"25h\""),
            ("status", "interval", "\"10ms\""),
        ] {
            let text = example_with(example, table, key, value);
            let err = match AgentConfig::parse(&text, Path::new("/x")) {
                Ok(_) => panic!("[{table}] {key} = {value} was accepted"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                err.contains(&format!("[{table}] {key}")),
                "{key} = {value}: {err}"
            );
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        assert!(parse_size("1.3B").unwrap_err().contains("whole number"));
        assert!(
            parse_size("99999999999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_size("1.").is_err() && parse_size(".5").is_err());
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("15min"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
