//! The device side of the presign broker: a [`UrlSource`] that asks `sensorlake broker`
//! for URLs over the uploader's own `embedded_svc` connection, so the device holds only
//! its revocable token, never AWS keys.
//!
//! Answers map to the uploader's actions ([`crate::broker_api`] lists them): 401/403 →
//! [`UrlError::Unauthorized`] (pause and report), 422 → [`UrlError::Refused`] (quarantine
//! that file), 429, 5xx, network errors and anything else → [`UrlError::Unavailable`]
//! (retry with backoff). A 413 naming a smaller `max_files` makes the client send fewer
//! files per request from then on.
//!
//! The token is sent only in the `Authorization` header and never logged; `Debug`
//! redacts it.

use std::fmt;
use std::time::{Duration, SystemTime};

use embedded_svc::http::Method;
use embedded_svc::http::client::Connection;

use crate::broker_api::{
    DEFAULT_MAX_FILES, ErrorResponse, FileDeclaration, PRESIGN_PATH, PresignRequest,
    PresignResponse,
};
use crate::presign::{PresignedPut, PutRequest};
use crate::url_source::{UrlError, UrlSource};

/// The largest broker answer read (a URL is about 700 bytes).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The broker's address or the token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerClientError {
    /// Not an `https://` URL (or `http://` to a loopback address) with a host.
    BadUrl(String),
    /// The token is empty, too long, or has characters a header cannot carry.
    BadToken,
}

impl fmt::Display for BrokerClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl(url) => write!(
                f,
                "broker URL {url:?} is not usable: use https://host[:port] (plain http:// only to a loopback address), without query or fragment"
            ),
            Self::BadToken => write!(
                f,
                "device token is not usable: 1-512 visible ASCII characters expected"
            ),
        }
    }
}

impl std::error::Error for BrokerClientError {}

/// Asks a presign broker for URLs. See the module documentation.
#[derive(Clone)]
pub struct BrokerClient {
    presign_url: String,
    authorization: String,
    max_files: usize,
    expires_in: Option<Duration>,
}

impl fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerClient")
            .field("presign_url", &self.presign_url)
            .field("token", &"<redacted>")
            .field("max_files", &self.max_files)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl BrokerClient {
    /// A client of the broker at `base_url` (`https://broker.example:8443`; `http://`
    /// only to a loopback address, as in tests and the demo) that authenticates with the
    /// device's `token`.
    pub fn new(base_url: &str, token: &str) -> Result<Self, BrokerClientError> {
        let bad = || BrokerClientError::BadUrl(base_url.to_string());
        let url = crate::sigv4::Endpoint::parse(base_url).map_err(|_| bad())?;
        let plain_ok = !url.secure && url.is_loopback();
        if !(url.secure || plain_ok) || base_url.contains(['?', '#']) {
            return Err(bad());
        }
        let token_ok =
            (1..=512).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
        if !token_ok {
            return Err(BrokerClientError::BadToken);
        }
        Ok(Self {
            presign_url: format!("{}{PRESIGN_PATH}", base_url.trim_end_matches('/')),
            authorization: format!("Bearer {token}"),
            max_files: DEFAULT_MAX_FILES,
            expires_in: None,
        })
    }

    /// Sends at most `n` files per request (default [`DEFAULT_MAX_FILES`]).
    pub fn with_max_files(mut self, n: usize) -> Self {
        self.max_files = n.max(1);
        self
    }

    /// Asks for URLs that live `expiry` (the broker caps it at its maximum).
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expires_in = Some(expiry);
        self
    }

    /// The most files sent per request now.
    pub fn max_files(&self) -> usize {
        self.max_files
    }

    /// One request for `requests` (at most `max_files`).
    fn request_chunk<C: Connection>(
        &self,
        conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, ChunkError> {
        let mut files = Vec::with_capacity(requests.len());
        for (index, r) in requests.iter().enumerate() {
            match (&r.content_md5, r.content_length) {
                (Some(md5), Some(length)) => files.push(FileDeclaration {
                    key: r.key.clone(),
                    content_length: length,
                    content_md5: md5.clone(),
                }),
                _ => {
                    return Err(ChunkError::Failed(UrlError::Refused {
                        index,
                        reason: "the broker signs only body-bound requests (PutRequest::for_body)"
                            .into(),
                    }));
                }
            }
        }
        let body = serde_json::to_vec(&PresignRequest {
            files,
            expires_in_s: self.expires_in.map(|d| d.as_secs().max(1)),
        })
        .map_err(|e| ChunkError::Failed(UrlError::Unavailable(e.to_string())))?;
        let (status, retry_after, answer) =
            self.exchange(conn, &body).map_err(ChunkError::Failed)?;
        if status == 200 {
            return parse_urls(&answer, requests, now).map_err(ChunkError::Failed);
        }
        let error: Option<ErrorResponse> = serde_json::from_slice(&answer).ok();
        let message = error.as_ref().map_or_else(
            || format!("HTTP {status}"),
            |e| format!("HTTP {status}: {}", e.error),
        );
        Err(match status {
            401 | 403 => ChunkError::Failed(UrlError::Unauthorized(format!("broker: {message}"))),
            422 => {
                let first = error.as_ref().and_then(|e| e.refused.first());
                match first {
                    Some(refused) if refused.index < requests.len() => {
                        ChunkError::Failed(UrlError::Refused {
                            index: refused.index,
                            reason: refused.reason.clone(),
                        })
                    }
                    _ => ChunkError::Failed(UrlError::Unavailable(format!(
                        "broker refused a file without naming it: {message}"
                    ))),
                }
            }
            413 => match error.and_then(|e| e.max_files) {
                Some(max) if max >= 1 && max < requests.len() => ChunkError::TooMany(max),
                _ => ChunkError::Failed(UrlError::Unavailable(format!("broker: {message}"))),
            },
            429 => ChunkError::Failed(UrlError::Unavailable(format!(
                "broker rate limit: retry after {} s",
                error
                    .and_then(|e| e.retry_after_s)
                    .or(retry_after)
                    .unwrap_or(1)
            ))),
            _ => ChunkError::Failed(UrlError::Unavailable(format!("broker: {message}"))),
        })
    }

    /// POSTs `body`; returns status, `Retry-After` seconds and the answer's bytes.
    fn exchange<C: Connection>(
        &self,
        conn: &mut C,
        body: &[u8],
    ) -> Result<(u16, Option<u64>, Vec<u8>), UrlError> {
        let unreachable = |e: C::Error| UrlError::Unavailable(format!("broker unreachable: {e:?}"));
        let length = body.len().to_string();
        let headers = [
            ("authorization", self.authorization.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("content-length", length.as_str()),
        ];
        conn.initiate_request(Method::Post, &self.presign_url, &headers)
            .map_err(unreachable)?;
        conn.write_all(body).map_err(unreachable)?;
        conn.flush().map_err(unreachable)?;
        conn.initiate_response().map_err(unreachable)?;
        let status = conn.status();
        let retry_after = conn
            .header("Retry-After")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let answer = crate::body::read_limited(conn, MAX_RESPONSE_BYTES, crate::body::Beyond::Stop)
            .map_err(unreachable)?;
        if answer.truncated {
            return Err(UrlError::Unavailable(format!(
                "broker answer is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        Ok((status, retry_after, answer.bytes))
    }
}

enum ChunkError {
    /// The broker takes at most this many files per request.
    TooMany(usize),
    Failed(UrlError),
}

/// The URLs of a 200 answer, checked against the request.
fn parse_urls(
    answer: &[u8],
    requests: &[PutRequest],
    now: SystemTime,
) -> Result<Vec<PresignedPut>, UrlError> {
    let response: PresignResponse = serde_json::from_slice(answer)
        .map_err(|e| UrlError::Unavailable(format!("broker answer is not valid: {e}")))?;
    if response.urls.len() != requests.len() {
        return Err(UrlError::Unavailable(format!(
            "broker answered {} URL(s) for {} file(s)",
            response.urls.len(),
            requests.len()
        )));
    }
    response
        .urls
        .into_iter()
        .zip(requests)
        .map(|(issued, request)| {
            if issued.key != request.key {
                return Err(UrlError::Unavailable(format!(
                    "broker answered a URL for {:?} where {:?} was asked",
                    issued.key, request.key
                )));
            }
            if !(issued.url.starts_with("https://") || issued.url.starts_with("http://")) {
                return Err(UrlError::Unavailable(
                    "broker answered a URL that is not http(s)".into(),
                ));
            }
            if let Some(get) = &issued.get_url
                && !(get.starts_with("https://") || get.starts_with("http://"))
            {
                return Err(UrlError::Unavailable(
                    "broker answered a GET URL that is not http(s)".into(),
                ));
            }
            Ok(PresignedPut {
                url: issued.url,
                verify_url: issued.get_url,
                headers: issued.headers.into_iter().collect(),
                // By the device's clock: the broker signed "now" and counts from then.
                expires_at: now + Duration::from_secs(issued.expires_in_s),
            })
        })
        .collect()
}

impl UrlSource for BrokerClient {
    /// The broker signs with its clock, not the device's.
    fn signs_with_own_clock(&self) -> bool {
        true
    }

    fn presign<C: Connection>(
        &mut self,
        conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, UrlError> {
        let mut urls = Vec::with_capacity(requests.len());
        let mut start = 0;
        while start < requests.len() {
            let end = requests.len().min(start + self.max_files);
            match self.request_chunk(conn, &requests[start..end], now) {
                Ok(chunk) => {
                    urls.extend(chunk);
                    start = end;
                }
                Err(ChunkError::TooMany(max)) => {
                    log::info!("the broker takes at most {max} files per request");
                    self.max_files = max;
                }
                Err(ChunkError::Failed(UrlError::Refused { index, reason })) => {
                    return Err(UrlError::Refused {
                        index: start + index,
                        reason,
                    });
                }
                Err(ChunkError::Failed(e)) => return Err(e),
            }
        }
        Ok(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        for ok in [
            "https://broker.example",
            "https://broker.example:8443/",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://localhost:1",
        ] {
            assert!(BrokerClient::new(ok, "tok").is_ok(), "{ok}");
        }
        for bad in [
            "http://broker.example",
            "http://10.0.0.1:80",
            "ftp://broker.example",
            "https://broker.example/?x=1",
            "https://user:pw@broker.example",
            "broker.example",
        ] {
            assert!(
                matches!(
                    BrokerClient::new(bad, "tok"),
                    Err(BrokerClientError::BadUrl(_))
                ),
                "{bad}"
            );
        }
        for bad in ["", "a b", "a\nb", &"x".repeat(513)] {
            assert_eq!(
                BrokerClient::new("https://b.example", bad).unwrap_err(),
                BrokerClientError::BadToken
            );
        }
        let client = BrokerClient::new("https://b.example/", "sl1.gw-1.SECRETEXAMPLE").unwrap();
        assert_eq!(client.presign_url, "https://b.example/v1/presign");
        assert!(!format!("{client:?}").contains("SECRETEXAMPLE"));
    }

    #[test]
    fn answers_are_checked_against_the_request() {
        let requests = [PutRequest::for_body("raw/a.parquet", b"a")];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let good = r#"{"urls":[{"key":"raw/a.parquet","url":"https://s3.example/lake/raw/a.parquet?X-Amz-Signature=00","headers":{"content-length":"1"},"expires_in_s":300}]}"#;
        let urls = parse_urls(good.as_bytes(), &requests, now).unwrap();
        assert_eq!(urls[0].expires_at, now + Duration::from_secs(300));
        assert_eq!(urls[0].header("content-length"), Some("1"));
        let other_key = good.replace("\"key\":\"raw/a.parquet\"", "\"key\":\"raw/b.parquet\"");
        assert!(parse_urls(other_key.as_bytes(), &requests, now).is_err());
        assert!(parse_urls(br#"{"urls":[]}"#, &requests, now).is_err());
        assert!(parse_urls(b"<html>", &requests, now).is_err());
    }
}
