//! The presign broker's HTTP protocol, shared by the broker (`sensorlake broker`, host)
//! and its client ([`crate::broker_client`], device), so both speak exactly one format.
//!
//! `POST /v1/presign` with `Authorization: Bearer <device token>` and a JSON
//! [`PresignRequest`]. The broker answers:
//!
//! | status | body | the device should |
//! |---|---|---|
//! | 200 | [`PresignResponse`]: one URL per file, in order | upload |
//! | 400 | [`ErrorResponse`]: the request is not valid JSON of this form | report (a bug) |
//! | 401 | [`ErrorResponse`]: missing or wrong token | pause uploads and report |
//! | 403 | [`ErrorResponse`]: the device is revoked | pause uploads and report |
//! | 413 | [`ErrorResponse`]: body too large, or more than `max_files` files | send fewer |
//! | 422 | [`ErrorResponse`] with `refused`: a file is refused; no URL for any file | quarantine that file |
//! | 429 | [`ErrorResponse`] with `retry_after_s` (and a `Retry-After` header) | retry later |
//! | 5xx | [`ErrorResponse`] | retry later |
//!
//! `GET /healthz` answers 200 `{"status":"ok"}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Path of the presign endpoint.
pub const PRESIGN_PATH: &str = "/v1/presign";
/// Path of the health check.
pub const HEALTH_PATH: &str = "/healthz";
/// The broker's default limit of files per request (clients send at most this many).
pub const DEFAULT_MAX_FILES: usize = 16;

/// A device asks for upload URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    /// The files to upload.
    pub files: Vec<FileDeclaration>,
    /// Wished URL lifetime in seconds; the broker caps it at its maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u64>,
}

/// One file a device wants to upload: the URL will accept exactly this body at this key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDeclaration {
    /// Object key, exactly as the library renders it for the device.
    pub key: String,
    /// Body length in bytes, signed as `Content-Length`.
    pub content_length: u64,
    /// Base64 MD5 of the body, signed as `Content-MD5`.
    pub content_md5: String,
}

/// The URLs, one per requested file, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignResponse {
    /// One per file.
    pub urls: Vec<IssuedUrl>,
}

/// One presigned PUT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedUrl {
    /// The key it is for (as requested).
    pub key: String,
    /// The URL, signature in the query string.
    pub url: String,
    /// Signed headers the PUT must carry (lowercase names), besides `host`.
    pub headers: BTreeMap<String, String>,
    /// Seconds the URL stays valid from when it was signed.
    pub expires_in_s: u64,
    /// A GET URL for the same key (same expiry), for reading the object back when the
    /// PUT's answer does not prove the bytes were stored. Absent from brokers before
    /// this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_url: Option<String>,
}

/// Why a request got no URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What is wrong, for people.
    pub error: String,
    /// The refused files (422).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedFile>,
    /// The most files one request may name (413).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<usize>,
    /// Seconds until the device may ask again (429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl ErrorResponse {
    /// An error with only a message.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            refused: Vec::new(),
            max_files: None,
            retry_after_s: None,
        }
    }
}

/// A refused file and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedFile {
    /// Index into the request's `files`.
    pub index: usize,
    /// Why, for people (names the part of the key that is wrong).
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_round_trip() {
        let request = PresignRequest {
            files: vec![FileDeclaration {
                key: "raw/k.parquet".into(),
                content_length: 5,
                content_md5: "XUFAKrxLKna5cZ2REBfFkg==".into(),
            }],
            expires_in_s: None,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            text,
            r#"{"files":[{"key":"raw/k.parquet","content_length":5,"content_md5":"XUFAKrxLKna5cZ2REBfFkg=="}]}"#
        );
        assert_eq!(
            serde_json::from_str::<PresignRequest>(&text).unwrap(),
            request
        );
        let extra = r#"{"files":[],"device":"gw-2"}"#;
        assert!(serde_json::from_str::<PresignRequest>(extra).is_err());
    }
}
