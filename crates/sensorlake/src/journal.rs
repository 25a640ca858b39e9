//! The optional row journal: every accepted row is appended to a file and synced every
//! N rows, so a power loss loses at most the last N−1 unsynced rows of the open batch
//! instead of the whole open batch. On start, rows the spool does not hold yet are
//! replayed into the batcher.
//!
//! Files live in `journal/` as segments named `{seq:08x}.j`; a segment starts with the
//! first row of a batch, so segments whose rows are all spooled can be removed whole.
//! A segment is the magic `SLJ1`, the first 8 bytes of the schema's SHA-256 (a journal
//! written for another schema is refused, not misread), then records:
//!
//! ```text
//! u32 LE payload length | u32 LE CRC-32 of the payload | payload:
//!   u64 LE position | i64 LE timestamp (µs) | per channel: 0 = null,
//!   1 + f32 LE bits, 2 + i64 LE, or 3 + f64 LE bits
//! ```
//!
//! A record whose length or CRC does not check out ends the segment (a torn write).

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::batch::{Batch, Value};
use crate::key::rows_sha256;
use crate::schema::Schema;
use crate::storage::Storage;

/// Directory of the journal segments.
pub const JOURNAL: &str = "journal";
const MAGIC: &[u8; 4] = b"SLJ1";
const HEADER_LEN: usize = 12;
const EXT: &str = ".j";

/// Journal settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// Rows between syncs: 1 syncs every row (at most the row being written is lost);
    /// N loses at most N−1 rows at a power loss. Default 1.
    pub sync_every: u32,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self { sync_every: 1 }
    }
}

/// A row read back from the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    /// Its position (the source's, or the journal's own row counter).
    pub position: u64,
    /// Timestamp, µs since the epoch.
    pub ts_us: i64,
    /// Values in channel order.
    pub values: Vec<Value>,
}

/// The journal cannot be used.
#[derive(Debug)]
pub enum JournalError {
    /// A segment was written for another schema.
    SchemaChanged {
        /// The segment.
        segment: String,
    },
    /// A storage error.
    Io(io::Error),
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SchemaChanged { segment } => write!(
                f,
                "journal segment {JOURNAL}/{segment} holds rows of another schema (the channels changed): run once with the old channels to spool them, or move the journal directory away"
            ),
            Self::Io(e) => write!(f, "journal storage error: {e}"),
        }
    }
}

impl std::error::Error for JournalError {}

impl From<io::Error> for JournalError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

#[derive(Debug, Clone)]
struct Segment {
    name: String,
    last_position: Option<u64>,
    dir_synced: bool,
}

/// An open journal; see the [module docs](self).
#[derive(Debug)]
pub struct Journal<S> {
    storage: S,
    config: JournalConfig,
    schema_tag: [u8; 8],
    segments: Vec<Segment>,
    /// Index in `segments` of the segment rows are appended to.
    current: Option<usize>,
    next_seq: u64,
    unsynced: u32,
    record: Vec<u8>,
}

/// CRC-32 (IEEE 802.3, reflected), bitwise: journal records are small.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn schema_tag(schema: &Arc<Schema>) -> [u8; 8] {
    let digest = rows_sha256(&Batch::new(schema.clone(), 0));
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&digest[..8]);
    tag
}

fn encode_record(out: &mut Vec<u8>, position: u64, ts_us: i64, values: &[Value]) {
    out.clear();
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&ts_us.to_le_bytes());
    for value in values {
        match value {
            Value::Null => out.push(0),
            Value::F32(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            Value::Int(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::F64(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
    let payload_len = (out.len() - 8) as u32;
    let crc = crc32(&out[8..]);
    out[..4].copy_from_slice(&payload_len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn decode_payload(payload: &[u8], channels: usize) -> Option<JournalRow> {
    let position = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let ts_us = i64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
    let mut rest = &payload[16..];
    let mut values = Vec::with_capacity(channels);
    while let Some((&tag, tail)) = rest.split_first() {
        let (value, used) = match tag {
            0 => (Value::Null, 0),
            1 => (
                Value::F32(f32::from_bits(u32::from_le_bytes(
                    tail.get(..4)?.try_into().ok()?,
                ))),
                4,
            ),
            2 => (
                Value::Int(i64::from_le_bytes(tail.get(..8)?.try_into().ok()?)),
                8,
            ),
            3 => (
                Value::F64(f64::from_bits(u64::from_le_bytes(
                    tail.get(..8)?.try_into().ok()?,
                ))),
                8,
            ),
            _ => return None,
        };
        values.push(value);
        rest = &tail[used..];
    }
    (values.len() == channels).then_some(JournalRow {
        position,
        ts_us,
        values,
    })
}

/// Parses a segment: its rows up to the first torn record, or `None` for a header of
/// another schema.
fn parse_segment(bytes: &[u8], tag: &[u8; 8], channels: usize) -> Result<Vec<JournalRow>, ()> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Ok(Vec::new()); // torn before the header was durable: no rows
    }
    if &bytes[4..HEADER_LEN] != tag {
        return Err(());
    }
    let mut rows = Vec::new();
    let mut at = HEADER_LEN;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32(payload) != crc {
            break;
        }
        match decode_payload(payload, channels) {
            Some(row) => rows.push(row),
            None => break,
        }
        at += 8 + len;
    }
    Ok(rows)
}

impl<S: Storage> Journal<S> {
    /// Opens the journal for `schema` and returns the rows it holds, oldest first.
    pub fn open(
        storage: S,
        config: JournalConfig,
        schema: &Arc<Schema>,
    ) -> Result<(Self, Vec<JournalRow>), JournalError> {
        storage.create_dir_all(JOURNAL)?;
        let tag = schema_tag(schema);
        let mut names: Vec<(u64, String)> = storage
            .list(JOURNAL)?
            .into_iter()
            .filter_map(|e| {
                let seq = e.name.strip_suffix(EXT)?;
                Some((u64::from_str_radix(seq, 16).ok()?, e.name))
            })
            .collect();
        names.sort();
        let mut rows = Vec::new();
        let mut segments = Vec::new();
        for (_, name) in &names {
            let bytes = storage.read(&format!("{JOURNAL}/{name}"))?;
            let segment_rows =
                parse_segment(&bytes, &tag, schema.channels.len()).map_err(|()| {
                    JournalError::SchemaChanged {
                        segment: name.clone(),
                    }
                })?;
            segments.push(Segment {
                name: name.clone(),
                last_position: segment_rows.last().map(|r| r.position),
                dir_synced: true,
            });
            rows.extend(segment_rows);
        }
        let journal = Self {
            storage,
            config: JournalConfig {
                sync_every: config.sync_every.max(1),
            },
            schema_tag: tag,
            segments,
            current: None,
            next_seq: names.last().map_or(0, |(seq, _)| seq + 1),
            unsynced: 0,
            record: Vec::new(),
        };
        Ok((journal, rows))
    }

    /// Appends a row; `starts_batch` when it is the first row of a new open batch (it
    /// then starts a new segment). Syncs every `sync_every` rows.
    pub fn append(
        &mut self,
        position: u64,
        ts_us: i64,
        values: &[Value],
        starts_batch: bool,
    ) -> io::Result<()> {
        encode_record(&mut self.record, position, ts_us, values);
        let current = match self.current {
            Some(i) if !starts_batch => {
                let path = format!("{JOURNAL}/{}", self.segments[i].name);
                self.storage.append(&path, &self.record)?;
                i
            }
            _ => {
                // Keep the journal a prefix of what was accepted: the old segment's
                // rows become durable before any row of the new one.
                self.sync()?;
                let name = format!("{:08x}{EXT}", self.next_seq);
                self.next_seq += 1;
                let mut bytes = Vec::with_capacity(HEADER_LEN + self.record.len());
                bytes.extend_from_slice(MAGIC);
                bytes.extend_from_slice(&self.schema_tag);
                bytes.extend_from_slice(&self.record);
                self.storage.write(&format!("{JOURNAL}/{name}"), &bytes)?;
                self.segments.push(Segment {
                    name,
                    last_position: None,
                    dir_synced: false,
                });
                self.current = Some(self.segments.len() - 1);
                self.segments.len() - 1
            }
        };
        self.segments[current].last_position = Some(position);
        self.unsynced += 1;
        if self.unsynced >= self.config.sync_every {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every appended row durable.
    pub fn sync(&mut self) -> io::Result<()> {
        let Some(i) = self.current else {
            return Ok(());
        };
        if self.unsynced == 0 && self.segments[i].dir_synced {
            return Ok(());
        }
        self.storage
            .sync_file(&format!("{JOURNAL}/{}", self.segments[i].name))?;
        if !self.segments[i].dir_synced {
            self.storage.sync_dir(JOURNAL)?;
            self.segments[i].dir_synced = true;
        }
        self.unsynced = 0;
        Ok(())
    }

    /// Removes the segments whose rows are all at or before `position` (spooled).
    pub fn release_through(&mut self, position: u64) -> io::Result<()> {
        let mut kept = Vec::with_capacity(self.segments.len());
        let current_name = self.current.map(|i| self.segments[i].name.clone());
        for segment in std::mem::take(&mut self.segments) {
            if segment.last_position.is_none_or(|p| p <= position) {
                if let Err(e) = self.storage.remove(&format!("{JOURNAL}/{}", segment.name))
                    && e.kind() != io::ErrorKind::NotFound
                {
                    self.segments = kept;
                    self.segments.push(segment);
                    self.current = None;
                    return Err(e);
                }
                if current_name.as_deref() == Some(segment.name.as_str()) {
                    self.unsynced = 0;
                }
            } else {
                kept.push(segment);
            }
        }
        self.segments = kept;
        self.current = current_name.and_then(|n| self.segments.iter().position(|s| s.name == n));
        Ok(())
    }

    /// Segments on storage.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Channel, ChannelType};

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_ends_the_segment() {
        let schema = Arc::new(
            Schema::new(vec![
                Channel::f32("a").nullable(),
                Channel::new("b", ChannelType::I64),
            ])
            .unwrap(),
        );
        let tag = schema_tag(&schema);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&tag);
        let mut record = Vec::new();
        let rows = [
            (1, 10, vec![Value::F32(1.5), Value::Int(-3)]),
            (2, 20, vec![Value::Null, Value::Int(i64::MAX)]),
        ];
        for (p, t, v) in &rows {
            encode_record(&mut record, *p, *t, v);
            bytes.extend_from_slice(&record);
        }
        let parsed = parse_segment(&bytes, &tag, 2).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].values, rows[1].2);
        let mut torn = bytes.clone();
        torn.truncate(bytes.len() - 3);
        assert_eq!(parse_segment(&torn, &tag, 2).unwrap().len(), 1);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(parse_segment(&flipped, &tag, 2).unwrap().len(), 1);
        assert!(parse_segment(&bytes, &[0; 8], 2).is_err());
    }

    #[test]
    fn f64_values_round_trip_bit_exact() {
        let schema = Arc::new(Schema::new(vec![Channel::new("w", ChannelType::F64)]).unwrap());
        let tag = schema_tag(&schema);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&tag);
        let mut record = Vec::new();
        let values = [16_777_217.0, -0.0, 5e-324, f64::MAX, 0.1234567891];
        for (i, v) in values.iter().enumerate() {
            encode_record(&mut record, i as u64, i as i64, &[Value::F64(*v)]);
            bytes.extend_from_slice(&record);
        }
        let parsed = parse_segment(&bytes, &tag, 1).unwrap();
        let bits: Vec<u64> = parsed
            .iter()
            .map(|r| match r.values[0] {
                Value::F64(v) => v.to_bits(),
                ref other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bits, values.map(f64::to_bits));
    }
}
