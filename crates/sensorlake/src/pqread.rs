//! A small Parquet reader for the files this library writes (the counterpart of
//! `pqwrite` and `thrift`), without the `parquet` crate: the footer (Thrift compact
//! protocol), flat schemas, data pages v1 and dictionary pages, the physical types
//! INT32, INT64, FLOAT, DOUBLE and BYTE_ARRAY, the encodings PLAIN, RLE_DICTIONARY,
//! BYTE_STREAM_SPLIT and DELTA_BINARY_PACKED, definition levels of nullable columns,
//! and the codecs compiled in (cargo features `snappy`, `lz4`, `gzip`, `zstd`).
//!
//! Malformed input (truncated, flipped, lying lengths) is a [`ReadError`], never a
//! panic. No length field makes it reserve more memory than the input holds: vectors
//! grow only with values actually decoded, a decompression buffer is sized by the
//! page's claim only after the claim is checked against what the codec can expand the
//! page's bytes to, and the row count is bounded by the file's size
//! ([`MAX_ROWS_PER_BYTE`]).

use std::fmt;

/// Parquet physical type ids (parquet.thrift `Type`).
const TYPE_INT32: i32 = 1;
const TYPE_INT64: i32 = 2;
const TYPE_FLOAT: i32 = 4;
const TYPE_DOUBLE: i32 = 5;
const TYPE_BYTE_ARRAY: i32 = 6;
const ENC_PLAIN: i32 = 0;
const ENC_PLAIN_DICTIONARY: i32 = 2;
const ENC_RLE: i32 = 3;
const ENC_DELTA_BINARY_PACKED: i32 = 5;
const ENC_RLE_DICTIONARY: i32 = 8;
const ENC_BYTE_STREAM_SPLIT: i32 = 9;
const PAGE_DATA: i32 = 0;
const PAGE_DICTIONARY: i32 = 2;

/// The most rows a file may claim per byte of its size. A sensorlake file stores far
/// fewer (the timestamp column alone takes at least a few bits per row before
/// compression); the bound keeps a lying row count from driving memory use.
pub const MAX_ROWS_PER_BYTE: u64 = 4096;

/// Nesting depth of Thrift structs accepted in a footer (sensorlake writes 6).
const MAX_DEPTH: u32 = 16;

/// A file that cannot be read: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError(String);

impl ReadError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

type Result<T> = std::result::Result<T, ReadError>;

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(ReadError::new(message))
}

/// A column's physical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Physical {
    /// INT32.
    Int32,
    /// INT64.
    Int64,
    /// FLOAT.
    Float,
    /// DOUBLE.
    Double,
    /// BYTE_ARRAY.
    ByteArray,
}

impl Physical {
    fn from_id(id: i32) -> Result<Self> {
        Ok(match id {
            TYPE_INT32 => Self::Int32,
            TYPE_INT64 => Self::Int64,
            TYPE_FLOAT => Self::Float,
            TYPE_DOUBLE => Self::Double,
            TYPE_BYTE_ARRAY => Self::ByteArray,
            other => {
                return err(format!(
                    "physical type {other} is not one sensorlake writes"
                ));
            }
        })
    }
}

/// Unit of a TIMESTAMP logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUnit {
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

/// The logical annotation of a column, as far as sensorlake uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logical {
    /// None.
    None,
    /// STRING (or converted type UTF8).
    String,
    /// INTEGER(bit width, signed).
    Integer(u8, bool),
    /// TIMESTAMP(adjusted to UTC, unit).
    Timestamp(bool, TimestampUnit),
    /// Any other annotation (its logical-type union field id).
    Other(i16),
}

/// One leaf column of the footer's schema with its column chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo<'a> {
    /// Column name.
    pub name: &'a str,
    /// Physical type.
    pub physical: Physical,
    /// Whether the column is OPTIONAL (has definition levels).
    pub optional: bool,
    /// Logical type (from the logical type, or else the converted type).
    pub logical: Logical,
    chunks: Vec<ChunkInfo>,
}

/// Where a column chunk's pages are and how they are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkInfo {
    codec: i32,
    values: u64,
    start: usize,
    end: usize,
}

/// What a file's footer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer<'a> {
    /// Number of rows.
    pub num_rows: u64,
    /// The leaf columns, in file order.
    pub columns: Vec<ColumnInfo<'a>>,
    /// Key-value metadata, in file order (a missing value is the empty string).
    pub key_values: Vec<(&'a str, &'a str)>,
    /// The writer (`created_by`), if recorded.
    pub created_by: Option<&'a str>,
}

impl<'a> Footer<'a> {
    /// The value of key-value metadata entry `key`.
    pub fn meta(&self, key: &str) -> Option<&'a str> {
        self.key_values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
    }
}

/// The non-null values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// INT32 values.
    I32(Vec<i32>),
    /// INT64 values.
    I64(Vec<i64>),
    /// FLOAT values.
    F32(Vec<f32>),
    /// DOUBLE values.
    F64(Vec<f64>),
    /// BYTE_ARRAY values as indexes into `distinct` (first-seen order).
    Bytes {
        /// Per value, its index in `distinct`.
        indexes: Vec<u32>,
        /// The distinct values.
        distinct: Vec<Vec<u8>>,
    },
}

impl Values {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Bytes { indexes, .. } => indexes.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One column read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The non-null values, in row order.
    pub values: Values,
    /// Per row, whether it has a value (`None` for a REQUIRED column: every row has).
    pub present: Option<Vec<bool>>,
}

// ---------------------------------------------------------------------------------
// Thrift compact protocol.

const T_TRUE: u8 = 1;
const T_FALSE: u8 = 2;
const T_BYTE: u8 = 3;
const T_I16: u8 = 4;
const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_DOUBLE: u8 = 7;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_SET: u8 = 10;
const T_MAP: u8 = 11;
const T_STRUCT: u8 = 12;

/// A reading position in a byte slice.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            depth: 0,
            what,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated<T>(&self) -> Result<T> {
        err(format!(
            "the {} is truncated at byte {}",
            self.what, self.pos
        ))
    }

    fn byte(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.truncated(),
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return self.truncated();
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        err(format!(
            "the {} has a varint of over 10 bytes at byte {}",
            self.what, self.pos
        ))
    }

    fn zigzag(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn binary(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(len) if len <= self.remaining() => self.take(len),
            _ => err(format!(
                "the {} claims a {len}-byte string at byte {} with {} bytes left",
                self.what,
                self.pos,
                self.remaining()
            )),
        }
    }

    fn list_header(&mut self) -> Result<(u8, usize)> {
        let b = self.byte()?;
        let kind = b & 0x0f;
        let mut len = u64::from(b >> 4);
        if len == 15 {
            len = self.varint()?;
        }
        // Every element takes at least one byte (bool lists too).
        match usize::try_from(len) {
            Ok(len) if len <= self.remaining() => Ok((kind, len)),
            _ => err(format!(
                "the {} claims a list of {len} elements at byte {} with {} bytes left",
                self.what,
                self.pos,
                self.remaining()
            )),
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!("the {} nests structs too deeply", self.what));
        }
        Ok(())
    }

    /// Skips one value of compact type `kind`.
    fn skip(&mut self, kind: u8) -> Result<()> {
        match kind {
            T_TRUE | T_FALSE => Ok(()),
            T_BYTE => self.byte().map(drop),
            T_I16 | T_I32 | T_I64 => self.varint().map(drop),
            T_DOUBLE => self.take(8).map(drop),
            T_BINARY => self.binary().map(drop),
            T_LIST | T_SET => {
                let (elem, len) = self.list_header()?;
                self.enter()?;
                for _ in 0..len {
                    self.skip_element(elem)?;
                }
                self.depth -= 1;
                Ok(())
            }
            T_MAP => {
                let len = self.varint()?;
                if len == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                if len > self.remaining() as u64 {
                    return self.truncated();
                }
                self.enter()?;
                for _ in 0..len {
                    self.skip_element(kinds >> 4)?;
                    self.skip_element(kinds & 0x0f)?;
                }
                self.depth -= 1;
                Ok(())
            }
            T_STRUCT => self.read_struct(|_, _, _| Ok(false)),
            other => err(format!(
                "the {} has an unknown Thrift type {other} at byte {}",
                self.what, self.pos
            )),
        }
    }

    /// Skips a list element (bools are one byte there).
    fn skip_element(&mut self, kind: u8) -> Result<()> {
        match kind {
            T_TRUE | T_FALSE => self.byte().map(drop),
            other => self.skip(other),
        }
    }

    /// Reads a struct: `field` gets each field's id and type and returns whether it
    /// read the value; unread fields are skipped.
    fn read_struct(
        &mut self,
        mut field: impl FnMut(&mut Self, i16, u8) -> Result<bool>,
    ) -> Result<()> {
        self.enter()?;
        let mut last: i16 = 0;
        loop {
            let b = self.byte()?;
            if b == 0 {
                break;
            }
            let kind = b & 0x0f;
            let delta = b >> 4;
            let id = if delta == 0 {
                let id = self.zigzag()?;
                i16::try_from(id)
                    .map_err(|_| ReadError::new(format!("the {} has field id {id}", self.what)))?
            } else {
                last.checked_add(i16::from(delta)).ok_or_else(|| {
                    ReadError::new(format!("the {} has a bad field id", self.what))
                })?
            };
            last = id;
            if !field(self, id, kind)? {
                self.skip(kind)?;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn expect(&self, kind: u8, want: u8, field: &str) -> Result<()> {
        if kind == want {
            Ok(())
        } else {
            err(format!(
                "the {}'s field {field} has Thrift type {kind}, expected {want}",
                self.what
            ))
        }
    }

    fn i32_field(&mut self, kind: u8, field: &str) -> Result<i32> {
        self.expect(kind, T_I32, field)?;
        let v = self.zigzag()?;
        i32::try_from(v).map_err(|_| ReadError::new(format!("{field} {v} is out of range")))
    }

    fn i64_field(&mut self, kind: u8, field: &str) -> Result<i64> {
        self.expect(kind, T_I64, field)?;
        self.zigzag()
    }

    fn bool_field(&mut self, kind: u8, field: &str) -> Result<bool> {
        match kind {
            T_TRUE => Ok(true),
            T_FALSE => Ok(false),
            _ => err(format!("the {}'s field {field} is not a bool", self.what)),
        }
    }

    fn str_field(&mut self, kind: u8, field: &str) -> Result<&'a str> {
        self.expect(kind, T_BINARY, field)?;
        let bytes = self.binary()?;
        std::str::from_utf8(bytes)
            .map_err(|_| ReadError::new(format!("the {}'s {field} is not UTF-8", self.what)))
    }

    fn list_field(&mut self, kind: u8, elem: u8, field: &str) -> Result<usize> {
        self.expect(kind, T_LIST, field)?;
        let (got, len) = self.list_header()?;
        if len > 0 && got != elem {
            return err(format!(
                "the {}'s list {field} has elements of type {got}, expected {elem}",
                self.what
            ));
        }
        Ok(len)
    }
}

// ---------------------------------------------------------------------------------
// Footer.

#[derive(Default)]
struct SchemaElement<'a> {
    physical: Option<i32>,
    repetition: Option<i32>,
    name: &'a str,
    children: Option<i32>,
    converted: Option<i32>,
    logical: Option<Logical>,
}

fn read_logical(c: &mut Cursor<'_>) -> Result<Logical> {
    let mut out = Logical::Other(0);
    c.read_struct(|c, id, kind| {
        c.expect(kind, T_STRUCT, "logicalType")?;
        out = match id {
            1 => {
                c.skip(kind)?;
                Logical::String
            }
            8 => {
                let (mut utc, mut unit) = (false, None);
                c.read_struct(|c, id, kind| match id {
                    1 => {
                        utc = c.bool_field(kind, "isAdjustedToUTC")?;
                        Ok(true)
                    }
                    2 => {
                        c.expect(kind, T_STRUCT, "unit")?;
                        c.read_struct(|c, id, kind| {
                            unit = match id {
                                1 => Some(TimestampUnit::Millis),
                                2 => Some(TimestampUnit::Micros),
                                3 => Some(TimestampUnit::Nanos),
                                _ => None,
                            };
                            c.skip(kind)?;
                            Ok(true)
                        })?;
                        Ok(true)
                    }
                    _ => Ok(false),
                })?;
                match unit {
                    Some(unit) => Logical::Timestamp(utc, unit),
                    None => return err("a TIMESTAMP logical type has no known unit"),
                }
            }
            10 => {
                let (mut width, mut signed) = (None, true);
                c.read_struct(|c, id, kind| match id {
                    1 => {
                        c.expect(kind, T_BYTE, "bitWidth")?;
                        width = Some(c.byte()?);
                        Ok(true)
                    }
                    2 => {
                        signed = c.bool_field(kind, "isSigned")?;
                        Ok(true)
                    }
                    _ => Ok(false),
                })?;
                match width {
                    Some(w) => Logical::Integer(w, signed),
                    None => return err("an INTEGER logical type has no bit width"),
                }
            }
            other => {
                c.skip(kind)?;
                Logical::Other(other)
            }
        };
        Ok(true)
    })?;
    Ok(out)
}

fn read_schema_element<'a>(c: &mut Cursor<'a>) -> Result<SchemaElement<'a>> {
    let mut e = SchemaElement::default();
    c.read_struct(|c, id, kind| {
        match id {
            1 => e.physical = Some(c.i32_field(kind, "type")?),
            3 => e.repetition = Some(c.i32_field(kind, "repetition_type")?),
            4 => e.name = c.str_field(kind, "name")?,
            5 => e.children = Some(c.i32_field(kind, "num_children")?),
            6 => e.converted = Some(c.i32_field(kind, "converted_type")?),
            10 => {
                c.expect(kind, T_STRUCT, "logicalType")?;
                e.logical = Some(read_logical(c)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(e)
}

#[derive(Default)]
struct ChunkMeta {
    physical: Option<i32>,
    codec: Option<i32>,
    values: Option<i64>,
    compressed: Option<i64>,
    data_offset: Option<i64>,
    dictionary_offset: Option<i64>,
}

fn read_column_meta(c: &mut Cursor<'_>) -> Result<ChunkMeta> {
    let mut m = ChunkMeta::default();
    c.read_struct(|c, id, kind| {
        match id {
            1 => m.physical = Some(c.i32_field(kind, "type")?),
            4 => m.codec = Some(c.i32_field(kind, "codec")?),
            5 => m.values = Some(c.i64_field(kind, "num_values")?),
            7 => m.compressed = Some(c.i64_field(kind, "total_compressed_size")?),
            9 => m.data_offset = Some(c.i64_field(kind, "data_page_offset")?),
            11 => m.dictionary_offset = Some(c.i64_field(kind, "dictionary_page_offset")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(m)
}

fn read_row_group(c: &mut Cursor<'_>) -> Result<(Vec<ChunkMeta>, Option<i64>)> {
    let mut chunks = Vec::new();
    let mut rows = None;
    c.read_struct(|c, id, kind| {
        match id {
            1 => {
                let len = c.list_field(kind, T_STRUCT, "columns")?;
                for _ in 0..len {
                    let mut meta = None;
                    c.read_struct(|c, id, kind| {
                        match id {
                            1 => return err("a column chunk is in another file (file_path)"),
                            3 => {
                                c.expect(kind, T_STRUCT, "meta_data")?;
                                meta = Some(read_column_meta(c)?);
                            }
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    chunks.push(
                        meta.ok_or_else(|| ReadError::new("a column chunk has no metadata"))?,
                    );
                }
            }
            3 => rows = Some(c.i64_field(kind, "num_rows")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((chunks, rows))
}

/// Reads the footer of a Parquet file: fails on bad magic, a bad footer, a wrong
/// size, a nested schema or column chunks outside the file.
pub fn read_footer(bytes: &[u8]) -> Result<Footer<'_>> {
    let len = bytes.len();
    if len < 12 || &bytes[..4] != b"PAR1" || &bytes[len - 4..] != b"PAR1" {
        return err(format!(
            "not a Parquet file ({len} bytes): no PAR1 magic at both ends"
        ));
    }
    let footer_len = u32::from_le_bytes([
        bytes[len - 8],
        bytes[len - 7],
        bytes[len - 6],
        bytes[len - 5],
    ]) as usize;
    if footer_len > len - 12 {
        return err(format!(
            "the footer length {footer_len} does not fit in a file of {len} bytes"
        ));
    }
    let footer_start = len - 8 - footer_len;
    let mut c = Cursor::new(&bytes[footer_start..len - 8], "footer");
    let mut schema = Vec::new();
    let mut num_rows = None;
    let mut groups = Vec::new();
    let mut key_values = Vec::new();
    let mut created_by = None;
    c.read_struct(|c, id, kind| {
        match id {
            2 => {
                let n = c.list_field(kind, T_STRUCT, "schema")?;
                for _ in 0..n {
                    schema.push(read_schema_element(c)?);
                }
            }
            3 => num_rows = Some(c.i64_field(kind, "num_rows")?),
            4 => {
                let n = c.list_field(kind, T_STRUCT, "row_groups")?;
                for _ in 0..n {
                    groups.push(read_row_group(c)?);
                }
            }
            5 => {
                let n = c.list_field(kind, T_STRUCT, "key_value_metadata")?;
                for _ in 0..n {
                    let (mut key, mut value) = (None, "");
                    c.read_struct(|c, id, kind| {
                        match id {
                            1 => key = Some(c.str_field(kind, "key")?),
                            2 => value = c.str_field(kind, "value")?,
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    key_values.push((
                        key.ok_or_else(|| ReadError::new("a key-value entry has no key"))?,
                        value,
                    ));
                }
            }
            6 => created_by = Some(c.str_field(kind, "created_by")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let num_rows = num_rows.ok_or_else(|| ReadError::new("the footer has no num_rows"))?;
    let num_rows = u64::try_from(num_rows)
        .map_err(|_| ReadError::new(format!("the footer's num_rows {num_rows} is negative")))?;
    if num_rows > len as u64 * MAX_ROWS_PER_BYTE {
        return err(format!(
            "the footer claims {num_rows} rows in a file of {len} bytes"
        ));
    }

    // A flat schema: the root, then one leaf per column.
    let Some((root, leaves)) = schema.split_first() else {
        return err("the footer has no schema");
    };
    if root.children != Some(leaves.len() as i32) {
        return err("the schema is nested or its root's num_children is wrong");
    }
    let mut columns = Vec::with_capacity(leaves.len());
    for e in leaves {
        if e.children.is_some_and(|n| n != 0) {
            return err(format!("column {:?} is a group (nested schema)", e.name));
        }
        let physical = Physical::from_id(
            e.physical
                .ok_or_else(|| ReadError::new(format!("column {:?} has no type", e.name)))?,
        )?;
        let optional = match e.repetition {
            Some(0) => false,
            Some(1) => true,
            _ => {
                return err(format!(
                    "column {:?} is repeated or has no repetition",
                    e.name
                ));
            }
        };
        let logical = match (e.logical, e.converted) {
            (Some(l), _) => l,
            (None, Some(0)) => Logical::String,
            (None, Some(9)) => Logical::Timestamp(true, TimestampUnit::Millis),
            (None, Some(10)) => Logical::Timestamp(true, TimestampUnit::Micros),
            (None, Some(15)) => Logical::Integer(8, true),
            (None, Some(16)) => Logical::Integer(16, true),
            (None, Some(17)) => Logical::Integer(32, true),
            (None, Some(18)) => Logical::Integer(64, true),
            (None, Some(other)) => Logical::Other(-(other as i16)),
            (None, None) => Logical::None,
        };
        columns.push(ColumnInfo {
            name: e.name,
            physical,
            optional,
            logical,
            chunks: Vec::new(),
        });
    }

    let mut group_rows = 0u64;
    for (chunks, rows) in groups {
        if chunks.len() != columns.len() {
            return err(format!(
                "a row group has {} column chunks for {} columns",
                chunks.len(),
                columns.len()
            ));
        }
        let rows = rows
            .and_then(|r| u64::try_from(r).ok())
            .ok_or_else(|| ReadError::new("a row group has no or a negative num_rows"))?;
        group_rows = group_rows.saturating_add(rows);
        for (column, meta) in columns.iter_mut().zip(chunks) {
            let physical = meta.physical.map(Physical::from_id).transpose()?;
            if physical != Some(column.physical) {
                return err(format!(
                    "column {:?}'s chunk type differs from its schema",
                    column.name
                ));
            }
            let values = meta.values.and_then(|v| u64::try_from(v).ok());
            if values != Some(rows) {
                return err(format!(
                    "column {:?} has {values:?} values in a row group of {rows} rows",
                    column.name
                ));
            }
            let start = meta.dictionary_offset.or(meta.data_offset);
            let size = meta.compressed;
            let range = match (start, size) {
                (Some(start), Some(size)) => usize::try_from(start)
                    .ok()
                    .zip(usize::try_from(size).ok())
                    .and_then(|(s, n)| Some((s, s.checked_add(n)?))),
                _ => None,
            };
            let Some((start, end)) = range.filter(|&(s, e)| s >= 4 && e <= footer_start) else {
                return err(format!(
                    "column {:?}'s pages lie outside the file's data",
                    column.name
                ));
            };
            column.chunks.push(ChunkInfo {
                codec: meta
                    .codec
                    .ok_or_else(|| ReadError::new("a column chunk has no codec"))?,
                values: rows,
                start,
                end,
            });
        }
    }
    if group_rows != num_rows {
        return err(format!(
            "the row groups hold {group_rows} rows, the footer says {num_rows}"
        ));
    }
    Ok(Footer {
        num_rows,
        columns,
        key_values,
        created_by,
    })
}

// ---------------------------------------------------------------------------------
// Pages.

struct PageHeader {
    kind: i32,
    uncompressed: usize,
    compressed: usize,
    /// (num_values, encoding) of a data page v1 or a dictionary page.
    values: Option<(usize, i32)>,
}

fn read_page_header(c: &mut Cursor<'_>) -> Result<PageHeader> {
    let (mut kind, mut uncompressed, mut compressed, mut values) = (None, None, None, None);
    c.read_struct(|c, id, k| {
        match id {
            1 => kind = Some(c.i32_field(k, "type")?),
            2 => uncompressed = Some(c.i32_field(k, "uncompressed_page_size")?),
            3 => compressed = Some(c.i32_field(k, "compressed_page_size")?),
            5 | 7 => {
                c.expect(k, T_STRUCT, "page header")?;
                let (mut n, mut enc, mut level_enc) = (None, None, ENC_RLE);
                c.read_struct(|c, fid, k| {
                    match fid {
                        1 => n = Some(c.i32_field(k, "num_values")?),
                        2 => enc = Some(c.i32_field(k, "encoding")?),
                        3 if id == 5 => level_enc = c.i32_field(k, "definition_level_encoding")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                if level_enc != ENC_RLE {
                    return err(format!(
                        "definition levels in encoding {level_enc}, not RLE"
                    ));
                }
                let n = n.and_then(|n| usize::try_from(n).ok());
                values = Some((
                    n.ok_or_else(|| ReadError::new("a page has no or a negative num_values"))?,
                    enc.ok_or_else(|| ReadError::new("a page has no encoding"))?,
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let size = |v: Option<i32>, what: &str| {
        v.and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| ReadError::new(format!("a page header has no or a negative {what}")))
    };
    Ok(PageHeader {
        kind: kind.ok_or_else(|| ReadError::new("a page header has no type"))?,
        uncompressed: size(uncompressed, "uncompressed size")?,
        compressed: size(compressed, "compressed size")?,
        values,
    })
}

/// The name of a codec id, for messages.
fn codec_name(codec: i32) -> &'static str {
    match codec {
        0 => "none",
        1 => "snappy",
        2 => "gzip",
        6 => "zstd",
        7 => "lz4 (LZ4_RAW)",
        _ => "an unknown codec",
    }
}

/// The largest output a codec can make of `len` input bytes (a bound the claimed
/// uncompressed size is checked against before a buffer of that size is made).
fn max_expansion(codec: i32, len: usize) -> usize {
    let ratio = match codec {
        1 => 32,    // snappy: a 64-byte copy takes 2 bytes
        7 => 255,   // LZ4: a match length byte adds at most 255
        2 => 1032,  // deflate's maximum ratio
        6 => 32768, // zstd (host only): RLE blocks
        _ => 1,
    };
    len.saturating_mul(ratio).saturating_add(64)
}

/// The error for a codec this build leaves out (never a silent fallback).
#[allow(dead_code)]
fn not_compiled_in(codec: i32, feature: &str) -> Result<()> {
    err(format!(
        "the file's pages are compressed with {}, which this build does not include (cargo feature {feature:?})",
        codec_name(codec)
    ))
}

/// Decompresses a page into `out` (exactly `uncompressed` bytes).
fn decompress(codec: i32, input: &[u8], uncompressed: usize, out: &mut Vec<u8>) -> Result<()> {
    if uncompressed > max_expansion(codec, input.len()) {
        return err(format!(
            "a {}-byte {} page claims {uncompressed} bytes uncompressed",
            input.len(),
            codec_name(codec)
        ));
    }
    out.clear();
    let bad = |e: &dyn fmt::Display| ReadError::new(format!("{} page: {e}", codec_name(codec)));
    match codec {
        #[cfg(feature = "snappy")]
        1 => {
            let len = snap::raw::decompress_len(input).map_err(|e| bad(&e))?;
            if len != uncompressed {
                return err(format!(
                    "a snappy page holds {len} bytes, its header says {uncompressed}"
                ));
            }
            out.resize(len, 0);
            snap::raw::Decoder::new()
                .decompress(input, out)
                .map_err(|e| bad(&e))?;
        }
        #[cfg(feature = "lz4")]
        7 => {
            out.resize(uncompressed, 0);
            let n = lz4_flex::block::decompress_into(input, out).map_err(|e| bad(&e))?;
            out.truncate(n);
        }
        #[cfg(feature = "gzip")]
        2 => {
            use std::io::Read;
            // Grows with the output actually inflated, never by the claim alone.
            flate2::read::MultiGzDecoder::new(input)
                .take(uncompressed as u64 + 1)
                .read_to_end(out)
                .map_err(|e| bad(&e))?;
        }
        #[cfg(feature = "zstd")]
        6 => {
            let mut z = zstd::bulk::Decompressor::new().map_err(|e| bad(&e))?;
            out.reserve(uncompressed);
            z.decompress_to_buffer(input, out).map_err(|e| bad(&e))?;
        }
        #[cfg(not(feature = "snappy"))]
        1 => return not_compiled_in(codec, "snappy"),
        #[cfg(not(feature = "lz4"))]
        7 => return not_compiled_in(codec, "lz4"),
        #[cfg(not(feature = "gzip"))]
        2 => return not_compiled_in(codec, "gzip"),
        #[cfg(not(feature = "zstd"))]
        6 => return not_compiled_in(codec, "zstd"),
        other => return err(format!("codec {other} is not one sensorlake writes")),
    }
    if out.len() != uncompressed {
        return err(format!(
            "a {} page decompresses to {} bytes, its header says {uncompressed}",
            codec_name(codec),
            out.len()
        ));
    }
    Ok(())
}

/// Reads `width` bits (≤ 64) at bit offset `bit` of `data`, little-endian bit order.
fn bits_at(data: &[u8], bit: usize, width: u32) -> u64 {
    let mut value = 0u128;
    let first = bit / 8;
    let last = (bit + width as usize).div_ceil(8);
    for (i, &b) in data[first..last].iter().enumerate() {
        value |= u128::from(b) << (8 * i);
    }
    let value = (value >> (bit % 8)) as u64;
    if width == 64 {
        value
    } else {
        value & ((1u64 << width) - 1)
    }
}

/// Bytes that `count` values of `width` bits fill (saturating: a count no input can
/// hold makes a length no input has).
fn bytes_for(count: usize, width: u32) -> usize {
    usize::try_from((count as u64).saturating_mul(u64::from(width)).div_ceil(8))
        .unwrap_or(usize::MAX)
}

/// Decodes `count` values of the RLE/bit-packed hybrid with `width` bits each.
fn read_hybrid(
    c: &mut Cursor<'_>,
    width: u32,
    count: usize,
    mut push: impl FnMut(u32) -> Result<()>,
) -> Result<()> {
    if width > 32 {
        return err(format!("an RLE/bit-packed run of {width}-bit values"));
    }
    let mut left = count;
    while left > 0 {
        let header = c.varint()?;
        if header & 1 == 0 {
            let run = header >> 1;
            let bytes = c.take(width.div_ceil(8) as usize)?;
            let mut v = 0u32;
            for (i, &b) in bytes.iter().enumerate() {
                v |= u32::from(b) << (8 * i);
            }
            if width < 32 && v >> width != 0 {
                return err(format!("an RLE run's value {v} exceeds {width} bits"));
            }
            let n = usize::try_from(run).map_or(left, |r| r.min(left));
            if n == 0 {
                return err("an RLE run of length 0");
            }
            for _ in 0..n {
                push(v)?;
            }
            left -= n;
        } else {
            let groups = header >> 1;
            let values = usize::try_from(groups)
                .ok()
                .and_then(|g| g.checked_mul(8))
                .map_or(left, |v| v.min(left));
            if values == 0 {
                return err("a bit-packed run of length 0");
            }
            let full = usize::try_from(groups)
                .ok()
                .and_then(|g| g.checked_mul(width as usize))
                .unwrap_or(usize::MAX);
            let needed = bytes_for(values, width);
            let bytes = c.take(full.min(c.remaining()).max(needed).min(c.remaining()))?;
            if bytes.len() < needed {
                return c.truncated();
            }
            for i in 0..values {
                push(bits_at(bytes, i * width as usize, width) as u32)?;
            }
            left -= values;
        }
    }
    Ok(())
}

/// Fixed-width little-endian values.
trait Fixed: Copy {
    const WIDTH: usize;
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! fixed {
    ($($t:ty),*) => {$(
        impl Fixed for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn from_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    )*};
}
fixed!(i32, i64, f32, f64);

fn read_plain<T: Fixed>(c: &mut Cursor<'_>, count: usize, out: &mut Vec<T>) -> Result<()> {
    let len = count
        .checked_mul(T::WIDTH)
        .filter(|&n| n <= c.remaining())
        .ok_or_else(|| {
            ReadError::new(format!(
                "a page claims {count} values of {} bytes with {} bytes left",
                T::WIDTH,
                c.remaining()
            ))
        })?;
    let bytes = c.take(len)?;
    out.extend(bytes.chunks_exact(T::WIDTH).map(T::from_le));
    Ok(())
}

fn read_byte_stream_split<T: Fixed>(
    c: &mut Cursor<'_>,
    count: usize,
    out: &mut Vec<T>,
) -> Result<()> {
    let len = count
        .checked_mul(T::WIDTH)
        .filter(|&n| n <= c.remaining())
        .ok_or_else(|| {
            ReadError::new(format!(
                "a BYTE_STREAM_SPLIT page claims {count} values with {} bytes left",
                c.remaining()
            ))
        })?;
    let bytes = c.take(len)?;
    let mut value = [0u8; 8];
    for i in 0..count {
        for (k, b) in value[..T::WIDTH].iter_mut().enumerate() {
            *b = bytes[k * count + i];
        }
        out.push(T::from_le(&value[..T::WIDTH]));
    }
    Ok(())
}

/// DELTA_BINARY_PACKED, in 32-bit (`wide` false) or 64-bit arithmetic.
fn read_delta(
    c: &mut Cursor<'_>,
    count: usize,
    wide: bool,
    mut push: impl FnMut(i64),
) -> Result<()> {
    let block = c.varint()?;
    let minis = c.varint()?;
    let total = c.varint()?;
    let mut value = c.zigzag()?;
    if block == 0
        || block % 128 != 0
        || minis == 0
        || block % minis != 0
        || (block / minis) % 32 != 0
    {
        return err(format!(
            "a DELTA_BINARY_PACKED page has blocks of {block} values in {minis} miniblocks"
        ));
    }
    if total != count as u64 {
        return err(format!(
            "a DELTA_BINARY_PACKED page holds {total} values where {count} are expected"
        ));
    }
    if count == 0 {
        return Ok(());
    }
    let per_mini = usize::try_from(block / minis)
        .map_err(|_| ReadError::new(format!("a DELTA_BINARY_PACKED block of {block} values")))?;
    let minis = usize::try_from(minis).unwrap_or(usize::MAX);
    let max_width = if wide { 64 } else { 32 };
    let wrap = |v: i64| if wide { v } else { i64::from(v as i32) };
    push(value);
    let mut left = count - 1;
    while left > 0 {
        let min_delta = c.zigzag()?;
        let widths = c.take(minis)?;
        for &width in widths {
            if left == 0 {
                break;
            }
            let width = u32::from(width);
            if width > max_width {
                return err(format!(
                    "a DELTA_BINARY_PACKED miniblock of {width}-bit values"
                ));
            }
            let n = per_mini.min(left);
            let full = bytes_for(per_mini, width);
            let needed = bytes_for(n, width);
            let bytes = c.take(full.min(c.remaining()).max(needed.min(c.remaining())))?;
            if bytes.len() < needed {
                return c.truncated();
            }
            for i in 0..n {
                let packed = bits_at(bytes, i * width as usize, width);
                value = wrap(value.wrapping_add(min_delta).wrapping_add(packed as i64));
                push(value);
            }
            left -= n;
        }
    }
    Ok(())
}

/// Values decoded so far, by type.
enum Sink {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<u32>),
}

/// The dictionary of a chunk, in the chunk's value type.
enum Dictionary {
    None,
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Indexes into the column's distinct byte arrays.
    Bytes(Vec<u32>),
}

/// Reads PLAIN byte arrays, adding new ones to `distinct`.
fn read_plain_bytes(
    c: &mut Cursor<'_>,
    count: usize,
    distinct: &mut Vec<Vec<u8>>,
    mut push: impl FnMut(u32),
) -> Result<()> {
    for _ in 0..count {
        let len = u32::from_le_bytes(c.take(4)?.try_into().expect("4 bytes")) as usize;
        if len > c.remaining() {
            return err(format!(
                "a string claims {len} bytes with {} bytes left",
                c.remaining()
            ));
        }
        let value = c.take(len)?;
        let index = match distinct.iter().position(|d| d == value) {
            Some(i) => i,
            None => {
                distinct.push(value.to_vec());
                distinct.len() - 1
            }
        };
        push(index as u32);
    }
    Ok(())
}

fn read_dictionary_page(
    physical: Physical,
    body: &[u8],
    count: usize,
    encoding: i32,
    distinct: &mut Vec<Vec<u8>>,
) -> Result<Dictionary> {
    if encoding != ENC_PLAIN && encoding != ENC_PLAIN_DICTIONARY {
        return err(format!("a dictionary page in encoding {encoding}"));
    }
    let mut c = Cursor::new(body, "dictionary page");
    let dict = match physical {
        Physical::Int32 => {
            let mut v = Vec::new();
            read_plain(&mut c, count, &mut v)?;
            Dictionary::I32(v)
        }
        Physical::Int64 => {
            let mut v = Vec::new();
            read_plain(&mut c, count, &mut v)?;
            Dictionary::I64(v)
        }
        Physical::Float => {
            let mut v = Vec::new();
            read_plain(&mut c, count, &mut v)?;
            Dictionary::F32(v)
        }
        Physical::Double => {
            let mut v = Vec::new();
            read_plain(&mut c, count, &mut v)?;
            Dictionary::F64(v)
        }
        Physical::ByteArray => {
            let mut v = Vec::new();
            read_plain_bytes(&mut c, count, distinct, |i| v.push(i))?;
            Dictionary::Bytes(v)
        }
    };
    Ok(dict)
}

fn dictionary_len(dict: &Dictionary) -> Option<usize> {
    Some(match dict {
        Dictionary::None => return None,
        Dictionary::I32(v) => v.len(),
        Dictionary::I64(v) => v.len(),
        Dictionary::F32(v) => v.len(),
        Dictionary::F64(v) => v.len(),
        Dictionary::Bytes(v) => v.len(),
    })
}

/// Decodes the values of one data page (after its definition levels).
fn read_values(
    c: &mut Cursor<'_>,
    physical: Physical,
    encoding: i32,
    count: usize,
    dict: &Dictionary,
    sink: &mut Sink,
    distinct: &mut Vec<Vec<u8>>,
) -> Result<()> {
    match encoding {
        ENC_PLAIN => match sink {
            Sink::I32(v) => read_plain(c, count, v),
            Sink::I64(v) => read_plain(c, count, v),
            Sink::F32(v) => read_plain(c, count, v),
            Sink::F64(v) => read_plain(c, count, v),
            Sink::Bytes(v) => read_plain_bytes(c, count, distinct, |i| v.push(i)),
        },
        ENC_BYTE_STREAM_SPLIT => match sink {
            Sink::I32(v) => read_byte_stream_split(c, count, v),
            Sink::I64(v) => read_byte_stream_split(c, count, v),
            Sink::F32(v) => read_byte_stream_split(c, count, v),
            Sink::F64(v) => read_byte_stream_split(c, count, v),
            Sink::Bytes(_) => err("BYTE_STREAM_SPLIT strings"),
        },
        ENC_DELTA_BINARY_PACKED => match sink {
            Sink::I32(v) => read_delta(c, count, false, |x| v.push(x as i32)),
            Sink::I64(v) => read_delta(c, count, true, |x| v.push(x)),
            _ => err(format!("DELTA_BINARY_PACKED values of type {physical:?}")),
        },
        ENC_RLE_DICTIONARY | ENC_PLAIN_DICTIONARY => {
            let Some(size) = dictionary_len(dict) else {
                return err("a dictionary-encoded page without a dictionary page");
            };
            let width = u32::from(c.byte()?);
            read_hybrid(c, width, count, |i| {
                let i = i as usize;
                if i >= size {
                    return err(format!("dictionary index {i} of a {size}-entry dictionary"));
                }
                match (sink as &mut Sink, dict) {
                    (Sink::I32(v), Dictionary::I32(d)) => v.push(d[i]),
                    (Sink::I64(v), Dictionary::I64(d)) => v.push(d[i]),
                    (Sink::F32(v), Dictionary::F32(d)) => v.push(d[i]),
                    (Sink::F64(v), Dictionary::F64(d)) => v.push(d[i]),
                    (Sink::Bytes(v), Dictionary::Bytes(d)) => v.push(d[i]),
                    _ => return err("a dictionary of another type"),
                }
                Ok(())
            })
        }
        other => err(format!("encoding {other} is not one sensorlake writes")),
    }
}

/// Reads every value of column `index` of the file `footer` was read from.
pub fn read_column(bytes: &[u8], footer: &Footer<'_>, index: usize) -> Result<Column> {
    let info = footer
        .columns
        .get(index)
        .ok_or_else(|| ReadError::new(format!("no column {index}")))?;
    let in_column = |e: ReadError| ReadError::new(format!("column {:?}: {e}", info.name));
    read_column_inner(bytes, info).map_err(in_column)
}

fn read_column_inner(bytes: &[u8], info: &ColumnInfo<'_>) -> Result<Column> {
    let physical = info.physical;
    let mut sink = match physical {
        Physical::Int32 => Sink::I32(Vec::new()),
        Physical::Int64 => Sink::I64(Vec::new()),
        Physical::Float => Sink::F32(Vec::new()),
        Physical::Double => Sink::F64(Vec::new()),
        Physical::ByteArray => Sink::Bytes(Vec::new()),
    };
    let mut distinct = Vec::new();
    let mut present = info.optional.then(Vec::new);
    let mut scratch = Vec::new();
    for chunk in &info.chunks {
        let mut dict = Dictionary::None;
        let mut pos = chunk.start;
        let mut rows_left = chunk.values;
        while rows_left > 0 {
            if pos >= chunk.end {
                return err(format!(
                    "the column chunk ends with {rows_left} values missing"
                ));
            }
            let mut c = Cursor::new(&bytes[pos..chunk.end], "page header");
            let header = read_page_header(&mut c)?;
            let payload = c.take(header.compressed).map_err(|_| {
                ReadError::new(format!(
                    "a {}-byte page at byte {pos} runs past its column chunk",
                    header.compressed
                ))
            })?;
            pos += c.pos;
            let body: &[u8] = if chunk.codec == 0 {
                if header.uncompressed != payload.len() {
                    return err("an uncompressed page's two sizes differ");
                }
                payload
            } else {
                decompress(chunk.codec, payload, header.uncompressed, &mut scratch)?;
                &scratch
            };
            let Some((count, encoding)) = header.values else {
                return err(format!(
                    "a page of type {} (not data v1 or dictionary)",
                    header.kind
                ));
            };
            match header.kind {
                PAGE_DICTIONARY => {
                    if dictionary_len(&dict).is_some() {
                        return err("a second dictionary page");
                    }
                    dict = read_dictionary_page(physical, body, count, encoding, &mut distinct)?;
                }
                PAGE_DATA => {
                    if count as u64 > rows_left {
                        return err(format!(
                            "a page of {count} values where {rows_left} are left"
                        ));
                    }
                    let mut c = Cursor::new(body, "data page");
                    let mut non_null = count;
                    if let Some(present) = &mut present {
                        let len = u32::from_le_bytes(c.take(4)?.try_into().expect("4 bytes"));
                        let levels = c.take(len as usize).map_err(|_| {
                            ReadError::new(format!(
                                "definition levels claim {len} bytes of a {}-byte page",
                                body.len()
                            ))
                        })?;
                        let mut l = Cursor::new(levels, "definition levels");
                        non_null = 0;
                        read_hybrid(&mut l, 1, count, |level| {
                            present.push(level == 1);
                            non_null += usize::from(level == 1);
                            Ok(())
                        })?;
                    }
                    read_values(
                        &mut c,
                        physical,
                        encoding,
                        non_null,
                        &dict,
                        &mut sink,
                        &mut distinct,
                    )?;
                    rows_left -= count as u64;
                }
                other => return err(format!("a page of type {other}")),
            }
        }
    }
    let values = match sink {
        Sink::I32(v) => Values::I32(v),
        Sink::I64(v) => Values::I64(v),
        Sink::F32(v) => Values::F32(v),
        Sink::F64(v) => Values::F64(v),
        Sink::Bytes(indexes) => Values::Bytes { indexes, distinct },
    };
    Ok(Column { values, present })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_read_little_endian() {
        let data = [0b1000_1101, 0b0000_0001];
        assert_eq!(bits_at(&data, 0, 1), 1);
        assert_eq!(bits_at(&data, 1, 1), 0);
        assert_eq!(bits_at(&data, 7, 2), 0b11);
        assert_eq!(bits_at(&[0xff; 9], 3, 64), u64::MAX);
    }

    #[test]
    fn hybrid_reads_what_the_writer_writes() {
        let values: Vec<u32> = (0..300)
            .map(|i| if i % 50 < 20 { 3 } else { i % 7 })
            .collect();
        let mut out = Vec::new();
        crate::pqwrite::write_hybrid(values.len(), |i| values[i], 3, &mut out);
        let mut c = Cursor::new(&out, "test");
        let mut back = Vec::new();
        read_hybrid(&mut c, 3, values.len(), |v| {
            back.push(v);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, values);
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn lying_lengths_are_errors() {
        // A list claiming 2^60 elements in a 3-byte input.
        let mut c = Cursor::new(&[0xF9, 0x80, 0x80], "test");
        assert!(c.list_header().is_err());
        // A string of 1000 bytes in 2.
        let mut c = Cursor::new(&[0xE8, 0x07, 0], "test");
        assert!(c.binary().is_err());
        // A page claiming 1 GB uncompressed from 10 bytes: refused before any buffer
        // is made for it, whatever the codec (compiled in or not).
        for codec in [1, 2, 6, 7] {
            let mut out = Vec::new();
            let e = decompress(codec, &[0; 10], 1 << 30, &mut out).unwrap_err();
            assert!(e.to_string().contains("claims 1073741824 bytes"), "{e}");
            assert_eq!(out.capacity(), 0);
        }
    }

    #[cfg(not(feature = "zstd"))]
    #[test]
    fn a_codec_left_out_of_the_build_is_a_clear_error() {
        let e = decompress(6, &[0x28, 0xb5, 0x2f, 0xfd], 10, &mut Vec::new()).unwrap_err();
        assert!(
            e.to_string().contains("zstd") && e.to_string().contains("cargo feature"),
            "{e}"
        );
    }

    #[test]
    fn delta_reads_what_the_writer_writes() {
        for wide in [false, true] {
            for n in [1usize, 2, 33, 128, 129, 200, 1000] {
                let values: Vec<i64> = (0..n as i64)
                    .map(|i| {
                        if wide {
                            i.wrapping_mul(i64::MAX / 977)
                        } else {
                            (i * 7919) % 1000 - 500
                        }
                    })
                    .collect();
                let mut out = Vec::new();
                crate::pqwrite::write_delta(values.iter().copied(), n, wide, &mut out);
                let mut c = Cursor::new(&out, "test");
                let mut back = Vec::new();
                read_delta(&mut c, n, wide, |x| back.push(x)).unwrap();
                assert_eq!(back, values, "{n} values, wide {wide}");
            }
        }
    }

    #[test]
    fn huge_delta_blocks_are_errors_not_overflows() {
        // block 2^62 values in one miniblock, 2 values, first 0, min delta 0, width 64.
        let mut page = Vec::new();
        for v in [1u64 << 62, 1, 2, 0, 0] {
            crate::thrift::put_varint(&mut page, v);
        }
        page.push(64);
        let mut c = Cursor::new(&page, "test");
        assert!(read_delta(&mut c, 2, true, |_| {}).is_err());
    }
}
