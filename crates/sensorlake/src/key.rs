//! The object key of a batch: a pure function of the batch, so a retried upload writes
//! the same bytes to the same key and a different batch never lands on another's key.
//!
//! Default (Hive) layout, all UTC:
//! `{prefix}/device_id={id}/dt={YYYY-MM-DD}/hour={HH}/{first_ts_us}-{hash8}.parquet`
//!
//! OpenSensor.Space layout:
//! `{prefix}/station={id}/year={YYYY}/month={MM}/day={DD}/data_{HHMM}.parquet`, where HHMM
//! is the end of the batch's clock-aligned window; a batch that does not hold its whole
//! window (cut early by a shutdown, a restart or the size limit) is named
//! `data_{HHMM}_{hash8}.parquet`.
//!
//! `hash8` is the first 8 hex digits of SHA-256 over the batch in this canonical form
//! (stable across library versions):
//!
//! ```text
//! "sensorlake-rows-v1\n"
//! per channel:  name ":" type ("f32" | "i16" | "i32" | "i64") ["?" if nullable] "\n"
//! per row:      ts as i64 little-endian (µs since the epoch, after truncation to the
//!               schema's resolution)
//!               per channel: 0x00 for null, or 0x01 followed by the value's bits
//!               little-endian (f32: its IEEE 754 bits as u32; i16/i32: i32; i64: i64)
//! ```

use std::fmt;

use sha2::{Digest, Sha256};

use crate::batch::{Batch, ColumnValues};
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

/// Which key layout (and file naming) to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `device_id=/dt=/hour=` partitions, `{first_ts_us}-{hash8}.parquet` names.
    Hive,
    /// The OpenSensor.Space lake: `station=/year=/month=/day=`, `data_{HHMM}.parquet`.
    OpenSensor,
}

impl Layout {
    /// Parses `hive` (alias `default`) or `opensensor`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        match text {
            "hive" | "default" => Ok(Self::Hive),
            "opensensor" => Ok(Self::OpenSensor),
            other => Err(KeyError::BadLayout(other.to_string())),
        }
    }

    /// The name [`Layout::parse`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hive => "hive",
            Self::OpenSensor => "opensensor",
        }
    }
}

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
            Self::BadLayout(l) => write!(f, "unknown layout {l:?}: expected hive or opensensor"),
            Self::EmptyBatch => write!(f, "an empty batch has no key"),
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

/// UTC calendar fields of a timestamp in microseconds.
struct Civil {
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
}

fn civil(ts_us: i64) -> Civil {
    let dt = jiff::Timestamp::from_microsecond(ts_us)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .datetime();
    Civil {
        year: dt.year(),
        month: dt.month(),
        day: dt.day(),
        hour: dt.hour(),
    }
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
        let first = batch.first_ts_us().ok_or(KeyError::EmptyBatch)?;
        let hash8 = hash8(batch);
        let c = civil(first);
        let mut key = String::with_capacity(128);
        if !self.prefix.is_empty() {
            key.push_str(&self.prefix);
            key.push('/');
        }
        match self.layout {
            Layout::Hive => {
                key.push_str(&format!(
                    "device_id={device}/dt={:04}-{:02}-{:02}/hour={:02}/{first}-{hash8}.parquet",
                    c.year, c.month, c.day, c.hour
                ));
            }
            Layout::OpenSensor => {
                // The window end names the file; without windows, the first row's minute.
                let end = batch.window().map_or(first, |(_, end)| end);
                let e = jiff::Timestamp::from_microsecond(end)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .datetime();
                key.push_str(&format!(
                    "station={device}/year={:04}/month={:02}/day={:02}/data_{:02}{:02}",
                    c.year,
                    c.month,
                    c.day,
                    e.hour(),
                    e.minute()
                ));
                if !batch.is_whole_window() {
                    key.push('_');
                    key.push_str(&hash8);
                }
                key.push_str(".parquet");
            }
        }
        Ok(key)
    }
}

impl KeyTemplate {
    /// Checks that `key` is where `batch` of `device` belongs. For the Hive layout that
    /// is exactly [`KeyTemplate::render`]; for the OpenSensor layout (whose plain names
    /// depend on how the batch was cut) the partitions must be the batch's, a hashed
    /// name must carry the batch's hash, and the window end must follow every row by at
    /// most one hour.
    pub fn check(&self, key: &str, device: &DeviceId, batch: &Batch) -> Result<(), String> {
        let rendered = self.render(device, batch).map_err(|e| e.to_string())?;
        if self.layout == Layout::Hive || rendered == key {
            return if rendered == key {
                Ok(())
            } else {
                Err(format!("expected key {rendered:?}"))
            };
        }
        let dir_len = rendered.rfind('/').map_or(0, |i| i + 1);
        let (dir, name) = key.split_at(key.rfind('/').map_or(0, |i| i + 1));
        if dir != &rendered[..dir_len] {
            return Err(format!("partitions should be {:?}", &rendered[..dir_len]));
        }
        let stem = name
            .strip_prefix("data_")
            .and_then(|n| n.strip_suffix(".parquet"))
            .ok_or_else(|| format!("file name {name:?} is not data_HHMM[_hash8].parquet"))?;
        let (hhmm, hash) = stem.split_at(stem.len().min(4));
        if !hash.is_empty() && hash != format!("_{}", hash8(batch)) {
            return Err(format!(
                "hash {hash:?} is not the rows' hash {}",
                hash8(batch)
            ));
        }
        let (h, m) = (hhmm.get(..2), hhmm.get(2..));
        let minutes = match (
            h.and_then(|h| h.parse::<i64>().ok()),
            m.and_then(|m| m.parse::<i64>().ok()),
        ) {
            (Some(h), Some(m)) if h < 24 && m < 60 => h * 60 + m,
            _ => return Err(format!("{hhmm:?} is not HHMM")),
        };
        let first = batch.first_ts_us().ok_or("empty batch")?;
        let day_start = first - first.rem_euclid(86_400_000_000);
        let mut end = day_start + minutes * 60_000_000;
        if end <= first {
            end += 86_400_000_000; // data_0000 closes the day's last window
        }
        let last = batch.timestamps().iter().copied().max().unwrap_or(first);
        if last >= end || end - first > 3_600_000_000 {
            return Err(format!("window end {hhmm} does not follow the rows"));
        }
        Ok(())
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
