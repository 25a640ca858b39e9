//! The OpenSensor.Space preset: files that read together with what that station
//! network's lake already holds.
//!
//! What the network writes (its Enviro+ collector, Python + Polars): one file per
//! clock-aligned 15-minute batch of 5-s readings at
//! `station={id}/year={YYYY}/month={MM}/day={DD}/data_{HHMM}.parquet`, a `timestamp`
//! column (milliseconds, UTC) and float32 channels named as in [`CHANNELS`]; the PMS5003
//! fields are null when a read fails. Older files also hold a `station_id` string
//! column; newer ones keep the station only in the path. This preset writes the
//! `station_id` column (dictionary-encoded: a few bytes per file), so a file is
//! self-describing; DuckDB's `read_parquet(…, hive_partitioning = true,
//! union_by_name = true)` reads both kinds together (tested in python/interop_check.py).
//!
//! A batch that holds its whole window is named `data_{HHMM}.parquet` (HHMM = the
//! window's end, UTC); a batch cut early (shutdown, restart, size limit) is named
//! `data_{HHMM}_{hash8}.parquet` so it never overwrites another batch (see [`crate::key`]).

use crate::batch::BatchConfig;
use crate::key::{KeyError, KeyTemplate, Layout};
pub use crate::layout::opensensor::{MAX_ROWS, STATION_COLUMN, TIMESTAMP_COLUMN, WINDOW};
use crate::schema::{Channel, Schema, SchemaError};

/// (name, unit, nullable) of the Enviro+ channels, in the network's column order, all
/// float32. Units are informational (kept in the file's key-value metadata).
pub const CHANNELS: [(&str, &str, bool); 19] = [
    ("temperature", "degC", false),
    ("raw_temperature", "degC", false),
    ("pressure", "hPa", false),
    ("humidity", "%RH", false),
    ("raw_humidity", "%RH", false),
    ("oxidised", "kOhm", false),
    ("reducing", "kOhm", false),
    ("nh3", "kOhm", false),
    ("lux", "lx", false),
    ("proximity", "1", false),
    ("pm1", "ug/m3", true),
    ("pm25", "ug/m3", true),
    ("pm10", "ug/m3", true),
    ("particles_03um", "1/0.1L", true),
    ("particles_05um", "1/0.1L", true),
    ("particles_10um", "1/0.1L", true),
    ("particles_25um", "1/0.1L", true),
    ("particles_50um", "1/0.1L", true),
    ("particles_100um", "1/0.1L", true),
];

/// The Enviro+ channels as a channel list.
pub fn enviro_channels() -> Vec<Channel> {
    CHANNELS
        .iter()
        .map(|&(name, unit, nullable)| {
            let channel = Channel::f32(name).unit(unit);
            if nullable {
                channel.nullable()
            } else {
                channel
            }
        })
        .collect()
}

/// Applies the preset's column conventions (`timestamp` in ms, a `station_id` column)
/// to any schema, e.g. one inferred from a CSV file.
pub fn apply(schema: Schema) -> Result<Schema, SchemaError> {
    schema.with_preset(&Layout::OpenSensor.schema_preset())
}

/// The full preset schema of an Enviro+ station.
pub fn schema() -> Schema {
    let base = Schema::new(enviro_channels()).expect("the preset's channel names are valid");
    apply(base).expect("the preset's column names are valid")
}

/// Batching by window only: one file per 15-minute window.
pub fn batch_config() -> BatchConfig {
    Layout::OpenSensor.batch_defaults()
}

/// Keys in the network's layout under `prefix` (may be empty).
pub fn key_template(prefix: &str) -> Result<KeyTemplate, KeyError> {
    KeyTemplate::new(Layout::OpenSensor, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Batcher, Value};
    use crate::key::DeviceId;
    use std::sync::Arc;

    #[test]
    fn a_window_of_5s_readings_is_one_file_named_by_its_end() {
        let schema = Arc::new(schema());
        assert_eq!(schema.channels.len(), 19);
        let mut batcher = Batcher::new(schema.clone(), batch_config()).unwrap();
        let start = 1_709_280_000_000_000; // 2024-03-01T08:00:00Z
        let values: Vec<Value> = (0..19).map(|i| Value::F32(i as f32)).collect();
        for i in 0..361 {
            batcher.push(start + i * 5_000_000, &values).unwrap();
        }
        let station = DeviceId::new("0195ae3c-43e0-7624-8c5c-7424adbcc30d").unwrap();
        let template = key_template("").unwrap();
        let dir = "station=0195ae3c-43e0-7624-8c5c-7424adbcc30d/year=2024/month=03/day=01";
        // The first window may have begun before this process started: a hashed name.
        let first = batcher.pop_ready().expect("08:15 closed the first window");
        assert_eq!(first.len(), 180);
        let key = template.render(&station, &first).unwrap();
        assert!(key.starts_with(&format!("{dir}/data_0815_")), "{key}");
        // The next one is whole: the network's plain name.
        let second = batcher.pop_ready().expect("08:30 closed the second window");
        assert_eq!(second.len(), 180);
        let key = template.render(&station, &second).unwrap();
        assert_eq!(key, format!("{dir}/data_0830.parquet"));
    }
}
