//! `sensorlake ddl`: a ready table definition over the lake's objects — an Athena/Glue
//! `CREATE EXTERNAL TABLE` with partition projection, or a DuckDB view.
//!
//! Partition projection computes partitions from the key layout instead of a crawler or
//! `MSCK REPAIR`: `dt` is a date range from `--since` to now, `hour` an integer 0–23,
//! and the device (or station) either *injected* — every query must say
//! `WHERE device_id = '…'`, no list to maintain — or an *enum* of the ids given with
//! `--devices`, which lets queries span devices but must be updated when a device is
//! added (Athena answers nothing for devices missing from the list).

use std::fmt::Write as _;

use anyhow::{Result, bail};
use sensorlake::key::Layout;
use sensorlake::layout::PartitionKind;
use sensorlake::schema::{ChannelType, Schema, TimeUnit};

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Amazon Athena / AWS Glue (Hive DDL with partition projection).
    Athena,
    /// DuckDB (a view over `read_parquet`).
    DuckDb,
}

/// What to define.
#[derive(Debug, Clone)]
pub struct DdlConfig {
    /// Table (or view) name.
    pub table: String,
    /// Bucket.
    pub bucket: String,
    /// Key prefix (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// Overrides `s3://bucket/prefix` (e.g. a local directory for DuckDB).
    pub location: Option<String>,
    /// Key layout.
    pub layout: Layout,
    /// The files' columns.
    pub schema: Schema,
    /// Device ids for an enum projection; empty = injected.
    pub devices: Vec<String>,
    /// First day of the `dt` projection (YYYY-MM-DD).
    pub since: String,
}

/// The last year a `year` partition projects (Athena needs a bounded range).
const LAST_YEAR: u32 = 2100;

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_day(text: &str) -> bool {
    text.parse::<jiff::civil::Date>().is_ok() && text.len() == 10
}

impl DdlConfig {
    fn check(&self) -> Result<()> {
        if !valid_identifier(&self.table) {
            bail!("--table {:?}: use [A-Za-z_][A-Za-z0-9_]*", self.table);
        }
        if !valid_day(&self.since) {
            bail!("--since {:?}: use YYYY-MM-DD", self.since);
        }
        for id in &self.devices {
            sensorlake::key::DeviceId::new(id)?;
        }
        let bad = |s: &str| s.contains('\'') || s.contains('\\');
        if bad(&self.bucket) || bad(&self.prefix) || self.location.as_deref().is_some_and(bad) {
            bail!("bucket, prefix and location must not contain quotes or backslashes");
        }
        Ok(())
    }

    /// The table's base location, ending in `/`.
    pub fn base(&self) -> String {
        let base = match &self.location {
            Some(location) => location.trim_end_matches('/').to_string(),
            None if self.prefix.is_empty() => format!("s3://{}", self.bucket),
            None => format!("s3://{}/{}", self.bucket, self.prefix.trim_matches('/')),
        };
        format!("{base}/")
    }
}

fn athena_type(ty: ChannelType) -> &'static str {
    match ty {
        ChannelType::F32 => "float",
        ChannelType::F64 => "double",
        ChannelType::I16 => "smallint",
        ChannelType::I32 => "int",
        ChannelType::I64 => "bigint",
    }
}

/// Renders the definition.
pub fn render(config: &DdlConfig, engine: Engine) -> Result<String> {
    config.check()?;
    Ok(match engine {
        Engine::Athena => athena(config),
        Engine::DuckDb => duckdb(config),
    })
}

fn athena(c: &DdlConfig) -> String {
    let base = c.base();
    let mut out = String::new();
    let device = c.layout.device_partition();
    let _ = writeln!(
        out,
        "-- Athena / Glue table over {base} ({} layout), partition projection on.",
        c.layout.name()
    );
    if c.devices.is_empty() {
        let _ = writeln!(
            out,
            "-- {device} is injected: every query must filter it with = or IN, e.g. WHERE {device} = 'gw-1'.\n-- To query across devices without naming them, list them: sensorlake ddl --devices a,b,c (an enum to update when devices are added)."
        );
    } else {
        let _ = writeln!(
            out,
            "-- {device} is an enum of {} device(s): add new devices to projection.{device}.values, or their rows stay invisible.",
            c.devices.len()
        );
    }
    let _ = writeln!(out, "CREATE EXTERNAL TABLE IF NOT EXISTS {} (", c.table);
    let mut columns = vec![format!("  `{}` timestamp", c.schema.ts_column)];
    if let Some(name) = &c.schema.device_column {
        columns.push(format!("  `{name}` string"));
    }
    for channel in &c.schema.channels {
        columns.push(format!("  `{}` {}", channel.name, athena_type(channel.ty)));
    }
    let _ = writeln!(out, "{}\n)", columns.join(",\n"));
    let mut props: Vec<(String, String)> = vec![("projection.enabled".into(), "true".into())];
    let partitions = c.layout.partitions();
    let columns: Vec<String> = partitions
        .iter()
        .map(|p| {
            let ty = match p.kind {
                PartitionKind::Device | PartitionKind::Date => "string",
                PartitionKind::Year | PartitionKind::Integer { .. } => "int",
            };
            format!("`{}` {ty}", p.name)
        })
        .collect();
    let _ = writeln!(out, "PARTITIONED BY ({})", columns.join(", "));
    let mut location = base.clone();
    for p in partitions {
        let name = p.name;
        let mut prop = |key: &str, value: String| {
            props.push((format!("projection.{name}.{key}"), value));
        };
        match p.kind {
            PartitionKind::Device if c.devices.is_empty() => prop("type", "injected".into()),
            PartitionKind::Device => {
                prop("type", "enum".into());
                prop("values", c.devices.join(","));
            }
            PartitionKind::Date => {
                prop("type", "date".into());
                prop("format", "yyyy-MM-dd".into());
                prop("range", format!("{},NOW", c.since));
                prop("interval", "1".into());
                prop("interval.unit", "DAYS".into());
            }
            PartitionKind::Year => {
                prop("type", "integer".into());
                prop("range", format!("{},{LAST_YEAR}", &c.since[..4]));
            }
            PartitionKind::Integer { min, max, digits } => {
                prop("type", "integer".into());
                prop("range", format!("{min},{max}"));
                prop("digits", digits.to_string());
            }
        }
        let _ = write!(location, "{name}=${{{name}}}/");
    }
    props.push(("storage.location.template".into(), location));
    let _ = writeln!(out, "STORED AS PARQUET\nLOCATION '{base}'\nTBLPROPERTIES (");
    let props: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("  '{k}' = '{v}'"))
        .collect();
    let _ = writeln!(out, "{}\n);", props.join(",\n"));
    out
}

fn duckdb(c: &DdlConfig) -> String {
    let base = c.base();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- DuckDB view over {base} ({} layout). For s3:// locations: INSTALL httpfs; LOAD httpfs; CREATE SECRET (TYPE s3, PROVIDER credential_chain);",
        c.layout.name()
    );
    let types: Vec<String> = c
        .layout
        .partitions()
        .iter()
        .map(|p| {
            let ty = match p.kind {
                PartitionKind::Device => "VARCHAR",
                PartitionKind::Date => "DATE",
                PartitionKind::Year | PartitionKind::Integer { .. } => "INTEGER",
            };
            format!("'{}': {ty}", p.name)
        })
        .collect();
    let types = format!("{{{}}}", types.join(", "));
    let unit = match c.schema.ts_unit {
        TimeUnit::Micros => "microseconds",
        TimeUnit::Millis => "milliseconds",
    };
    let _ = writeln!(
        out,
        "-- {}: TIMESTAMP WITH TIME ZONE (UTC, {unit}); files are pruned by its min/max and by the partition columns.",
        c.schema.ts_column
    );
    let _ = writeln!(
        out,
        "CREATE OR REPLACE VIEW {} AS SELECT * FROM read_parquet('{base}**/*.parquet', hive_partitioning = true, hive_types = {types}, union_by_name = true);",
        c.table
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensorlake::simulate::{Profile, Simulator};

    fn config(layout: Layout, devices: &[&str]) -> DdlConfig {
        DdlConfig {
            table: "readings".into(),
            bucket: "lake".into(),
            prefix: "raw".into(),
            location: None,
            layout,
            schema: Simulator::schema_for(Profile::ImuRaw),
            devices: devices.iter().map(|d| d.to_string()).collect(),
            since: "2024-03-01".into(),
        }
    }

    #[test]
    fn athena_projects_partitions_from_the_key_layout() {
        let ddl = render(&config(Layout::Hive, &[]), Engine::Athena).unwrap();
        assert!(ddl.contains("`acc_x` smallint"), "{ddl}");
        assert!(ddl.contains("'projection.device_id.type' = 'injected'"));
        assert!(ddl.contains("'projection.dt.range' = '2024-03-01,NOW'"));
        assert!(ddl.contains(
            "'storage.location.template' = 's3://lake/raw/device_id=${device_id}/dt=${dt}/hour=${hour}/'"
        ));
        let ddl = render(&config(Layout::Hive, &["gw-1", "gw-2"]), Engine::Athena).unwrap();
        assert!(ddl.contains("'projection.device_id.values' = 'gw-1,gw-2'"));
        let ddl = render(&config(Layout::OpenSensor, &[]), Engine::Athena).unwrap();
        assert!(
            ddl.contains("PARTITIONED BY (`station` string, `year` int, `month` int, `day` int)")
        );
    }

    #[test]
    fn bad_names_are_errors() {
        let mut c = config(Layout::Hive, &["a/b"]);
        assert!(render(&c, Engine::Athena).is_err());
        c.devices.clear();
        c.table = "x; DROP".into();
        assert!(render(&c, Engine::DuckDb).is_err());
        c.table = "ok".into();
        c.since = "yesterday".into();
        assert!(render(&c, Engine::Athena).is_err());
    }
}
