//! Parquet bytes → rows: the inverse of [`crate::encode`], for files this library wrote.
//!
//! Used to verify what was uploaded (the demo reads every object back), to re-check a
//! spooled file before it is sent again, by the holding and by `sensorlake inspect`.
//! [`decode`] reads with this crate's own reader ([`crate::pqread`], no `parquet`
//! crate, so the device links it); [`reference::decode`] (cargo feature `host`) reads
//! the same files with the `parquet` crate, to cross-check the two in the tests.

use std::fmt;
use std::sync::Arc;

use crate::batch::{Batch, BatchError, Value};
use crate::pqread::{self, Logical, Physical, TimestampUnit, Values};
use crate::schema::{Channel, ChannelType, Schema, SchemaError, TimeUnit};

/// A file that cannot be read back as sensorlake Parquet.
#[derive(Debug)]
pub enum DecodeError {
    /// Not Parquet, truncated, or a corrupt page.
    Malformed(String),
    /// Parquet, but not a layout this library writes.
    Layout(String),
    /// Column names or types are invalid.
    Schema(SchemaError),
    /// A row breaks its schema.
    Row(BatchError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "not a readable Parquet file: {e}"),
            Self::Layout(m) => write!(f, "not a sensorlake file: {m}"),
            Self::Schema(e) => write!(f, "bad schema: {e}"),
            Self::Row(e) => write!(f, "bad row: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<pqread::ReadError> for DecodeError {
    fn from(e: pqread::ReadError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// A file read back: its rows, its key-value metadata and the device column's values.
#[derive(Debug, Clone)]
pub struct DecodedFile {
    /// The rows, with the schema reconstructed from the file.
    pub batch: Batch,
    /// Key-value metadata, in file order.
    pub key_values: Vec<(String, String)>,
    /// The distinct values of the device string column, if the schema has one.
    pub device_column_values: Vec<String>,
}

impl DecodedFile {
    /// The value of key-value metadata entry `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.key_values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn layout(message: String) -> DecodeError {
    DecodeError::Layout(message)
}

/// The schema a file was written with, rebuilt from its footer and key-value metadata.
fn schema_of(footer: &pqread::Footer<'_>) -> Result<Schema, DecodeError> {
    let ts = footer
        .columns
        .first()
        .ok_or_else(|| layout("no columns".into()))?;
    let ts_unit = match (ts.physical, ts.logical, ts.optional) {
        (Physical::Int64, Logical::Timestamp(_, TimestampUnit::Micros), false) => TimeUnit::Micros,
        (Physical::Int64, Logical::Timestamp(_, TimestampUnit::Millis), false) => TimeUnit::Millis,
        (Physical::Int64, Logical::Timestamp(..), false) => {
            return Err(layout("timestamp unit is not micros or millis".into()));
        }
        _ => {
            return Err(layout(
                "the first column is not a required INT64 timestamp".into(),
            ));
        }
    };
    let mut device_column = None;
    let mut channels = Vec::new();
    for (i, column) in footer.columns.iter().enumerate().skip(1) {
        if i == 1 && column.physical == Physical::ByteArray {
            if column.optional {
                return Err(layout("the device column is nullable".into()));
            }
            device_column = Some(column.name.to_string());
            continue;
        }
        let ty = match (column.physical, column.logical) {
            (Physical::Float, Logical::None) => ChannelType::F32,
            (Physical::Double, Logical::None) => ChannelType::F64,
            (Physical::Int32, Logical::Integer(16, true)) => ChannelType::I16,
            (Physical::Int32, Logical::None) => ChannelType::I32,
            (Physical::Int64, Logical::None) => ChannelType::I64,
            (physical, logical) => {
                return Err(layout(format!(
                    "column {:?} has type {physical:?} {logical:?}",
                    column.name
                )));
            }
        };
        let mut channel = Channel::new(column.name, ty);
        channel.nullable = column.optional;
        let find = |prefix: &str| {
            footer
                .key_values
                .iter()
                .find(|(k, _)| k.strip_prefix(prefix) == Some(column.name))
                .map(|&(_, v)| v)
        };
        channel.unit = find(crate::encode::META_UNIT_PREFIX).map(str::to_string);
        channel.scale = find(crate::encode::META_SCALE_PREFIX).and_then(|s| s.parse().ok());
        channels.push(channel);
    }
    Schema {
        ts_column: ts.name.to_string(),
        ts_unit,
        device_column,
        channels,
    }
    .validated()
    .map_err(DecodeError::Schema)
}

/// Reads every row of a file this library wrote (see [`decode_slice`]).
pub fn decode(bytes: bytes::Bytes) -> Result<DecodedFile, DecodeError> {
    decode_slice(&bytes)
}

/// Reads every row of a file this library wrote, from a byte slice.
pub fn decode_slice(bytes: &[u8]) -> Result<DecodedFile, DecodeError> {
    let footer = pqread::read_footer(bytes)?;
    let schema = Arc::new(schema_of(&footer)?);
    let rows = usize::try_from(footer.num_rows)
        .map_err(|_| layout(format!("{} rows do not fit in memory", footer.num_rows)))?;
    let unit = schema.ts_unit.micros();
    let ts: Vec<i64> = match pqread::read_column(bytes, &footer, 0)?.values {
        Values::I64(v) => v
            .into_iter()
            .map(|t| {
                t.checked_mul(unit)
                    .ok_or_else(|| layout(format!("timestamp {t} overflows in µs")))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(layout("the timestamp column is not INT64".into())),
    };
    let mut device_values = Vec::new();
    let first_channel = 1 + usize::from(schema.device_column.is_some());
    if schema.device_column.is_some() {
        let column = pqread::read_column(bytes, &footer, 1)?;
        let Values::Bytes { indexes, distinct } = column.values else {
            return Err(layout("the device column is not a string".into()));
        };
        if indexes.len() != rows {
            return Err(layout(format!(
                "the device column has {} of {rows} rows",
                indexes.len()
            )));
        }
        let mut seen = vec![false; distinct.len()];
        for i in indexes {
            if !std::mem::replace(&mut seen[i as usize], true) {
                let name = String::from_utf8(distinct[i as usize].clone())
                    .map_err(|_| layout("the device column is not UTF-8".into()))?;
                device_values.push(name);
            }
        }
    }
    if ts.len() != rows {
        return Err(layout(format!(
            "the timestamp column has {} of {rows} rows",
            ts.len()
        )));
    }
    // Rows × channels, filled one decoded column at a time (sized by the timestamps
    // actually decoded, not by the footer's claim).
    let width = schema.channels.len();
    let mut cells = vec![Value::Null; rows * width];
    for c in 0..width {
        let column = pqread::read_column(bytes, &footer, first_channel + c)?;
        let name = &schema.channels[c].name;
        let mut put = |row: usize, value: Value| cells[row * width + c] = value;
        let count = match &column.values {
            Values::F32(v) => fill(v, column.present.as_deref(), rows, |r, i| {
                put(r, Value::F32(v[i]))
            }),
            Values::F64(v) => fill(v, column.present.as_deref(), rows, |r, i| {
                put(r, Value::F64(v[i]))
            }),
            Values::I32(v) => fill(v, column.present.as_deref(), rows, |r, i| {
                put(r, Value::Int(v[i].into()))
            }),
            Values::I64(v) => fill(v, column.present.as_deref(), rows, |r, i| {
                put(r, Value::Int(v[i]))
            }),
            _ => return Err(layout(format!("channel {name:?} has an unsupported type"))),
        };
        count.map_err(|why| layout(format!("channel {name:?}: {why}")))?;
    }
    let batch = Batch::from_rows(
        schema,
        ts.iter()
            .enumerate()
            .map(|(r, &t)| (t, &cells[r * width..(r + 1) * width])),
    )
    .map_err(DecodeError::Row)?;
    let key_values: Vec<(String, String)> = footer
        .key_values
        .iter()
        .map(|&(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut decoded = DecodedFile {
        batch,
        key_values,
        device_column_values: device_values,
    };
    let estimated = decoded.meta(crate::encode::META_TIME_ESTIMATED) == Some("true");
    decoded.batch.set_time_estimated(estimated);
    Ok(decoded)
}

/// Calls `put(row, index)` for each row that has a value (`index` into the dense
/// values), checking the column has exactly one value per present row; returns the
/// number of values.
fn fill<T>(
    values: &[T],
    present: Option<&[bool]>,
    rows: usize,
    mut put: impl FnMut(usize, usize),
) -> Result<usize, String> {
    match present {
        None => {
            if values.len() != rows {
                return Err(format!("{} values for {rows} rows", values.len()));
            }
            (0..rows).for_each(|r| put(r, r));
            Ok(rows)
        }
        Some(present) => {
            if present.len() != rows {
                return Err(format!(
                    "{} definition levels for {rows} rows",
                    present.len()
                ));
            }
            let mut next = 0;
            for (r, _) in present.iter().enumerate().filter(|(_, p)| **p) {
                if next == values.len() {
                    return Err("fewer values than present rows".into());
                }
                put(r, next);
                next += 1;
            }
            if next != values.len() {
                return Err("more values than present rows".into());
            }
            Ok(next)
        }
    }
}

/// The same decoding with the `parquet` crate's reader (cargo feature `host`): the
/// reference [`decode`] is checked against in the tests.
#[cfg(feature = "host")]
pub mod reference {
    use std::sync::Arc;

    use bytes::Bytes;
    use parquet::basic::{LogicalType, TimeUnit as ParquetTimeUnit, Type as PhysicalType};
    use parquet::column::reader::ColumnReader;
    use parquet::file::metadata::ParquetMetaData;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::schema::types::ColumnDescriptor;

    use super::{DecodeError, DecodedFile, layout};
    use crate::batch::{Batch, Value};
    use crate::schema::{Channel, ChannelType, Schema, TimeUnit};

    impl From<parquet::errors::ParquetError> for DecodeError {
        fn from(e: parquet::errors::ParquetError) -> Self {
            Self::Malformed(e.to_string())
        }
    }

    /// Reads only the footer: fails on bad magic, a bad footer or a wrong size.
    pub fn read_metadata(bytes: Bytes) -> Result<ParquetMetaData, DecodeError> {
        Ok(SerializedFileReader::new(bytes)?.metadata().clone())
    }

    fn channel_type(column: &ColumnDescriptor) -> Result<ChannelType, DecodeError> {
        match (column.physical_type(), column.logical_type_ref()) {
            (PhysicalType::FLOAT, None) => Ok(ChannelType::F32),
            (PhysicalType::DOUBLE, None) => Ok(ChannelType::F64),
            (PhysicalType::INT32, Some(LogicalType::Integer(t))) if t.bit_width == 16 => {
                Ok(ChannelType::I16)
            }
            (PhysicalType::INT32, None) => Ok(ChannelType::I32),
            (PhysicalType::INT64, None) => Ok(ChannelType::I64),
            (physical, logical) => Err(layout(format!(
                "column {:?} has type {physical:?} {logical:?}",
                column.name()
            ))),
        }
    }

    /// Reads every row of a file this library wrote.
    pub fn decode(bytes: Bytes) -> Result<DecodedFile, DecodeError> {
        let reader = SerializedFileReader::new(bytes)?;
        let meta = reader.metadata();
        let descr = meta.file_metadata().schema_descr();
        let columns = descr.columns();
        let ts_column = columns.first().ok_or_else(|| layout("no columns".into()))?;
        let ts_unit = match (ts_column.physical_type(), ts_column.logical_type_ref()) {
            (PhysicalType::INT64, Some(LogicalType::Timestamp(t))) => match t.unit {
                ParquetTimeUnit::MICROS => TimeUnit::Micros,
                ParquetTimeUnit::MILLIS => TimeUnit::Millis,
                _ => return Err(layout("timestamp unit is not micros or millis".into())),
            },
            _ => return Err(layout("the first column is not an INT64 timestamp".into())),
        };
        let mut device_column = None;
        let mut channels = Vec::new();
        for (i, column) in columns.iter().enumerate().skip(1) {
            if i == 1 && column.physical_type() == PhysicalType::BYTE_ARRAY {
                device_column = Some(column.name().to_string());
                continue;
            }
            let mut channel = Channel::new(column.name(), channel_type(column)?);
            channel.nullable = column.max_def_level() > 0;
            channels.push(channel);
        }
        let key_values: Vec<(String, String)> = meta
            .file_metadata()
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        for channel in &mut channels {
            let find = |prefix: &str| {
                let key = format!("{prefix}{}", channel.name);
                key_values
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            };
            channel.unit = find(crate::encode::META_UNIT_PREFIX);
            channel.scale = find(crate::encode::META_SCALE_PREFIX).and_then(|s| s.parse().ok());
        }
        let schema = Arc::new(
            Schema {
                ts_column: ts_column.name().to_string(),
                ts_unit,
                device_column: device_column.clone(),
                channels,
            }
            .validated()
            .map_err(DecodeError::Schema)?,
        );

        let rows = usize::try_from(meta.file_metadata().num_rows())
            .map_err(|_| layout("negative row count".into()))?;
        let mut ts = Vec::with_capacity(rows);
        let mut values: Vec<Vec<Value>> = vec![Vec::with_capacity(rows); schema.channels.len()];
        let mut device_values: Vec<String> = Vec::new();
        for g in 0..reader.num_row_groups() {
            let group = reader.get_row_group(g)?;
            let group_rows = usize::try_from(group.metadata().num_rows())
                .map_err(|_| layout("negative row count".into()))?;
            for c in 0..group.num_columns() {
                if c == 1 && device_column.is_some() {
                    for name in read_strings(group.get_column_reader(c)?, group_rows)? {
                        if !device_values.contains(&name) {
                            device_values.push(name);
                        }
                    }
                    continue;
                }
                let nullable = descr.column(c).max_def_level() > 0;
                let mut levels = Vec::with_capacity(group_rows);
                let dense = read_column(
                    group.get_column_reader(c)?,
                    group_rows,
                    nullable,
                    &mut levels,
                )?;
                if c == 0 {
                    let unit = ts_unit.micros();
                    ts.extend(dense.into_iter().map(|v| match v {
                        Value::Int(t) => t.saturating_mul(unit),
                        _ => 0,
                    }));
                    continue;
                }
                let out = &mut values[c - 1 - usize::from(device_column.is_some())];
                if nullable {
                    let mut dense = dense.into_iter();
                    for level in levels {
                        out.push(if level == 0 {
                            Value::Null
                        } else {
                            dense.next().unwrap_or(Value::Null)
                        });
                    }
                } else {
                    out.extend(dense);
                }
            }
        }
        if ts.len() != rows || values.iter().any(|v| v.len() != rows) {
            return Err(layout(format!(
                "column lengths differ from the row count {rows}"
            )));
        }
        let mut all_rows: Vec<(i64, Vec<Value>)> = Vec::with_capacity(rows);
        for (r, t) in ts.iter().enumerate() {
            all_rows.push((*t, values.iter().map(|col| col[r]).collect()));
        }
        let batch = Batch::from_rows(schema, all_rows.iter().map(|(t, v)| (*t, v.as_slice())))
            .map_err(DecodeError::Row)?;
        let mut decoded = DecodedFile {
            batch,
            key_values,
            device_column_values: device_values,
        };
        let estimated = decoded.meta(crate::encode::META_TIME_ESTIMATED) == Some("true");
        decoded.batch.set_time_estimated(estimated);
        Ok(decoded)
    }

    fn read_column(
        reader: ColumnReader,
        rows: usize,
        nullable: bool,
        levels: &mut Vec<i16>,
    ) -> Result<Vec<Value>, DecodeError> {
        fn read<T: parquet::data_type::DataType>(
            mut reader: parquet::column::reader::ColumnReaderImpl<T>,
            rows: usize,
            nullable: bool,
            levels: &mut Vec<i16>,
        ) -> Result<Vec<T::T>, DecodeError> {
            let mut values = Vec::with_capacity(rows);
            let mut read_rows = 0;
            while read_rows < rows {
                let def_levels = if nullable { Some(&mut *levels) } else { None };
                let (records, _, _) =
                    reader.read_records(rows - read_rows, def_levels, None, &mut values)?;
                if records == 0 {
                    return Err(layout(format!(
                        "a column ends after {read_rows} of {rows} rows"
                    )));
                }
                read_rows += records;
            }
            Ok(values)
        }
        Ok(match reader {
            ColumnReader::FloatColumnReader(r) => read(r, rows, nullable, levels)?
                .into_iter()
                .map(Value::F32)
                .collect(),
            ColumnReader::DoubleColumnReader(r) => read(r, rows, nullable, levels)?
                .into_iter()
                .map(Value::F64)
                .collect(),
            ColumnReader::Int32ColumnReader(r) => read(r, rows, nullable, levels)?
                .into_iter()
                .map(|v| Value::Int(v.into()))
                .collect(),
            ColumnReader::Int64ColumnReader(r) => read(r, rows, nullable, levels)?
                .into_iter()
                .map(Value::Int)
                .collect(),
            _ => return Err(layout("unsupported column type".into())),
        })
    }

    fn read_strings(reader: ColumnReader, rows: usize) -> Result<Vec<String>, DecodeError> {
        let ColumnReader::ByteArrayColumnReader(mut r) = reader else {
            return Err(layout("device column is not a string".into()));
        };
        let mut values = Vec::with_capacity(rows);
        let mut read_rows = 0;
        while read_rows < rows {
            let (records, _, _) = r.read_records(rows - read_rows, None, None, &mut values)?;
            if records == 0 {
                break;
            }
            read_rows += records;
        }
        Ok(values
            .iter()
            .map(|v| String::from_utf8_lossy(v.data()).into_owned())
            .collect())
    }
}
