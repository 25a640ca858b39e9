//! Adding a key layout is one type and one registration line: a third layout, defined
//! only here, renders and parses keys, checks files, batches rows, presets the schema
//! and gets table definitions, without a change to the library or the CLI.

use std::sync::Arc;
use std::time::Duration;

use sensorlake::batch::{Batch, BatchConfig, Batcher, Value};
use sensorlake::key::{self, DeviceId, KeyRefusal, KeyTemplate, Layout, ParsedKey};
use sensorlake::layout::{
    HOUR_US, KeyFacts, KeyLayout, Layouts, Partition, PartitionKind, SchemaPreset, day_start_us,
    fixed_digits, is_hash8, partition, partition_device,
};
use sensorlake::schema::{Channel, Schema, TimeUnit};
use sensorlake_cli::ddl::{self, DdlConfig, Engine};

/// `sensor={id}/date={YYYY-MM-DD}/{HH}-{first_ts_us}-{hash8}.parquet`, hourly files.
struct Daily;

/// The one registration line.
const LAYOUTS: Layouts = Layouts::new(&[Layout::Hive, Layout::OpenSensor, Layout::new(&Daily)]);

impl KeyLayout for Daily {
    fn name(&self) -> &'static str {
        "daily"
    }

    fn partitions(&self) -> &'static [Partition] {
        &[
            Partition {
                name: "sensor",
                kind: PartitionKind::Device,
            },
            Partition {
                name: "date",
                kind: PartitionKind::Date,
            },
        ]
    }

    fn render(&self, key: &mut String, device: &DeviceId, facts: &KeyFacts<'_>) {
        let t = sensorlake::civil::Utc::of(facts.first_us);
        key.push_str(&format!(
            "sensor={device}/date={:04}-{:02}-{:02}/{:02}-{}-{}.parquet",
            t.year, t.month, t.day, t.hour, facts.first_us, facts.hash8
        ));
    }

    fn parse(&self, segments: &[&str]) -> Result<ParsedKey, KeyRefusal> {
        let malformed = |why: &str| KeyRefusal::Malformed(why.to_string());
        let [sensor, date, name] = segments else {
            return Err(malformed("expected sensor=/date=/name"));
        };
        let device = partition_device(sensor, "sensor")?;
        let date = partition(date, "date")?;
        let part = |range: std::ops::Range<usize>| {
            date.get(range.clone())
                .and_then(|t| fixed_digits(t, range.len()))
        };
        let day = match (part(0..4), part(5..7), part(8..10)) {
            (Some(y), Some(m), Some(d)) if date.len() == 10 => day_start_us(y, m, d),
            _ => None,
        }
        .ok_or_else(|| malformed("bad date"))?;
        let stem = name
            .strip_suffix(".parquet")
            .ok_or_else(|| malformed("not .parquet"))?;
        let mut parts = stem.splitn(3, '-');
        let (Some(hour), Some(ts), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected HH-first_ts_us-hash8"));
        };
        let hour = fixed_digits(hour, 2).ok_or_else(|| malformed("bad hour"))?;
        let ts: i64 = ts.parse().map_err(|_| malformed("bad first_ts_us"))?;
        let hour_start = day + hour * HOUR_US;
        if !is_hash8(hash) || !(hour_start..hour_start + HOUR_US).contains(&ts) {
            return Err(malformed("bad name"));
        }
        Ok(ParsedKey {
            device,
            earliest_us: ts,
            latest_us: ts,
            hash8: Some(hash.to_string()),
        })
    }

    fn batch_defaults(&self) -> BatchConfig {
        BatchConfig {
            max_rows: 1000,
            max_age: Some(Duration::from_secs(3600)),
            ..BatchConfig::default()
        }
    }

    fn schema_preset(&self) -> SchemaPreset {
        SchemaPreset {
            ts_column: Some("time"),
            ts_unit: Some(TimeUnit::Millis),
            device_column: None,
        }
    }
}

const T0: i64 = 1_709_280_000_000_000; // 2024-03-01T08:00:00Z

fn daily() -> Layout {
    LAYOUTS.parse("daily").expect("registered")
}

fn batch(rows: &[(i64, f32)]) -> Batch {
    let schema = Arc::new(Schema::new(vec![Channel::f32("a")]).unwrap());
    let rows: Vec<(i64, [Value; 1])> = rows.iter().map(|&(t, a)| (t, [Value::F32(a)])).collect();
    Batch::from_rows(schema, rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap()
}

#[test]
fn the_registry_finds_every_layout_by_name() {
    assert_eq!(LAYOUTS.names(), "hive, opensensor or daily");
    assert_eq!(daily().name(), "daily");
    assert_eq!(LAYOUTS.parse("default").unwrap(), Layout::Hive);
    assert!(LAYOUTS.parse("weekly").is_err());
    // The library's own registry does not know it.
    assert!(Layout::parse("daily").is_err());
}

#[test]
fn a_third_layout_renders_parses_and_checks_keys() {
    let template = KeyTemplate::new(daily(), "lake").unwrap();
    let id = DeviceId::new("s-1").unwrap();
    let b = batch(&[(T0 + 1_500_000, 1.0), (T0 + 9_000_000, 2.0)]);
    let key = template.render(&id, &b).unwrap();
    let hash = key::hash8(&b);
    assert_eq!(
        key,
        format!(
            "lake/sensor=s-1/date=2024-03-01/08-{}-{hash}.parquet",
            T0 + 1_500_000
        )
    );
    let parsed = template.parse(&key).unwrap();
    assert_eq!(parsed.device, id);
    assert_eq!(parsed.earliest_us, T0 + 1_500_000);
    assert!(parsed.carries_rows_hash());
    assert!(template.parse(&key.replace("date=", "day=")).is_err());
    assert!(template.parse(&key.replace("/08-", "/09-")).is_err());

    assert_eq!(template.check(&key, &id, &b), Ok(()));
    let other = DeviceId::new("s-2").unwrap();
    assert!(template.check(&key, &other, &b).is_err());
    let changed = batch(&[(T0 + 1_500_000, 1.0), (T0 + 9_000_000, 3.0)]);
    assert!(template.check(&key, &id, &changed).is_err());
}

#[test]
fn a_third_layout_gives_batch_defaults_and_a_schema_preset() {
    let layout = daily();
    let config = layout.batch_defaults();
    assert_eq!(config.max_rows, 1000);
    let schema = Arc::new(Schema::new(vec![Channel::f32("a")]).unwrap());
    let mut batcher = Batcher::new(schema.clone(), config).unwrap();
    for i in 0..1000 {
        batcher.push(T0 + i, &[Value::F32(0.0)]).unwrap();
    }
    assert_eq!(batcher.pop_ready().map(|b| b.len()), Some(1000));

    let preset = layout.schema_preset();
    let schema = schema.as_ref().clone().with_preset(&preset).unwrap();
    assert_eq!(
        (schema.ts_column.as_str(), schema.ts_unit),
        ("time", TimeUnit::Millis)
    );
}

#[test]
fn a_third_layout_gets_table_definitions() {
    let config = DdlConfig {
        table: "readings".into(),
        bucket: "lake".into(),
        prefix: "raw".into(),
        location: None,
        layout: daily(),
        schema: Schema::new(vec![Channel::f32("a")]).unwrap(),
        devices: vec![],
        since: "2024-03-01".into(),
    };
    let athena = ddl::render(&config, Engine::Athena).unwrap();
    for line in [
        "(daily layout)",
        "WHERE sensor = 'gw-1'",
        "PARTITIONED BY (`sensor` string, `date` string)",
        "'projection.sensor.type' = 'injected'",
        "'projection.date.range' = '2024-03-01,NOW'",
        "'storage.location.template' = 's3://lake/raw/sensor=${sensor}/date=${date}/'",
    ] {
        assert!(athena.contains(line), "{line} not in {athena}");
    }
    let duckdb = ddl::render(&config, Engine::DuckDb).unwrap();
    assert!(
        duckdb.contains("hive_types = {'sensor': VARCHAR, 'date': DATE}"),
        "{duckdb}"
    );
}
