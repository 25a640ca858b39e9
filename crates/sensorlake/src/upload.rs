//! PUT a file to a presigned URL through any `embedded_svc` HTTP [`Connection`] —
//! ESP-IDF's `EspHttpConnection` on the device, a host adapter elsewhere — and classify
//! what the server answered.

use std::fmt;
use std::time::SystemTime;

use embedded_svc::http::Method;
use embedded_svc::http::client::Connection;

use crate::presign::PresignedPut;

/// The most of an error response body kept (S3 error documents are small).
const MAX_ERROR_BODY: usize = 4096;

/// What the server answered to a PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResponse {
    /// HTTP status.
    pub status: u16,
    /// `ETag` header, quotes removed.
    pub etag: Option<String>,
    /// `Date` header (the server's clock, for skew correction).
    pub date: Option<String>,
    /// S3 error `Code` from the XML body, for non-2xx answers.
    pub code: Option<String>,
    /// S3 error `Message` from the XML body.
    pub message: Option<String>,
    /// The bucket's region, where the server said it (`x-amz-bucket-region`, or the
    /// error's `<Region>`), for redirects and wrong-region answers.
    pub region: Option<String>,
    /// Where to send requests instead (the error's `<Endpoint>`, or `Location`), for
    /// redirects.
    pub endpoint: Option<String>,
}

impl fmt::Display for PutResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(region) = &self.region {
            write!(f, " (bucket region {region})")?;
        }
        if let Some(endpoint) = &self.endpoint {
            write!(f, " (endpoint {endpoint})")?;
        }
        Ok(())
    }
}

/// The transport failed before a complete answer arrived (connect, TLS, timeout, reset).
#[derive(Debug)]
pub struct TransportError<E>(pub E);

impl<E: fmt::Debug> fmt::Display for TransportError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP transport error: {:?}", self.0)
    }
}

impl<E: fmt::Debug> std::error::Error for TransportError<E> {}

/// Sends `body` with the signed headers of `put` (plus `Content-Length`, never chunked)
/// and reads the answer. Only transport failures are errors; any HTTP status is a
/// [`PutResponse`] for [`classify`].
pub fn put_presigned<C: Connection>(
    conn: &mut C,
    put: &PresignedPut,
    body: &[u8],
) -> Result<PutResponse, TransportError<C::Error>> {
    let length = body.len().to_string();
    let mut headers: Vec<(&str, &str)> = put
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    headers.push(("content-length", &length));
    headers.push(("content-type", "application/vnd.apache.parquet"));
    conn.initiate_request(Method::Put, &put.url, &headers)
        .map_err(TransportError)?;
    conn.write_all(body).map_err(TransportError)?;
    conn.flush().map_err(TransportError)?;
    conn.initiate_response().map_err(TransportError)?;
    read_response(conn).map_err(TransportError)
}

/// What reading an object back found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// The object is exactly the expected bytes.
    Same,
    /// The object has other bytes; says how it differs.
    Differs(String),
    /// The GET was answered with a non-2xx status.
    Failed(PutResponse),
}

/// GETs `url` and compares the object with `expected` as it streams in, without holding
/// a copy. Reads at most `expected.len()` + 64 KiB: a longer object is reported as
/// different.
pub fn read_back<C: Connection>(
    conn: &mut C,
    url: &str,
    expected: &[u8],
) -> Result<ReadBack, TransportError<C::Error>> {
    conn.initiate_request(Method::Get, url, &[])
        .map_err(TransportError)?;
    conn.flush().map_err(TransportError)?;
    conn.initiate_response().map_err(TransportError)?;
    if !(200..300).contains(&conn.status()) {
        return read_response(conn)
            .map(ReadBack::Failed)
            .map_err(TransportError);
    }
    let limit = expected.len() + 64 * 1024;
    let mut offset = 0usize;
    let mut first_difference = None;
    let mut buf = [0u8; 512];
    loop {
        let n = conn.read(&mut buf).map_err(TransportError)?;
        if n == 0 {
            break;
        }
        if first_difference.is_none() {
            let want = expected.get(offset..).unwrap_or_default();
            let common = n.min(want.len());
            if let Some(at) = (0..common).find(|&i| buf[i] != want[i]) {
                first_difference = Some(offset + at);
            } else if n > want.len() {
                first_difference = Some(expected.len());
            }
        }
        offset += n;
        if offset > limit {
            break;
        }
    }
    Ok(match first_difference {
        None if offset == expected.len() => ReadBack::Same,
        None => ReadBack::Differs(format!(
            "the stored object is {offset} bytes, the file {}",
            expected.len()
        )),
        Some(at) => ReadBack::Differs(format!(
            "the stored object ({}{offset} bytes) differs from the file ({} bytes) from byte {at}",
            if offset > limit { "over " } else { "" },
            expected.len()
        )),
    })
}

fn read_response<C: Connection>(conn: &mut C) -> Result<PutResponse, C::Error> {
    let status = conn.status();
    let etag = conn
        .header("ETag")
        .map(|v| v.trim().trim_matches('"').to_string());
    let date = conn.header("Date").map(str::to_string);
    let region_header = conn.header("x-amz-bucket-region").map(str::to_string);
    let location = conn.header("Location").map(str::to_string);
    let body = crate::body::read_limited(conn, MAX_ERROR_BODY, crate::body::Beyond::Drain)?;
    let text = String::from_utf8_lossy(&body.bytes);
    let (code, message, region, endpoint) = if (200..300).contains(&status) {
        (None, None, None, None)
    } else {
        (
            xml_element(&text, "Code"),
            xml_element(&text, "Message"),
            region_header.or_else(|| xml_element(&text, "Region")),
            xml_element(&text, "Endpoint").or(location),
        )
    };
    Ok(PutResponse {
        status,
        etag,
        date,
        code,
        message,
        region,
        endpoint,
    })
}

/// The text of the first `<name>…</name>` element, with the five XML entities decoded.
pub fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// How the reason of a retry after an answer no rule covers starts.
pub const UNCLASSIFIED: &str = "unclassified answer";

/// What to do after a PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server stored exactly these bytes (its ETag is the body's MD5): the file may
    /// leave the spool.
    Stored,
    /// A 2xx whose ETag is missing or not an MD5 (SSE-KMS, some S3-compatibles): the
    /// object counts as stored only once [`read_back`] returns these bytes.
    StoredUnproven(String),
    /// 412 on a URL that signed `If-None-Match: *`: an object exists under the key. It
    /// is this file only once [`read_back`] returns these bytes.
    AlreadyStored,
    /// A passing failure (network, timeout, 5xx, 429, SlowDown): retry with backoff.
    Retry(String),
    /// The URL expired or the clock is skewed: correct the clock from `server_date`,
    /// sign again and retry at once.
    Resign {
        /// The server's `Date` header, if it sent one.
        server_date: Option<SystemTime>,
        /// What the server said.
        reason: String,
    },
    /// Credentials or configuration are wrong: pause all uploads and report loudly;
    /// the file stays queued.
    Pause(String),
    /// The server says the body did not match its MD5: re-verify the local file.
    Reverify(String),
    /// This request can never succeed (e.g. EntityTooLarge): quarantine the file.
    Reject(String),
}

/// Classifies a PUT answer; `body_md5_hex` is the MD5 of the bytes sent.
pub fn classify(response: &PutResponse, body_md5_hex: &str) -> Outcome {
    let said = response.to_string();
    let code = response.code.as_deref().unwrap_or("");
    let message = response.message.as_deref().unwrap_or("");
    match response.status {
        200..=299 => match &response.etag {
            // A single-part upload's ETag is the body's MD5; a different one means
            // the server stored other bytes.
            Some(etag) if is_md5_hex(etag) && !etag.eq_ignore_ascii_case(body_md5_hex) => {
                Outcome::Reverify(format!(
                    "{said}: ETag {etag} is not the body's MD5 {body_md5_hex}"
                ))
            }
            Some(etag) if is_md5_hex(etag) => Outcome::Stored,
            Some(etag) => Outcome::StoredUnproven(format!(
                "{said}: ETag {etag} is not an MD5, so it does not prove which bytes were stored"
            )),
            None => Outcome::StoredUnproven(format!(
                "{said} without an ETag, which does not prove which bytes were stored"
            )),
        },
        412 => Outcome::AlreadyStored,
        // A server without conditional writes (some S3-compatibles) cannot take the
        // If-None-Match the URL signs: retrying cannot help, and uploading without
        // the condition is a decision for the configuration, not the uploader.
        501 => Outcome::Pause(format!(
            "{said}: the server does not support If-None-Match (conditional writes); use a server that does, or write keys that carry the rows' hash without the condition ([upload] conditional_writes = false, or the broker's --no-conditional-writes); a plain data_HHMM.parquet name is never written without it"
        )),
        429 | 500..=599 => Outcome::Retry(said),
        // Passing conflicts and cut bodies, documented by AWS as worth a retry.
        _ if matches!(
            code,
            "SlowDown"
                | "RequestTimeout"
                | "InternalError"
                | "ConditionalRequestConflict"
                | "IncompleteBody"
                | "OperationAborted"
        ) =>
        {
            Outcome::Retry(said)
        }
        // The signature's time is off from the server's: the device clock is behind
        // (expired, too old) or ahead (not yet valid, skewed).
        _ if code == "RequestTimeTooSkewed"
            || code == "ExpiredRequest"
            || (code == "AccessDenied"
                && (message.contains("Request has expired")
                    || message.contains("Request is not yet valid")))
            || (code == "InvalidRequest"
                && (message.contains("Date is too old")
                    || message.contains("Date is too far in the future")
                    || message.contains("Date is in the future"))) =>
        {
            Outcome::Resign {
                server_date: response.date.as_deref().and_then(parse_http_date),
                reason: said,
            }
        }
        _ if matches!(
            code,
            "PermanentRedirect" | "TemporaryRedirect" | "AuthorizationHeaderMalformed"
        ) || matches!(response.status, 301 | 307) =>
        {
            let hint = match (&response.region, &response.endpoint) {
                (Some(region), _) => format!("; set [s3] region = \"{region}\""),
                (None, Some(endpoint)) => {
                    format!("; set [s3] endpoint to the bucket's endpoint {endpoint}")
                }
                (None, None) => String::new(),
            };
            Outcome::Pause(format!("{said}{hint}"))
        }
        _ if matches!(
            code,
            "SignatureDoesNotMatch"
                | "InvalidAccessKeyId"
                | "ExpiredToken"
                | "InvalidToken"
                | "AccessDenied"
                | "NoSuchBucket"
                | "AuthorizationQueryParametersError"
                | "AllAccessDisabled"
                | "AccountProblem"
        ) || matches!(response.status, 401 | 403) =>
        {
            Outcome::Pause(said)
        }
        _ if code == "BadDigest" || code == "InvalidDigest" => Outcome::Reverify(said),
        // What can never succeed for this file: quarantine it with the answer.
        _ if matches!(
            code,
            "EntityTooLarge"
                | "EntityTooSmall"
                | "KeyTooLongError"
                | "InvalidArgument"
                | "InvalidObjectName"
                | "InvalidRequest"
                | "MetadataTooLarge"
                | "MissingContentLength"
                | "InvalidStorageClass"
                | "MaxMessageLengthExceeded"
        ) || matches!(response.status, 400 | 404 | 405 | 411 | 413 | 414) =>
        {
            Outcome::Reject(said)
        }
        // An answer no rule covers: keep the file and retry with backoff (never a
        // tight loop), showing the server's code and message.
        _ => Outcome::Retry(format!("{UNCLASSIFIED} {said}")),
    }
}

fn is_md5_hex(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    crate::timefmt::parse_http_date(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, code: Option<&str>, message: Option<&str>) -> PutResponse {
        PutResponse {
            status,
            etag: None,
            date: Some("Fri, 01 Mar 2024 08:00:00 GMT".into()),
            code: code.map(Into::into),
            message: message.map(Into::into),
            region: None,
            endpoint: None,
        }
    }

    #[test]
    fn classifies_s3_answers() {
        let md5 = "5d41402abc4b2a76b9719d911017c592";
        let mut ok = response(200, None, None);
        ok.etag = Some(md5.into());
        assert_eq!(classify(&ok, md5), Outcome::Stored);
        ok.etag = Some("00000000000000000000000000000000".into());
        assert!(matches!(classify(&ok, md5), Outcome::Reverify(_)));
        assert_eq!(
            classify(&response(412, Some("PreconditionFailed"), None), md5),
            Outcome::AlreadyStored
        );
        assert!(matches!(
            classify(&response(503, Some("SlowDown"), None), md5),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(&response(429, None, None), md5),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(
                &response(403, Some("AccessDenied"), Some("Request has expired")),
                md5
            ),
            Outcome::Resign {
                server_date: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(&response(403, Some("RequestTimeTooSkewed"), None), md5),
            Outcome::Resign { .. }
        ));
        for code in [
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "ExpiredToken",
            "AccessDenied",
            "NoSuchBucket",
        ] {
            let status = if code == "NoSuchBucket" { 404 } else { 403 };
            assert!(
                matches!(
                    classify(&response(status, Some(code), None), md5),
                    Outcome::Pause(_)
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify(&response(400, Some("BadDigest"), None), md5),
            Outcome::Reverify(_)
        ));
        assert!(matches!(
            classify(&response(400, Some("EntityTooLarge"), None), md5),
            Outcome::Reject(_)
        ));
        for (status, code, message) in [
            (403, "AccessDenied", "Request is not yet valid"),
            (403, "ExpiredRequest", "Request has expired"),
            (400, "InvalidRequest", "Bad request: Date is too old"),
        ] {
            assert!(
                matches!(
                    classify(&response(status, Some(code), Some(message)), md5),
                    Outcome::Resign {
                        server_date: Some(_),
                        ..
                    }
                ),
                "{code} {message}"
            );
        }
        for code in [
            "ConditionalRequestConflict",
            "IncompleteBody",
            "RequestTimeout",
        ] {
            let status = if code.starts_with('C') { 409 } else { 400 };
            assert!(
                matches!(
                    classify(&response(status, Some(code), None), md5),
                    Outcome::Retry(_)
                ),
                "{code}"
            );
        }
        let Outcome::Pause(why) = classify(&response(501, Some("NotImplemented"), None), md5)
        else {
            panic!("501 pauses");
        };
        assert!(why.contains("If-None-Match"), "{why}");
        let mut moved = response(301, Some("PermanentRedirect"), None);
        moved.region = Some("eu-west-1".into());
        let Outcome::Pause(why) = classify(&moved, md5) else {
            panic!("301 pauses");
        };
        assert!(why.contains("region = \"eu-west-1\""), "{why}");
        let Outcome::Retry(why) =
            classify(&response(418, Some("Teapot"), Some("short and stout")), md5)
        else {
            panic!("an unclassified answer is retried");
        };
        assert!(
            why.contains("Teapot") && why.contains("short and stout"),
            "{why}"
        );
    }

    #[test]
    fn reads_xml_elements_and_http_dates() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(xml_element(xml, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(xml_element(xml, "Message").as_deref(), Some("a & b"));
        assert_eq!(xml_element(xml, "Nope"), None);
        assert_eq!(
            parse_http_date("Fri, 24 May 2013 00:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600))
        );
    }
}
