//! What a row is: a timestamp plus named channels, and the Parquet schema it maps to.

use std::fmt;
#[cfg(feature = "host")]
use std::sync::Arc;

use crate::layout::SchemaPreset;

#[cfg(feature = "host")]
use parquet::basic::{
    IntType, LogicalType, Repetition, TimeUnit as ParquetTimeUnit, TimestampType,
    Type as PhysicalType,
};
#[cfg(feature = "host")]
use parquet::schema::types::{Type, TypePtr};

/// Version of the file layout this library writes (columns, metadata keys). Stored in
/// every file's key-value metadata as `sensorlake.schema_version`.
pub const SCHEMA_VERSION: &str = "1";

/// The storage type of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelType {
    /// IEEE 754 single precision, Parquet `FLOAT`.
    F32,
    /// IEEE 754 double precision, Parquet `DOUBLE` (what CSV inference picks for a
    /// float column that `f32` cannot hold exactly).
    F64,
    /// Signed 16-bit raw counts, Parquet `INT32` annotated `INT(16, true)`.
    I16,
    /// Signed 32-bit raw counts, Parquet `INT32`.
    I32,
    /// Signed 64-bit raw counts, Parquet `INT64`.
    I64,
}

crate::named_options! {
    ChannelType, SchemaError, |other| SchemaError::UnknownType(other.to_string());
    F32 = "f32" | "float",
    F64 = "f64" | "double",
    I16 = "i16",
    I32 = "i32",
    I64 = "i64",
}

impl ChannelType {
    /// Whether values of this type are integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, Self::F32 | Self::F64)
    }

    /// The inclusive range of an integer type.
    pub fn int_range(self) -> (i64, i64) {
        match self {
            Self::I16 => (i16::MIN.into(), i16::MAX.into()),
            Self::I32 => (i32::MIN.into(), i32::MAX.into()),
            Self::I64 | Self::F32 | Self::F64 => (i64::MIN, i64::MAX),
        }
    }
}

/// One sensor channel: a named column of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Column name: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters.
    pub name: String,
    /// Storage type.
    pub ty: ChannelType,
    /// Whether a reading may be missing (a failed sensor read is stored as null).
    pub nullable: bool,
    /// Unit of the value as stored, e.g. `degC` (informational, kept in the file's metadata).
    pub unit: Option<String>,
    /// For integer raw counts: physical value = raw × scale (kept in the file's metadata).
    pub scale: Option<f64>,
}

impl Channel {
    /// A required `f32` channel.
    pub fn f32(name: &str) -> Self {
        Self::new(name, ChannelType::F32)
    }

    /// A required channel of the given type.
    pub fn new(name: &str, ty: ChannelType) -> Self {
        Self {
            name: name.to_string(),
            ty,
            nullable: false,
            unit: None,
            scale: None,
        }
    }

    /// This channel, nullable.
    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }

    /// This channel, with a unit.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = Some(unit.to_string());
        self
    }

    /// This channel, with a scale from raw counts to physical units.
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = Some(scale);
        self
    }
}

/// Resolution of the stored timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Microseconds since the Unix epoch (the default).
    Micros,
    /// Milliseconds since the Unix epoch (what Polars writes for the OpenSensor network).
    Millis,
}

impl TimeUnit {
    /// Microseconds in one unit.
    pub fn micros(self) -> i64 {
        match self {
            Self::Micros => 1,
            Self::Millis => 1000,
        }
    }
}

/// The columns of every file: a UTC timestamp, optionally the device id as a string
/// column, then the channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Name of the timestamp column (`ts` by default).
    pub ts_column: String,
    /// Resolution of the timestamp column.
    pub ts_unit: TimeUnit,
    /// If set, a string column of this name holds the device id in every row.
    pub device_column: Option<String>,
    /// The sensor channels, in column order.
    pub channels: Vec<Channel>,
}

/// An invalid schema or channel definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// The schema has no channels.
    NoChannels,
    /// A column name breaks the naming rule.
    BadName(String),
    /// Two columns share a name.
    DuplicateName(String),
    /// A channel type that is not one of f32, f64, i16, i32, i64.
    UnknownType(String),
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoChannels => write!(f, "the schema has no channels"),
            Self::BadName(name) => write!(
                f,
                "column name {} is not allowed: use 1-64 characters from [A-Za-z0-9_], not starting with a digit",
                shown(name)
            ),
            Self::DuplicateName(name) => {
                write!(f, "column name {} appears twice", shown(name))
            }
            Self::UnknownType(ty) => {
                write!(
                    f,
                    "unknown channel type {}: expected {}",
                    shown(ty),
                    crate::options::one_of(ChannelType::NAMES)
                )
            }
        }
    }
}

impl std::error::Error for SchemaError {}

/// Characters of a name or cell quoted in messages before it is cut.
pub const SHOWN_CHARS: usize = 64;

/// `text` quoted for a message, cut after [`SHOWN_CHARS`] characters (`"abc…"`), so a
/// huge column name or cell does not flood the terminal or the log.
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}…", &text[..end]),
    }
}

fn valid_column_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

impl Schema {
    /// A schema with a `ts` microsecond timestamp and the given channels.
    pub fn new(channels: Vec<Channel>) -> Result<Self, SchemaError> {
        Self {
            ts_column: "ts".to_string(),
            ts_unit: TimeUnit::Micros,
            device_column: None,
            channels,
        }
        .validated()
    }

    /// Checks names (non-empty, unique, `[A-Za-z_][A-Za-z0-9_]*`) and returns the schema.
    pub fn validated(self) -> Result<Self, SchemaError> {
        if self.channels.is_empty() {
            return Err(SchemaError::NoChannels);
        }
        let mut names: Vec<&str> = Vec::with_capacity(self.channels.len() + 2);
        names.push(&self.ts_column);
        names.extend(self.device_column.as_deref());
        names.extend(self.channels.iter().map(|c| c.name.as_str()));
        for (i, name) in names.iter().enumerate() {
            if !valid_column_name(name) {
                return Err(SchemaError::BadName(name.to_string()));
            }
            if names[..i].contains(name) {
                return Err(SchemaError::DuplicateName(name.to_string()));
            }
        }
        Ok(self)
    }

    /// The schema with a layout's column conventions (see
    /// [`crate::layout::KeyLayout::schema_preset`]), validated; unchanged by
    /// [`SchemaPreset::NONE`].
    pub fn with_preset(mut self, preset: &SchemaPreset) -> Result<Self, SchemaError> {
        if *preset == SchemaPreset::NONE {
            return Ok(self);
        }
        if let Some(ts_column) = preset.ts_column {
            self.ts_column = ts_column.into();
        }
        if let Some(ts_unit) = preset.ts_unit {
            self.ts_unit = ts_unit;
        }
        if let Some(device_column) = preset.device_column {
            self.device_column = Some(device_column.into());
        }
        self.validated()
    }

    /// Index of the channel with this name.
    pub fn channel_index(&self, name: &str) -> Option<usize> {
        self.channels.iter().position(|c| c.name == name)
    }

    /// Bytes per row of the raw binary form: 8 for the timestamp plus each channel's width.
    pub fn raw_row_bytes(&self) -> usize {
        8 + self
            .channels
            .iter()
            .map(|c| match c.ty {
                ChannelType::I16 => 2,
                ChannelType::F32 | ChannelType::I32 => 4,
                ChannelType::I64 | ChannelType::F64 => 8,
            })
            .sum::<usize>()
    }

    /// The Parquet message type for this schema (cargo feature `host`).
    #[cfg(feature = "host")]
    pub fn to_parquet(&self) -> Result<TypePtr, parquet::errors::ParquetError> {
        let unit = match self.ts_unit {
            TimeUnit::Micros => ParquetTimeUnit::MICROS,
            TimeUnit::Millis => ParquetTimeUnit::MILLIS,
        };
        let mut fields = Vec::with_capacity(self.channels.len() + 2);
        fields.push(Arc::new(
            Type::primitive_type_builder(&self.ts_column, PhysicalType::INT64)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::Timestamp(TimestampType {
                    is_adjusted_to_u_t_c: true,
                    unit,
                })))
                .build()?,
        ));
        if let Some(name) = &self.device_column {
            fields.push(Arc::new(
                Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
                    .with_repetition(Repetition::REQUIRED)
                    .with_logical_type(Some(LogicalType::String))
                    .build()?,
            ));
        }
        for channel in &self.channels {
            let repetition = if channel.nullable {
                Repetition::OPTIONAL
            } else {
                Repetition::REQUIRED
            };
            let (physical, logical) = match channel.ty {
                ChannelType::F32 => (PhysicalType::FLOAT, None),
                ChannelType::F64 => (PhysicalType::DOUBLE, None),
                ChannelType::I16 => (
                    PhysicalType::INT32,
                    Some(LogicalType::Integer(IntType {
                        bit_width: 16,
                        is_signed: true,
                    })),
                ),
                ChannelType::I32 => (PhysicalType::INT32, None),
                ChannelType::I64 => (PhysicalType::INT64, None),
            };
            fields.push(Arc::new(
                Type::primitive_type_builder(&channel.name, physical)
                    .with_repetition(repetition)
                    .with_logical_type(logical)
                    .build()?,
            ));
        }
        Ok(Arc::new(
            Type::group_type_builder("sensorlake")
                .with_fields(fields)
                .build()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_and_duplicate_names() {
        assert_eq!(Schema::new(vec![]), Err(SchemaError::NoChannels));
        assert_eq!(
            Schema::new(vec![Channel::f32("a/b")]),
            Err(SchemaError::BadName("a/b".into()))
        );
        assert_eq!(
            Schema::new(vec![Channel::f32("ts")]),
            Err(SchemaError::DuplicateName("ts".into()))
        );
        assert_eq!(
            Schema::new(vec![Channel::f32("x"), Channel::f32("x")]),
            Err(SchemaError::DuplicateName("x".into()))
        );
        assert!(Schema::new(vec![Channel::f32("acc_x"), Channel::f32("_t2")]).is_ok());
    }

    #[test]
    fn raw_row_bytes_counts_each_width() {
        let schema = Schema::new(vec![
            Channel::f32("a"),
            Channel::new("b", ChannelType::I16),
            Channel::new("c", ChannelType::I64),
        ])
        .unwrap();
        assert_eq!(schema.raw_row_bytes(), 8 + 4 + 2 + 8);
    }
}
