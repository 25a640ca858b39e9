//! Signed S3 reads for the host tools (ListObjectsV2 and GetObject) through the same
//! `embedded_svc` connection the uploader uses — the demo verifies uploads through the
//! S3 API, never by peeking into the server's directory.

use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use embedded_svc::http::Method;
use embedded_svc::http::client::Connection;
use rusty_s3::S3Action;
use rusty_s3::actions::ListObjectsV2;
use sensorlake::body::{Beyond, read_limited};
use sensorlake::presign::Signer;

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, quotes removed.
    pub etag: Option<String>,
}

/// The largest body [`http_get`] reads (objects and listing pages are far smaller).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// GETs `url` and returns the status and the body (at most [`MAX_BODY`] bytes).
pub fn http_get<C: Connection>(conn: &mut C, url: &str) -> Result<(u16, Vec<u8>)>
where
    C::Error: std::fmt::Debug,
{
    conn.initiate_request(Method::Get, url, &[])
        .map_err(|e| anyhow::anyhow!("GET {}: {e:?}", redact(url)))?;
    conn.initiate_response()
        .map_err(|e| anyhow::anyhow!("GET {}: {e:?}", redact(url)))?;
    let status = conn.status();
    let body = read_limited(conn, MAX_BODY, Beyond::Stop)
        .map_err(|e| anyhow::anyhow!("GET {}: reading body: {e:?}", redact(url)))?;
    if body.truncated {
        bail!(
            "GET {}: the body is larger than {MAX_BODY} bytes",
            redact(url)
        );
    }
    Ok((status, body.bytes))
}

/// The URL without its query string (which carries the signature).
pub fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn error_text(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let code = sensorlake::upload::xml_element(&text, "Code").unwrap_or_default();
    let message = sensorlake::upload::xml_element(&text, "Message").unwrap_or_default();
    format!("HTTP {status} {code}: {message}")
}

/// Lists every object under `prefix` (all pages), signing each request as of `now()`.
pub fn list_objects<C: Connection>(
    conn: &mut C,
    signer: &Signer,
    prefix: &str,
    now: impl Fn() -> SystemTime,
) -> Result<Vec<ListedObject>>
where
    C::Error: std::fmt::Debug,
{
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut action = ListObjectsV2::new(signer.bucket(), Some(signer.rusty_credentials()));
        if !prefix.is_empty() {
            action.with_prefix(prefix);
        }
        if let Some(token) = &token {
            action.with_continuation_token(token.as_str());
        }
        let time = jiff::Timestamp::try_from(now()).context("clock before 1970")?;
        let url = action.sign_with_time(signer.expiry(), &time);
        let (status, body) = http_get(conn, url.as_str())?;
        if status != 200 {
            bail!("ListObjectsV2: {}", error_text(status, &body));
        }
        let text = String::from_utf8(body).context("ListObjectsV2 answer is not UTF-8")?;
        let page = ListObjectsV2::parse_response(&text)
            .map_err(|e| anyhow::anyhow!("ListObjectsV2 answer is not valid: {e}"))?;
        objects.extend(page.contents.into_iter().map(|c| ListedObject {
            key: c.key,
            size: c.size.unwrap_or(0),
            etag: c.etag.map(|e| e.trim_matches('"').to_string()),
        }));
        match page.next_continuation_token {
            Some(next) => token = Some(next),
            None => return Ok(objects),
        }
    }
}

/// GETs one object's bytes with a signed URL.
pub fn get_object<C: Connection>(
    conn: &mut C,
    signer: &Signer,
    key: &str,
    at: SystemTime,
) -> Result<Vec<u8>>
where
    C::Error: std::fmt::Debug,
{
    let url = signer.presign_get(key, at)?;
    let (status, body) = http_get(conn, &url)?;
    if status != 200 {
        bail!("GetObject {key}: {}", error_text(status, &body));
    }
    Ok(body)
}
