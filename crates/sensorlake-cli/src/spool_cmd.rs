//! `sensorlake spool list|stats|requeue`: look into a spool directory and move
//! quarantined files back into the queue. `list` and `stats` only read (safe while the
//! agent runs); `requeue` takes the spool's lock, so the agent must be stopped.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Result, bail};
use serde::Serialize;

use sensorlake::spool::{
    STATE, Spool, SpoolConfig, foreign_entries, parse_entry_name, quarantined_files, read_facts,
    ready_files,
};
use sensorlake::storage::{StdStorage, Storage};

use crate::agent::lock_spool;

/// One waiting file.
#[derive(Debug, Clone, Serialize)]
pub struct ListedFile {
    /// File name in `ready/`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Source position recorded with it.
    pub position: Option<u64>,
    /// Rows, from the footer (`None` if unreadable).
    pub rows: Option<u64>,
    /// Object key, from the footer; or why the footer cannot be read.
    pub key: String,
}

/// One quarantined file.
#[derive(Debug, Clone, Serialize)]
pub struct ListedQuarantine {
    /// File name in `quarantine/`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Why it was quarantined.
    pub reason: String,
}

/// An entry of `ready/` that is not a spool file (quarantined at the agent's next start).
#[derive(Debug, Clone, Serialize)]
pub struct ListedForeign {
    /// Name in `ready/`.
    pub name: String,
    /// Why it is not a spool file.
    pub reason: String,
}

/// Everything in a spool directory.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// Files waiting for upload, oldest first.
    pub ready: Vec<ListedFile>,
    /// Quarantined files.
    pub quarantine: Vec<ListedQuarantine>,
    /// Entries of `ready/` that are not spool files: never uploaded, moved to
    /// `quarantine/` when the agent starts.
    pub foreign: Vec<ListedForeign>,
    /// The source position a restarted agent resumes from.
    pub position: Option<u64>,
    /// Age of the oldest waiting file, seconds.
    pub oldest_secs: Option<u64>,
}

fn check_dir(dir: &Path) -> Result<()> {
    if !dir.join("ready").is_dir() {
        bail!(
            "{} is not a spool directory (no ready/ inside)",
            dir.display()
        );
    }
    Ok(())
}

/// Reads a spool directory without changing it.
pub fn list(dir: &Path) -> Result<Listing> {
    check_dir(dir)?;
    let storage = StdStorage::new(dir);
    let ready = ready_files(&storage)?;
    let oldest_secs = ready
        .first()
        .and_then(|e| e.modified)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(|d| d.as_secs());
    let mut position = ready.iter().filter_map(|e| e.position).max();
    let quarantine = quarantined_files(&storage)?;
    for name in quarantine.iter().map(|q| q.name.as_str()).chain(
        storage
            .list(STATE)
            .unwrap_or_default()
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
    ) {
        position = position.max(parse_entry_name(name).and_then(|(_, p)| p));
    }
    let ready = ready
        .into_iter()
        .map(|e| {
            let facts = storage
                .read(&e.path())
                .map_err(|err| err.to_string())
                .and_then(|b| read_facts(&b));
            ListedFile {
                rows: facts.as_ref().ok().map(|f| f.rows),
                key: match facts {
                    Ok(f) => f.object_key,
                    Err(why) => format!("(unreadable: {why})"),
                },
                name: e.name,
                size: e.size,
                position: e.position,
            }
        })
        .collect();
    Ok(Listing {
        ready,
        quarantine: quarantine
            .into_iter()
            .map(|q| ListedQuarantine {
                name: q.name,
                size: q.size,
                reason: q.reason,
            })
            .collect(),
        foreign: foreign_entries(&storage)?
            .into_iter()
            .map(|f| ListedForeign {
                name: f.name,
                reason: f.reason,
            })
            .collect(),
        position,
        oldest_secs,
    })
}

/// The `list` text.
pub fn render_list(listing: &Listing) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ready ({} files, oldest first):", listing.ready.len());
    for f in &listing.ready {
        let rows = f.rows.map_or("?".to_string(), |r| r.to_string());
        let _ = writeln!(
            out,
            "  {}\t{} bytes\t{rows} rows\t{}",
            f.name, f.size, f.key
        );
    }
    let _ = writeln!(out, "quarantine ({} files):", listing.quarantine.len());
    for q in &listing.quarantine {
        let _ = writeln!(out, "  {}\t{} bytes\t{}", q.name, q.size, q.reason);
    }
    if !listing.foreign.is_empty() {
        let _ = writeln!(
            out,
            "not spool files in ready/ ({}; never uploaded, quarantined when the agent starts):",
            listing.foreign.len()
        );
        for f in &listing.foreign {
            let _ = writeln!(out, "  {}\t{}", f.name, f.reason);
        }
    }
    out
}

/// The `stats` text.
pub fn render_stats(listing: &Listing) -> String {
    let bytes: u64 = listing.ready.iter().map(|f| f.size).sum();
    let rows: u64 = listing.ready.iter().filter_map(|f| f.rows).sum();
    let foreign = match listing.foreign.len() {
        0 => String::new(),
        n => format!("; NOT SPOOL FILES in ready/: {n} (see `spool list`)"),
    };
    format!(
        "ready: {} files, {bytes} bytes, {rows} rows; oldest {}; quarantine: {} files; resume position: {}{foreign}\n",
        listing.ready.len(),
        listing
            .oldest_secs
            .map_or("-".to_string(), |s| format!("{s}s ago")),
        listing.quarantine.len(),
        listing.position.map_or("-".to_string(), |p| p.to_string()),
    )
}

/// Moves quarantined files (all, or those named) back into `ready/`.
pub fn requeue(dir: &Path, names: &[String]) -> Result<Vec<(String, String)>> {
    check_dir(dir)?;
    let _lock = lock_spool(dir)?;
    let mut spool = Spool::open(
        StdStorage::new(dir),
        SpoolConfig {
            max_bytes: u64::MAX,
            max_files: usize::MAX,
            ..SpoolConfig::default()
        },
    )?;
    let names: Vec<String> = if names.is_empty() {
        let mut files = Vec::new();
        for q in spool.quarantined()? {
            match q.not_a_file {
                Some(kind) => tracing::warn!(
                    "quarantine/{} is {}, not a spooled file: left in quarantine",
                    q.name,
                    kind.describe()
                ),
                None => files.push(q.name),
            }
        }
        files
    } else {
        names.to_vec()
    };
    let mut moved = Vec::new();
    for name in names {
        for entry in spool.requeue(Some(&name))? {
            moved.push((name.clone(), entry.name));
        }
    }
    Ok(moved)
}
