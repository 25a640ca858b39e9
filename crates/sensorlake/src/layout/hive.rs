//! The default (Hive) layout, all UTC:
//! `{prefix}/device_id={id}/dt={YYYY-MM-DD}/hour={HH}/{first_ts_us}-{hash8}.parquet`.
//! Every name carries the rows' hash; batches are cut by size and age.

use alloc::format;
use alloc::string::String;
use core::fmt::Write as _;

use super::{
    HOUR_US, KeyFacts, KeyLayout, Layout, Partition, PartitionKind, day_start_us, fixed_digits,
    is_hash8, partition, partition_device, rfc3339,
};
use crate::batch::BatchConfig;
use crate::civil::Utc;
use crate::key::{DeviceId, KeyRefusal, ParsedKey};

/// `device_id=/dt=/hour=` partitions, `{first_ts_us}-{hash8}.parquet` names.
#[derive(Debug, Clone, Copy)]
pub struct Hive;

impl Layout {
    /// The Hive layout (named like the enum variant it replaces).
    #[allow(non_upper_case_globals)]
    pub const Hive: Layout = Layout::new(&Hive);
}

const PARTITIONS: [Partition; 3] = [
    Partition {
        name: "device_id",
        kind: PartitionKind::Device,
    },
    Partition {
        name: "dt",
        kind: PartitionKind::Date,
    },
    Partition {
        name: "hour",
        kind: PartitionKind::Integer {
            min: 0,
            max: 23,
            digits: 2,
        },
    },
];

impl KeyLayout for Hive {
    fn name(&self) -> &'static str {
        "hive"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["default"]
    }

    fn partitions(&self) -> &'static [Partition] {
        &PARTITIONS
    }

    fn render(&self, key: &mut String, device: &DeviceId, facts: &KeyFacts<'_>) {
        let c = Utc::of(facts.first_us);
        let _ = write!(
            key,
            "device_id={device}/dt={:04}-{:02}-{:02}/hour={:02}/{}-{}.parquet",
            c.year, c.month, c.day, c.hour, facts.first_us, facts.hash8
        );
    }

    fn parse(&self, segments: &[&str]) -> Result<ParsedKey, KeyRefusal> {
        let [device, dt, hour, name] = segments else {
            return Err(KeyRefusal::Malformed(format!(
                "expected device_id=/dt=/hour=/{{first_ts_us}}-{{hash8}}.parquet after the prefix, found {} segment(s)",
                segments.len()
            )));
        };
        let device = partition_device(device, "device_id")?;
        let dt = partition(dt, "dt")?;
        let bad_date = || KeyRefusal::Malformed(format!("dt={dt:?} is not a YYYY-MM-DD date"));
        let (y, m, d) = match (
            dt.get(..4),
            dt.get(4..5),
            dt.get(5..7),
            dt.get(7..8),
            dt.get(8..),
        ) {
            (Some(y), Some("-"), Some(m), Some("-"), Some(d)) => (
                fixed_digits(y, 4).ok_or_else(bad_date)?,
                fixed_digits(m, 2).ok_or_else(bad_date)?,
                fixed_digits(d, 2).ok_or_else(bad_date)?,
            ),
            _ => return Err(bad_date()),
        };
        let day = day_start_us(y, m, d).ok_or_else(bad_date)?;
        let hour_text = partition(hour, "hour")?;
        let hour = fixed_digits(hour_text, 2)
            .filter(|h| *h < 24)
            .ok_or_else(|| KeyRefusal::Malformed(format!("hour={hour_text:?} is not 00-23")))?;
        let stem = name.strip_suffix(".parquet").ok_or_else(|| {
            KeyRefusal::Malformed(format!("file name {name:?} does not end in .parquet"))
        })?;
        let bad_name = || {
            KeyRefusal::Malformed(format!(
                "file name {name:?} is not {{first_ts_us}}-{{hash8}}.parquet"
            ))
        };
        let (ts_text, hash) = stem.split_once('-').ok_or_else(bad_name)?;
        let canonical = !ts_text.is_empty()
            && ts_text.bytes().all(|b| b.is_ascii_digit())
            && (ts_text == "0" || !ts_text.starts_with('0'));
        if !canonical || !is_hash8(hash) {
            return Err(bad_name());
        }
        let ts: i64 = ts_text.parse().map_err(|_| bad_name())?;
        let hour_start = day + hour * HOUR_US;
        if !(hour_start..hour_start + HOUR_US).contains(&ts) {
            return Err(KeyRefusal::Malformed(format!(
                "first_ts_us {ts} ({}) is not in dt={dt}/hour={hour_text}",
                rfc3339(ts)
            )));
        }
        Ok(ParsedKey {
            device,
            earliest_us: ts,
            latest_us: ts,
            hash8: Some(hash.into()),
        })
    }

    fn batch_defaults(&self) -> BatchConfig {
        BatchConfig::default()
    }
}
