//! Where presigned PUT URLs come from: local signing with credentials the device holds,
//! or a remote presign broker that holds the keys and signs only the device's prefix.
//!
//! Three implementations: [`Signer`] (long-term keys; hosts, or firmware only with the
//! `insecure-static-keys` feature), [`crate::sts::StsSigner`] (temporary credentials
//! with a session token, refreshed before expiry) and
//! [`crate::broker_client::BrokerClient`] (URLs from `sensorlake broker`).
//!
//! The uploader asks a [`UrlSource`] for the URLs of the files it is about to send and
//! acts on the error kind: [`UrlError::Unauthorized`] pauses uploads, a
//! [`UrlError::Refused`] file is quarantined, [`UrlError::Unavailable`] is retried.

use std::fmt;
use std::time::SystemTime;

use embedded_svc::http::client::Connection;

#[cfg(any(not(target_os = "espidf"), feature = "insecure-static-keys"))]
use crate::presign::Signer;
use crate::presign::{PresignError, PresignedPut, PutRequest};

/// Why URLs could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// The source refuses this device (bad or revoked token, expired credentials):
    /// pause uploads and report; nothing is quarantined.
    Unauthorized(String),
    /// The source refuses one request (e.g. a key outside the device's scope): quarantine
    /// that file with the reason.
    Refused {
        /// Index into the requests.
        index: usize,
        /// What the source said.
        reason: String,
    },
    /// The source cannot be reached or failed for now (network, timeout, 5xx, 429):
    /// retry with backoff.
    Unavailable(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthorized(m) => write!(f, "not authorized to get upload URLs: {m}"),
            Self::Refused { index, reason } => write!(f, "request {index} refused: {reason}"),
            Self::Unavailable(m) => write!(f, "upload URLs unavailable: {m}"),
        }
    }
}

impl std::error::Error for UrlError {}

/// A source of presigned PUT URLs.
pub trait UrlSource {
    /// Presigned PUTs for `requests`, in the same order, valid as of `now` (the
    /// uploader's clock, corrected for skew). `conn` is the uploader's HTTP connection,
    /// for sources that ask a remote broker; local signers ignore it.
    fn presign<C: Connection>(
        &mut self,
        conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, UrlError>;

    /// Whether the URLs are signed elsewhere with another clock (a presign broker): then
    /// the device's clock offset does not change their signing time, and a clock-skew
    /// answer is for the signer's host to fix.
    fn signs_with_own_clock(&self) -> bool {
        false
    }
}

/// Logs, once per process, that this device signs with long-term keys it holds.
pub fn warn_insecure_static_keys() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        log::warn!(
            "INSECURE: this device signs upload URLs with long-term AWS keys stored in its firmware \
             (feature insecure-static-keys). Anyone who takes the device can read them and write to \
             everything they allow until they are rotated. Use the presign broker or temporary \
             credentials (AWS IoT credentials provider) instead."
        );
    });
}

#[cfg_attr(
    all(target_os = "espidf", not(feature = "insecure-static-keys")),
    allow(dead_code)
)]
fn refused(index: usize, e: PresignError) -> UrlError {
    UrlError::Refused {
        index,
        reason: e.to_string(),
    }
}

/// Signs locally with the credentials in a [`Signer`]: on a host agent, long-term keys
/// from the standard AWS credential chain, as aws-cli uses them.
///
/// In firmware (`target_os = "espidf"`) this implementation exists only with the cargo
/// feature `insecure-static-keys`, and the first URL signed logs a loud warning: a
/// stolen device's keys sign for everything they are allowed, until someone rotates
/// them. Devices use [`crate::broker_client::BrokerClient`] or
/// [`crate::sts::StsSigner`] instead.
#[cfg(any(not(target_os = "espidf"), feature = "insecure-static-keys"))]
impl UrlSource for Signer {
    fn presign<C: Connection>(
        &mut self,
        _conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, UrlError> {
        if cfg!(target_os = "espidf") {
            warn_insecure_static_keys();
        }
        requests
            .iter()
            .enumerate()
            .map(|(i, r)| self.presign_put(r, now).map_err(|e| refused(i, e)))
            .collect()
    }
}

/// The URL source a configuration chose: the agent's and the firmware's settings pick
/// one of the three, and the uploader takes this one type.
#[derive(Debug)]
pub enum AnyUrlSource {
    /// URLs from a presign broker; the device holds only its token.
    Broker(crate::broker_client::BrokerClient),
    /// Local signing with temporary credentials from the AWS IoT credentials provider.
    IotCredentials(crate::sts::StsSigner<crate::sts::IotCredentialsProvider>),
    /// Local signing with long-term keys: host agents (standard AWS credential chain);
    /// in firmware only with the `insecure-static-keys` feature.
    #[cfg(any(not(target_os = "espidf"), feature = "insecure-static-keys"))]
    LongTermKeys(Signer),
}

impl UrlSource for AnyUrlSource {
    fn presign<C: Connection>(
        &mut self,
        conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, UrlError> {
        match self {
            Self::Broker(source) => source.presign(conn, requests, now),
            Self::IotCredentials(source) => source.presign(conn, requests, now),
            #[cfg(any(not(target_os = "espidf"), feature = "insecure-static-keys"))]
            Self::LongTermKeys(source) => source.presign(conn, requests, now),
        }
    }

    fn signs_with_own_clock(&self) -> bool {
        matches!(self, Self::Broker(_))
    }
}
