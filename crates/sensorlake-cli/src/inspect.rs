//! `sensorlake inspect`: what a Parquet file holds — schema, rows, codec, encodings,
//! sizes per column, statistics and key-value metadata — as text or JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use bytes::Bytes;
use parquet::basic::{LogicalType, TimeUnit};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use serde::Serialize;

/// One column of a file.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    /// Column name.
    pub name: String,
    /// Physical type (e.g. `FLOAT`).
    pub physical_type: String,
    /// Logical type, if any (e.g. `Timestamp(MICROS, UTC)`).
    pub logical_type: Option<String>,
    /// Whether nulls are allowed.
    pub nullable: bool,
    /// Compression codec.
    pub codec: String,
    /// Encodings used in the chunk.
    pub encodings: Vec<String>,
    /// Bytes on disk (all row groups).
    pub compressed_bytes: i64,
    /// Bytes before compression.
    pub uncompressed_bytes: i64,
    /// Minimum, as text, if statistics exist.
    pub min: Option<String>,
    /// Maximum, as text, if statistics exist.
    pub max: Option<String>,
    /// Null count, if recorded.
    pub nulls: Option<u64>,
}

/// One file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The path given.
    pub path: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Footer (metadata) size in bytes.
    pub footer_bytes: u64,
    /// Rows.
    pub rows: i64,
    /// Row groups.
    pub row_groups: usize,
    /// Writer (`created_by`).
    pub created_by: Option<String>,
    /// Columns.
    pub columns: Vec<ColumnReport>,
    /// Key-value metadata.
    pub key_value_metadata: Vec<(String, String)>,
}

/// A float in its shortest round-trip form, in scientific notation when plain digits
/// would run long (`1.7976931348623157e308`, not 309 digits).
fn float_text<F: std::fmt::Display + std::fmt::LowerExp>(v: F) -> String {
    let plain = v.to_string();
    if plain.len() > 24 {
        format!("{v:e}")
    } else {
        plain
    }
}

fn stat_text(stats: &Statistics) -> (Option<String>, Option<String>) {
    fn pair<T: ToString>(min: Option<&T>, max: Option<&T>) -> (Option<String>, Option<String>) {
        (min.map(T::to_string), max.map(T::to_string))
    }
    match stats {
        Statistics::Int32(s) => pair(s.min_opt(), s.max_opt()),
        Statistics::Int64(s) => pair(s.min_opt(), s.max_opt()),
        Statistics::Float(s) => (
            s.min_opt().map(|&v| float_text(v)),
            s.max_opt().map(|&v| float_text(v)),
        ),
        Statistics::Double(s) => (
            s.min_opt().map(|&v| float_text(v)),
            s.max_opt().map(|&v| float_text(v)),
        ),
        Statistics::Boolean(s) => pair(s.min_opt(), s.max_opt()),
        Statistics::ByteArray(s) => (
            s.min_opt()
                .map(|v| String::from_utf8_lossy(v.data()).into_owned()),
            s.max_opt()
                .map(|v| String::from_utf8_lossy(v.data()).into_owned()),
        ),
        _ => (None, None),
    }
}

fn logical_text(t: &LogicalType) -> String {
    match t {
        LogicalType::Timestamp(t) => format!(
            "Timestamp({:?}{})",
            t.unit,
            if t.is_adjusted_to_u_t_c { ", UTC" } else { "" }
        ),
        LogicalType::Integer(t) => format!(
            "Int({}, {})",
            t.bit_width,
            if t.is_signed { "signed" } else { "unsigned" }
        ),
        other => format!("{other:?}"),
    }
}

fn timestamp_text(raw: &str, unit: &TimeUnit) -> String {
    let Ok(v) = raw.parse::<i64>() else {
        return raw.to_string();
    };
    let us = match unit {
        TimeUnit::MILLIS => v.checked_mul(1000),
        TimeUnit::MICROS => Some(v),
        _ => Some(v.div_euclid(1000)),
    };
    // The library's own calendar: the whole accepted range, to 9999-12-31T23:59:59.999999Z.
    match us {
        Some(us) if sensorlake::civil::in_range(us) => sensorlake::civil::format_rfc3339(us),
        _ => raw.to_string(),
    }
}

/// Reads `path` and describes it.
pub fn inspect(path: &Path) -> Result<FileReport> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = bytes.len() as u64;
    let footer_bytes = if size >= 8 {
        let n = &bytes[bytes.len() - 8..bytes.len() - 4];
        u64::from(u32::from_le_bytes([n[0], n[1], n[2], n[3]])) + 8
    } else {
        0
    };
    let reader = SerializedFileReader::new(Bytes::from(bytes))
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
    let meta: &ParquetMetaData = reader.metadata();
    let file = meta.file_metadata();
    let descr = file.schema_descr();
    let mut columns = Vec::new();
    for (i, column) in descr.columns().iter().enumerate() {
        let mut report = ColumnReport {
            name: column.name().to_string(),
            physical_type: format!("{}", column.physical_type()),
            logical_type: column.logical_type_ref().map(logical_text),
            nullable: column.max_def_level() > 0,
            codec: String::new(),
            encodings: Vec::new(),
            compressed_bytes: 0,
            uncompressed_bytes: 0,
            min: None,
            max: None,
            nulls: None,
        };
        for group in meta.row_groups() {
            let chunk = group.column(i);
            report.codec = format!("{}", chunk.compression());
            for encoding in chunk.encodings() {
                let name = format!("{encoding}");
                if !report.encodings.contains(&name) {
                    report.encodings.push(name);
                }
            }
            report.compressed_bytes += chunk.compressed_size();
            report.uncompressed_bytes += chunk.uncompressed_size();
            if let Some(stats) = chunk.statistics() {
                (report.min, report.max) = stat_text(stats);
                if let Some(LogicalType::Timestamp(t)) = column.logical_type_ref() {
                    let to_time = |v: &String| timestamp_text(v, &t.unit);
                    report.min = report.min.as_ref().map(to_time);
                    report.max = report.max.as_ref().map(to_time);
                }
                report.nulls =
                    Some(report.nulls.unwrap_or(0) + stats.null_count_opt().unwrap_or(0));
            }
        }
        columns.push(report);
    }
    Ok(FileReport {
        path: path.display().to_string(),
        bytes: size,
        footer_bytes,
        rows: file.num_rows(),
        row_groups: meta.num_row_groups(),
        created_by: file.created_by().map(str::to_string),
        columns,
        key_value_metadata: file
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// A human-readable rendering of `report`.
pub fn render_text(report: &FileReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.path);
    let _ = writeln!(
        out,
        "  {} rows, {} row group(s), {} bytes ({} footer), {:.1} bytes/row",
        report.rows,
        report.row_groups,
        report.bytes,
        report.footer_bytes,
        report.bytes as f64 / report.rows.max(1) as f64
    );
    if let Some(created_by) = &report.created_by {
        let _ = writeln!(out, "  created by {created_by}");
    }
    let _ = writeln!(
        out,
        "  {:<16} {:<10} {:<22} {:<8} {:<28} {:>8} {:>8}  min .. max (nulls)",
        "column", "type", "logical", "codec", "encodings", "bytes", "raw"
    );
    for c in &report.columns {
        let stats = match (&c.min, &c.max) {
            (Some(min), Some(max)) => format!("{min} .. {max} ({})", c.nulls.unwrap_or(0)),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<10} {:<22} {:<8} {:<28} {:>8} {:>8}  {}",
            format!("{}{}", c.name, if c.nullable { "?" } else { "" }),
            c.physical_type,
            c.logical_type.as_deref().unwrap_or("-"),
            c.codec,
            c.encodings.join(","),
            c.compressed_bytes,
            c.uncompressed_bytes,
            stats
        );
    }
    for (k, v) in &report.key_value_metadata {
        let _ = writeln!(out, "  {k} = {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{float_text, timestamp_text};

    #[test]
    fn timestamps_print_across_the_whole_range() {
        use parquet::basic::TimeUnit;
        let micros = TimeUnit::MICROS;
        let millis = TimeUnit::MILLIS;
        assert_eq!(
            timestamp_text("253402300799999999", &micros),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            timestamp_text("1709280000100", &millis),
            "2024-03-01T08:00:00.1Z"
        );
        assert_eq!(timestamp_text("-1", &micros), "-1");
    }

    #[test]
    fn float_statistics_print_short() {
        assert_eq!(float_text(21.3f32), "21.3");
        assert_eq!(float_text(-0.5f64), "-0.5");
        assert_eq!(float_text(f64::MAX), "1.7976931348623157e308");
        assert_eq!(float_text(-5e-324f64), "-5e-324");
        assert_eq!(float_text(3.4028235e38f32), "3.4028235e38");
    }
}
