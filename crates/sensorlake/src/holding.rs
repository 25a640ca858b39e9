//! Rows taken before the clock was valid, held durably until they can be stamped.
//!
//! A held file is a Parquet file like any other, but its timestamps are microseconds
//! since boot (see [`crate::timebase`]), and it lives in `held/` beside the spool's
//! directories, where the uploader never looks. Its name carries what re-stamping
//! needs: the boot number and the boot's anchor (the last good time saved before it),
//! `{boot:08x}-{seq:08x}-{anchor_us:016x}.pq` (37 characters: LittleFS allows 63, FAT
//! needs long names). Files are written to `held/*.tmp`, synced and renamed, as the
//! spool does; leftovers of an interrupted write are removed when the holding opens.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::batch::Batch;
use crate::decode::decode_slice;
use crate::encode::{EncodeOptions, Encoder, FileMetadata};
use crate::key::DeviceId;
use crate::schema::Schema;
use crate::storage::Storage;

/// The directory of held files, relative to the storage root.
pub const HELD: &str = "held";
const EXT: &str = ".pq";
const TMP_EXT: &str = ".tmp";

/// One held file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFile {
    /// The boot that took the rows.
    pub boot: u32,
    /// Order within the boot.
    pub seq: u32,
    /// That boot's anchor (µs since the epoch).
    pub anchor_us: i64,
    /// The file name in `held/`.
    pub name: String,
}

impl HeldFile {
    fn new(boot: u32, seq: u32, anchor_us: i64) -> Self {
        Self {
            boot,
            seq,
            anchor_us,
            name: format!("{boot:08x}-{seq:08x}-{:016x}{EXT}", anchor_us as u64),
        }
    }

    /// Parses a name made by this module.
    pub fn parse(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(EXT)?;
        let mut parts = stem.split('-');
        let hex = |s: Option<&str>, len: usize| {
            s.filter(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|s| u64::from_str_radix(s, 16).ok())
        };
        let boot = hex(parts.next(), 8)? as u32;
        let seq = hex(parts.next(), 8)? as u32;
        let anchor_us = hex(parts.next(), 16)? as i64;
        parts
            .next()
            .is_none()
            .then(|| Self::new(boot, seq, anchor_us))
    }

    fn path(&self) -> String {
        format!("{HELD}/{}", self.name)
    }
}

/// A held file could not be written or read.
#[derive(Debug)]
pub enum HoldingError {
    /// Storage failed (full, I/O error).
    Io(io::Error),
    /// The batch could not be encoded.
    Encode(String),
    /// A held file cannot be read back as rows.
    Corrupt {
        /// The file name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for HoldingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "held rows: {e}"),
            Self::Encode(e) => write!(f, "held rows: cannot encode: {e}"),
            Self::Corrupt { name, reason } => write!(f, "held file {HELD}/{name}: {reason}"),
        }
    }
}

impl std::error::Error for HoldingError {}

impl From<io::Error> for HoldingError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The held files of a device; see the [module docs](self).
#[derive(Debug)]
pub struct Holding<S> {
    storage: S,
    encoder: Encoder,
    device: DeviceId,
    next_seq: u32,
}

impl<S: Storage> Holding<S> {
    /// Opens (creating) `held/`, removing files left half-written.
    pub fn open(
        storage: S,
        schema: Arc<Schema>,
        options: EncodeOptions,
        device: DeviceId,
    ) -> Result<Self, HoldingError> {
        storage.create_dir_all(HELD)?;
        let mut removed = false;
        for entry in storage.list(HELD)? {
            if entry.name.ends_with(TMP_EXT) {
                log::info!("held rows: removing incomplete {HELD}/{}", entry.name);
                storage.remove(&format!("{HELD}/{}", entry.name))?;
                removed = true;
            }
        }
        if removed {
            storage.sync_dir(HELD)?;
        }
        let encoder =
            Encoder::new(schema, options).map_err(|e| HoldingError::Encode(e.to_string()))?;
        let mut holding = Self {
            storage,
            encoder,
            device,
            next_seq: 0,
        };
        holding.next_seq = holding
            .files()?
            .iter()
            .map(|f| f.seq.wrapping_add(1))
            .max()
            .unwrap_or(0);
        Ok(holding)
    }

    /// Writes `batch` (timestamps: µs since boot `boot`, whose anchor is `anchor_us`)
    /// durably; returns the file.
    pub fn hold(
        &mut self,
        batch: &Batch,
        boot: u32,
        anchor_us: i64,
    ) -> Result<HeldFile, HoldingError> {
        let file = HeldFile::new(boot, self.next_seq, anchor_us);
        let label = format!("{HELD}/{}", file.name);
        let bytes = self
            .encoder
            .encode_to_vec(
                batch,
                &FileMetadata {
                    device_id: &self.device,
                    object_key: &label,
                },
            )
            .map_err(|e| HoldingError::Encode(e.to_string()))?;
        let tmp = format!("{HELD}/{}{TMP_EXT}", file.name);
        let written = self
            .storage
            .write(&tmp, &bytes)
            .and_then(|()| self.storage.sync_file(&tmp))
            .and_then(|()| self.storage.rename(&tmp, &file.path()))
            .and_then(|()| self.storage.sync_dir(HELD));
        if let Err(e) = written {
            let _ = self.storage.remove(&tmp);
            return Err(e.into());
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok(file)
    }

    /// The held files, oldest first (by boot, then order within the boot).
    pub fn files(&self) -> Result<Vec<HeldFile>, HoldingError> {
        let mut files: Vec<HeldFile> = self
            .storage
            .list(HELD)?
            .iter()
            .filter_map(|e| HeldFile::parse(&e.name))
            .collect();
        files.sort_by_key(|f| (f.boot, f.seq));
        Ok(files)
    }

    /// The rows of a held file (timestamps still since boot).
    pub fn read(&self, file: &HeldFile) -> Result<Batch, HoldingError> {
        let bytes = self.storage.read(&file.path())?;
        let corrupt = |reason: String| HoldingError::Corrupt {
            name: file.name.clone(),
            reason,
        };
        let decoded = decode_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if decoded.batch.schema().channels != self.encoder.schema().channels {
            return Err(corrupt(
                "its channels differ from this firmware's sensors".into(),
            ));
        }
        Ok(decoded.batch)
    }

    /// Removes a held file whose rows are safely elsewhere.
    pub fn remove(&mut self, file: &HeldFile) -> Result<(), HoldingError> {
        self.storage.remove(&file.path())?;
        self.storage.sync_dir(HELD)?;
        Ok(())
    }

    /// Moves an unreadable held file aside to `held/<name>.bad`, out of the way.
    pub fn set_aside(&mut self, file: &HeldFile) -> Result<(), HoldingError> {
        self.storage
            .rename(&file.path(), &format!("{}.bad", file.path()))?;
        self.storage.sync_dir(HELD)?;
        Ok(())
    }
}
