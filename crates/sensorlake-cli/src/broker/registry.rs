//! The broker's device registry: which devices may ask for URLs, with which key layout
//! and prefix, and the SHA-256 of each device's token.
//!
//! It is one JSON file, rewritten atomically (temporary file, fsync, rename, directory
//! fsync) under an exclusive lock on `<file>.lock`, so concurrent `add-device` /
//! `revoke-device` commands never lose each other's change and a crash leaves the old or
//! the new file, never half of one. The running broker re-reads it when it changes
//! (another inode after the rename, or another size or modification time), so a
//! revocation takes effect at the device's next request, without a restart. A JSON file
//! rather than SQLite: a registry is small (a row per device), read on every request and
//! written by hand-run commands; a file a person can read and back up, with no C library
//! to build, is enough.
//!
//! Tokens are `sl1.<device id>.<43 characters: 32 random bytes, base64url>`: the id tells
//! the broker whose hash to compare (in constant time), 256 random bits make guessing
//! hopeless, so a plain SHA-256 (no slow password hash) protects the stored value. The
//! token itself is printed once by `add-device` and never stored or logged.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use sensorlake::key::{DeviceId, KeyTemplate, Layout};

use crate::fsutil::write_atomically;

/// The token format's prefix (and version).
const TOKEN_PREFIX: &str = "sl1.";

/// One registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// The device id (`[A-Za-z0-9_-]{1,64}`).
    pub device_id: String,
    /// Its key layout: `hive` or `opensensor`.
    pub layout: String,
    /// Its key prefix (may be empty).
    pub prefix: String,
    /// Lowercase hex SHA-256 of its token.
    pub token_sha256: String,
    /// When the current token was issued (RFC 3339).
    pub created_at: String,
    /// When it was revoked (RFC 3339), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl DeviceRecord {
    /// The template of the keys this device may write.
    pub fn template(&self) -> Result<KeyTemplate> {
        Ok(KeyTemplate::new(
            Layout::parse(&self.layout)?,
            &self.prefix,
        )?)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    version: u32,
    devices: BTreeMap<String, DeviceRecord>,
}

/// The registry file (see the module documentation).
#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// A new random token for `device`.
fn new_token(device: &DeviceId) -> Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    Ok(format!("{TOKEN_PREFIX}{device}.{secret}"))
}

/// The device id a token claims, if it has the token format.
pub fn claimed_device(token: &str) -> Option<DeviceId> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.rsplit_once('.')?;
    if secret.len() != 43 {
        return None;
    }
    DeviceId::new(id).ok()
}

/// Whether `token` hashes to `record`'s stored hash (constant-time comparison).
pub fn token_matches(record: &DeviceRecord, token: &str) -> bool {
    let presented = sha256_hex(token.as_bytes());
    presented
        .as_bytes()
        .ct_eq(record.token_sha256.as_bytes())
        .into()
}

impl Registry {
    /// The registry at `path` (created by the first `add_device`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All devices, by id.
    pub fn load(&self) -> Result<BTreeMap<String, DeviceRecord>> {
        Ok(self.read()?.devices)
    }

    fn read(&self) -> Result<RegistryFile> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryFile {
                    version: 1,
                    devices: BTreeMap::new(),
                });
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        let file: RegistryFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a sensorlake device registry",
                self.path.display()
            )
        })?;
        if file.version != 1 {
            bail!(
                "{}: registry version {} is not supported (expected 1)",
                self.path.display(),
                file.version
            );
        }
        for (id, record) in &file.devices {
            if id != &record.device_id || DeviceId::new(id).is_err() {
                bail!("{}: bad device entry {id:?}", self.path.display());
            }
            record
                .template()
                .with_context(|| format!("{}: device {id}", self.path.display()))?;
        }
        Ok(file)
    }

    /// Reads, changes and atomically rewrites the file under an exclusive lock.
    fn update<T>(&self, change: impl FnOnce(&mut RegistryFile) -> Result<T>) -> Result<T> {
        let lock_path = self.path.with_file_name(format!(
            "{}.lock",
            self.path
                .file_name()
                .context("the registry path has no file name")?
                .to_string_lossy()
        ));
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let mut file = self.read()?;
        let result = change(&mut file)?;
        let mut text = serde_json::to_string_pretty(&file)?;
        text.push('\n');
        write_atomically(&self.path, text.as_bytes())?;
        drop(lock);
        Ok(result)
    }

    /// Registers `device` with `template` and returns its new token (shown once, stored
    /// only as a hash). An existing device is refused unless `rotate` is set, which gives
    /// it a new token (the old one stops working) and lifts a revocation.
    pub fn add_device(
        &self,
        device: &DeviceId,
        template: &KeyTemplate,
        rotate: bool,
    ) -> Result<String> {
        let token = new_token(device)?;
        self.update(|file| {
            if file.devices.contains_key(device.as_str()) && !rotate {
                bail!(
                    "device {device} is already registered; pass --rotate to give it a new token"
                );
            }
            file.devices.insert(
                device.to_string(),
                DeviceRecord {
                    device_id: device.to_string(),
                    layout: template.layout().name().to_string(),
                    prefix: template.prefix().to_string(),
                    token_sha256: sha256_hex(token.as_bytes()),
                    created_at: now_rfc3339(),
                    revoked_at: None,
                },
            );
            Ok(())
        })?;
        Ok(token)
    }

    /// Revokes `device`: its token stops working at its next request.
    pub fn revoke_device(&self, device: &DeviceId) -> Result<()> {
        self.update(|file| {
            let record = file
                .devices
                .get_mut(device.as_str())
                .with_context(|| format!("device {device} is not registered"))?;
            if record.revoked_at.is_none() {
                record.revoked_at = Some(now_rfc3339());
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash_and_revocation_sticks() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path().join("devices.json"));
        let id = DeviceId::new("gw-1").unwrap();
        let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
        let token = registry.add_device(&id, &template, false).unwrap();
        assert_eq!(claimed_device(&token), Some(id.clone()));
        let text = std::fs::read_to_string(registry.path()).unwrap();
        assert!(!text.contains(token.rsplit('.').next().unwrap()), "{text}");
        let record = registry.load().unwrap()["gw-1"].clone();
        assert!(token_matches(&record, &token));
        let other = if token.ends_with('A') { "B" } else { "A" };
        let wrong = format!("{}{other}", &token[..token.len() - 1]);
        assert!(!token_matches(&record, &wrong));
        assert!(registry.add_device(&id, &template, false).is_err());
        registry.revoke_device(&id).unwrap();
        assert!(registry.load().unwrap()["gw-1"].revoked_at.is_some());
        let rotated = registry.add_device(&id, &template, true).unwrap();
        let record = registry.load().unwrap()["gw-1"].clone();
        assert!(record.revoked_at.is_none());
        assert!(token_matches(&record, &rotated) && !token_matches(&record, &token));
        assert!(
            registry
                .revoke_device(&DeviceId::new("nope").unwrap())
                .is_err()
        );
    }

    #[test]
    fn only_well_formed_tokens_claim_a_device() {
        let secret = "A".repeat(43);
        assert!(claimed_device(&format!("sl1.gw-1.{secret}")).is_some());
        for bad in [
            String::new(),
            format!("sl2.gw-1.{secret}"),
            format!("sl1.gw/1.{secret}"),
            format!("sl1.gw-1.{}", &secret[1..]),
            format!("sl1..{secret}"),
        ] {
            assert_eq!(claimed_device(&bad), None, "{bad}");
        }
    }
}
