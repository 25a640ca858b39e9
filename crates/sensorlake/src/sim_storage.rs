//! A [`Storage`] that simulates power loss, like SQLite's crash-test VFS: it keeps
//! what was written but not synced, and which directory entries changed since their
//! directory was last synced, and when the power fails it drops or tears them.
//!
//! Only for tests (cargo feature `sim`); the firmware never links it.
//!
//! The model, deliberately harsher than real file systems:
//! - a file's content is durable only up to its last [`Storage::sync_file`]; after a
//!   power loss, unsynced content is dropped, kept, or torn (each 512-byte sector
//!   independently old or new, at a length between the old and the new one);
//! - each name created, renamed or removed in a directory since its last
//!   [`Storage::sync_dir`] independently survives or not — so a rename across
//!   directories may leave the file under both names or under neither;
//! - the operation during which the power fails may or may not take effect, and every
//!   later operation fails until [`SimStorage::reboot`];
//! - directories are durable once created.
//!
//! It can also inject I/O errors: a capacity limit (writes past it fail with
//! `StorageFull`, like ENOSPC, after writing what fits) and one-shot errors by
//! operation and path prefix. `rename` onto an existing name fails like on FAT unless
//! [`SimStorage::set_rename_replaces`] is on.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::backoff::Rng;
use crate::storage::{DirEntry, Storage};

const SECTOR: usize = 512;

/// The storage operations, for error injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOp {
    /// [`Storage::create_dir_all`].
    CreateDir,
    /// [`Storage::write`].
    Write,
    /// [`Storage::append`].
    Append,
    /// [`Storage::sync_file`].
    SyncFile,
    /// [`Storage::sync_dir`].
    SyncDir,
    /// [`Storage::rename`].
    Rename,
    /// [`Storage::remove`].
    Remove,
    /// [`Storage::list`].
    List,
    /// [`Storage::read`].
    Read,
}

#[derive(Debug, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    modified: u64,
}

#[derive(Debug, Clone, Default)]
struct Dir {
    entries: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
struct Injected {
    op: SimOp,
    prefix: String,
    kind: io::ErrorKind,
}

/// What the simulated power losses did, summed over all reboots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Power losses.
    pub crashes: u64,
    /// Files whose unsynced content was dropped.
    pub dropped_writes: u64,
    /// Files whose unsynced content was torn.
    pub torn_writes: u64,
    /// Files whose unsynced content survived whole.
    pub kept_writes: u64,
    /// Directory entries reverted to their last synced state.
    pub reverted_entries: u64,
    /// Unsynced directory entries that survived.
    pub kept_entries: u64,
    /// Errors injected (capacity or one-shot).
    pub injected_errors: u64,
}

#[derive(Debug)]
struct Sim {
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    dirs: BTreeMap<String, Dir>,
    rng: Rng,
    ops: u64,
    crash_at: Option<u64>,
    powered: bool,
    capacity: Option<u64>,
    injected: Vec<Injected>,
    rename_replaces: bool,
    stats: SimStats,
}

/// A crash-simulating in-memory [`Storage`]; clones share the same files.
#[derive(Debug, Clone)]
pub struct SimStorage {
    sim: Arc<Mutex<Sim>>,
}

fn split(path: &str) -> (String, String) {
    let path = path.trim_matches('/');
    match path.rfind('/') {
        Some(i) => (path[..i].to_string(), path[i + 1..].to_string()),
        None => (String::new(), path.to_string()),
    }
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss: the device is off")
}

impl Sim {
    fn used_bytes(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }

    fn lookup(&self, path: &str) -> Option<u64> {
        let (dir, name) = split(path);
        self.dirs.get(&dir)?.entries.get(&name).copied()
    }

    /// Counts the operation; fails it if the power is off, is failing now, or an error
    /// was injected. Returns whether the power fails during this operation.
    fn begin(&mut self, op: SimOp, path: &str) -> io::Result<bool> {
        if !self.powered {
            return Err(power_lost());
        }
        self.ops += 1;
        if let Some(i) = self
            .injected
            .iter()
            .position(|e| e.op == op && path.starts_with(&e.prefix))
        {
            let e = self.injected.remove(i);
            self.stats.injected_errors += 1;
            return Err(io::Error::new(
                e.kind,
                format!("injected {:?} error on {op:?} {path}", e.kind),
            ));
        }
        Ok(self.crash_at.is_some_and(|at| self.ops >= at))
    }

    /// Ends an operation during which the power failed.
    fn fail_power(&mut self) -> io::Error {
        self.powered = false;
        self.crash_at = None;
        power_lost()
    }

    fn create_dir_all(&mut self, dir: &str) {
        let dir = dir.trim_matches('/');
        let mut prefix = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.dirs.entry(prefix.clone()).or_default();
        }
    }

    fn write(&mut self, path: &str, data: &[u8], append: bool) -> io::Result<()> {
        let (dir, name) = split(path);
        if !self.dirs.contains_key(&dir) {
            return Err(not_found(path));
        }
        let existing = self.lookup(path);
        let old_len = existing.map_or(0, |i| self.inodes[&i].data.len() as u64);
        let base = if append { old_len } else { 0 };
        let others = self.used_bytes() - old_len;
        let (fits, full) = match self.capacity {
            Some(cap) if others + base + data.len() as u64 > cap => {
                (cap.saturating_sub(others + base) as usize, true)
            }
            _ => (data.len(), false),
        };
        let now = self.ops;
        let inode = match existing {
            Some(i) => i,
            None => {
                let i = self.next_inode;
                self.next_inode += 1;
                self.inodes.insert(
                    i,
                    Inode {
                        data: Vec::new(),
                        durable: Vec::new(),
                        modified: now,
                    },
                );
                self.dirs
                    .get_mut(&dir)
                    .expect("checked above")
                    .entries
                    .insert(name, i);
                i
            }
        };
        let file = self
            .inodes
            .get_mut(&inode)
            .expect("entries point to inodes");
        if !append {
            file.data.clear();
        }
        file.data.extend_from_slice(&data[..fits]);
        file.modified = now;
        if full {
            self.stats.injected_errors += 1;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("{path}: no space left on device (simulated)"),
            ));
        }
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let inode = self.lookup(from).ok_or_else(|| not_found(from))?;
        let (to_dir, to_name) = split(to);
        if !self.dirs.contains_key(&to_dir) {
            return Err(not_found(to));
        }
        if self.lookup(to).is_some() && !self.rename_replaces {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("cannot rename {from} to {to}: the target exists (FAT semantics)"),
            ));
        }
        let (from_dir, from_name) = split(from);
        self.dirs
            .get_mut(&from_dir)
            .expect("looked up")
            .entries
            .remove(&from_name);
        self.dirs
            .get_mut(&to_dir)
            .expect("checked")
            .entries
            .insert(to_name, inode);
        self.collect_garbage();
        Ok(())
    }

    fn remove(&mut self, path: &str) -> io::Result<()> {
        let (dir, name) = split(path);
        self.dirs
            .get_mut(&dir)
            .and_then(|d| d.entries.remove(&name))
            .ok_or_else(|| not_found(path))?;
        self.collect_garbage();
        Ok(())
    }

    /// Forgets inodes no name (current or durable) refers to.
    fn collect_garbage(&mut self) {
        let live: std::collections::HashSet<u64> = self
            .dirs
            .values()
            .flat_map(|d| d.entries.values().chain(d.durable.values()))
            .copied()
            .collect();
        self.inodes.retain(|i, _| live.contains(i));
    }

    fn apply(&mut self, op: SimOp, path: &str, to: &str, data: &[u8]) -> io::Result<Vec<u8>> {
        match op {
            SimOp::CreateDir => {
                self.create_dir_all(path);
                Ok(Vec::new())
            }
            SimOp::Write => self.write(path, data, false).map(|_| Vec::new()),
            SimOp::Append => self.write(path, data, true).map(|_| Vec::new()),
            SimOp::SyncFile => {
                let inode = self.lookup(path).ok_or_else(|| not_found(path))?;
                let file = self
                    .inodes
                    .get_mut(&inode)
                    .expect("entries point to inodes");
                file.durable = file.data.clone();
                Ok(Vec::new())
            }
            SimOp::SyncDir => {
                let dir = self
                    .dirs
                    .get_mut(path.trim_matches('/'))
                    .ok_or_else(|| not_found(path))?;
                dir.durable = dir.entries.clone();
                self.collect_garbage();
                Ok(Vec::new())
            }
            SimOp::Rename => self.rename(path, to).map(|_| Vec::new()),
            SimOp::Remove => self.remove(path).map(|_| Vec::new()),
            SimOp::List | SimOp::Read => unreachable!("read-only operations are not applied"),
        }
    }

    fn op(&mut self, op: SimOp, path: &str, to: &str, data: &[u8]) -> io::Result<()> {
        let crashing = self.begin(op, path)?;
        if crashing {
            // The operation during which the power fails may or may not take effect.
            if self.rng.below(2) == 0 {
                let _ = self.apply(op, path, to, data);
            }
            return Err(self.fail_power());
        }
        self.apply(op, path, to, data).map(|_| ())
    }

    fn tear(&mut self, old: &[u8], new: &[u8]) -> Vec<u8> {
        let (lo, hi) = (old.len().min(new.len()), old.len().max(new.len()));
        let len = match self.rng.below(3) {
            0 => old.len(),
            1 => new.len(),
            _ => lo + self.rng.below((hi - lo + 1) as u64) as usize,
        };
        let mut out = vec![0u8; len];
        for start in (0..len).step_by(SECTOR) {
            let end = (start + SECTOR).min(len);
            let source = if self.rng.below(2) == 0 { new } else { old };
            for (i, byte) in out[start..end].iter_mut().enumerate() {
                *byte = source.get(start + i).copied().unwrap_or(0);
            }
        }
        out
    }

    fn reboot(&mut self) {
        self.stats.crashes += 1;
        for dir in self.dirs.values_mut() {
            let names: Vec<String> = dir
                .entries
                .keys()
                .chain(dir.durable.keys())
                .cloned()
                .collect();
            for name in names {
                let (now, then) = (
                    dir.entries.get(&name).copied(),
                    dir.durable.get(&name).copied(),
                );
                if now == then {
                    continue;
                }
                let keep_new = self.rng.below(2) == 0;
                let survivor = if keep_new { now } else { then };
                if keep_new {
                    self.stats.kept_entries += 1;
                } else {
                    self.stats.reverted_entries += 1;
                }
                match survivor {
                    Some(i) => {
                        dir.entries.insert(name.clone(), i);
                        dir.durable.insert(name, i);
                    }
                    None => {
                        dir.entries.remove(&name);
                        dir.durable.remove(&name);
                    }
                }
            }
        }
        self.collect_garbage();
        let mut ids: Vec<u64> = self.inodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let (data, durable) = {
                let f = &self.inodes[&id];
                if f.data == f.durable {
                    continue;
                }
                (f.data.clone(), f.durable.clone())
            };
            let after = match self.rng.below(20) {
                0..=6 => {
                    self.stats.dropped_writes += 1;
                    durable
                }
                7..=9 => {
                    self.stats.kept_writes += 1;
                    data
                }
                _ => {
                    self.stats.torn_writes += 1;
                    self.tear(&durable, &data)
                }
            };
            let f = self.inodes.get_mut(&id).expect("listed");
            f.data = after.clone();
            f.durable = after;
        }
        self.ops = 0;
        self.crash_at = None;
        self.powered = true;
    }
}

impl SimStorage {
    /// An empty storage whose power losses are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(String::new(), Dir::default());
        Self {
            sim: Arc::new(Mutex::new(Sim {
                inodes: HashMap::new(),
                next_inode: 1,
                dirs,
                rng: Rng::new(seed),
                ops: 0,
                crash_at: None,
                powered: true,
                capacity: None,
                injected: Vec::new(),
                rename_replaces: false,
                stats: SimStats::default(),
            })),
        }
    }

    fn sim(&self) -> MutexGuard<'_, Sim> {
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The power fails during the `n`-th operation from now (1 = the next one).
    pub fn crash_after(&self, n: u64) {
        let mut sim = self.sim();
        let at = sim.ops + n.max(1);
        sim.crash_at = Some(at);
    }

    /// The power fails now, between two operations.
    pub fn cut_power(&self) {
        let mut sim = self.sim();
        sim.powered = false;
        sim.crash_at = None;
    }

    /// Whether the power is on (no simulated crash since the last reboot).
    pub fn is_powered(&self) -> bool {
        self.sim().powered
    }

    /// Applies a power loss to what was not durable (drop or tear), then powers on.
    /// Also works while the power is on: it then cuts it first.
    pub fn reboot(&self) {
        self.sim().reboot();
    }

    /// Limits the total size of all files (`None`: unlimited).
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.sim().capacity = bytes;
    }

    /// Makes the next `op` on a path starting with `prefix` fail with `kind`.
    pub fn inject_error(&self, op: SimOp, prefix: &str, kind: io::ErrorKind) {
        self.sim().injected.push(Injected {
            op,
            prefix: prefix.to_string(),
            kind,
        });
    }

    /// Lets `rename` replace an existing file (POSIX) instead of failing (FAT, default).
    pub fn set_rename_replaces(&self, replaces: bool) {
        self.sim().rename_replaces = replaces;
    }

    /// What the power losses did so far.
    pub fn stats(&self) -> SimStats {
        self.sim().stats
    }

    /// Operations since the last reboot.
    pub fn ops(&self) -> u64 {
        self.sim().ops
    }

    /// Total bytes in all files.
    pub fn used_bytes(&self) -> u64 {
        self.sim().used_bytes()
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        self.sim().op(SimOp::CreateDir, dir, "", &[])
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.sim().op(SimOp::Write, path, "", data)
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.sim().op(SimOp::Append, path, "", data)
    }

    fn sync_file(&self, path: &str) -> io::Result<()> {
        self.sim().op(SimOp::SyncFile, path, "", &[])
    }

    fn sync_dir(&self, dir: &str) -> io::Result<()> {
        self.sim().op(SimOp::SyncDir, dir, "", &[])
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.sim().op(SimOp::Rename, from, to, &[])
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.sim().op(SimOp::Remove, path, "", &[])
    }

    fn list(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
        let mut sim = self.sim();
        if sim.begin(SimOp::List, dir)? {
            return Err(sim.fail_power());
        }
        let d = sim
            .dirs
            .get(dir.trim_matches('/'))
            .ok_or_else(|| not_found(dir))?;
        Ok(d.entries
            .iter()
            .map(|(name, i)| {
                let f = &sim.inodes[i];
                DirEntry {
                    name: name.clone(),
                    size: f.data.len() as u64,
                    modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(f.modified)),
                }
            })
            .collect())
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let mut sim = self.sim();
        if sim.begin(SimOp::Read, path)? {
            return Err(sim.fail_power());
        }
        let inode = sim.lookup(path).ok_or_else(|| not_found(path))?;
        Ok(sim.inodes[&inode].data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &SimStorage, dir: &str) -> Vec<String> {
        s.list(dir).unwrap().into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn synced_data_and_entries_survive_every_power_loss() {
        for seed in 0..50 {
            let s = SimStorage::new(seed);
            s.create_dir_all("d").unwrap();
            s.write("d/a", &[7u8; 2000]).unwrap();
            s.sync_file("d/a").unwrap();
            s.sync_dir("d").unwrap();
            s.append("d/a", &[8u8; 700]).unwrap();
            s.write("d/b", b"unsynced").unwrap();
            s.reboot();
            let a = s.read("d/a").unwrap();
            assert!(
                a.len() >= 2000 && a.len() <= 2700,
                "seed {seed}: {}",
                a.len()
            );
            assert!(a[..2000].iter().all(|&b| b == 7), "seed {seed}");
        }
    }

    #[test]
    fn unsynced_changes_are_dropped_kept_or_torn() {
        let (mut dropped, mut kept, mut torn, mut both, mut neither) = (0, 0, 0, 0, 0);
        for seed in 0..200 {
            let s = SimStorage::new(seed);
            s.create_dir_all("tmp").unwrap();
            s.create_dir_all("ready").unwrap();
            s.write("tmp/f", &[1u8; 4096]).unwrap();
            s.sync_file("tmp/f").unwrap();
            s.sync_dir("tmp").unwrap();
            s.write("tmp/f", &[2u8; 4096]).unwrap();
            s.rename("tmp/f", "ready/f").unwrap();
            s.reboot();
            let in_tmp = names(&s, "tmp").contains(&"f".to_string());
            let in_ready = names(&s, "ready").contains(&"f".to_string());
            both += usize::from(in_tmp && in_ready);
            neither += usize::from(!in_tmp && !in_ready);
            let path = if in_ready { "ready/f" } else { "tmp/f" };
            if let Ok(data) = s.read(path) {
                match (data.iter().all(|&b| b == 1), data.iter().all(|&b| b == 2)) {
                    (true, _) if data.len() == 4096 => dropped += 1,
                    (_, true) if data.len() == 4096 => kept += 1,
                    _ => torn += 1,
                }
            }
        }
        assert!(
            dropped > 0 && kept > 0 && torn > 0,
            "{dropped} {kept} {torn}"
        );
        assert!(both > 0 && neither > 0, "{both} {neither}");
    }

    #[test]
    fn a_crash_point_stops_every_later_operation() {
        let s = SimStorage::new(1);
        s.create_dir_all("d").unwrap();
        s.crash_after(2);
        s.write("d/a", b"1").unwrap();
        assert!(s.write("d/b", b"2").is_err());
        assert!(!s.is_powered());
        assert!(s.read("d/a").is_err());
        s.reboot();
        assert!(s.is_powered());
        s.list("d").unwrap();
    }

    #[test]
    fn injects_full_disk_and_one_shot_errors() {
        let s = SimStorage::new(1);
        s.create_dir_all("d").unwrap();
        s.set_capacity(Some(100));
        s.write("d/a", &[0; 60]).unwrap();
        let e = s.write("d/b", &[0; 60]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(s.read("d/b").unwrap().len(), 40, "writes what fits");
        s.set_capacity(None);
        s.inject_error(SimOp::Rename, "d/", io::ErrorKind::PermissionDenied);
        let e = s.rename("d/a", "d/c").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        s.rename("d/a", "d/c").unwrap();
    }

    #[test]
    fn rename_onto_an_existing_name_fails_like_fat() {
        let s = SimStorage::new(1);
        s.create_dir_all("d").unwrap();
        s.write("d/a", b"a").unwrap();
        s.write("d/b", b"b").unwrap();
        let e = s.rename("d/a", "d/b").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        s.set_rename_replaces(true);
        s.rename("d/a", "d/b").unwrap();
        assert_eq!(s.read("d/b").unwrap(), b"a");
    }
}
