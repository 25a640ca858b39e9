//! The OpenSensor.Space layout:
//! `{prefix}/station={id}/year={YYYY}/month={MM}/day={DD}/data_{HHMM}.parquet`, where
//! HHMM is the end of the batch's clock-aligned 15-minute window; a batch that does not
//! hold its whole window (cut early by a shutdown, a restart or the size limit) is named
//! `data_{HHMM}_{hash8}.parquet`. Its files have a `timestamp` column in ms and a
//! `station_id` string column (see [`crate::opensensor`] for the station's channels).

use alloc::format;
use alloc::string::String;
use core::fmt::Write as _;
use core::time::Duration;

use super::{
    HOUR_US, KeyFacts, KeyLayout, Layout, Partition, PartitionKind, SchemaPreset, day_start_us,
    fixed_digits, is_hash8, partition, partition_device,
};
use crate::batch::BatchConfig;
use crate::civil::{DAY_US, Utc};
use crate::key::{DeviceId, KeyRefusal, ParsedKey};
use crate::schema::TimeUnit;

/// Name of the timestamp column.
pub const TIMESTAMP_COLUMN: &str = "timestamp";
/// Name of the station id string column.
pub const STATION_COLUMN: &str = "station_id";
/// The batch window: files are cut at :00, :15, :30 and :45 UTC.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Size limit of a batch (a 1-s station fills a window with 900 rows); a batch cut by
/// it gets a hashed name.
pub const MAX_ROWS: usize = 4096;

/// The OpenSensor.Space lake: `station=/year=/month=/day=`, `data_{HHMM}.parquet`.
#[derive(Debug, Clone, Copy)]
pub struct OpenSensor;

impl Layout {
    /// The OpenSensor.Space layout (named like the enum variant it replaces).
    #[allow(non_upper_case_globals)]
    pub const OpenSensor: Layout = Layout::new(&OpenSensor);
}

const fn two_digits(name: &'static str, min: u32, max: u32) -> Partition {
    Partition {
        name,
        kind: PartitionKind::Integer {
            min,
            max,
            digits: 2,
        },
    }
}

const PARTITIONS: [Partition; 4] = [
    Partition {
        name: "station",
        kind: PartitionKind::Device,
    },
    Partition {
        name: "year",
        kind: PartitionKind::Year,
    },
    two_digits("month", 1, 12),
    two_digits("day", 1, 31),
];

impl KeyLayout for OpenSensor {
    fn name(&self) -> &'static str {
        "opensensor"
    }

    fn partitions(&self) -> &'static [Partition] {
        &PARTITIONS
    }

    fn render(&self, key: &mut String, device: &DeviceId, facts: &KeyFacts<'_>) {
        let c = Utc::of(facts.first_us);
        // The window end names the file; without windows, the first row's minute.
        // (The last window of 9999-12-31 ends at 10000-01-01T00:00: `0000`.)
        let e = Utc::of(facts.window_end_us.unwrap_or(facts.first_us));
        let _ = write!(
            key,
            "station={device}/year={:04}/month={:02}/day={:02}/data_{:02}{:02}",
            c.year, c.month, c.day, e.hour, e.minute
        );
        if !facts.whole_window {
            key.push('_');
            key.push_str(facts.hash8);
        }
        key.push_str(".parquet");
    }

    fn parse(&self, segments: &[&str]) -> Result<ParsedKey, KeyRefusal> {
        let [station, year, month, day, name] = segments else {
            return Err(KeyRefusal::Malformed(format!(
                "expected station=/year=/month=/day=/data_HHMM[_hash8].parquet after the prefix, found {} segment(s)",
                segments.len()
            )));
        };
        let device = partition_device(station, "station")?;
        let field = |segment: &str, name: &str, digits: usize| {
            let text = partition(segment, name)?;
            fixed_digits(text, digits).ok_or_else(|| {
                KeyRefusal::Malformed(format!("{name}={text:?} is not {digits} digits"))
            })
        };
        let (y, m, d) = (
            field(year, "year", 4)?,
            field(month, "month", 2)?,
            field(day, "day", 2)?,
        );
        let day_start = day_start_us(y, m, d).ok_or_else(|| {
            KeyRefusal::Malformed(format!("year={y:04}/month={m:02}/day={d:02} is not a date"))
        })?;
        let bad_name = || {
            KeyRefusal::Malformed(format!(
                "file name {name:?} is not data_HHMM.parquet or data_HHMM_{{hash8}}.parquet"
            ))
        };
        let stem = name
            .strip_prefix("data_")
            .and_then(|n| n.strip_suffix(".parquet"))
            .ok_or_else(bad_name)?;
        let (hhmm, hash) = match stem.split_once('_') {
            Some((hhmm, hash)) if is_hash8(hash) => (hhmm, Some(hash.into())),
            Some(_) => return Err(bad_name()),
            None => (stem, None),
        };
        let minutes = match (
            hhmm.get(..2).and_then(|h| fixed_digits(h, 2)),
            hhmm.get(2..).and_then(|m| fixed_digits(m, 2)),
        ) {
            (Some(h), Some(m)) if hhmm.len() == 4 && h < 24 && m < 60 => h * 60 + m,
            _ => return Err(bad_name()),
        };
        let mut end = day_start + minutes * 60_000_000;
        if end <= day_start {
            end += DAY_US; // data_0000 closes the day's last window
        }
        Ok(ParsedKey {
            device,
            earliest_us: day_start.max(end - HOUR_US),
            latest_us: end - 1,
            hash8: hash,
        })
    }

    /// Every row lies before the window end the name gives.
    fn check_rows(&self, parsed: &ParsedKey, facts: &KeyFacts<'_>) -> Result<(), String> {
        if facts.last_us > parsed.latest_us {
            return Err(format!(
                "window end {} does not follow the rows",
                super::rfc3339(parsed.latest_us + 1)
            ));
        }
        Ok(())
    }

    /// Batching by window only: one file per 15-minute window.
    fn batch_defaults(&self) -> BatchConfig {
        BatchConfig {
            max_rows: MAX_ROWS,
            max_age: None,
            window: Some(WINDOW),
            ..BatchConfig::default()
        }
    }

    /// `timestamp` in ms UTC and a `station_id` string column, as the network writes.
    fn schema_preset(&self) -> SchemaPreset {
        SchemaPreset {
            ts_column: Some(TIMESTAMP_COLUMN),
            ts_unit: Some(TimeUnit::Millis),
            device_column: Some(STATION_COLUMN),
        }
    }
}
