//! Batch → Parquet bytes.
//!
//! One row group per file, one page per column. Columns: the timestamp (INT64, TIMESTAMP
//! UTC), optionally the device id as a string, then one column per channel. Codec,
//! encodings and statistics are options; key-value metadata records the device id, the
//! object key, the schema version and the library version (plus channel units/scales).
//!
//! [`Encoder`] writes with this crate's own small writer (`pqwrite`): pages stream
//! straight to the output and every scratch buffer is kept between files, so a
//! long-lived encoder allocates nothing once warm. [`ReferenceEncoder`] writes the same
//! columns with the `parquet` crate's `SerializedFileWriter`; it is kept to compare
//! against (sizes, memory, code size) and to cross-check files in the tests.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

#[cfg(feature = "host")]
use parquet::basic::{Compression, Encoding};
#[cfg(feature = "host")]
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type};
#[cfg(feature = "host")]
use parquet::errors::ParquetError;
#[cfg(feature = "host")]
use parquet::file::metadata::KeyValue;
#[cfg(feature = "host")]
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesPtr};
#[cfg(feature = "host")]
use parquet::file::writer::SerializedFileWriter;
#[cfg(feature = "host")]
use parquet::schema::types::{ColumnPath, TypePtr};

use crate::batch::Batch;
#[cfg(feature = "host")]
use crate::batch::ColumnValues;
use crate::key::DeviceId;
#[cfg(feature = "host")]
use crate::schema::ChannelType;
use crate::schema::{SCHEMA_VERSION, Schema};

/// Key-value metadata key holding the device id.
pub const META_DEVICE_ID: &str = "sensorlake.device_id";
/// Key-value metadata key holding the object key the file is uploaded to.
pub const META_OBJECT_KEY: &str = "sensorlake.object_key";
/// Key-value metadata key holding [`SCHEMA_VERSION`].
pub const META_SCHEMA_VERSION: &str = "sensorlake.schema_version";
/// Key-value metadata key holding the library version that wrote the file.
pub const META_LIBRARY_VERSION: &str = "sensorlake.library_version";
/// Key-value metadata key present (value `true`) when timestamps were estimated.
pub const META_TIME_ESTIMATED: &str = "sensorlake.time_estimated";
/// Prefix of the per-channel unit keys (`sensorlake.unit.<channel>`).
pub const META_UNIT_PREFIX: &str = "sensorlake.unit.";
/// Prefix of the per-channel scale keys (`sensorlake.scale.<channel>`).
pub const META_SCALE_PREFIX: &str = "sensorlake.scale.";

/// Page compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// No compression.
    None,
    /// Snappy (pure Rust `snap`).
    Snappy,
    /// Parquet's LZ4_RAW (pure Rust `lz4_flex`).
    Lz4,
    /// Gzip (pure Rust `miniz_oxide`), default level.
    Gzip,
    /// Zstandard, level 3 (C library; host-only reference).
    Zstd,
}

impl Codec {
    /// Every codec, in table order.
    pub const ALL: [Codec; 5] = [Self::None, Self::Snappy, Self::Lz4, Self::Gzip, Self::Zstd];

    /// Whether this build can write the codec (it is a cargo feature).
    pub fn is_available(self) -> bool {
        match self {
            Self::None => true,
            Self::Snappy => cfg!(feature = "snappy"),
            Self::Lz4 => cfg!(feature = "lz4"),
            Self::Gzip => cfg!(feature = "gzip"),
            Self::Zstd => cfg!(feature = "zstd"),
        }
    }

    #[cfg(feature = "host")]
    fn to_parquet(self) -> Compression {
        match self {
            Self::None => Compression::UNCOMPRESSED,
            Self::Snappy => Compression::SNAPPY,
            Self::Lz4 => Compression::LZ4_RAW,
            Self::Gzip => Compression::GZIP(Default::default()),
            Self::Zstd => {
                Compression::ZSTD(parquet::basic::ZstdLevel::try_new(3).unwrap_or_default())
            }
        }
    }
}

crate::named_options! {
    Codec, EncodeError, |other| EncodeError::BadOption(format!(
        "unknown codec {other:?}: expected {}",
        crate::options::one_of(Codec::NAMES)
    ));
    None = "none" | "uncompressed",
    Snappy = "snappy",
    Lz4 = "lz4" | "lz4_raw",
    Gzip = "gzip",
    Zstd = "zstd",
}

/// Encoding of float channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatEncoding {
    /// PLAIN.
    Plain,
    /// RLE_DICTIONARY (falls back to PLAIN when the dictionary grows too large).
    Dictionary,
    /// BYTE_STREAM_SPLIT.
    ByteStreamSplit,
}

impl FloatEncoding {
    /// Every float encoding, in table order.
    pub const ALL: [FloatEncoding; 3] = [Self::Plain, Self::Dictionary, Self::ByteStreamSplit];
}

crate::named_options! {
    FloatEncoding, EncodeError, |other| EncodeError::BadOption(format!(
        "unknown float encoding {other:?}: expected {}",
        crate::options::one_of(FloatEncoding::NAMES)
    ));
    Plain = "plain",
    Dictionary = "dictionary" | "dict",
    ByteStreamSplit = "byte-stream-split" | "bss",
}

/// Encoding of the timestamp column and of integer channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntEncoding {
    /// PLAIN.
    Plain,
    /// DELTA_BINARY_PACKED.
    Delta,
}

impl IntEncoding {
    /// Both integer encodings, in table order.
    pub const ALL: [IntEncoding; 2] = [Self::Plain, Self::Delta];

    #[cfg(feature = "host")]
    fn to_parquet(self) -> Encoding {
        match self {
            Self::Plain => Encoding::PLAIN,
            Self::Delta => Encoding::DELTA_BINARY_PACKED,
        }
    }
}

crate::named_options! {
    IntEncoding, EncodeError, |other| EncodeError::BadOption(format!(
        "unknown integer encoding {other:?}: expected {}",
        crate::options::one_of(IntEncoding::NAMES)
    ));
    Plain = "plain",
    Delta = "delta",
}

/// Which min/max statistics the file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// None at all.
    None,
    /// Min/max of the timestamp column only (in the footer): what query engines prune
    /// files by; no statistics for channels.
    Timestamp,
    /// Per column chunk (in the footer), every column.
    Chunk,
    /// Per chunk and per page, plus column and offset indexes.
    Page,
}

impl Statistics {
    /// Every level, in table order.
    pub const ALL: [Statistics; 4] = [Self::None, Self::Timestamp, Self::Chunk, Self::Page];
}

crate::named_options! {
    Statistics, EncodeError, |other| EncodeError::BadOption(format!(
        "unknown statistics level {other:?}: expected {}",
        crate::options::one_of(Statistics::NAMES)
    ));
    None = "none",
    Timestamp = "timestamp" | "ts",
    Chunk = "chunk",
    Page = "page",
}

/// How files are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Page compression.
    pub codec: Codec,
    /// Encoding of float channels.
    pub float_encoding: FloatEncoding,
    /// Encoding of the timestamp column.
    pub ts_encoding: IntEncoding,
    /// Encoding of integer channels.
    pub int_encoding: IntEncoding,
    /// Statistics written.
    pub statistics: Statistics,
}

/// The defaults follow the benchmark (`sensorlake bench`, see docs/performance.md): on
/// 178-row files of real and simulated sensor data LZ4_RAW + BYTE_STREAM_SPLIT floats +
/// DELTA_BINARY_PACKED timestamps and integers + timestamp-only statistics is the
/// smallest configuration that needs little memory (LZ4's table is 8 KiB; Snappy's
/// 32 KiB; gzip's deflate state far more, measured in docs/performance.md) and time.
impl EncodeOptions {
    /// The defaults, chosen by the benchmark on real data: what [`Default`] gives and
    /// what the CLI's encoding flags default to.
    pub const DEFAULT: Self = Self {
        codec: Codec::Lz4,
        float_encoding: FloatEncoding::ByteStreamSplit,
        ts_encoding: IntEncoding::Delta,
        int_encoding: IntEncoding::Delta,
        statistics: Statistics::Timestamp,
    };
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Encoding failed.
#[derive(Debug)]
pub enum EncodeError {
    /// An option value is unknown or unavailable in this build.
    BadOption(String),
    /// The batch's schema is not the encoder's.
    SchemaMismatch,
    /// The batch has no rows.
    EmptyBatch,
    /// The `parquet` crate's writer failed (`ReferenceEncoder`).
    #[cfg(feature = "host")]
    Parquet(ParquetError),
    /// Writing the output failed (e.g. the disk is full).
    Io(std::io::Error),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadOption(msg) => f.write_str(msg),
            Self::SchemaMismatch => write!(f, "the batch's schema differs from the encoder's"),
            Self::EmptyBatch => write!(f, "an empty batch cannot be encoded"),
            #[cfg(feature = "host")]
            Self::Parquet(e) => write!(f, "parquet writer: {e}"),
            Self::Io(e) => write!(f, "cannot write the Parquet file: {e}"),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "host")]
            Self::Parquet(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "host")]
impl From<ParquetError> for EncodeError {
    fn from(e: ParquetError) -> Self {
        Self::Parquet(e)
    }
}

/// Per-file facts written into the key-value metadata.
#[derive(Debug, Clone, Copy)]
pub struct FileMetadata<'a> {
    /// The device that produced the rows.
    pub device_id: &'a DeviceId,
    /// The object key the file is uploaded to (it travels inside the file).
    pub object_key: &'a str,
}

/// Checks that `options` can be written by this build.
fn check_available(options: &EncodeOptions) -> Result<(), EncodeError> {
    if options.codec.is_available() {
        Ok(())
    } else {
        Err(EncodeError::BadOption(format!(
            "codec {} is not available in this build (cargo feature {:?})",
            options.codec.name(),
            options.codec.name()
        )))
    }
}

/// Key-value metadata that is the same for every file of a schema: schema and library
/// versions, channel units and scales.
fn fixed_key_values(schema: &Schema) -> Vec<(String, String)> {
    let mut kv = vec![
        (META_SCHEMA_VERSION.to_string(), SCHEMA_VERSION.to_string()),
        (
            META_LIBRARY_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ];
    for channel in &schema.channels {
        if let Some(unit) = &channel.unit {
            kv.push((format!("{META_UNIT_PREFIX}{}", channel.name), unit.clone()));
        }
        if let Some(scale) = channel.scale {
            kv.push((
                format!("{META_SCALE_PREFIX}{}", channel.name),
                scale.to_string(),
            ));
        }
    }
    kv
}

/// A long-lived encoder for one schema and one set of options. It keeps its scratch
/// buffers between files: after the first file of a given size it allocates nothing
/// (when writing into a reused buffer or straight to a file).
#[derive(Debug)]
pub struct Encoder {
    schema: Arc<Schema>,
    options: EncodeOptions,
    fixed_kv: Vec<(String, String)>,
    writer: crate::pqwrite::FileWriter,
}

impl Encoder {
    /// An encoder; fails if a codec is not compiled in.
    pub fn new(schema: Arc<Schema>, options: EncodeOptions) -> Result<Self, EncodeError> {
        check_available(&options)?;
        Ok(Self {
            fixed_kv: fixed_key_values(&schema),
            schema,
            options,
            writer: Default::default(),
        })
    }

    /// The options.
    pub fn options(&self) -> &EncodeOptions {
        &self.options
    }

    /// The schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Writes `batch` as one Parquet file to `out` (pages are written as they are
    /// encoded; wrap an unbuffered file in a `BufWriter` if small writes are costly).
    pub fn encode<W: Write>(
        &mut self,
        batch: &Batch,
        meta: &FileMetadata<'_>,
        out: W,
    ) -> Result<(), EncodeError> {
        if batch.schema().as_ref() != self.schema.as_ref() {
            return Err(EncodeError::SchemaMismatch);
        }
        if batch.is_empty() {
            return Err(EncodeError::EmptyBatch);
        }
        let estimated = [(META_TIME_ESTIMATED, "true")];
        let per_file = [
            (META_DEVICE_ID, meta.device_id.as_str()),
            (META_OBJECT_KEY, meta.object_key),
        ];
        let mut kv: [(&str, &str); 3] = [per_file[0], per_file[1], estimated[0]];
        let kv_len = if batch.time_estimated() { 3 } else { 2 };
        let kv = &mut kv[..kv_len];
        self.writer
            .write(
                &self.schema,
                &self.options,
                batch,
                meta.device_id.as_str(),
                (kv, &self.fixed_kv),
                out,
            )
            .map_err(EncodeError::Io)
    }

    /// Encodes `batch` into `out`, replacing its contents (reuse `out` between files to
    /// avoid allocating).
    pub fn encode_into(
        &mut self,
        batch: &Batch,
        meta: &FileMetadata<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        out.clear();
        self.encode(batch, meta, GrowSlowly(out))
    }

    /// Encodes `batch` into a new buffer.
    pub fn encode_to_vec(
        &mut self,
        batch: &Batch,
        meta: &FileMetadata<'_>,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(batch, meta, &mut out)?;
        Ok(out)
    }
}

/// Appends to a `Vec`, growing it by a quarter (not doubling) when it is full, so a
/// fresh output buffer ends close to the file's size.
struct GrowSlowly<'a>(&'a mut Vec<u8>);

impl Write for GrowSlowly<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let spare = self.0.capacity() - self.0.len();
        if spare < bytes.len() {
            self.0
                .reserve_exact(bytes.len().max(self.0.len() / 4).max(1024));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The same files written with the `parquet` crate's `SerializedFileWriter`: a
/// reference for benchmarks (size, heap, code size) and for cross-checking [`Encoder`]
/// (cargo feature `host`).
#[cfg(feature = "host")]
#[derive(Debug)]
pub struct ReferenceEncoder {
    schema: Arc<Schema>,
    parquet_schema: TypePtr,
    props: WriterPropertiesPtr,
    ts_scratch: Vec<i64>,
}

#[cfg(feature = "host")]
impl ReferenceEncoder {
    /// A reference encoder; fails if a codec is not compiled in.
    pub fn new(schema: Arc<Schema>, options: EncodeOptions) -> Result<Self, EncodeError> {
        check_available(&options)?;
        let parquet_schema = schema.to_parquet()?;
        let props = Arc::new(writer_properties(&schema, &options));
        Ok(Self {
            schema,
            parquet_schema,
            props,
            ts_scratch: Vec::new(),
        })
    }

    /// The "seed" configuration: the `parquet` crate's default writer properties
    /// (dictionary encoding on for every column, page statistics, offset index) with
    /// `codec`. Only for comparisons.
    pub fn crate_defaults(schema: Arc<Schema>, codec: Codec) -> Result<Self, EncodeError> {
        let options = EncodeOptions {
            codec,
            ..EncodeOptions::default()
        };
        check_available(&options)?;
        let mut encoder = Self::new(schema, options)?;
        encoder.props = Arc::new(
            WriterProperties::builder()
                .set_compression(codec.to_parquet())
                .build(),
        );
        Ok(encoder)
    }

    /// Writes `batch` as one Parquet file to `out`.
    pub fn encode<W: Write + Send>(
        &mut self,
        batch: &Batch,
        meta: &FileMetadata<'_>,
        out: W,
    ) -> Result<(), EncodeError> {
        if batch.schema().as_ref() != self.schema.as_ref() {
            return Err(EncodeError::SchemaMismatch);
        }
        if batch.is_empty() {
            return Err(EncodeError::EmptyBatch);
        }
        let mut writer =
            SerializedFileWriter::new(out, self.parquet_schema.clone(), self.props.clone())?;
        for kv in file_key_values(&self.schema, batch, meta) {
            writer.append_key_value_metadata(kv);
        }
        let mut row_group = writer.next_row_group()?;

        let unit = self.schema.ts_unit.micros();
        self.ts_scratch.clear();
        self.ts_scratch
            .extend(batch.timestamps().iter().map(|t| t.div_euclid(unit)));
        let mut column = row_group
            .next_column()?
            .ok_or(EncodeError::SchemaMismatch)?;
        column
            .typed::<Int64Type>()
            .write_batch(&self.ts_scratch, None, None)?;
        column.close()?;

        if self.schema.device_column.is_some() {
            let id = ByteArray::from(meta.device_id.as_str());
            let ids = vec![id; batch.len()];
            let mut column = row_group
                .next_column()?
                .ok_or(EncodeError::SchemaMismatch)?;
            column
                .typed::<ByteArrayType>()
                .write_batch(&ids, None, None)?;
            column.close()?;
        }

        for data in batch.columns() {
            let mut column = row_group
                .next_column()?
                .ok_or(EncodeError::SchemaMismatch)?;
            let levels = data.def_levels.as_deref();
            match &data.values {
                ColumnValues::F32(v) => {
                    column.typed::<FloatType>().write_batch(v, levels, None)?;
                }
                ColumnValues::F64(v) => {
                    column.typed::<DoubleType>().write_batch(v, levels, None)?;
                }
                ColumnValues::I32(v) => {
                    column.typed::<Int32Type>().write_batch(v, levels, None)?;
                }
                ColumnValues::I64(v) => {
                    column.typed::<Int64Type>().write_batch(v, levels, None)?;
                }
            }
            column.close()?;
        }
        row_group.close()?;
        writer.close()?;
        Ok(())
    }

    /// Encodes `batch` into a new buffer.
    pub fn encode_to_vec(
        &mut self,
        batch: &Batch,
        meta: &FileMetadata<'_>,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(batch, meta, &mut out)?;
        Ok(out)
    }
}

#[cfg(feature = "host")]
fn file_key_values(schema: &Schema, batch: &Batch, meta: &FileMetadata<'_>) -> Vec<KeyValue> {
    let mut kv = vec![
        KeyValue::new(META_DEVICE_ID.into(), meta.device_id.as_str().to_string()),
        KeyValue::new(META_OBJECT_KEY.into(), meta.object_key.to_string()),
        KeyValue::new(META_SCHEMA_VERSION.into(), SCHEMA_VERSION.to_string()),
        KeyValue::new(
            META_LIBRARY_VERSION.into(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ];
    if batch.time_estimated() {
        kv.push(KeyValue::new(
            META_TIME_ESTIMATED.into(),
            "true".to_string(),
        ));
    }
    for channel in &schema.channels {
        if let Some(unit) = &channel.unit {
            kv.push(KeyValue::new(
                format!("{META_UNIT_PREFIX}{}", channel.name),
                unit.clone(),
            ));
        }
        if let Some(scale) = channel.scale {
            kv.push(KeyValue::new(
                format!("{META_SCALE_PREFIX}{}", channel.name),
                scale.to_string(),
            ));
        }
    }
    kv
}

#[cfg(feature = "host")]
fn writer_properties(schema: &Schema, options: &EncodeOptions) -> WriterProperties {
    let stats = match options.statistics {
        Statistics::None | Statistics::Timestamp => EnabledStatistics::None,
        Statistics::Chunk => EnabledStatistics::Chunk,
        Statistics::Page => EnabledStatistics::Page,
    };
    let mut builder = WriterProperties::builder()
        .set_compression(options.codec.to_parquet())
        .set_statistics_enabled(stats)
        .set_offset_index_disabled(options.statistics != Statistics::Page)
        .set_dictionary_enabled(false);

    let ts = ColumnPath::from(schema.ts_column.as_str());
    builder = builder.set_column_encoding(ts.clone(), options.ts_encoding.to_parquet());
    if options.statistics == Statistics::Timestamp {
        builder = builder.set_column_statistics_enabled(ts, EnabledStatistics::Chunk);
    }
    if let Some(device) = &schema.device_column {
        // One repeated value: a dictionary stores it once.
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(device.as_str()), true);
    }
    for channel in &schema.channels {
        let path = ColumnPath::from(channel.name.as_str());
        builder = match (channel.ty, options.float_encoding) {
            (ChannelType::F32 | ChannelType::F64, FloatEncoding::Plain) => {
                builder.set_column_encoding(path, Encoding::PLAIN)
            }
            (ChannelType::F32 | ChannelType::F64, FloatEncoding::Dictionary) => {
                builder.set_column_dictionary_enabled(path, true)
            }
            (ChannelType::F32 | ChannelType::F64, FloatEncoding::ByteStreamSplit) => {
                builder.set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT)
            }
            (_, _) => builder.set_column_encoding(path, options.int_encoding.to_parquet()),
        };
    }
    builder.build()
}
