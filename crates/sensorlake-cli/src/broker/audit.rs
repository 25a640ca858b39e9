//! The broker's audit log: one JSON line per decision — per file for presign requests
//! (issued, refused, withheld), per request for requests refused as a whole (no or bad
//! token, revoked device, rate limit, too large, malformed). Lines carry the time, the
//! remote address, the device, the key and the outcome; never a token or a URL.
//!
//! Lines are appended with one `write` each to a file opened in append mode, so lines
//! from concurrent requests never interleave. The broker writes the lines of an
//! issuance before it answers; if it cannot, it answers 503 and issues nothing.

use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::Serialize;

/// The longest key written to the log (longer ones are cut, with a marker).
const MAX_LOGGED_KEY: usize = 1100;

/// What the broker decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A URL was issued for this file.
    Issued,
    /// This file was refused (reason given).
    Refused,
    /// This file was fine but another in the same request was refused: no URL.
    Withheld,
    /// Missing, malformed or wrong token.
    Unauthorized,
    /// The device is revoked.
    Revoked,
    /// The device asked too often.
    RateLimited,
    /// More files than allowed in one request.
    TooManyFiles,
    /// The request body is larger than allowed.
    BodyTooLarge,
    /// The request body did not arrive within the body timeout.
    BodyTimeout,
    /// The request is not valid JSON of the protocol's form.
    BadRequest,
    /// The broker could not decide (registry unreadable).
    Unavailable,
}

/// One audit line.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339 UTC, microseconds.
    pub time: String,
    /// The client's address.
    pub remote: String,
    /// The device: authenticated, or as claimed by a token that failed (see `authenticated`).
    pub device: Option<String>,
    /// Whether the token was valid.
    pub authenticated: bool,
    /// The object key (cut at 1100 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Declared body length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// Declared body MD5 (base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_md5: Option<String>,
    /// The decision.
    pub outcome: Outcome,
    /// The HTTP status answered.
    pub status: u16,
    /// Why, for refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Lifetime of an issued URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u64>,
}

impl Event {
    /// An event for a whole request (no key).
    pub fn request(
        remote: SocketAddr,
        device: Option<&str>,
        authenticated: bool,
        outcome: Outcome,
        status: u16,
    ) -> Self {
        Self {
            time: jiff::Timestamp::now().to_string(),
            remote: remote.to_string(),
            device: device.map(str::to_string),
            authenticated,
            key: None,
            content_length: None,
            content_md5: None,
            outcome,
            status,
            reason: None,
            expires_in_s: None,
        }
    }

    /// With a reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// With the file it is about.
    pub fn file(mut self, key: &str, content_length: u64, content_md5: &str) -> Self {
        let mut key = key.to_string();
        if key.len() > MAX_LOGGED_KEY {
            let mut cut = MAX_LOGGED_KEY;
            while !key.is_char_boundary(cut) {
                cut -= 1;
            }
            key.truncate(cut);
            key.push_str("…(cut)");
        }
        self.key = Some(key);
        self.content_length = Some(content_length);
        self.content_md5 = Some(content_md5.chars().take(64).collect());
        self
    }
}

/// The append-only JSON-lines file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creates) `path` for appending.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the audit log {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `events`, one line each, in one write.
    pub fn record(&self, events: &[Event]) -> Result<()> {
        let mut text = String::new();
        for event in events {
            text.push_str(&serde_json::to_string(event)?);
            text.push('\n');
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("audit log lock poisoned"))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot append to the audit log {}", self.path.display()))
    }
}
