//! Time on a device that may boot without a valid clock.
//!
//! An ESP32 has no battery-backed clock: after a power cut it counts from 1970 until
//! SNTP answers, and during a network outage that can take hours. Rows are never
//! dropped for that. Until the clock is valid they are stamped with the time since
//! boot ([`Stamp::Boot`]) and held; then:
//!
//! - **the boot syncs**: its held rows are re-stamped exactly,
//!   `wall = uptime + offset`, with the offset measured at this boot's first sync;
//! - **the boot never syncs** (the power went first): a later boot stamps them from
//!   the last good time saved before that boot started (its *anchor*) plus the
//!   uptime at which they were taken, and marks their files `time_estimated`. The
//!   estimate is never later than the truth (the device was off for an unknown time
//!   before that boot), so it can only err towards the past.
//!
//! The state lives in a [`TimeStore`] (NVS on the device, [`FileTimeStore`] on a host):
//! a boot counter, the *floor* (a wall time known to have passed: the synced clock,
//! or anchor + uptime while unsynced; saved every [`TimebaseConfig::save_every`] so a
//! boot that follows an unsynced one does not reuse its anchor), and the first sync
//! offset of the last few boots that synced (so their held rows are still re-stamped
//! exactly after a crash in the middle of re-stamping). The record is written to two
//! slots in turn with a checksum, so a write torn by a power cut leaves the other.
//!
//! No URL may be signed before the clock is valid: [`SyncFlag`] tells the upload task.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The two keys the record is written to in turn (valid NVS keys: ≤ 15 characters).
pub const SLOT_KEYS: [&str; 2] = ["sl_time_a", "sl_time_b"];

/// How many boots' first sync offsets are kept.
pub const MAX_SYNC_POINTS: usize = 4;

/// 2025-01-01T00:00:00Z in microseconds: the default floor before any time was saved.
pub const DEFAULT_FALLBACK_FLOOR_US: i64 = 1_735_689_600_000_000;

const MAGIC: &[u8; 4] = b"SLT1";
const CHECKSUM_LEN: usize = 4;

/// Durable key-value storage for the time record: NVS blobs on ESP-IDF, files on a host.
pub trait TimeStore {
    /// The value stored under `key`, if any.
    fn load(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Stores `value` under `key`, durably, before returning.
    fn save(&mut self, key: &str, value: &[u8]) -> Result<(), String>;
}

/// [`TimeStore`] in a host directory: one file per key, written to a temporary name,
/// synced and renamed.
#[derive(Debug, Clone)]
pub struct FileTimeStore {
    dir: PathBuf,
}

impl FileTimeStore {
    /// A store in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn write(&self, key: &str, value: &[u8]) -> io::Result<()> {
        use io::Write as _;
        fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!("{key}.tmp"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(value)?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(key))?;
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl TimeStore for FileTimeStore {
    fn load(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let path = self.dir.join(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn save(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.write(key, value)
            .map_err(|e| format!("cannot write {}: {e}", self.dir.join(key).display()))
    }
}

/// A boot's first sync: its rows' wall time is `uptime + offset_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPoint {
    /// The boot number.
    pub boot: u32,
    /// Wall clock minus uptime at the first sync, in microseconds.
    pub offset_us: i64,
}

/// What is saved in the [`TimeStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRecord {
    /// Increases with every write; the newer of the two slots wins.
    pub generation: u64,
    /// The number of the boot that wrote it.
    pub boot: u32,
    /// A wall time (µs since the epoch) known to have passed.
    pub floor_us: i64,
    /// First sync offsets of recent boots, newest first.
    pub syncs: Vec<SyncPoint>,
}

impl TimeRecord {
    /// The record as bytes: magic, fields (little endian), SHA-256 prefix checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(29 + 12 * self.syncs.len() + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.boot.to_le_bytes());
        out.extend_from_slice(&self.floor_us.to_le_bytes());
        let syncs = &self.syncs[..self.syncs.len().min(MAX_SYNC_POINTS)];
        out.push(syncs.len() as u8);
        for sync in syncs {
            out.extend_from_slice(&sync.boot.to_le_bytes());
            out.extend_from_slice(&sync.offset_us.to_le_bytes());
        }
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum[..CHECKSUM_LEN]);
        out
    }

    /// Parses [`TimeRecord::to_bytes`]; `None` if the bytes are torn or not a record.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (body, checksum) = bytes.split_at_checked(bytes.len().checked_sub(CHECKSUM_LEN)?)?;
        if Sha256::digest(body)[..CHECKSUM_LEN] != *checksum {
            return None;
        }
        let mut r = Reader(body);
        if r.take(4)? != MAGIC {
            return None;
        }
        let generation = u64::from_le_bytes(r.array()?);
        let boot = u32::from_le_bytes(r.array()?);
        let floor_us = i64::from_le_bytes(r.array()?);
        let n = r.take(1)?[0] as usize;
        if n > MAX_SYNC_POINTS {
            return None;
        }
        let mut syncs = Vec::with_capacity(n);
        for _ in 0..n {
            syncs.push(SyncPoint {
                boot: u32::from_le_bytes(r.array()?),
                offset_us: i64::from_le_bytes(r.array()?),
            });
        }
        r.0.is_empty().then_some(Self {
            generation,
            boot,
            floor_us,
            syncs,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// Settings of the [`Timebase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimebaseConfig {
    /// The floor when nothing was saved yet, e.g. the firmware's build time (default
    /// [`DEFAULT_FALLBACK_FLOOR_US`]).
    pub fallback_floor_us: i64,
    /// How often the floor is saved while running (default 10 min). An estimated time
    /// can be this much earlier than it would otherwise be; NVS sees one write per period.
    pub save_every: Duration,
}

impl Default for TimebaseConfig {
    fn default() -> Self {
        Self {
            fallback_floor_us: DEFAULT_FALLBACK_FLOOR_US,
            save_every: Duration::from_secs(600),
        }
    }
}

/// How a row is stamped now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Wall-clock time, µs since the epoch: record it.
    Wall(i64),
    /// Time since this boot, µs: hold it until the boot's offset is known.
    Boot(i64),
}

/// How the rows held by one boot become wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Added to a row's uptime.
    pub offset_us: i64,
    /// Whether the result is an estimate (the boot never synced).
    pub estimated: bool,
}

impl Mapping {
    /// The wall time of a row taken at `uptime_us`.
    pub fn wall_us(&self, uptime_us: i64) -> i64 {
        uptime_us.saturating_add(self.offset_us)
    }
}

/// Tells the upload task whether the clock is valid (set once this boot synced).
#[derive(Debug, Clone, Default)]
pub struct SyncFlag(Arc<AtomicBool>);

impl SyncFlag {
    /// Whether the clock is valid.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Where the SNTP callback reports a completed sync (wall µs, uptime µs at that
/// moment); the sampling task takes it and calls [`Timebase::synced`].
#[derive(Debug, Clone, Default)]
pub struct SyncSignal(Arc<Mutex<Option<(i64, i64)>>>);

impl SyncSignal {
    /// Reports a sync; a later report replaces one not yet taken.
    pub fn post(&self, wall_us: i64, uptime_us: i64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((wall_us, uptime_us));
    }

    /// The latest report not yet taken.
    pub fn take(&self) -> Option<(i64, i64)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The device's clock state for one boot; see the [module docs](self).
#[derive(Debug)]
pub struct Timebase<T> {
    store: T,
    config: TimebaseConfig,
    record: TimeRecord,
    boot: u32,
    anchor_us: i64,
    /// This boot's first sync offset (used to re-stamp held rows).
    first_offset_us: Option<i64>,
    /// The latest sync offset (used to stamp new rows).
    offset_us: Option<i64>,
    saved_at_uptime_us: i64,
    flag: SyncFlag,
    last_error: Option<String>,
}

impl<T: TimeStore> Timebase<T> {
    /// Starts a boot: loads the record, takes the next boot number and saves it. Store
    /// errors are logged and kept in [`Timebase::last_error`], never fatal: rows are
    /// recorded whatever the store does.
    pub fn start(mut store: T, config: TimebaseConfig) -> Self {
        let mut last_error = None;
        let mut newest: Option<TimeRecord> = None;
        for key in SLOT_KEYS {
            match store.load(key) {
                Ok(Some(bytes)) => match TimeRecord::from_bytes(&bytes) {
                    Some(r) if newest.as_ref().is_none_or(|n| r.generation > n.generation) => {
                        newest = Some(r)
                    }
                    Some(_) => {}
                    None => log::warn!("time record {key} is damaged; using the other slot"),
                },
                Ok(None) => {}
                Err(e) => {
                    log::warn!("time record {key}: {e}");
                    last_error = Some(e);
                }
            }
        }
        let previous = newest.unwrap_or(TimeRecord {
            generation: 0,
            boot: 0,
            floor_us: config.fallback_floor_us,
            syncs: Vec::new(),
        });
        let anchor_us = previous.floor_us.max(config.fallback_floor_us);
        let boot = previous.boot.wrapping_add(1);
        let mut timebase = Self {
            store,
            config,
            record: TimeRecord {
                boot,
                floor_us: anchor_us,
                ..previous
            },
            boot,
            anchor_us,
            first_offset_us: None,
            offset_us: None,
            saved_at_uptime_us: 0,
            flag: SyncFlag::default(),
            last_error,
        };
        timebase.save();
        timebase
    }

    fn save(&mut self) {
        self.record.generation += 1;
        let key = SLOT_KEYS[(self.record.generation % 2) as usize];
        match self.store.save(key, &self.record.to_bytes()) {
            Ok(()) => self.last_error = None,
            Err(e) => {
                log::warn!("cannot save the time record: {e}");
                self.last_error = Some(e);
            }
        }
    }

    /// This boot's number (1 on the first boot ever).
    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// The last good time saved before this boot (µs): its held rows' estimate base.
    pub fn anchor_us(&self) -> i64 {
        self.anchor_us
    }

    /// Whether the clock is valid (this boot synced).
    pub fn is_synced(&self) -> bool {
        self.offset_us.is_some()
    }

    /// A handle the upload task checks before signing anything.
    pub fn sync_flag(&self) -> SyncFlag {
        self.flag.clone()
    }

    /// The last store error, if the last attempt failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The saved record as of now.
    pub fn record(&self) -> &TimeRecord {
        &self.record
    }

    /// The clock was set (SNTP): at uptime `uptime_us` it was `wall_us`. The first sync
    /// of the boot fixes the offset used to re-stamp its held rows (saved at once);
    /// later ones only correct new stamps.
    pub fn synced(&mut self, wall_us: i64, uptime_us: i64) {
        let offset = wall_us.saturating_sub(uptime_us);
        self.offset_us = Some(offset);
        self.flag.set();
        if self.first_offset_us.is_none() {
            self.first_offset_us = Some(offset);
            self.record.syncs.retain(|s| s.boot != self.boot);
            self.record.syncs.insert(
                0,
                SyncPoint {
                    boot: self.boot,
                    offset_us: offset,
                },
            );
            self.record.syncs.truncate(MAX_SYNC_POINTS);
            log::info!(
                "clock valid (boot {}): held rows will be re-stamped with offset {offset} us",
                self.boot
            );
        }
        // Trust the synced clock, even if it is behind an earlier (wrong) floor.
        self.record.floor_us = wall_us;
        self.saved_at_uptime_us = uptime_us;
        self.save();
    }

    /// How to stamp a row taken now, at `uptime_us`.
    pub fn stamp(&self, uptime_us: i64) -> Stamp {
        match self.offset_us {
            Some(offset) => Stamp::Wall(uptime_us.saturating_add(offset)),
            None => Stamp::Boot(uptime_us),
        }
    }

    /// Saves the floor if [`TimebaseConfig::save_every`] passed since the last save:
    /// the synced wall time, or anchor + uptime while unsynced. Call it periodically.
    pub fn tick(&mut self, uptime_us: i64) {
        let every = self.config.save_every.as_micros() as i64;
        if uptime_us.saturating_sub(self.saved_at_uptime_us) < every {
            return;
        }
        let now = match self.stamp(uptime_us) {
            Stamp::Wall(wall) => wall,
            Stamp::Boot(uptime) => self.anchor_us.saturating_add(uptime),
        };
        self.saved_at_uptime_us = uptime_us;
        if now > self.record.floor_us || self.is_synced() {
            self.record.floor_us = now;
            self.save();
        }
    }

    /// How the rows this boot held become wall time: exact, with the offset of its
    /// first sync; `None` while it has not synced (keep holding).
    pub fn this_boot(&self) -> Option<Mapping> {
        self.first_offset_us.map(|offset_us| Mapping {
            offset_us,
            estimated: false,
        })
    }

    /// How rows held by an earlier boot `boot`, whose anchor was `anchor_us`, become
    /// wall time: exact if the record remembers that boot's first sync, else an
    /// estimate from its anchor. Every held file found at start is from an earlier
    /// boot, whatever its number says (a torn record write can repeat a number).
    pub fn earlier_boot(&self, boot: u32, anchor_us: i64) -> Mapping {
        match self.record.syncs.iter().find(|s| s.boot == boot) {
            Some(sync) if boot != self.boot || self.first_offset_us.is_none() => Mapping {
                offset_us: sync.offset_us,
                estimated: false,
            },
            _ => Mapping {
                offset_us: anchor_us,
                estimated: true,
            },
        }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wall(us) => write!(f, "wall {us} us"),
            Self::Boot(us) => write!(f, "uptime {us} us"),
        }
    }
}
