//! The object key of a batch: a pure function of the batch, so a retried upload writes
//! the same bytes to the same key and a different batch never lands on another's key.
//!
//! `{prefix}/` then what the [`Layout`] renders (see [`crate::layout`]): by default
//! (Hive, all UTC)
//! `{prefix}/device_id={id}/dt={YYYY-MM-DD}/hour={HH}/{first_ts_us}-{hash8}.parquet`.
//!
//! `hash8` is the first 8 hex digits of SHA-256 over the batch in this canonical form
//! (stable across library versions):
//!
//! ```text
//! "sensorlake-rows-v1\n"
//! per channel:  name ":" type ("f32" | "f64" | "i16" | "i32" | "i64") ["?" if nullable] "\n"
//! per row:      ts as i64 little-endian (µs since the epoch, after truncation to the
//!               schema's resolution)
//!               per channel: 0x00 for null, or 0x01 followed by the value's bits
//!               little-endian (f32: its IEEE 754 bits as u32; f64: its bits as u64;
//!               i16/i32: i32; i64: i64)
//! ```

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::batch::{Batch, ColumnValues};
use crate::civil;
use crate::layout::{KeyFacts, rfc3339};
use crate::schema::Schema;

/// A validated device id: `[A-Za-z0-9_-]{1,64}` (UUIDs fit), never a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<Self, KeyError> {
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(id.to_string()))
        } else {
            Err(KeyError::BadDeviceId(id.to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub use crate::layout::Layout;

/// An invalid id, prefix or layout name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The device id breaks `[A-Za-z0-9_-]{1,64}`.
    BadDeviceId(String),
    /// The prefix is not a plain relative path.
    BadPrefix(String),
    /// Unknown layout name.
    BadLayout(String),
    /// The batch has no rows.
    EmptyBatch,
    /// A row's timestamp (µs) lies outside the accepted range, so its date cannot be
    /// rendered (never replaced by a default date).
    BadTimestamp(i64),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDeviceId(id) => write!(
                f,
                "device id {id:?} is not allowed: use 1-64 characters from [A-Za-z0-9_-]"
            ),
            Self::BadPrefix(p) => write!(
                f,
                "key prefix {p:?} is not allowed: use segments of [A-Za-z0-9 _.=+-] separated by '/', no '.' or '..' segments, no leading or trailing '/', at most 200 characters"
            ),
            Self::BadLayout(l) => write!(
                f,
                "unknown layout {l:?}: expected {}",
                crate::layout::BUILT_IN.names()
            ),
            Self::EmptyBatch => write!(f, "an empty batch has no key"),
            Self::BadTimestamp(ts) => write!(
                f,
                "no key for a batch with timestamp {ts} µs: it is outside {}",
                crate::batch::TS_RANGE
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// Renders object keys for one device: layout plus prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    layout: Layout,
    prefix: String,
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty()
        || (prefix.len() <= 200
            && prefix.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b' ' | b'_' | b'.' | b'=' | b'+' | b'-')
                    })
            }))
}

impl KeyTemplate {
    /// A template; `prefix` may be empty (keys then start at the first partition).
    pub fn new(layout: Layout, prefix: &str) -> Result<Self, KeyError> {
        if !valid_prefix(prefix) {
            return Err(KeyError::BadPrefix(prefix.to_string()));
        }
        Ok(Self {
            layout,
            prefix: prefix.to_string(),
        })
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The prefix (no leading or trailing `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The object key of `batch` for `device`.
    pub fn render(&self, device: &DeviceId, batch: &Batch) -> Result<String, KeyError> {
        let hash8 = hash8(batch);
        let facts = key_facts(batch, &hash8)?;
        let mut key = String::with_capacity(128);
        if !self.prefix.is_empty() {
            key.push_str(&self.prefix);
            key.push('/');
        }
        self.layout.render(&mut key, device, &facts);
        Ok(key)
    }

    /// Checks that `key` is where `batch` of `device` belongs, for rows read back from a
    /// file (whose cut, and so whether its name was plain or hashed, is unknown): the
    /// key [`KeyTemplate::render`] gives, or one [`KeyTemplate::parse`] reads as this
    /// device's, whose hash (if the name has one) is the rows' hash, whose time range
    /// holds the first row, and whose layout accepts the rows
    /// ([`crate::layout::KeyLayout::check_rows`]).
    pub fn check(&self, key: &str, device: &DeviceId, batch: &Batch) -> Result<(), String> {
        if self.render(device, batch).map_err(|e| e.to_string())? == key {
            return Ok(());
        }
        let hash8 = hash8(batch);
        let facts = key_facts(batch, &hash8).map_err(|e| e.to_string())?;
        let parsed = self.parse(key).map_err(|e| e.to_string())?;
        if &parsed.device != device {
            return Err(KeyRefusal::OtherDevice {
                expected: device.clone(),
                found: parsed.device,
            }
            .to_string());
        }
        if let Some(hash) = parsed.hash8.as_deref().filter(|&h| h != hash8) {
            return Err(format!("hash {hash:?} is not the rows' hash {hash8}"));
        }
        if !(parsed.earliest_us..=parsed.latest_us).contains(&facts.first_us) {
            return Err(format!(
                "the first row ({}) is outside the key's time range {} .. {}",
                rfc3339(facts.first_us),
                rfc3339(parsed.earliest_us),
                rfc3339(parsed.latest_us)
            ));
        }
        self.layout.check_rows(&parsed, &facts)
    }
}

/// What the layout may use of `batch` to name it; `hash8` is the rows' hash.
fn key_facts<'a>(batch: &Batch, hash8: &'a str) -> Result<KeyFacts<'a>, KeyError> {
    let first = batch.first_ts_us().ok_or(KeyError::EmptyBatch)?;
    if let Some(&bad) = batch.timestamps().iter().find(|&&t| !civil::in_range(t)) {
        return Err(KeyError::BadTimestamp(bad));
    }
    Ok(KeyFacts {
        first_us: first,
        last_us: batch.timestamps().iter().copied().max().unwrap_or(first),
        window_end_us: batch.window().map(|(_, end)| end),
        whole_window: batch.is_whole_window(),
        hash8,
    })
}

/// How far from now a key's timestamp may be for [`KeyTemplate::validate_for`]: backlogs
/// of up to `max_age` drain, clocks up to `max_ahead` fast are tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// The oldest accepted key, before now. Default: 30 days.
    pub max_age: Duration,
    /// The newest accepted key, after now. Default: 5 minutes.
    pub max_ahead: Duration,
}

impl Default for TimeWindow {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 86_400),
            max_ahead: Duration::from_secs(5 * 60),
        }
    }
}

/// What an object key says about its file, read back by [`KeyTemplate::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// The device the key belongs to.
    pub device: DeviceId,
    /// The earliest first-row timestamp (µs since the epoch) the key allows.
    pub earliest_us: i64,
    /// The latest first-row timestamp the key allows: equal to `earliest_us` for the
    /// Hive layout (the name carries it); for the OpenSensor layout the first row lies
    /// in the hour before the window end (and on the key's day).
    pub latest_us: i64,
    /// The rows' hash, when the name carries one.
    pub hash8: Option<String>,
}

impl ParsedKey {
    /// Whether the name carries the rows' hash (so a file with other rows never gets
    /// this key): always for the Hive layout, for the OpenSensor layout only for
    /// batches cut before their window's end.
    pub fn carries_rows_hash(&self) -> bool {
        self.hash8.is_some()
    }
}

/// Why a key is not one the library would write for a device now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Longer than S3's 1024-byte limit.
    TooLong(usize),
    /// It does not start with the template's prefix.
    OtherPrefix {
        /// The prefix keys must start with.
        expected: String,
    },
    /// It is not of the layout's form; says which part and why.
    Malformed(String),
    /// It names another device.
    OtherDevice {
        /// The device asking.
        expected: DeviceId,
        /// The device the key names.
        found: DeviceId,
    },
    /// Its timestamp is outside the accepted window around now.
    OutsideWindow {
        /// The key's (earliest) first-row time, RFC 3339.
        key_time: String,
        /// The accepted window, RFC 3339.
        from: String,
        /// End of the accepted window, RFC 3339.
        to: String,
    },
}

impl fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(len) => write!(f, "key is {len} bytes, longer than 1024"),
            Self::OtherPrefix { expected } if expected.is_empty() => {
                write!(f, "key must start at the first partition")
            }
            Self::OtherPrefix { expected } => write!(f, "key must start with {expected:?}/"),
            Self::Malformed(why) => write!(f, "key is not of the layout's form: {why}"),
            Self::OtherDevice { expected, found } => {
                write!(
                    f,
                    "key belongs to device {:?}, not to {:?}",
                    found.as_str(),
                    expected.as_str()
                )
            }
            Self::OutsideWindow { key_time, from, to } => write!(
                f,
                "key time {key_time} is outside the accepted window {from} .. {to}"
            ),
        }
    }
}

impl std::error::Error for KeyRefusal {}

impl KeyTemplate {
    /// Reads `key` back: it must be exactly of the form [`KeyTemplate::render`] writes
    /// with this prefix and layout (every partition, zero padding and name), with
    /// partitions that agree with the timestamp. Anything else — `..`, percent-escapes,
    /// backslashes, control characters, extra or missing segments, another date
    /// format — is refused, saying which part is wrong.
    pub fn parse(&self, key: &str) -> Result<ParsedKey, KeyRefusal> {
        if key.len() > 1024 {
            return Err(KeyRefusal::TooLong(key.len()));
        }
        let rest = if self.prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(self.prefix.as_str())
                .and_then(|r| r.strip_prefix('/'))
        };
        let rest = rest.ok_or_else(|| KeyRefusal::OtherPrefix {
            expected: self.prefix.clone(),
        })?;
        let segments: Vec<&str> = rest.split('/').collect();
        self.layout.parse(&segments)
    }

    /// [`KeyTemplate::parse`], then checks that the key belongs to `device` and that its
    /// time lies within `window` around `now_us` (µs since the epoch).
    pub fn validate_for(
        &self,
        device: &DeviceId,
        key: &str,
        now_us: i64,
        window: &TimeWindow,
    ) -> Result<ParsedKey, KeyRefusal> {
        let parsed = self.parse(key)?;
        if &parsed.device != device {
            return Err(KeyRefusal::OtherDevice {
                expected: device.clone(),
                found: parsed.device,
            });
        }
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let from = now_us.saturating_sub(micros(window.max_age));
        let to = now_us.saturating_add(micros(window.max_ahead));
        if parsed.latest_us < from || parsed.earliest_us > to {
            return Err(KeyRefusal::OutsideWindow {
                key_time: rfc3339(parsed.earliest_us),
                from: rfc3339(from),
                to: rfc3339(to),
            });
        }
        Ok(parsed)
    }
}

fn feed_schema(hasher: &mut Sha256, schema: &Schema) {
    hasher.update(b"sensorlake-rows-v1\n");
    for channel in &schema.channels {
        hasher.update(channel.name.as_bytes());
        hasher.update(b":");
        hasher.update(channel.ty.name().as_bytes());
        if channel.nullable {
            hasher.update(b"?");
        }
        hasher.update(b"\n");
    }
}

/// SHA-256 of the batch in the canonical form documented in this module.
pub fn rows_sha256(batch: &Batch) -> [u8; 32] {
    let mut hasher = Sha256::new();
    feed_schema(&mut hasher, batch.schema());
    let columns = batch.columns();
    let mut cursors = vec![0usize; columns.len()];
    let mut row_bytes = Vec::with_capacity(8 + 9 * columns.len());
    for (row, ts) in batch.timestamps().iter().enumerate() {
        row_bytes.clear();
        row_bytes.extend_from_slice(&ts.to_le_bytes());
        for (column, cursor) in columns.iter().zip(cursors.iter_mut()) {
            if column.def_levels.as_ref().is_some_and(|l| l[row] == 0) {
                row_bytes.push(0);
                continue;
            }
            row_bytes.push(1);
            match &column.values {
                ColumnValues::F32(v) => {
                    row_bytes.extend_from_slice(&v[*cursor].to_bits().to_le_bytes())
                }
                ColumnValues::F64(v) => {
                    row_bytes.extend_from_slice(&v[*cursor].to_bits().to_le_bytes())
                }
                ColumnValues::I32(v) => row_bytes.extend_from_slice(&v[*cursor].to_le_bytes()),
                ColumnValues::I64(v) => row_bytes.extend_from_slice(&v[*cursor].to_le_bytes()),
            }
            *cursor += 1;
        }
        hasher.update(&row_bytes);
    }
    hasher.finalize().into()
}

/// First 8 lowercase hex digits of [`rows_sha256`].
pub fn hash8(batch: &Batch) -> String {
    let digest = rows_sha256(batch);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A template of each registered layout whose device partition `key` names, with the
/// key's part before that partition as the prefix (how a key found in a file or a spool
/// is read without its configuration).
pub fn templates_for(key: &str) -> Vec<Result<KeyTemplate, KeyError>> {
    let mut templates = Vec::new();
    for &layout in crate::layout::BUILT_IN.all() {
        let marker = format!("{}=", layout.device_partition());
        let prefix = match key.find(&marker) {
            Some(0) => "",
            Some(i) if key.as_bytes()[i - 1] == b'/' => &key[..i - 1],
            _ => continue,
        };
        templates.push(KeyTemplate::new(layout, prefix));
    }
    templates
}

/// Whether `key`, read by its layout, carries its rows' hash (every Hive key; the
/// `data_HHMM_{hash8}.parquet` names of partial OpenSensor windows): writing such a key
/// twice stores the same rows, so it is the only kind of key ever written without
/// `If-None-Match: *` (for servers without conditional writes, when configured). A plain
/// `data_HHMM.parquet`, or a key no layout reads, is not.
pub fn carries_rows_hash(key: &str) -> bool {
    templates_for(key)
        .into_iter()
        .flatten()
        .any(|t| t.parse(key).is_ok_and(|p| p.carries_rows_hash()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::batch::{BatchConfig, Batcher, Value};
    use crate::schema::Channel;

    const T0: i64 = 1_709_280_000_000_000; // 2024-03-01T08:00:00Z

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![Channel::f32("a"), Channel::f32("b").nullable()]).unwrap())
    }

    fn batch(rows: &[(i64, f32, Option<f32>)]) -> Batch {
        let rows: Vec<(i64, [Value; 2])> = rows
            .iter()
            .map(|&(t, a, b)| (t, [Value::F32(a), b.into()]))
            .collect();
        Batch::from_rows(schema(), rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap()
    }

    #[test]
    fn only_names_with_the_rows_hash_carry_it() {
        assert!(carries_rows_hash(
            "raw/device_id=a/dt=2024-03-01/hour=08/1709280000000000-0badcafe.parquet"
        ));
        assert!(carries_rows_hash(
            "station=a/year=2024/month=03/day=01/data_0815_0badcafe.parquet"
        ));
        for key in [
            "station=a/year=2024/month=03/day=01/data_0815.parquet",
            "x/1709280000000000-0BADCAFE.parquet",
            "x/1709280000000000-0badcafe.csv",
            "0badcafe.parquet",
            "x/a0badcafe.parquet",
        ] {
            assert!(!carries_rows_hash(key), "{key}");
        }
    }
    #[test]
    fn device_ids_are_never_paths() {
        for bad in [
            "",
            "a/b",
            "..",
            "a..b/c",
            "a b",
            "é",
            "a\\b",
            "a\0b",
            &"x".repeat(65),
        ] {
            assert_eq!(
                DeviceId::new(bad),
                Err(KeyError::BadDeviceId(bad.to_string()))
            );
        }
        for good in [
            "gw-1",
            "A_b-9",
            "123e4567-e89b-12d3-a456-426614174000",
            &"x".repeat(64),
        ] {
            assert_eq!(DeviceId::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn prefixes_are_plain_relative_paths() {
        for bad in ["/raw", "raw/", "a//b", "a/../b", ".", "a\\b", "a?b"] {
            assert!(KeyTemplate::new(Layout::Hive, bad).is_err(), "{bad}");
        }
        for good in ["", "raw", "lake/raw v1", "a=b/c.d"] {
            assert!(KeyTemplate::new(Layout::Hive, good).is_ok(), "{good}");
        }
    }

    #[test]
    fn hive_key_layout() {
        let b = batch(&[
            (T0 + 1_500_000, 1.0, None),
            (T0 + 2_500_000, 2.0, Some(3.0)),
        ]);
        let key = KeyTemplate::new(Layout::Hive, "raw")
            .unwrap()
            .render(&DeviceId::new("gw-1").unwrap(), &b)
            .unwrap();
        let hash = hash8(&b);
        assert_eq!(
            key,
            format!(
                "raw/device_id=gw-1/dt=2024-03-01/hour=08/{}-{hash}.parquet",
                T0 + 1_500_000
            )
        );
        assert_eq!(hash.len(), 8);
    }

    #[test]
    fn hash_is_stable_and_sensitive_to_every_value() {
        let rows = [(T0, 1.0, None), (T0 + 1, 2.0, Some(3.0))];
        // Pinned: the canonical form must not change across versions.
        assert_eq!(hash8(&batch(&rows)), hash8(&batch(&rows)));
        let expected = {
            let mut h = Sha256::new();
            h.update(b"sensorlake-rows-v1\na:f32\nb:f32?\n");
            h.update(T0.to_le_bytes());
            h.update([1]);
            h.update(1.0f32.to_bits().to_le_bytes());
            h.update([0]);
            h.update((T0 + 1).to_le_bytes());
            h.update([1]);
            h.update(2.0f32.to_bits().to_le_bytes());
            h.update([1]);
            h.update(3.0f32.to_bits().to_le_bytes());
            let d: [u8; 32] = h.finalize().into();
            d
        };
        assert_eq!(rows_sha256(&batch(&rows)), expected);
        let variants = [
            [(T0, 1.0, None), (T0 + 2, 2.0, Some(3.0))],
            [(T0, 1.5, None), (T0 + 1, 2.0, Some(3.0))],
            [(T0, 1.0, Some(0.0)), (T0 + 1, 2.0, Some(3.0))],
            [(T0, 1.0, None), (T0 + 1, 2.0, None)],
        ];
        for v in variants {
            assert_ne!(hash8(&batch(&v)), hash8(&batch(&rows)));
        }
    }

    fn hive_key() -> (KeyTemplate, DeviceId, String, i64) {
        let b = batch(&[
            (T0 + 1_500_000, 1.0, None),
            (T0 + 2_500_000, 2.0, Some(3.0)),
        ]);
        let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
        let id = DeviceId::new("gw-1").unwrap();
        let key = template.render(&id, &b).unwrap();
        (template, id, key, T0 + 1_500_000)
    }

    #[test]
    fn keys_at_both_ends_of_the_range_name_their_own_date() {
        let max = crate::batch::MAX_TS_US;
        let id = DeviceId::new("d").unwrap();
        let hive = KeyTemplate::new(Layout::Hive, "").unwrap();
        for (ts, dir) in [
            (0, "device_id=d/dt=1970-01-01/hour=00/"),
            (max, "device_id=d/dt=9999-12-31/hour=23/"),
            (
                max - 26 * 3_600_000_000,
                "device_id=d/dt=9999-12-30/hour=21/",
            ),
        ] {
            let key = hive.render(&id, &batch(&[(ts, 1.0, None)])).unwrap();
            assert!(key.starts_with(dir), "{key}");
            let parsed = hive.parse(&key).unwrap();
            assert_eq!(parsed.earliest_us, ts);
        }
        let mut b = Batcher::new(
            schema(),
            BatchConfig {
                window: Some(Duration::from_secs(15 * 60)),
                max_age: None,
                ..Default::default()
            },
        )
        .unwrap();
        b.push(max, &[1.0.into(), Value::Null]).unwrap();
        b.flush();
        let os = KeyTemplate::new(Layout::OpenSensor, "").unwrap();
        let key = os.render(&id, &b.pop_ready().unwrap()).unwrap();
        assert!(
            key.starts_with("station=d/year=9999/month=12/day=31/data_0000_"),
            "{key}"
        );
        assert!(os.parse(&key).is_ok(), "{key}");
    }

    #[test]
    fn rendered_keys_parse_back() {
        let (template, id, key, first) = hive_key();
        let parsed = template.parse(&key).unwrap();
        assert_eq!(parsed.device, id);
        assert_eq!((parsed.earliest_us, parsed.latest_us), (first, first));
        assert_eq!(
            parsed.hash8.as_deref(),
            Some(&key[key.len() - 16..key.len() - 8])
        );
        // Without a prefix keys start at the first partition.
        let bare = KeyTemplate::new(Layout::Hive, "").unwrap();
        let bare_key = key.strip_prefix("raw/").unwrap();
        assert_eq!(bare.parse(bare_key).unwrap().device, id);
        assert!(bare.parse(&key).is_err());

        // OpenSensor: whole and partial windows; the first row lies in the key's range.
        let window = Duration::from_secs(15 * 60);
        let mut b = Batcher::new(
            schema(),
            BatchConfig {
                max_rows: 1000,
                max_age: None,
                window: Some(window),
                ..Default::default()
            },
        )
        .unwrap();
        let w = window.as_micros() as i64;
        // 23:50 and 23:55 on 2024-03-01: the second window ends at midnight (data_0000).
        let late = T0 + 15 * 3_600_000_000 + 50 * 60_000_000;
        for t in [T0 + 60_000_000, T0 + w, late, late + 5 * 60_000_000] {
            b.push(t, &[1.0.into(), Value::Null]).unwrap();
        }
        b.flush();
        let template = KeyTemplate::new(Layout::OpenSensor, "os").unwrap();
        let station = DeviceId::new("st-7").unwrap();
        let mut names = Vec::new();
        while let Some(batch) = b.pop_ready() {
            let key = template.render(&station, &batch).unwrap();
            let parsed = template.parse(&key).unwrap();
            let first = batch.first_ts_us().unwrap();
            assert_eq!(parsed.device, station);
            assert!(
                (parsed.earliest_us..=parsed.latest_us).contains(&first),
                "{key}: {parsed:?} {first}"
            );
            assert_eq!(parsed.hash8.is_some(), !batch.is_whole_window(), "{key}");
            names.push(key.rsplit('/').next().unwrap().to_string());
        }
        assert!(
            names.iter().any(|n| n.starts_with("data_0000")),
            "{names:?}"
        );
    }

    #[test]
    fn parse_refuses_keys_the_library_never_writes() {
        let (template, _, key, first) = hive_key();
        let name = key.rsplit('/').next().unwrap();
        let bad = [
            key.replace("/dt=", "/../dt="),
            key.replace("/dt=", "/%2e%2e/dt="),
            key.replace("device_id=gw-1/", "device_id=gw-1%2Fdt="),
            key.replace("device_id=gw-1", "device_id=gw-1%2F..%2Fgw-2"),
            key.replace('/', "\\"),
            key.replace("gw-1", "gw-1\0"),
            key.replace("gw-1", &"g".repeat(65)),
            format!("{key}/extra.parquet"),
            key.replace("/hour=08", ""),
            key.replace("dt=2024-03-01", "dt=2024-3-01"),
            key.replace("dt=2024-03-01", "dt=20240301"),
            key.replace("dt=2024-03-01", "dt=2024-02-30"),
            key.replace("hour=08", "hour=8"),
            key.replace("hour=08", "hour=24"),
            key.replace("hour=08", "hour=09"),
            key.replace("dt=", "date="),
            key.replace(".parquet", ".csv"),
            key.replace(&first.to_string(), &format!("0{first}")),
            key.replace(&first.to_string(), &format!("+{first}")),
            key.replace(name, &name.to_uppercase()),
            key.replace(name, &name.replacen('-', "", 1)),
            format!("{key}\n"),
            format!(" {key}"),
            format!("/{key}"),
            key.replace("raw/", "raw//"),
            key.replace("raw/", "rawx/"),
            key.replace("raw/", ""),
            format!("{}{}", key, "x".repeat(1024)),
        ];
        for k in &bad {
            assert!(template.parse(k).is_err(), "{k:?} was accepted");
        }
        assert!(matches!(
            template.parse(&bad[bad.len() - 1]),
            Err(KeyRefusal::TooLong(_))
        ));
        assert!(matches!(
            template.parse(&bad[bad.len() - 2]),
            Err(KeyRefusal::OtherPrefix { .. })
        ));
        let os = KeyTemplate::new(Layout::OpenSensor, "").unwrap();
        for k in [
            "station=st-7/year=2024/month=03/day=01/data_0830.parquet",
            "station=st-7/year=2024/month=03/day=01/data_0830_0123abcd.parquet",
        ] {
            assert!(os.parse(k).is_ok(), "{k}");
        }
        for k in [
            "station=st-7/year=2024/month=3/day=01/data_0830.parquet",
            "station=st-7/year=2024/month=13/day=01/data_0830.parquet",
            "station=st-7/year=2024/month=02/day=30/data_0830.parquet",
            "station=st-7/year=2024/month=03/day=01/data_2400.parquet",
            "station=st-7/year=2024/month=03/day=01/data_0860.parquet",
            "station=st-7/year=2024/month=03/day=01/data_830.parquet",
            "station=st-7/year=2024/month=03/day=01/data_0830_0123ABCD.parquet",
            "station=st-7/year=2024/month=03/day=01/data_0830_.parquet",
            "station=st-7/year=2024/month=03/day=01/extra/data_0830.parquet",
            "device_id=st-7/year=2024/month=03/day=01/data_0830.parquet",
        ] {
            assert!(os.parse(k).is_err(), "{k} was accepted");
        }
    }

    #[test]
    fn validate_for_checks_the_device_and_the_time_window() {
        let (template, id, key, first) = hive_key();
        let window = TimeWindow::default();
        assert!(template.validate_for(&id, &key, first, &window).is_ok());
        let other = DeviceId::new("gw-2").unwrap();
        assert!(matches!(
            template.validate_for(&other, &key, first, &window),
            Err(KeyRefusal::OtherDevice { .. })
        ));
        let day = 86_400_000_000;
        // 29 days old: a backlog that still drains; 31 days: refused.
        assert!(
            template
                .validate_for(&id, &key, first + 29 * day, &window)
                .is_ok()
        );
        let old = template.validate_for(&id, &key, first + 31 * day, &window);
        assert!(
            matches!(old, Err(KeyRefusal::OutsideWindow { .. })),
            "{old:?}"
        );
        assert!(
            old.unwrap_err()
                .to_string()
                .contains("2024-03-01T08:00:01.5Z")
        );
        // 4 minutes in the future is clock drift; 6 minutes is refused.
        let minute = 60_000_000;
        assert!(
            template
                .validate_for(&id, &key, first - 4 * minute, &window)
                .is_ok()
        );
        assert!(
            template
                .validate_for(&id, &key, first - 6 * minute, &window)
                .is_err()
        );
    }

    #[test]
    fn opensensor_names_whole_windows_plainly_and_partial_ones_with_a_hash() {
        let window = Duration::from_secs(15 * 60);
        let mut b = Batcher::new(
            schema(),
            BatchConfig {
                max_rows: 1000,
                max_age: None,
                window: Some(window),
                ..Default::default()
            },
        )
        .unwrap();
        let w = window.as_micros() as i64;
        b.push(T0 + 60_000_000, &[1.0.into(), Value::Null]).unwrap(); // started mid-window
        b.push(T0 + w, &[2.0.into(), Value::Null]).unwrap();
        b.poll(T0 + 2 * w);
        let template = KeyTemplate::new(Layout::OpenSensor, "").unwrap();
        let id = DeviceId::new("st-7").unwrap();
        let first = b.pop_ready().unwrap();
        let second = b.pop_ready().unwrap();
        assert_eq!(
            template.render(&id, &first).unwrap(),
            format!(
                "station=st-7/year=2024/month=03/day=01/data_0815_{}.parquet",
                hash8(&first)
            )
        );
        assert_eq!(
            template.render(&id, &second).unwrap(),
            "station=st-7/year=2024/month=03/day=01/data_0830.parquet"
        );
        // Read back from a file, the cut is unknown: check() accepts the key's shape.
        let key = template.render(&id, &second).unwrap();
        let copy = Batch::from_rows(
            second.schema().clone(),
            {
                let mut rows = Vec::new();
                second.for_each_row(|t, v| rows.push((t, v.to_vec())));
                rows
            }
            .iter()
            .map(|(t, v)| (*t, v.as_slice())),
        )
        .unwrap();
        assert_eq!(template.check(&key, &id, &copy), Ok(()));
        let wrong_hash = format!(
            "station=st-7/year=2024/month=03/day=01/data_0830_{}.parquet",
            hash8(&first)
        );
        assert!(template.check(&wrong_hash, &id, &copy).is_err());
        let too_early = "station=st-7/year=2024/month=03/day=01/data_0815.parquet";
        assert!(template.check(too_early, &id, &copy).is_err());
        let other_day = "station=st-7/year=2024/month=03/day=02/data_0830.parquet";
        assert!(template.check(other_day, &id, &copy).is_err());
    }
}
