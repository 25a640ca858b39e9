//! A small Parquet file writer for exactly what this library writes: one row group, one
//! data page per column, flat columns (INT64 timestamp, an optional dictionary-encoded
//! string, FLOAT/DOUBLE/INT32/INT64 channels, REQUIRED or OPTIONAL).
//!
//! Why not the `parquet` crate's `SerializedFileWriter`: for a 178-row file it keeps an
//! 8 KiB `BufWriter`, builds per-column writers and converts the whole footer to Thrift
//! structs at close (several times this writer's peak heap, and hundreds of allocations
//! per file), writes per-column size statistics and encoding stats nobody prunes with,
//! and costs far more flash; the measured figures are in docs/performance.md. This writer streams pages straight to the output, keeps its scratch
//! buffers between files (no allocation once warm), and writes only the footer fields
//! readers need. Files are checked by the `parquet` crate's reader, pyarrow, DuckDB and
//! Polars in the tests.

use std::collections::HashMap;
use std::io::{self, Write};
use std::ops::Range;

use crate::batch::{Batch, ColumnValues};
use crate::encode::{Codec, EncodeOptions, FloatEncoding, IntEncoding, Statistics};
use crate::schema::{ChannelType, Schema, TimeUnit};
use crate::thrift::{ListOf, Thrift, put_varint, zigzag};

// Parquet enum values (parquet.thrift).
const TYPE_INT32: i32 = 1;
const TYPE_INT64: i32 = 2;
const TYPE_FLOAT: i32 = 4;
const TYPE_DOUBLE: i32 = 5;
const TYPE_BYTE_ARRAY: i32 = 6;
const REQUIRED: i32 = 0;
const OPTIONAL: i32 = 1;
const ENC_PLAIN: i32 = 0;
const ENC_RLE: i32 = 3;
const ENC_DELTA_BINARY_PACKED: i32 = 5;
const ENC_RLE_DICTIONARY: i32 = 8;
const ENC_BYTE_STREAM_SPLIT: i32 = 9;
const PAGE_DATA: i32 = 0;
const PAGE_DICTIONARY: i32 = 2;
const CONVERTED_UTF8: i32 = 0;
const CONVERTED_TIMESTAMP_MILLIS: i32 = 9;
const CONVERTED_TIMESTAMP_MICROS: i32 = 10;
const CONVERTED_INT_16: i32 = 16;
const BOUNDARY_UNORDERED: i32 = 0;
const BOUNDARY_ASCENDING: i32 = 1;

/// DELTA_BINARY_PACKED layout: 128 values per block in 4 miniblocks of 32.
const DELTA_BLOCK: usize = 128;
const DELTA_MINIBLOCKS: usize = 4;
const DELTA_MINIBLOCK: usize = DELTA_BLOCK / DELTA_MINIBLOCKS;

/// The values of one column, borrowed from the batch.
#[derive(Clone, Copy)]
enum Values<'a> {
    /// Timestamps in µs and the divisor to the stored unit.
    Timestamp(&'a [i64], i64),
    Device(&'a str),
    F32(&'a [f32]),
    F64(&'a [f64]),
    I32(&'a [i32]),
    I64(&'a [i64]),
}

/// What the footer needs to know about one written column chunk (kept small: one per
/// column stays in memory until the footer is written).
#[derive(Debug, Clone, Default)]
struct Chunk {
    physical: i32,
    codec: i32,
    encodings: [i32; 3],
    encoding_count: u8,
    dictionary_offset: Option<u32>,
    data_offset: u32,
    data_page_len: u32,
    uncompressed: u32,
    compressed: u32,
    nulls: u32,
    /// Min/max as Parquet's little-endian value bytes, as ranges of `FileWriter::stats`.
    stats: Option<(Range<u32>, Range<u32>)>,
}

/// A file offset or size as `u32`: a batch file is far below 4 GiB.
fn small(value: impl TryInto<u32>) -> io::Result<u32> {
    value
        .try_into()
        .map_err(|_| io_error("a file of 4 GiB or more is not a batch".into()))
}

fn range(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
}

/// Key-value metadata: per-file pairs, then the pairs fixed for the schema.
pub(crate) type KeyValues<'a> = (&'a [(&'a str, &'a str)], &'a [(String, String)]);

/// Counts the bytes written through it.
struct Tracked<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Tracked<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Page compression state, kept between files.
#[derive(Default)]
struct Compressors {
    /// Boxed: its 2 KiB table is inline, and only files written with Snappy need it.
    #[cfg(feature = "snappy")]
    snappy: Option<Box<snap::raw::Encoder>>,
    #[cfg(feature = "lz4")]
    lz4: Option<lz4_flex::block::CompressTable>,
    #[cfg(feature = "gzip")]
    gzip: Option<flate2::Compress>,
    #[cfg(feature = "zstd")]
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

/// The writer: scratch buffers reused for every file.
#[derive(Default)]
pub(crate) struct FileWriter {
    body: Vec<u8>,
    dict_body: Vec<u8>,
    compressed: Vec<u8>,
    header: Vec<u8>,
    footer: Vec<u8>,
    stats: Vec<u8>,
    indexes: Vec<u32>,
    dict_positions: HashMap<u64, u32>,
    /// Distinct float values (their bits) of the dictionary being built.
    dict_values: Vec<u64>,
    chunks: Vec<Chunk>,
    /// (column index, offset index) as (offset, length) per column, with page statistics.
    page_indexes: Vec<[(u64, u64); 2]>,
    compressors: Compressors,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter").finish_non_exhaustive()
    }
}

fn codec_id(codec: Codec) -> i32 {
    match codec {
        Codec::None => 0,
        Codec::Snappy => 1,
        Codec::Gzip => 2,
        Codec::Zstd => 6,
        Codec::Lz4 => 7, // LZ4_RAW
    }
}

fn io_error(message: String) -> io::Error {
    io::Error::other(message)
}

impl FileWriter {
    /// Writes `batch` as one Parquet file.
    pub(crate) fn write<W: Write>(
        &mut self,
        schema: &Schema,
        options: &EncodeOptions,
        batch: &Batch,
        device_id: &str,
        key_values: KeyValues<'_>,
        out: W,
    ) -> io::Result<()> {
        let mut out = Tracked { inner: out, pos: 0 };
        out.put(b"PAR1")?;
        self.chunks.clear();
        self.page_indexes.clear();
        self.stats.clear();

        let columns = 1 + usize::from(schema.device_column.is_some()) + schema.channels.len();
        self.chunks.reserve_exact(columns);
        let unit = schema.ts_unit.micros();
        let stats_for_ts = options.statistics != Statistics::None;
        let rows = batch.len();
        self.column(
            &mut out,
            options,
            Values::Timestamp(batch.timestamps(), unit),
            None,
            rows,
            stats_for_ts,
        )?;
        if schema.device_column.is_some() {
            let chunk_stats = matches!(options.statistics, Statistics::Chunk | Statistics::Page);
            self.column(
                &mut out,
                options,
                Values::Device(device_id),
                None,
                rows,
                chunk_stats,
            )?;
        }
        let chunk_stats = matches!(options.statistics, Statistics::Chunk | Statistics::Page);
        for data in batch.columns() {
            let values = match &data.values {
                ColumnValues::F32(v) => Values::F32(v),
                ColumnValues::F64(v) => Values::F64(v),
                ColumnValues::I32(v) => Values::I32(v),
                ColumnValues::I64(v) => Values::I64(v),
            };
            self.column(
                &mut out,
                options,
                values,
                data.def_levels.as_deref(),
                rows,
                chunk_stats,
            )?;
        }
        if options.statistics == Statistics::Page {
            self.write_page_indexes(&mut out, batch.len())?;
        }
        self.write_footer(&mut out, schema, batch.len(), key_values)?;
        out.inner.flush()
    }

    fn column<W: Write>(
        &mut self,
        out: &mut Tracked<W>,
        options: &EncodeOptions,
        values: Values<'_>,
        levels: Option<&[i16]>,
        rows: usize,
        with_stats: bool,
    ) -> io::Result<()> {
        let mut chunk = Chunk {
            codec: codec_id(options.codec),
            ..Chunk::default()
        };
        self.body.clear();
        if let Some(levels) = levels {
            // Definition levels: 4-byte length, then the RLE/bit-packed hybrid (width 1).
            chunk.nulls = small(levels.iter().filter(|&&l| l == 0).count())?;
            self.body.extend_from_slice(&[0; 4]);
            write_hybrid(levels.len(), |i| levels[i] as u32, 1, &mut self.body);
            let len = (self.body.len() - 4) as u32;
            self.body[..4].copy_from_slice(&len.to_le_bytes());
        }
        let encoding = match values {
            Values::Timestamp(v, unit) => {
                chunk.physical = TYPE_INT64;
                if with_stats {
                    // Timestamps need not be sorted (a clock may step back).
                    let (min, max) = (v.iter().min(), v.iter().max());
                    if let (Some(min), Some(max)) = (min, max) {
                        chunk.stats = self
                            .minmax(&[min.div_euclid(unit), max.div_euclid(unit)], |x| {
                                x.to_le_bytes()
                            });
                    }
                }
                self.encode_ints(
                    v.iter().map(|t| t.div_euclid(unit)),
                    v.len(),
                    true,
                    options.ts_encoding,
                )
            }
            Values::I64(v) => {
                chunk.physical = TYPE_INT64;
                if with_stats {
                    chunk.stats = self.minmax(v, |x| x.to_le_bytes());
                }
                self.encode_ints(v.iter().copied(), v.len(), true, options.int_encoding)
            }
            Values::I32(v) => {
                chunk.physical = TYPE_INT32;
                if with_stats {
                    chunk.stats = self.minmax(v, |x| x.to_le_bytes());
                }
                self.encode_ints(
                    v.iter().map(|&x| x.into()),
                    v.len(),
                    false,
                    options.int_encoding,
                )
            }
            Values::F32(v) => {
                chunk.physical = TYPE_FLOAT;
                if with_stats {
                    chunk.stats = self.float_minmax(v.iter().map(|&x| f64::from(x)), 4);
                }
                self.encode_floats(
                    v.iter().map(|x| u64::from(x.to_bits())),
                    4,
                    options.float_encoding,
                )
            }
            Values::F64(v) => {
                chunk.physical = TYPE_DOUBLE;
                if with_stats {
                    chunk.stats = self.float_minmax(v.iter().copied(), 8);
                }
                self.encode_floats(v.iter().map(|x| x.to_bits()), 8, options.float_encoding)
            }
            Values::Device(id) => {
                chunk.physical = TYPE_BYTE_ARRAY;
                if with_stats {
                    let start = small(self.stats.len())?;
                    self.stats.extend_from_slice(id.as_bytes());
                    let end = small(self.stats.len())?;
                    chunk.stats = Some((start..end, start..end));
                }
                // One repeated value: a one-entry dictionary and a single RLE run.
                self.dict_body.clear();
                self.dict_body
                    .extend_from_slice(&(id.len() as u32).to_le_bytes());
                self.dict_body.extend_from_slice(id.as_bytes());
                self.body.push(1);
                write_hybrid(rows, |_| 0, 1, &mut self.body);
                ENC_RLE_DICTIONARY
            }
        };
        if encoding == ENC_RLE_DICTIONARY {
            chunk.encodings[0] = ENC_PLAIN;
            chunk.encodings[1] = ENC_RLE_DICTIONARY;
            chunk.encoding_count = 2;
            let entries = match values {
                Values::Device(_) => 1,
                _ => self.dict_values.len(),
            };
            let offset = out.pos;
            let body = std::mem::take(&mut self.dict_body);
            let result = self.page(out, &mut chunk, &body, PAGE_DICTIONARY, entries, ENC_PLAIN);
            self.dict_body = body;
            result?;
            chunk.dictionary_offset = Some(small(offset)?);
        } else {
            chunk.encodings[0] = encoding;
            chunk.encoding_count = 1;
        }
        if levels.is_some() {
            chunk.encodings[usize::from(chunk.encoding_count)] = ENC_RLE;
            chunk.encoding_count += 1;
        }
        chunk.data_offset = small(out.pos)?;
        let body = std::mem::take(&mut self.body);
        let result = self.page(out, &mut chunk, &body, PAGE_DATA, rows, encoding);
        self.body = body;
        result?;
        chunk.data_page_len = small(out.pos - u64::from(chunk.data_offset))?;
        self.chunks.push(chunk);
        Ok(())
    }

    /// Encodes integers (PLAIN or DELTA_BINARY_PACKED) into `body`; returns the encoding.
    fn encode_ints(
        &mut self,
        values: impl Iterator<Item = i64> + Clone,
        count: usize,
        wide: bool,
        encoding: IntEncoding,
    ) -> i32 {
        match encoding {
            IntEncoding::Plain => {
                for v in values {
                    if wide {
                        self.body.extend_from_slice(&v.to_le_bytes());
                    } else {
                        self.body.extend_from_slice(&(v as i32).to_le_bytes());
                    }
                }
                ENC_PLAIN
            }
            IntEncoding::Delta => {
                write_delta(values, count, wide, &mut self.body);
                ENC_DELTA_BINARY_PACKED
            }
        }
    }

    /// Encodes floats given as their IEEE 754 bits (`width` = 4 for FLOAT, 8 for
    /// DOUBLE) into `body`; returns the encoding.
    fn encode_floats(
        &mut self,
        bits: impl Iterator<Item = u64> + Clone,
        width: usize,
        encoding: FloatEncoding,
    ) -> i32 {
        match encoding {
            FloatEncoding::Plain => {
                for x in bits {
                    self.body.extend_from_slice(&x.to_le_bytes()[..width]);
                }
                ENC_PLAIN
            }
            FloatEncoding::ByteStreamSplit => {
                for byte in 0..width {
                    self.body
                        .extend(bits.clone().map(|x| x.to_le_bytes()[byte]));
                }
                ENC_BYTE_STREAM_SPLIT
            }
            FloatEncoding::Dictionary => {
                self.float_dictionary(bits, width);
                ENC_RLE_DICTIONARY
            }
        }
    }

    /// Builds the dictionary page body (PLAIN distinct values in first-seen order, each
    /// `width` bytes) and writes the bit width and RLE/bit-packed indices into `body`.
    fn float_dictionary(&mut self, bits: impl Iterator<Item = u64>, width: usize) {
        self.dict_positions.clear();
        self.dict_values.clear();
        self.indexes.clear();
        for x in bits {
            let next = self.dict_values.len() as u32;
            let index = *self.dict_positions.entry(x).or_insert(next);
            if index == next {
                self.dict_values.push(x);
            }
            self.indexes.push(index);
        }
        self.dict_body.clear();
        for x in &self.dict_values {
            self.dict_body.extend_from_slice(&x.to_le_bytes()[..width]);
        }
        let max_index = self.dict_values.len().saturating_sub(1) as u32;
        let width = (32 - max_index.leading_zeros()).max(1) as u8;
        self.body.push(width);
        let indexes = &self.indexes;
        write_hybrid(indexes.len(), |i| indexes[i], width, &mut self.body);
    }

    fn minmax<T: Copy + PartialOrd, const N: usize>(
        &mut self,
        values: &[T],
        bytes: impl Fn(T) -> [u8; N],
    ) -> Option<(Range<u32>, Range<u32>)> {
        let (&first, rest) = values.split_first()?;
        let (mut min, mut max) = (first, first);
        for &v in rest {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let start = self.stats.len() as u32;
        self.stats.extend_from_slice(&bytes(min));
        self.stats.extend_from_slice(&bytes(max));
        let n = N as u32;
        Some((start..start + n, start + n..start + 2 * n))
    }

    /// Min/max statistics of floats (given widened to f64, which is exact for f32;
    /// `width` = 4 writes them back as FLOAT, 8 as DOUBLE).
    fn float_minmax(
        &mut self,
        values: impl Iterator<Item = f64>,
        width: u32,
    ) -> Option<(Range<u32>, Range<u32>)> {
        let finite: Option<(f64, f64)> = values.filter(|v| !v.is_nan()).fold(None, |acc, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        });
        let (mut min, mut max) = finite?;
        // Parquet's rule for signed zeros: a zero minimum is -0.0, a zero maximum +0.0.
        if min == 0.0 {
            min = -0.0;
        }
        if max == 0.0 {
            max = 0.0;
        }
        let start = self.stats.len() as u32;
        if width == 4 {
            // Exact: the values were f32 before widening.
            self.stats.extend_from_slice(&(min as f32).to_le_bytes());
            self.stats.extend_from_slice(&(max as f32).to_le_bytes());
        } else {
            self.stats.extend_from_slice(&min.to_le_bytes());
            self.stats.extend_from_slice(&max.to_le_bytes());
        }
        Some((start..start + width, start + width..start + 2 * width))
    }

    /// Compresses `body` and writes the page header and page.
    fn page<W: Write>(
        &mut self,
        out: &mut Tracked<W>,
        chunk: &mut Chunk,
        body: &[u8],
        page_type: i32,
        values: usize,
        encoding: i32,
    ) -> io::Result<()> {
        let codec = match chunk.codec {
            0 => Codec::None,
            1 => Codec::Snappy,
            2 => Codec::Gzip,
            6 => Codec::Zstd,
            _ => Codec::Lz4,
        };
        let compressed_len = self.compress(codec, body)?;
        let payload: &[u8] = match codec {
            Codec::None => body,
            _ => &self.compressed[..compressed_len],
        };
        self.header.clear();
        let mut t = Thrift::new(&mut self.header);
        t.i32(1, page_type)
            .i32(2, len_i32(body.len())?)
            .i32(3, len_i32(payload.len())?);
        if page_type == PAGE_DATA {
            t.begin(5)
                .i32(1, len_i32(values)?)
                .i32(2, encoding)
                .i32(3, ENC_RLE)
                .i32(4, ENC_RLE)
                .end();
        } else {
            t.begin(7).i32(1, len_i32(values)?).i32(2, encoding).end();
        }
        t.finish();
        out.put(&self.header)?;
        out.put(payload)?;
        chunk.uncompressed += small(self.header.len() + body.len())?;
        chunk.compressed += small(self.header.len() + payload.len())?;
        Ok(())
    }

    /// Compresses `body` into `self.compressed`; returns the compressed length.
    fn compress(&mut self, codec: Codec, body: &[u8]) -> io::Result<usize> {
        let c = &mut self.compressors;
        let out = &mut self.compressed;
        out.clear();
        match codec {
            Codec::None => Ok(0),
            #[cfg(feature = "snappy")]
            Codec::Snappy => {
                out.resize(snap::raw::max_compress_len(body.len()), 0);
                c.snappy
                    .get_or_insert_with(|| Box::new(snap::raw::Encoder::new()))
                    .compress(body, out)
                    .map_err(|e| io_error(format!("snappy: {e}")))
            }
            #[cfg(feature = "lz4")]
            Codec::Lz4 => {
                out.resize(lz4_flex::block::get_maximum_output_size(body.len()), 0);
                let table = c.lz4.get_or_insert_with(Default::default);
                lz4_flex::block::compress_into_with_table(body, out, table)
                    .map_err(|e| io_error(format!("lz4: {e}")))
            }
            #[cfg(feature = "gzip")]
            Codec::Gzip => {
                let deflate = c.gzip.get_or_insert_with(|| {
                    flate2::Compress::new(flate2::Compression::new(6), false)
                });
                deflate.reset();
                // RFC 1952: fixed header (no name, mtime 0, OS unknown), deflate, CRC, size.
                out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
                out.reserve(body.len() + body.len() / 2 + 64);
                loop {
                    let status = deflate
                        .compress_vec(
                            &body[deflate.total_in() as usize..],
                            out,
                            flate2::FlushCompress::Finish,
                        )
                        .map_err(|e| io_error(format!("gzip: {e}")))?;
                    if status == flate2::Status::StreamEnd {
                        break;
                    }
                    out.reserve(out.capacity().max(64));
                }
                let mut crc = flate2::Crc::new();
                crc.update(body);
                out.extend_from_slice(&crc.sum().to_le_bytes());
                out.extend_from_slice(&(body.len() as u32).to_le_bytes());
                Ok(out.len())
            }
            #[cfg(feature = "zstd")]
            Codec::Zstd => {
                if c.zstd.is_none() {
                    c.zstd = Some(zstd::bulk::Compressor::new(3)?);
                }
                let z = c.zstd.as_mut().expect("set above");
                out.reserve(zstd::zstd_safe::compress_bound(body.len()));
                z.compress_to_buffer(body, out)
            }
            #[allow(unreachable_patterns)]
            other => Err(io_error(format!(
                "codec {} is not compiled in",
                other.name()
            ))),
        }
    }

    /// One page per chunk: a column index and an offset index per column.
    fn write_page_indexes<W: Write>(
        &mut self,
        out: &mut Tracked<W>,
        rows: usize,
    ) -> io::Result<()> {
        for i in 0..self.chunks.len() {
            let chunk = &self.chunks[i];
            self.footer.clear();
            let mut t = Thrift::new(&mut self.footer);
            let all_null = chunk.nulls as usize == rows;
            t.list(1, ListOf::Bool, 1).element_bool(all_null);
            let (min, max) = match &chunk.stats {
                Some((min, max)) => (&self.stats[range(min)], &self.stats[range(max)]),
                None => (&[][..], &[][..]),
            };
            t.list(2, ListOf::Binary, 1).element_binary(min);
            t.list(3, ListOf::Binary, 1).element_binary(max);
            t.i32(
                4,
                if i == 0 {
                    BOUNDARY_ASCENDING
                } else {
                    BOUNDARY_UNORDERED
                },
            );
            t.list(5, ListOf::I64, 1).element_i64(chunk.nulls as i64);
            t.finish();
            let offset = out.pos;
            out.put(&self.footer)?;
            self.page_indexes
                .push([(offset, self.footer.len() as u64), (0, 0)]);
        }
        for i in 0..self.chunks.len() {
            let chunk = &self.chunks[i];
            self.footer.clear();
            let mut t = Thrift::new(&mut self.footer);
            t.list(1, ListOf::Struct, 1)
                .begin_element()
                .i64(1, chunk.data_offset as i64)
                .i32(2, len_i32(chunk.data_page_len as usize)?)
                .i64(3, 0)
                .end();
            t.finish();
            let offset = out.pos;
            out.put(&self.footer)?;
            self.page_indexes[i][1] = (offset, self.footer.len() as u64);
        }
        Ok(())
    }

    fn write_footer<W: Write>(
        &mut self,
        out: &mut Tracked<W>,
        schema: &Schema,
        rows: usize,
        key_values: KeyValues<'_>,
    ) -> io::Result<()> {
        let footer_start = out.pos;
        self.footer.clear();
        let mut t = Thrift::new(&mut self.footer);
        t.i32(1, 1); // version
        let columns = self.chunks.len();
        t.list(2, ListOf::Struct, columns + 1);
        t.begin_element()
            .binary(4, b"schema")
            .i32(5, columns as i32)
            .end();
        // The timestamp.
        let (ts_converted, ts_unit_field) = match schema.ts_unit {
            TimeUnit::Millis => (CONVERTED_TIMESTAMP_MILLIS, 1),
            TimeUnit::Micros => (CONVERTED_TIMESTAMP_MICROS, 2),
        };
        t.begin_element()
            .i32(1, TYPE_INT64)
            .i32(3, REQUIRED)
            .binary(4, schema.ts_column.as_bytes())
            .i32(6, ts_converted)
            .begin(10)
            .begin(8)
            .bool(1, true)
            .begin(2)
            .begin(ts_unit_field)
            .end()
            .end()
            .end()
            .end()
            .end();
        if let Some(name) = &schema.device_column {
            t.begin_element()
                .i32(1, TYPE_BYTE_ARRAY)
                .i32(3, REQUIRED)
                .binary(4, name.as_bytes())
                .i32(6, CONVERTED_UTF8)
                .begin(10)
                .begin(1)
                .end()
                .end()
                .end();
        }
        for channel in &schema.channels {
            let physical = match channel.ty {
                ChannelType::F32 => TYPE_FLOAT,
                ChannelType::F64 => TYPE_DOUBLE,
                ChannelType::I16 | ChannelType::I32 => TYPE_INT32,
                ChannelType::I64 => TYPE_INT64,
            };
            t.begin_element()
                .i32(1, physical)
                .i32(3, if channel.nullable { OPTIONAL } else { REQUIRED })
                .binary(4, channel.name.as_bytes());
            if channel.ty == ChannelType::I16 {
                t.i32(6, CONVERTED_INT_16)
                    .begin(10)
                    .begin(10)
                    .byte(1, 16)
                    .bool(2, true)
                    .end()
                    .end();
            }
            t.end();
        }
        t.i64(3, rows as i64);
        // One row group.
        t.list(4, ListOf::Struct, 1).begin_element();
        t.list(1, ListOf::Struct, columns);
        let mut total_uncompressed = 0u64;
        let names = std::iter::once(schema.ts_column.as_str())
            .chain(schema.device_column.as_deref())
            .chain(schema.channels.iter().map(|c| c.name.as_str()));
        for (i, (chunk, name)) in self.chunks.iter().zip(names).enumerate() {
            total_uncompressed += u64::from(chunk.uncompressed);
            let first_offset = chunk.dictionary_offset.unwrap_or(chunk.data_offset);
            t.begin_element().i64(2, first_offset as i64);
            t.begin(3).i32(1, chunk.physical);
            t.list(2, ListOf::I32, usize::from(chunk.encoding_count));
            for &e in &chunk.encodings[..usize::from(chunk.encoding_count)] {
                t.element_i32(e);
            }
            t.list(3, ListOf::Binary, 1).element_binary(name.as_bytes());
            t.i32(4, chunk.codec)
                .i64(5, rows as i64)
                .i64(6, chunk.uncompressed as i64)
                .i64(7, chunk.compressed as i64)
                .i64(9, chunk.data_offset as i64);
            if let Some(offset) = chunk.dictionary_offset {
                t.i64(11, offset as i64);
            }
            if let Some((min, max)) = &chunk.stats {
                t.begin(12)
                    .i64(3, chunk.nulls as i64)
                    .binary(5, &self.stats[range(max)])
                    .binary(6, &self.stats[range(min)])
                    .end();
            }
            t.end(); // ColumnMetaData
            if let Some([(ci_offset, ci_len), (oi_offset, oi_len)]) = self.page_indexes.get(i) {
                t.i64(4, *oi_offset as i64)
                    .i32(5, *oi_len as i32)
                    .i64(6, *ci_offset as i64)
                    .i32(7, *ci_len as i32);
            }
            t.end(); // ColumnChunk
            t.drain(|bytes| out.put(bytes))?;
        }
        t.i64(2, total_uncompressed as i64).i64(3, rows as i64);
        t.end(); // RowGroup
        let (per_file, fixed) = key_values;
        if per_file.len() + fixed.len() > 0 {
            t.list(5, ListOf::Struct, per_file.len() + fixed.len());
            let pairs = per_file
                .iter()
                .map(|&(k, v)| (k, v))
                .chain(fixed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for (key, value) in pairs {
                t.begin_element()
                    .binary(1, key.as_bytes())
                    .binary(2, value.as_bytes())
                    .end();
            }
        }
        t.binary(
            6,
            concat!("sensorlake ", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        // Column orders: min/max follow each type's natural order.
        t.list(7, ListOf::Struct, columns);
        for _ in 0..columns {
            t.begin_element().begin(1).end().end();
        }
        t.finish();
        out.put(&self.footer)?;
        let footer_len = out.pos - footer_start;
        out.put(&(footer_len as u32).to_le_bytes())?;
        out.put(b"PAR1")
    }
}

fn len_i32(len: usize) -> io::Result<i32> {
    i32::try_from(len).map_err(|_| io_error(format!("page of {len} bytes is too large")))
}

/// Appends values in Parquet's RLE/bit-packed hybrid encoding (without a length
/// prefix): runs of 8 or more equal values as RLE runs, the rest bit-packed in groups of
/// 8 (the last group padded with zeros).
pub(crate) fn write_hybrid(len: usize, value: impl Fn(usize) -> u32, width: u8, out: &mut Vec<u8>) {
    let run_at = |i: usize| {
        let v = value(i);
        (i..len).take_while(|&k| value(k) == v).count()
    };
    let value_bytes = usize::from(width).div_ceil(8);
    let mut i = 0;
    while i < len {
        let run = run_at(i);
        if run >= 8 {
            put_varint(out, (run as u64) << 1);
            out.extend_from_slice(&value(i).to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        // Bit-packed groups of 8 until a long run starts at a group boundary.
        let start = i;
        let mut groups = 0usize;
        while i < len && groups < 63 && (groups == 0 || run_at(i) < 8) {
            i = (i + 8).min(len);
            groups += 1;
        }
        put_varint(out, ((groups as u64) << 1) | 1);
        let mut acc: u64 = 0;
        let mut bits = 0u32;
        for k in 0..groups * 8 {
            let v = if start + k < len { value(start + k) } else { 0 };
            acc |= u64::from(v) << bits;
            bits += u32::from(width);
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(acc as u8);
        }
    }
}

/// Appends DELTA_BINARY_PACKED values. `wide` selects INT64 arithmetic, else INT32
/// (wrapping 32-bit deltas, as readers of INT32 columns decode them). Deltas are
/// computed one block at a time on the stack.
pub(crate) fn write_delta(
    values: impl Iterator<Item = i64> + Clone,
    count: usize,
    wide: bool,
    out: &mut Vec<u8>,
) {
    put_varint(out, DELTA_BLOCK as u64);
    put_varint(out, DELTA_MINIBLOCKS as u64);
    put_varint(out, count as u64);
    let mut values = values;
    let first = values.next().unwrap_or(0);
    put_varint(out, zigzag(first));
    let mut prev = first;
    let mut block = [0i64; DELTA_BLOCK];
    loop {
        let mut len = 0;
        for v in values.by_ref().take(DELTA_BLOCK) {
            block[len] = if wide {
                v.wrapping_sub(prev)
            } else {
                (v as i32).wrapping_sub(prev as i32).into()
            };
            prev = v;
            len += 1;
        }
        if len == 0 {
            break;
        }
        write_delta_block(&block[..len], wide, out);
    }
}

fn write_delta_block(block: &[i64], wide: bool, out: &mut Vec<u8>) {
    let min = block.iter().copied().min().unwrap_or(0);
    put_varint(out, zigzag(min));
    let packed = |d: i64| -> u64 {
        if wide {
            d.wrapping_sub(min) as u64
        } else {
            u64::from((d as i32).wrapping_sub(min as i32) as u32)
        }
    };
    let widths_at = out.len();
    out.extend_from_slice(&[0; DELTA_MINIBLOCKS]);
    for (m, mini) in block.chunks(DELTA_MINIBLOCK).enumerate() {
        let max = mini.iter().map(|&d| packed(d)).max().unwrap_or(0);
        let width = 64 - max.leading_zeros();
        out[widths_at + m] = width as u8;
        let mut acc: u128 = 0;
        let mut bits = 0u32;
        for k in 0..DELTA_MINIBLOCK {
            let v = mini.get(k).map_or(0, |&d| packed(d));
            acc |= u128::from(v) << bits;
            bits += width;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_runs_and_bit_packing() {
        let mut out = Vec::new();
        write_hybrid(178, |_| 1, 1, &mut out);
        assert_eq!(out, [0xE4, 0x02, 1], "one RLE run of 178 ones");
        out.clear();
        let values = [1, 0, 1, 1, 0, 0, 0, 1, 1];
        write_hybrid(values.len(), |i| values[i], 1, &mut out);
        // Two bit-packed groups: 0b1000_1101, then 1 padded.
        assert_eq!(out, [0x05, 0b1000_1101, 0b0000_0001]);
    }
}
