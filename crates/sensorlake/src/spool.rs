//! The durable queue of encoded files between the encoder and the uploader.
//!
//! Layout under the storage root:
//!
//! ```text
//! tmp/          files being written; leftovers are removed on open
//! ready/        complete, synced files waiting for upload, oldest (lowest number) first
//! quarantine/   files that cannot be uploaded, each with a `.why` file saying why
//! state/        the newest uploaded file, kept for its name: its source position
//! ```
//!
//! A file is written to `tmp/`, synced, renamed into `ready/` and the directory synced:
//! only then is it accepted. It leaves `ready/` only after the server confirmed the
//! upload, when quarantined, or when dropped by the `drop-oldest` policy. Names are
//! short hex numbers (`0000002a.pq`, at most 28 characters) — LittleFS allows 64,
//! FAT needs long names enabled — and renames never target an existing name, so the
//! spool is correct where rename cannot replace (FAT). The object key travels inside
//! the file (Parquet key-value metadata `sensorlake.object_key`).
//!
//! **Sequence numbers** never wrap or repeat, whatever is in the directories: only
//! names the spool writes count (lowercase hex, at least 8 digits, a number up to
//! [`MAX_SEQ`]), and the next number is one above the highest of them. Anything else
//! in `ready/` — another name, a number beyond [`MAX_SEQ`], a second file with a number
//! already taken, a directory or a symlink — is moved to `quarantine/` at open with the
//! reason (named `foreign-<name>` there when it looks like a spool name, so that its
//! number and position never count), never uploaded under a number that collides and
//! never silently ignored.
//!
//! **Source positions.** A caller whose source can be re-read (a CSV file, a
//! deterministic simulator) passes the position after a batch's last row with the
//! file; it is part of the file's name (`0000002a-00000000000f4240.pq`), so the
//! position becomes durable in the same rename that makes the batch durable. When the
//! file with the highest position is uploaded, it is moved to `state/` (replacing the
//! previous one there), keeping the position. [`Spool::position`] — the highest position in `ready/`,
//! `quarantine/` or `state/` — is where the source resumes after a restart: it neither
//! re-reads nor skips a row.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::time::SystemTime;

use crate::decode;
use crate::encode::{META_DEVICE_ID, META_OBJECT_KEY};
use crate::failpoint;
use crate::key::DeviceId;
use crate::pqread;
use crate::storage::{DirEntry, NotAFile, Storage, is_storage_full};

/// Directory of files being written.
pub const TMP: &str = "tmp";
/// Directory of files waiting for upload.
pub const READY: &str = "ready";
/// Directory of files that cannot be uploaded.
pub const QUARANTINE: &str = "quarantine";
/// Directory of the position marker.
pub const STATE: &str = "state";
/// Extension of spooled files.
const EXT: &str = ".pq";
/// Extension of quarantine reason files.
const WHY: &str = ".why";
/// Prefix of quarantined entries the spool did not write (see [`Spool::open`]).
pub const FOREIGN: &str = "foreign-";
/// The highest sequence number the spool uses (2⁴⁰ − 1: a file a second for 34,000
/// years). A name with a higher number is not one the spool wrote; keeping the limit far
/// below `u64::MAX` means `highest + 1` can never wrap.
pub const MAX_SEQ: u64 = (1 << 40) - 1;

/// What happens when a new file does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse the new file: the producer keeps its batch and sees "spool full".
    RefuseNew,
    /// Delete the oldest files (counted and logged) to make room.
    DropOldest,
}

crate::named_options! {
    WhenFull, String, |other| format!(
        "unknown spool policy {other:?}: expected {}",
        crate::options::one_of(WhenFull::NAMES)
    );
    RefuseNew = "refuse-new",
    DropOldest = "drop-oldest",
}

/// Capacity of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Most bytes in `ready/` (default 64 MiB).
    pub max_bytes: u64,
    /// Most files in `ready/` (default 4096).
    pub max_files: usize,
    /// What happens when full (default [`WhenFull::RefuseNew`]).
    pub when_full: WhenFull,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_files: 4096,
            when_full: WhenFull::RefuseNew,
        }
    }
}

/// One file waiting in `ready/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolEntry {
    /// File name in `ready/`.
    pub name: String,
    /// Sequence number: lower is older.
    pub seq: u64,
    /// Source position after the file's last row, if the producer gave one.
    pub position: Option<u64>,
    /// Size in bytes.
    pub size: u64,
    /// When it was written, where the file system keeps times.
    pub modified: Option<SystemTime>,
}

impl SpoolEntry {
    /// Path relative to the storage root.
    pub fn path(&self) -> String {
        format!("{READY}/{}", self.name)
    }
}

/// A file in `quarantine/` and why it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedFile {
    /// File name in `quarantine/`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The reason recorded when it was quarantined.
    pub reason: String,
    /// Set when it is not a regular file (a directory or symlink found in `ready/`):
    /// it cannot be requeued.
    pub not_a_file: Option<NotAFile>,
}

/// Why the spool did not take or give a file.
#[derive(Debug)]
pub enum SpoolError {
    /// The spool is at its capacity and the policy is `refuse-new` (or everything left
    /// is being uploaded): keep the batch and retry later.
    Full {
        /// Files in `ready/`.
        files: usize,
        /// Bytes in `ready/`.
        bytes: u64,
        /// The configured file limit.
        max_files: usize,
        /// The configured byte limit.
        max_bytes: u64,
    },
    /// One file is larger than the whole spool may hold.
    TooLarge {
        /// Its size.
        size: u64,
        /// The byte limit.
        max_bytes: u64,
    },
    /// The storage is full (ENOSPC); nothing was accepted.
    NoSpace(io::Error),
    /// Another storage error.
    Io(io::Error),
    /// No quarantined file has that name.
    NotQuarantined(String),
    /// Every sequence number up to [`MAX_SEQ`] is used: nothing can be added without
    /// reusing a number.
    SequenceExhausted,
    /// A quarantined entry that is not a regular file (a directory or a symlink) cannot
    /// be requeued.
    NotAFile {
        /// Its name in `quarantine/`.
        name: String,
        /// What it is.
        kind: NotAFile,
    },
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full {
                files,
                bytes,
                max_files,
                max_bytes,
            } => write!(
                f,
                "spool full: {files} files, {bytes} bytes waiting (limits {max_files} files, {max_bytes} bytes); the batch is kept"
            ),
            Self::TooLarge { size, max_bytes } => write!(
                f,
                "a {size}-byte file can never fit in a spool of {max_bytes} bytes: raise spool max_bytes or lower batch max_rows"
            ),
            Self::NoSpace(e) => write!(f, "storage full (no space left on device): {e}"),
            Self::Io(e) => write!(f, "spool storage error: {e}"),
            Self::NotQuarantined(name) => write!(f, "no quarantined file named {name:?}"),
            Self::SequenceExhausted => write!(
                f,
                "every spool sequence number up to {MAX_SEQ:x} is used: a file in ready/ or quarantine/ has the highest one; move it out of the spool directory"
            ),
            Self::NotAFile { name, kind } => write!(
                f,
                "quarantine/{name} is {}, not a spooled file: only regular files can be requeued",
                kind.describe()
            ),
        }
    }
}

impl std::error::Error for SpoolError {}

impl From<io::Error> for SpoolError {
    fn from(e: io::Error) -> Self {
        if is_storage_full(&e) {
            Self::NoSpace(e)
        } else {
            Self::Io(e)
        }
    }
}

/// Counters and sizes, for the status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Files waiting in `ready/`.
    pub ready_files: usize,
    /// Bytes waiting in `ready/`.
    pub ready_bytes: u64,
    /// When the oldest waiting file was written.
    pub oldest: Option<SystemTime>,
    /// Files in `quarantine/`.
    pub quarantined_files: usize,
    /// Files spooled since open.
    pub spooled_files: u64,
    /// Files removed after a confirmed upload since open.
    pub uploaded_files: u64,
    /// Files dropped by `drop-oldest` since open.
    pub dropped_files: u64,
    /// Rows in the dropped files.
    pub dropped_rows: u64,
    /// Files quarantined since open.
    pub quarantined_since_open: u64,
    /// Leftovers removed from `tmp/` at open.
    pub removed_tmp: u64,
    /// The source position to resume from ([`Spool::position`]).
    pub position: Option<u64>,
}

/// The name of a spooled file: hex sequence number, then the hex position if any.
pub fn entry_name(seq: u64, position: Option<u64>) -> String {
    match position {
        Some(p) => format!("{seq:08x}-{p:016x}{EXT}"),
        None => format!("{seq:08x}{EXT}"),
    }
}

/// Parses a name made by [`entry_name`]: `None` for any other name, including numbers
/// beyond [`MAX_SEQ`] and names [`entry_name`] would spell differently (`2a.pq`,
/// `0000002A.pq`).
pub fn parse_entry_name(name: &str) -> Option<(u64, Option<u64>)> {
    let (seq, position) = parse_loose(name)?;
    (seq <= MAX_SEQ && entry_name(seq, position) == name).then_some((seq, position))
}

/// Why `name` in `ready/` is not a spool file (`None`: it is one).
fn foreign_reason(name: &str) -> Option<String> {
    match parse_loose(name) {
        _ if parse_entry_name(name).is_some() => None,
        Some((seq, _)) if seq > MAX_SEQ => Some(format!(
            "sequence number {seq:x} is beyond the spool's highest ({MAX_SEQ:x}): not a file this spool wrote (unexpected name in ready/)"
        )),
        Some(_) => Some(format!(
            "not spelled as the spool names its files (e.g. {}): not a file this spool wrote (unexpected name in ready/)",
            entry_name(42, None)
        )),
        None => Some("not a file the spool wrote (unexpected name in ready/)".to_string()),
    }
}

/// Hex sequence number and optional hex position, however spelled.
fn parse_loose(name: &str) -> Option<(u64, Option<u64>)> {
    let stem = name.strip_suffix(EXT)?;
    let hex = |s: &str| {
        (!s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    match stem.split_once('-') {
        Some((seq, pos)) => Some((hex(seq)?, Some(hex(pos)?))),
        None => Some((hex(stem)?, None)),
    }
}

fn reason_name(name: &str) -> String {
    match name.strip_suffix(EXT) {
        Some(stem) => format!("{stem}{WHY}"),
        None => format!("{name}{WHY}"),
    }
}

/// The durable file queue; see the [module docs](self).
#[derive(Debug)]
pub struct Spool<S> {
    storage: S,
    config: SpoolConfig,
    ready: BTreeMap<u64, SpoolEntry>,
    ready_bytes: u64,
    quarantined: usize,
    next_seq: u64,
    /// Highest position in `quarantine/` and `state/`.
    settled_position: Option<u64>,
    marker: Option<String>,
    in_flight: Option<u64>,
    stats: SpoolStats,
}

impl<S: Storage> Spool<S> {
    /// Opens (creating if needed) the spool: removes leftovers from `tmp/`, indexes
    /// `ready/`, and moves files with names it did not write to `quarantine/`.
    pub fn open(storage: S, config: SpoolConfig) -> Result<Self, SpoolError> {
        for dir in [TMP, READY, QUARANTINE, STATE] {
            storage.create_dir_all(dir)?;
        }
        let mut spool = Self {
            storage,
            config,
            ready: BTreeMap::new(),
            ready_bytes: 0,
            quarantined: 0,
            next_seq: 0,
            settled_position: None,
            marker: None,
            in_flight: None,
            stats: SpoolStats::default(),
        };
        let leftovers = spool.storage.list(TMP)?;
        for entry in &leftovers {
            log::info!("spool: removing incomplete tmp/{}", entry.name);
            spool.storage.remove(&format!("{TMP}/{}", entry.name))?;
        }
        if !leftovers.is_empty() {
            spool.storage.sync_dir(TMP)?;
        }
        spool.stats.removed_tmp = leftovers.len() as u64;

        let mut max_seq = None;
        let mut markers: Vec<(Option<u64>, String)> = Vec::new();
        for entry in spool.storage.list(STATE)? {
            if let Some((seq, position)) = parse_entry_name(&entry.name) {
                max_seq = max_seq.max(Some(seq));
                markers.push((position, entry.name));
            }
        }
        markers.sort();
        if let Some((position, name)) = markers.pop() {
            spool.settled_position = position;
            spool.marker = Some(name);
        }
        for (_, stale) in markers {
            let _ = spool.storage.remove(&format!("{STATE}/{stale}"));
        }
        for entry in spool.storage.list(QUARANTINE)? {
            if entry.name.ends_with(WHY) {
                continue;
            }
            spool.quarantined += 1;
            if let Some((seq, position)) = parse_entry_name(&entry.name) {
                max_seq = max_seq.max(Some(seq));
                spool.settled_position = spool.settled_position.max(position);
            }
        }
        spool.quarantined += spool.storage.list_not_files(QUARANTINE)?.len();
        let mut strangers = Vec::new();
        let mut listed = spool.storage.list(READY)?;
        // Sorted, so which of two names with the same number stays is always the same.
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in listed {
            match parse_entry_name(&entry.name) {
                Some((seq, _)) if spool.ready.contains_key(&seq) => {
                    let taken = &spool.ready[&seq].name;
                    let reason = format!(
                        "sequence number {seq:x} is also the number of ready/{taken}: two files cannot share one (not a file this spool wrote)"
                    );
                    strangers.push((entry.name, reason));
                }
                Some((seq, position)) => {
                    max_seq = max_seq.max(Some(seq));
                    spool.insert(SpoolEntry {
                        name: entry.name,
                        seq,
                        position,
                        size: entry.size,
                        modified: entry.modified,
                    });
                }
                None => {
                    let reason = foreign_reason(&entry.name).unwrap_or_default();
                    strangers.push((entry.name, reason));
                }
            }
        }
        // At most MAX_SEQ + 1, far below u64::MAX: never wraps.
        spool.next_seq = max_seq.map_or(0, |s| s + 1);
        for (name, reason) in strangers {
            spool.quarantine_foreign(&name, &reason)?;
        }
        for (name, kind) in spool.storage.list_not_files(READY)? {
            let reason = format!(
                "{} in ready/, not a file the spool wrote: the spool uploads only regular files it wrote itself",
                kind.describe()
            );
            spool.quarantine_foreign(&name, &reason)?;
        }
        spool.stats.position = spool.position();
        Ok(spool)
    }

    fn insert(&mut self, entry: SpoolEntry) {
        self.ready_bytes += entry.size;
        self.ready.insert(entry.seq, entry);
    }

    /// The capacity settings.
    pub fn config(&self) -> &SpoolConfig {
        &self.config
    }

    /// The storage handle.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Where a re-readable source resumes: the highest position of any file in
    /// `ready/`, `quarantine/` or `state/`.
    pub fn position(&self) -> Option<u64> {
        let waiting = self.ready.values().filter_map(|e| e.position).max();
        waiting.max(self.settled_position)
    }

    /// The files waiting, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &SpoolEntry> {
        self.ready.values()
    }

    /// Counters and sizes.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            ready_files: self.ready.len(),
            ready_bytes: self.ready_bytes,
            oldest: self.ready.values().next().and_then(|e| e.modified),
            quarantined_files: self.quarantined,
            position: self.position(),
            ..self.stats.clone()
        }
    }

    /// Whether no file waits for upload.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    fn is_over(&self, size: u64) -> bool {
        self.ready_bytes + size > self.config.max_bytes || self.ready.len() >= self.config.max_files
    }

    fn full_error(&self) -> SpoolError {
        SpoolError::Full {
            files: self.ready.len(),
            bytes: self.ready_bytes,
            max_files: self.config.max_files,
            max_bytes: self.config.max_bytes,
        }
    }

    /// Makes room for `size` bytes per the policy.
    fn make_room(&mut self, size: u64) -> Result<(), SpoolError> {
        if size > self.config.max_bytes {
            return Err(SpoolError::TooLarge {
                size,
                max_bytes: self.config.max_bytes,
            });
        }
        while self.is_over(size) {
            if self.config.when_full == WhenFull::RefuseNew {
                return Err(self.full_error());
            }
            let Some(oldest) = self
                .ready
                .values()
                .find(|e| Some(e.seq) != self.in_flight)
                .cloned()
            else {
                return Err(self.full_error());
            };
            self.drop_entry(&oldest)?;
        }
        Ok(())
    }

    fn drop_entry(&mut self, entry: &SpoolEntry) -> Result<(), SpoolError> {
        let rows = self
            .storage
            .read(&entry.path())
            .ok()
            .and_then(|b| pqread::read_footer(&b).ok().map(|f| f.num_rows));
        self.remove_entry(entry)?;
        self.stats.dropped_files += 1;
        self.stats.dropped_rows += rows.unwrap_or(0);
        match rows {
            Some(rows) => log::warn!(
                "spool full (drop-oldest): dropped {} with {rows} rows ({} files, {} rows dropped so far)",
                entry.name,
                self.stats.dropped_files,
                self.stats.dropped_rows
            ),
            None => log::warn!(
                "spool full (drop-oldest): dropped unreadable {} ({} files dropped so far)",
                entry.name,
                self.stats.dropped_files
            ),
        }
        Ok(())
    }

    /// Stores `bytes` durably as the newest file. `position` is the source position after
    /// the file's last row (see the module docs). On error nothing was accepted: keep
    /// the batch and try again later.
    pub fn push(&mut self, bytes: &[u8], position: Option<u64>) -> Result<SpoolEntry, SpoolError> {
        let size = bytes.len() as u64;
        self.make_room(size)?;
        let seq = self.take_seq()?;
        let name = entry_name(seq, position);
        let tmp = format!("{TMP}/{name}");
        let ready = format!("{READY}/{name}");
        let staged = (|| {
            self.storage.write(&tmp, bytes)?;
            failpoint::hit(failpoint::AFTER_TMP_WRITE);
            self.storage.sync_file(&tmp)?;
            failpoint::hit(failpoint::AFTER_FSYNC);
            self.storage.rename(&tmp, &ready)
        })();
        if let Err(e) = staged {
            // Best effort: a leftover is removed at the next open anyway.
            let _ = self.storage.remove(&tmp);
            return Err(e.into());
        }
        failpoint::hit(failpoint::AFTER_RENAME);
        let entry = SpoolEntry {
            name,
            seq,
            position,
            size,
            modified: Some(SystemTime::now()),
        };
        // The file is in ready/ from here on (the uploader may send it) even if the
        // directory sync fails; the producer then spools the batch again, which costs
        // a second upload of the same key (answered 412), never a lost row.
        self.insert(entry.clone());
        self.storage.sync_dir(READY)?;
        if position.is_some() {
            failpoint::hit(failpoint::AFTER_OFFSET_COMMIT);
        }
        self.stats.spooled_files += 1;
        Ok(entry)
    }

    /// The next unused sequence number.
    fn take_seq(&mut self) -> Result<u64, SpoolError> {
        if self.next_seq > MAX_SEQ {
            return Err(SpoolError::SequenceExhausted);
        }
        self.next_seq += 1;
        Ok(self.next_seq - 1)
    }

    /// The oldest waiting file not being uploaded, marked as being uploaded (so
    /// `drop-oldest` leaves it alone) until [`Spool::complete`], [`Spool::quarantine`]
    /// or [`Spool::release`].
    pub fn take_oldest(&mut self) -> Option<SpoolEntry> {
        let entry = self.ready.values().next()?.clone();
        self.in_flight = Some(entry.seq);
        Some(entry)
    }

    /// Ends the upload of `entry` without removing it (it will be taken again).
    pub fn release(&mut self, entry: &SpoolEntry) {
        if self.in_flight == Some(entry.seq) {
            self.in_flight = None;
        }
    }

    /// Whether `entry` is still waiting (not dropped meanwhile).
    pub fn contains(&self, entry: &SpoolEntry) -> bool {
        self.ready
            .get(&entry.seq)
            .is_some_and(|e| e.name == entry.name)
    }

    /// Drops `entry` from the index without touching storage (its file vanished).
    pub fn forget(&mut self, entry: &SpoolEntry) {
        if let Some(e) = self.ready.remove(&entry.seq) {
            self.ready_bytes -= e.size;
        }
        self.release(entry);
    }

    /// The content of a waiting file.
    pub fn read(&self, entry: &SpoolEntry) -> io::Result<Vec<u8>> {
        self.storage.read(&entry.path())
    }

    /// Removes a file whose upload the server confirmed.
    pub fn complete(&mut self, entry: &SpoolEntry) -> Result<(), SpoolError> {
        if !self.contains(entry) {
            self.release(entry);
            return Ok(());
        }
        self.remove_entry(entry)?;
        self.stats.uploaded_files += 1;
        Ok(())
    }

    /// Removes `entry` from `ready/`; if no other file records a position as high as
    /// its own, the file moves to `state/` to keep that position.
    fn remove_entry(&mut self, entry: &SpoolEntry) -> Result<(), SpoolError> {
        failpoint::hit(failpoint::BEFORE_DELETE);
        let path = entry.path();
        let keeps_position = entry.position.is_some_and(|p| {
            let others = self
                .ready
                .values()
                .filter(|e| e.seq != entry.seq)
                .filter_map(|e| e.position)
                .max();
            Some(p) > others.max(self.settled_position)
        });
        if keeps_position {
            let marker = format!("{STATE}/{}", entry.name);
            self.storage.rename(&path, &marker)?;
            self.storage.sync_dir(STATE)?;
            failpoint::hit(failpoint::AFTER_OFFSET_COMMIT);
            self.settled_position = entry.position;
            if let Some(old) = self.marker.replace(entry.name.clone()) {
                let _ = self.storage.remove(&format!("{STATE}/{old}"));
            }
            // The marker keeps its content: only its name matters, but emptying it
            // would tear the file under its old name too where a power loss leaves a
            // renamed file under both names (FAT renames across directories).
        } else {
            match self.storage.remove(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        if let Some(e) = self.ready.remove(&entry.seq) {
            self.ready_bytes -= e.size;
        }
        self.release(entry);
        Ok(())
    }

    /// Moves `entry` to `quarantine/` with `reason` beside it; the queue goes on.
    pub fn quarantine(&mut self, entry: &SpoolEntry, reason: &str) -> Result<(), SpoolError> {
        self.quarantine_name(&entry.name, reason)?;
        if let Some(e) = self.ready.remove(&entry.seq) {
            self.ready_bytes -= e.size;
        }
        self.settled_position = self.settled_position.max(entry.position);
        self.release(entry);
        Ok(())
    }

    fn quarantine_name(&mut self, name: &str, reason: &str) -> Result<(), SpoolError> {
        log::error!("spool: quarantining {name}: {reason}");
        let why = format!("{QUARANTINE}/{}", reason_name(name));
        self.storage.write(&why, reason.as_bytes())?;
        self.storage.sync_file(&why)?;
        let target = format!("{QUARANTINE}/{name}");
        let exists = self
            .storage
            .list(QUARANTINE)?
            .iter()
            .any(|e| e.name == name);
        if exists {
            // A power loss after an earlier quarantine left the name in both places.
            self.storage.remove(&format!("{READY}/{name}"))?;
        } else {
            self.storage.rename(&format!("{READY}/{name}"), &target)?;
            self.quarantined += 1;
        }
        self.storage.sync_dir(QUARANTINE)?;
        self.storage.sync_dir(READY)?;
        self.stats.quarantined_since_open += 1;
        Ok(())
    }

    /// Moves an entry of `ready/` the spool did not write (a file, directory or symlink)
    /// into `quarantine/` under a free name, with the reason: kept and reported, never
    /// uploaded under a colliding number, never silently skipped, never replacing
    /// anything already quarantined.
    fn quarantine_foreign(&mut self, name: &str, reason: &str) -> Result<(), SpoolError> {
        let taken: Vec<String> = self
            .storage
            .list(QUARANTINE)?
            .into_iter()
            .map(|e| e.name)
            .chain(
                self.storage
                    .list_not_files(QUARANTINE)?
                    .into_iter()
                    .map(|(n, _)| n),
            )
            .collect();
        // A name that looks like a spool name gets a prefix in quarantine/, so its
        // number and position never count as the spool's (a stray position would make
        // the source skip rows).
        let base = match parse_loose(name) {
            Some(_) => format!("{FOREIGN}{name}"),
            None => name.to_string(),
        };
        let target = (0..)
            .map(|i| {
                if i == 0 {
                    base.clone()
                } else {
                    format!("{base}.{i}")
                }
            })
            .find(|t| !taken.contains(t) && !taken.contains(&reason_name(t)))
            .unwrap_or(base);
        log::error!("spool: quarantining ready/{name} as quarantine/{target}: {reason}");
        let why = format!("{QUARANTINE}/{}", reason_name(&target));
        self.storage.write(&why, reason.as_bytes())?;
        self.storage.sync_file(&why)?;
        self.storage.rename(
            &format!("{READY}/{name}"),
            &format!("{QUARANTINE}/{target}"),
        )?;
        self.quarantined += 1;
        self.storage.sync_dir(QUARANTINE)?;
        self.storage.sync_dir(READY)?;
        self.stats.quarantined_since_open += 1;
        Ok(())
    }

    /// The quarantined files and their reasons.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedFile>, SpoolError> {
        quarantined_files(&self.storage)
    }

    /// Moves quarantined files back to `ready/` as the newest files: the one named
    /// `name`, or all when `None`. Returns the new entries.
    pub fn requeue(&mut self, name: Option<&str>) -> Result<Vec<SpoolEntry>, SpoolError> {
        let listed: Vec<DirEntry> = self
            .storage
            .list(QUARANTINE)?
            .into_iter()
            .filter(|e| !e.name.ends_with(WHY))
            .filter(|e| name.is_none_or(|n| n == e.name))
            .collect();
        if let Some(name) = name
            && listed.is_empty()
        {
            let not_a_file = self
                .storage
                .list_not_files(QUARANTINE)?
                .into_iter()
                .find(|(n, _)| n == name);
            return Err(match not_a_file {
                Some((name, kind)) => SpoolError::NotAFile { name, kind },
                None => SpoolError::NotQuarantined(name.to_string()),
            });
        }
        let mut requeued = Vec::new();
        for file in listed {
            let position = parse_entry_name(&file.name).and_then(|(_, p)| p);
            let seq = self.take_seq()?;
            let entry = SpoolEntry {
                name: entry_name(seq, position),
                seq,
                position,
                size: file.size,
                modified: file.modified,
            };
            self.storage
                .rename(&format!("{QUARANTINE}/{}", file.name), &entry.path())?;
            self.storage.sync_dir(READY)?;
            let _ = self
                .storage
                .remove(&format!("{QUARANTINE}/{}", reason_name(&file.name)));
            self.quarantined = self.quarantined.saturating_sub(1);
            log::info!("spool: requeued {} as {}", file.name, entry.name);
            self.insert(entry.clone());
            requeued.push(entry);
        }
        self.storage.sync_dir(QUARANTINE)?;
        Ok(requeued)
    }
}

/// The quarantined files and their reasons, read without opening the spool (safe
/// while an agent runs).
pub fn quarantined_files<S: Storage>(storage: &S) -> Result<Vec<QuarantinedFile>, SpoolError> {
    let listed = match storage.list(QUARANTINE) {
        // Not created yet (the agent creates it at its next start): nothing in it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        listed => listed?,
    };
    let mut out: Vec<QuarantinedFile> = listed
        .iter()
        .filter(|e| !e.name.ends_with(WHY))
        .map(|e| QuarantinedFile {
            name: e.name.clone(),
            size: e.size,
            reason: storage
                .read(&format!("{QUARANTINE}/{}", reason_name(&e.name)))
                .map(|r| String::from_utf8_lossy(&r).into_owned())
                .unwrap_or_else(|_| "(no reason recorded)".to_string()),
            not_a_file: None,
        })
        .collect();
    for (name, kind) in storage.list_not_files(QUARANTINE)? {
        out.push(QuarantinedFile {
            reason: storage
                .read(&format!("{QUARANTINE}/{}", reason_name(&name)))
                .map(|r| String::from_utf8_lossy(&r).into_owned())
                .unwrap_or_else(|_| format!("{} (no reason recorded)", kind.describe())),
            name,
            size: 0,
            not_a_file: Some(kind),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// An entry of `ready/` that is not a spool file, found without opening the spool; the
/// next [`Spool::open`] (agent start) moves it to `quarantine/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignEntry {
    /// Its name in `ready/`.
    pub name: String,
    /// Why it is not a spool file.
    pub reason: String,
}

/// The entries of `ready/` that are not spool files (names the spool does not write,
/// sequence numbers beyond [`MAX_SEQ`] or already taken, directories, symlinks), read
/// without opening the spool (safe while an agent runs).
pub fn foreign_entries<S: Storage>(storage: &S) -> Result<Vec<ForeignEntry>, SpoolError> {
    let mut listed = match storage.list(READY) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        listed => listed?,
    };
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let mut taken = BTreeMap::new();
    let mut out = Vec::new();
    for e in listed {
        let reason = match parse_entry_name(&e.name) {
            Some((seq, _)) => match taken.get(&seq) {
                Some(first) => format!(
                    "sequence number {seq:x} is also the number of ready/{first}: two files cannot share one"
                ),
                None => {
                    taken.insert(seq, e.name);
                    continue;
                }
            },
            None => foreign_reason(&e.name).unwrap_or_default(),
        };
        out.push(ForeignEntry {
            name: e.name,
            reason,
        });
    }
    for (name, kind) in storage.list_not_files(READY)? {
        out.push(ForeignEntry {
            name,
            reason: format!("{} in ready/, not a file the spool wrote", kind.describe()),
        });
    }
    Ok(out)
}

/// The files waiting in `ready/`, oldest first, read without opening the spool (safe
/// while an agent runs; names the spool did not write are left out).
pub fn ready_files<S: Storage>(storage: &S) -> Result<Vec<SpoolEntry>, SpoolError> {
    let mut out: Vec<SpoolEntry> = storage
        .list(READY)?
        .into_iter()
        .filter_map(|e| {
            let (seq, position) = parse_entry_name(&e.name)?;
            Some(SpoolEntry {
                name: e.name,
                seq,
                position,
                size: e.size,
                modified: e.modified,
            })
        })
        .collect();
    // As at open: of two names with one number, the first by name is the spool's.
    out.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.name.cmp(&b.name)));
    out.dedup_by_key(|e| e.seq);
    Ok(out)
}

/// What a spooled file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// The object key it is uploaded to (`sensorlake.object_key`).
    pub object_key: String,
    /// The device that wrote it (`sensorlake.device_id`).
    pub device_id: String,
    /// Number of rows.
    pub rows: u64,
}

/// Reads a spooled file's footer: fails (with the reason to quarantine it) on bad
/// magic, a bad footer, a wrong size or a missing object key.
pub fn read_facts(bytes: &[u8]) -> Result<FileFacts, String> {
    let footer = pqread::read_footer(bytes)
        .map_err(|e| format!("not a readable Parquet file ({} bytes): {e}", bytes.len()))?;
    let object_key = footer
        .meta(META_OBJECT_KEY)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("the file has no {META_OBJECT_KEY} metadata"))?;
    Ok(FileFacts {
        object_key: object_key.to_string(),
        device_id: footer.meta(META_DEVICE_ID).unwrap_or_default().to_string(),
        rows: footer.num_rows,
    })
}

/// Decodes every row of a spooled file and checks that its object key is the key of
/// those rows (the key's hash is the SHA-256 of the rows), whatever prefix and layout
/// the key was made with. Fails with the reason to quarantine the file.
pub fn verify_rows(bytes: &[u8]) -> Result<FileFacts, String> {
    let facts = read_facts(bytes)?;
    let decoded =
        decode::decode_slice(bytes).map_err(|e| format!("the rows cannot be read: {e}"))?;
    let device = DeviceId::new(&facts.device_id)
        .map_err(|e| format!("bad {META_DEVICE_ID} metadata: {e}"))?;
    let key = &facts.object_key;
    let mut why = Vec::new();
    let layouts = crate::layout::BUILT_IN;
    for template in crate::key::templates_for(key) {
        match template {
            Ok(t) => match t.check(key, &device, &decoded.batch) {
                Ok(()) => return Ok(facts),
                Err(e) => why.push(e),
            },
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(format!(
        "the rows do not match the object key {key:?}: {}",
        if why.is_empty() {
            let markers: Vec<String> = layouts
                .all()
                .iter()
                .map(|l| format!("{}=", l.device_partition()))
                .collect();
            format!("the key has no {} partition", markers.join(" or "))
        } else {
            why.join("; ")
        }
    ))
}
