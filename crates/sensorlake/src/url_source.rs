//! Where presigned PUT URLs come from: local signing with credentials the device holds,
//! or a remote presign broker that holds the keys and signs only the device's prefix.
//!
//! The uploader asks a [`UrlSource`] for the URLs of the files it is about to send and
//! acts on the error kind: [`UrlError::Unauthorized`] pauses uploads, a
//! [`UrlError::Refused`] file is quarantined, [`UrlError::Unavailable`] is retried.

use std::fmt;
use std::time::SystemTime;

use embedded_svc::http::client::Connection;

use crate::presign::{PresignError, PresignedPut, PutRequest, Signer};

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
}

fn refused(index: usize, e: PresignError) -> UrlError {
    UrlError::Refused {
        index,
        reason: e.to_string(),
    }
}

/// Signs locally with the credentials in a [`Signer`].
impl UrlSource for Signer {
    fn presign<C: Connection>(
        &mut self,
        _conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, UrlError> {
        requests
            .iter()
            .enumerate()
            .map(|(i, r)| self.presign_put(r, now).map_err(|e| refused(i, e)))
            .collect()
    }
}
