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
    let number: f64 = number
        .parse()
        .map_err(|_| format!("size {text:?}: use e.g. 64MiB, 512KiB, 10MB or plain bytes"))?;
    let factor: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => {
            return Err(format!(
                "size {text:?}: unknown unit {other:?} (B, KiB, MiB, GiB, kB, MB, GB)"
            ));
        }
    };
    Ok((number * factor) as u64)
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
        /// Timestamp of row 0 (µs since the epoch).
        start_us: i64,
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
            match s.rate_hz {
                None => Ok(default),
                Some(0.0) => Ok(None),
                Some(r) if r.is_finite() && r > 0.0 => Ok(Some(r)),
                Some(r) => bail!("[source] rate_hz: {r} is not a rate (0 = as fast as possible)"),
            }
        };
        let kind = s.kind.as_deref().unwrap_or("simulate");
        let allowed: &[&str] = match kind {
            "simulate" => &["profile", "seed", "start", "rows", "rate_hz"],
            "csv" => &["path", "rate_hz"],
            "stdin" => &[],
            other => bail!("[source] kind: {other:?} is not simulate, csv or stdin"),
        };
        for (key, set) in [
            ("path", s.path.is_some()),
            ("rate_hz", s.rate_hz.is_some()),
            ("profile", s.profile.is_some()),
            ("seed", s.seed.is_some()),
            ("start", s.start.is_some()),
            ("rows", s.rows.is_some()),
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
                let start = s.start.as_deref().unwrap_or("2024-01-01T00:00:00Z");
                let start: jiff::Timestamp = start.parse().map_err(|e| {
                    anyhow!("[source] start: {start:?} is not an RFC 3339 time: {e}")
                })?;
                SourceConfig::Simulate {
                    profile,
                    seed: s.seed.unwrap_or(1),
                    start_us: start.as_microsecond(),
                    rows: s.rows.filter(|&r| r > 0),
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
                channel.scale = c.scale;
                out.push(channel);
            }
            Some(out)
        };

        // The OpenSensor preset batches by 15-minute clock windows only (one file per
        // window of a 5 s station); explicit [batch] keys still override.
        let layout = parse_with(&raw.s3.layout, "[s3] layout", Layout::Hive, Layout::parse)?;
        let defaults = match layout {
            Layout::Hive => BatchConfig::default(),
            Layout::OpenSensor => sensorlake::opensensor::batch_config(),
        };
        let b = &raw.batch;
        let batch = BatchConfig {
            max_rows: b.max_rows.unwrap_or(defaults.max_rows),
            max_age: match &b.max_age {
                Some(t) if t == "none" => None,
                Some(t) => Some(parse_duration(t).map_err(|e| anyhow!("[batch] max_age: {e}"))?),
                None => defaults.max_age,
            },
            window: match &b.window {
                Some(t) if t == "none" => None,
                Some(t) => Some(parse_duration(t).map_err(|e| anyhow!("[batch] window: {e}"))?),
                None => defaults.window,
            },
            max_pending: b.max_pending.unwrap_or(defaults.max_pending),
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
        if spool.max_files == 0 || spool.max_bytes == 0 {
            bail!("[spool] max_bytes and max_files must be above 0");
        }
        let spool_dir = resolve(sp.dir.as_deref().unwrap_or(Path::new("spool")));

        let journal_sync_every = if raw.journal.enabled {
            Some(raw.journal.sync_every_rows.unwrap_or(1).max(1))
        } else {
            None
        };

        let s3 = &raw.s3;
        let target = S3Target {
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            region: s3.region.clone().unwrap_or_else(|| "us-east-1".to_string()),
            path_style: s3.path_style,
        };
        let keys = KeyTemplate::new(layout, s3.prefix.as_deref().unwrap_or(""))
            .map_err(|e| anyhow!("[s3] prefix: {e}"))?;
        let url_expiry = opt_duration(&s3.url_expiry, "[s3] url_expiry", Duration::from_secs(300))?;

        let h = &raw.http;
        let http_defaults = HttpConfig::default();
        let http = HttpConfig {
            connect_timeout: opt_duration(
                &h.connect_timeout,
                "[http] connect_timeout",
                http_defaults.connect_timeout,
            )?,
            timeout: opt_duration(&h.timeout, "[http] timeout", http_defaults.timeout)?,
            ca_file: h.ca_file.as_deref().map(resolve),
        };

        let u = &raw.upload;
        let ud = UploadConfig::default();
        let upload = UploadConfig {
            backoff_initial: opt_duration(
                &u.backoff_initial,
                "[upload] backoff_initial",
                ud.backoff_initial,
            )?,
            backoff_max: opt_duration(&u.backoff_max, "[upload] backoff_max", ud.backoff_max)?,
            pause_initial: opt_duration(
                &u.pause_initial,
                "[upload] pause_initial",
                ud.pause_initial,
            )?,
            pause_max: opt_duration(&u.pause_max, "[upload] pause_max", ud.pause_max)?,
            verify_rows: u.verify_rows.unwrap_or(ud.verify_rows),
            ..ud
        };

        let st = &raw.status;
        let status_interval =
            opt_duration(&st.interval, "[status] interval", Duration::from_secs(10))?;
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

        Ok(Self {
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
    fn sizes_and_durations() {
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
