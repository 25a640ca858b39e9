//! SigV4 presigned PUT URLs ([`crate::sigv4`], sans-IO, no `url` or `jiff`): the URL
//! carries the signature, so the uploader needs no keys, and the signed headers bind it
//! to one body.
//!
//! A URL made by [`Signer::presign_put`] for a [`PutRequest::for_body`] signs
//! `Content-MD5` (the server checks the bytes), `Content-Length` (exactly that many
//! bytes) and `If-None-Match: *` (never overwrite a stored object).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use md5::{Digest, Md5};
#[cfg(feature = "host")]
use rusty_s3::{Bucket, UrlStyle};

use crate::sigv4::{self, Endpoint};

use crate::addressing::Addressing;

/// Default lifetime of a presigned URL.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(300);
/// The longest lifetime S3 accepts (7 days).
pub const MAX_EXPIRY: Duration = Duration::from_secs(604_800);

/// Where objects go: an S3-compatible endpoint and a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    /// Endpoint URL, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// Region used in the signature (e.g. `us-east-1`).
    pub region: String,
    /// Path-style URLs (`endpoint/bucket/key`) instead of virtual-host (`bucket.endpoint/key`).
    /// Virtual-host falls back to path style where it cannot work (IP endpoints, and
    /// dotted buckets over https): see [`crate::addressing`].
    pub path_style: bool,
}

impl S3Target {
    /// The style URLs are made with and, when virtual-host was asked for but path
    /// style is used, why ([`crate::addressing::path_style_fallback`]).
    pub fn addressing(&self) -> Result<(Addressing, Option<&'static str>), PresignError> {
        let endpoint = parse_endpoint(&self.endpoint)?;
        let host = &endpoint.host;
        let fallback = if self.path_style {
            None
        } else {
            crate::addressing::path_style_fallback(endpoint.scheme(), host, &self.bucket)
        };
        let style =
            crate::addressing::addressing(self.path_style, endpoint.scheme(), host, &self.bucket);
        Ok((style, fallback))
    }

    /// The host name and port URLs are sent to when they are virtual-host style
    /// (`bucket.host`, lowercase); `None` for path style.
    pub fn virtual_host(&self) -> Result<Option<(String, u16)>, PresignError> {
        if self.addressing()?.0 == Addressing::Path {
            return Ok(None);
        }
        let endpoint = parse_endpoint(&self.endpoint)?;
        let port = endpoint
            .port
            .unwrap_or(if endpoint.secure { 443 } else { 80 });
        Ok(Some((format!("{}.{}", self.bucket, endpoint.host), port)))
    }
}

/// An http(s) URL with a host, or [`PresignError::BadEndpoint`] (another scheme) or
/// [`PresignError::UnsupportedEndpoint`] (what the device parser does not take).
fn parse_endpoint(endpoint: &str) -> Result<Endpoint, PresignError> {
    let scheme_ok = ["http://", "https://"]
        .iter()
        .any(|s| endpoint.len() > s.len() && endpoint[..s.len()].eq_ignore_ascii_case(s));
    if !scheme_ok {
        return Err(PresignError::BadEndpoint(endpoint.to_string()));
    }
    Endpoint::parse(endpoint).map_err(PresignError::UnsupportedEndpoint)
}

/// Credentials that sign URLs. `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary (STS) credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// Long-term credentials.
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Self {
        Self {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: None,
        }
    }

    /// These credentials with a session token (temporary credentials).
    pub fn with_session_token(mut self, token: Option<String>) -> Self {
        self.session_token = token.filter(|t| !t.is_empty());
        self
    }

    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optional `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Self, PresignError> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                Ok(Self::new(&id, &secret).with_session_token(get("AWS_SESSION_TOKEN")))
            }
            _ => Err(PresignError::MissingCredentials),
        }
    }
}

/// What a PUT URL is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRequest {
    /// Object key.
    ///
    /// Keys with `.` or `..` segments (`raw/../x`) are refused ([`PresignError::BadKey`]):
    /// URL parsers and HTTP clients remove such segments (RFC 3986), so the URL would
    /// address another key than the signed one, where S3 keeps them literally. The keys of
    /// [`crate::key`] never have them; tests/presign_fixtures.rs pins this.
    pub key: String,
    /// Base64 MD5 of the body, signed as `Content-MD5`.
    pub content_md5: Option<String>,
    /// Body length, signed as `Content-Length`.
    pub content_length: Option<u64>,
    /// Sign `If-None-Match: *`: the PUT fails with 412 if the key exists.
    pub if_none_match: bool,
}

impl PutRequest {
    /// A URL that signs only the host: any body may be sent.
    pub fn key_only(key: &str) -> Self {
        Self {
            key: key.to_string(),
            content_md5: None,
            content_length: None,
            if_none_match: false,
        }
    }

    /// A URL bound to `body`: signs its MD5 and length, and `If-None-Match: *`.
    pub fn for_body(key: &str, body: &[u8]) -> Self {
        Self {
            key: key.to_string(),
            content_md5: Some(content_md5(body)),
            content_length: Some(body.len() as u64),
            if_none_match: true,
        }
    }
}

/// A presigned PUT: send exactly these headers with the body to this URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    /// The URL, signature in the query string.
    pub url: String,
    /// Signed headers the request must carry (lowercase names), besides `host`.
    pub headers: Vec<(String, String)>,
    /// When the URL stops working, by the signer's clock.
    pub expires_at: SystemTime,
    /// A GET URL for the same key, signed with the PUT: the uploader reads the object
    /// back when the server's answer does not prove it stored these bytes (an ETag that
    /// is not the body's MD5, or a 412 for a key that already exists). `None` from a
    /// source that does not give one (a broker older than this field); such answers
    /// then keep the file queued.
    pub verify_url: Option<String>,
}

impl PresignedPut {
    /// The value of a signed header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Presigning failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresignError {
    /// The endpoint is not an http(s) URL.
    BadEndpoint(String),
    /// The bucket name is not valid.
    BadBucket(String),
    /// The expiry is outside 1 s ..= 7 days.
    BadExpiry(Duration),
    /// The signing time is before 1970 or unrepresentable.
    BadTime,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` are not set.
    MissingCredentials,
    /// The object key is empty, longer than 1024 bytes, or has a `.`/`..` segment.
    BadKey(String),
    /// The endpoint is a URL the signer does not take (the reason says why: e.g. a
    /// non-ASCII host, user info, a non-canonical IP address).
    UnsupportedEndpoint(String),
}

impl fmt::Display for PresignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadEndpoint(e) => write!(f, "endpoint {e:?} is not an http:// or https:// URL"),
            Self::BadBucket(b) => write!(
                f,
                "bucket name {b:?} is not valid: 3-63 characters of lowercase letters, digits, '.' and '-'"
            ),
            Self::BadExpiry(d) => write!(f, "URL expiry {d:?} is outside 1 s ..= 7 days"),
            Self::BadTime => write!(f, "signing time is not representable"),
            Self::BadKey(key) => write!(
                f,
                "object key {key:?} cannot be signed: it must be 1-1024 bytes without '.' or '..' segments"
            ),
            Self::UnsupportedEndpoint(why) => f.write_str(why),
            Self::MissingCredentials => write!(
                f,
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)"
            ),
        }
    }
}

impl std::error::Error for PresignError {}

/// Base64 of the MD5 of `body`, as the `Content-MD5` header wants it.
pub fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

/// Lowercase hex MD5 of `body`, as S3 reports it in the ETag of a single-part upload.
pub fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `name` is a valid S3 bucket name (3–63 of `[a-z0-9.-]`, starting and ending
/// with a letter or digit).
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Signs URLs for one bucket with one set of credentials.
#[derive(Debug, Clone)]
pub struct Signer {
    endpoint: Endpoint,
    bucket_name: String,
    region: String,
    path_style: bool,
    credentials: Credentials,
    expiry: Duration,
    #[cfg(feature = "host")]
    bucket: Bucket,
    #[cfg(feature = "host")]
    rusty_credentials: rusty_s3::Credentials,
}

impl Signer {
    /// A signer whose URLs live for `expiry`. Virtual-host style falls back to path style
    /// where it cannot work (IP endpoints, dotted buckets over https:
    /// [`S3Target::addressing`]).
    pub fn new(
        target: &S3Target,
        credentials: &Credentials,
        expiry: Duration,
    ) -> Result<Self, PresignError> {
        if expiry < Duration::from_secs(1) || expiry > MAX_EXPIRY {
            return Err(PresignError::BadExpiry(expiry));
        }
        if !valid_bucket_name(&target.bucket) {
            return Err(PresignError::BadBucket(target.bucket.clone()));
        }
        let endpoint = parse_endpoint(&target.endpoint)?;
        let path_style = target.addressing()?.0 == Addressing::Path;
        #[cfg(feature = "host")]
        let bucket = {
            let url: url::Url = target
                .endpoint
                .parse()
                .map_err(|_| PresignError::BadEndpoint(target.endpoint.clone()))?;
            let style = if path_style {
                UrlStyle::Path
            } else {
                UrlStyle::VirtualHost
            };
            Bucket::new(url, style, target.bucket.clone(), target.region.clone())
                .map_err(|_| PresignError::BadEndpoint(target.endpoint.clone()))?
        };
        #[cfg(feature = "host")]
        let rusty_credentials = match &credentials.session_token {
            Some(token) => rusty_s3::Credentials::new_with_token(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
                token.clone(),
            ),
            None => rusty_s3::Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
            ),
        };
        Ok(Self {
            endpoint,
            bucket_name: target.bucket.clone(),
            region: target.region.clone(),
            path_style,
            credentials: credentials.clone(),
            expiry,
            #[cfg(feature = "host")]
            bucket,
            #[cfg(feature = "host")]
            rusty_credentials,
        })
    }

    /// How long URLs live.
    pub fn expiry(&self) -> Duration {
        self.expiry
    }

    /// Whether URLs put the bucket in the path (after the endpoint-style rule).
    pub fn path_style(&self) -> bool {
        self.path_style
    }

    /// The rusty-s3 bucket, for signing other actions (host tools list and read back;
    /// cargo feature `host`).
    #[cfg(feature = "host")]
    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// The rusty-s3 credentials, for signing other actions (cargo feature `host`).
    #[cfg(feature = "host")]
    pub fn rusty_credentials(&self) -> &rusty_s3::Credentials {
        &self.rusty_credentials
    }

    fn sign(
        &self,
        method: &str,
        key: &str,
        headers: &[(String, String)],
        at: SystemTime,
    ) -> Result<String, PresignError> {
        check_key(key)?;
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| PresignError::BadTime)?
            .as_secs();
        if secs > sigv4::MAX_SIGNING_SECS {
            return Err(PresignError::BadTime);
        }
        Ok(sigv4::presign(&sigv4::Request {
            method,
            endpoint: &self.endpoint,
            bucket: &self.bucket_name,
            path_style: self.path_style,
            key,
            region: &self.region,
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: &self.credentials.secret_access_key,
            session_token: self.credentials.session_token.as_deref(),
            headers,
            at_secs: secs,
            expires_secs: self.expiry.as_secs(),
        }))
    }

    /// A PUT URL signed as of `at` (deterministic: same inputs, same URL).
    pub fn presign_put(
        &self,
        request: &PutRequest,
        at: SystemTime,
    ) -> Result<PresignedPut, PresignError> {
        let mut headers = Vec::new();
        if let Some(md5) = &request.content_md5 {
            headers.push(("content-md5".to_string(), md5.clone()));
        }
        if let Some(length) = request.content_length {
            headers.push(("content-length".to_string(), length.to_string()));
        }
        if request.if_none_match {
            headers.push(("if-none-match".to_string(), "*".to_string()));
        }
        let url = self.sign("PUT", &request.key, &headers, at)?;
        let verify_url = Some(self.presign_get(&request.key, at)?);
        Ok(PresignedPut {
            url,
            headers,
            expires_at: at + self.expiry,
            verify_url,
        })
    }

    /// A GET URL for `key` signed as of `at`.
    pub fn presign_get(&self, key: &str, at: SystemTime) -> Result<String, PresignError> {
        self.sign("GET", key, &[], at)
    }
}

/// Refuses keys a URL cannot carry unchanged: empty, over 1024 bytes (S3's limit), or
/// with `.`/`..` segments (URL parsers and HTTP clients would remove them).
fn check_key(key: &str) -> Result<(), PresignError> {
    let dot_segment = key.split('/').any(|s| s == "." || s == "..");
    if key.is_empty() || key.len() > 1024 || dot_segment {
        return Err(PresignError::BadKey(key.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// AWS's published example: "Authenticating Requests: Using Query Parameters (AWS
    /// Signature Version 4)", GET examplebucket/test.txt at 20130524T000000Z, 86400 s.
    #[test]
    fn matches_the_aws_documentation_example() {
        let target = S3Target {
            endpoint: "https://s3.amazonaws.com".into(),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            path_style: false,
        };
        let signer = Signer::new(
            &target,
            &Credentials::new(ACCESS, SECRET),
            Duration::from_secs(86400),
        )
        .unwrap();
        let url = signer.presign_get("test.txt", at(1_369_353_600)).unwrap();
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn body_bound_urls_sign_md5_length_and_if_none_match() {
        let target = S3Target {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "lake".into(),
            region: "us-east-1".into(),
            path_style: true,
        };
        let signer =
            Signer::new(&target, &Credentials::new(ACCESS, SECRET), DEFAULT_EXPIRY).unwrap();
        let put = signer
            .presign_put(
                &PutRequest::for_body("raw/a b=c.parquet", b"hello"),
                at(1_700_000_000),
            )
            .unwrap();
        assert!(
            put.url
                .starts_with("http://127.0.0.1:9000/lake/raw/a%20b%3Dc.parquet?"),
            "{}",
            put.url
        );
        assert!(
            put.url.contains(
                "X-Amz-SignedHeaders=content-length%3Bcontent-md5%3Bhost%3Bif-none-match"
            ),
            "{}",
            put.url
        );
        assert_eq!(put.header("content-md5"), Some("XUFAKrxLKna5cZ2REBfFkg=="));
        assert_eq!(put.header("content-length"), Some("5"));
        assert_eq!(put.header("if-none-match"), Some("*"));
        assert_eq!(put.expires_at, at(1_700_000_300));
    }

    /// Issue 11 §3: virtual-host style with an IP endpoint used to fail ("endpoint … is
    /// not an http:// or https:// URL"); botocore uses path style there.
    #[test]
    fn virtual_host_falls_back_to_path_style_for_ip_endpoints_and_dotted_buckets() {
        let creds = Credentials::new(ACCESS, SECRET);
        for (endpoint, bucket, want) in [
            (
                "http://127.0.0.1:9000",
                "lake",
                "http://127.0.0.1:9000/lake/k?",
            ),
            ("http://[::1]:9000", "lake", "http://[::1]:9000/lake/k?"),
            (
                "https://[2001:db8::1]",
                "lake",
                "https://[2001:db8::1]/lake/k?",
            ),
            (
                "https://s3.eu-central-1.amazonaws.com",
                "my.dotted.bucket",
                "https://s3.eu-central-1.amazonaws.com/my.dotted.bucket/k?",
            ),
            (
                "https://s3.eu-central-1.amazonaws.com:443",
                "lake",
                "https://lake.s3.eu-central-1.amazonaws.com/k?",
            ),
            (
                "http://objects.example:80",
                "lake",
                "http://lake.objects.example/k?",
            ),
            (
                "http://objects.example:443",
                "lake",
                "http://lake.objects.example:443/k?",
            ),
        ] {
            let target = S3Target {
                endpoint: endpoint.into(),
                bucket: bucket.into(),
                region: "us-east-1".into(),
                path_style: false,
            };
            let signer = Signer::new(&target, &creds, DEFAULT_EXPIRY)
                .unwrap_or_else(|e| panic!("{endpoint} {bucket}: {e}"));
            let put = signer
                .presign_put(&PutRequest::key_only("k"), at(1_700_000_000))
                .unwrap();
            assert!(
                put.url.starts_with(want),
                "{endpoint} {bucket}: {}",
                put.url
            );
        }
        let ip = S3Target {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "lake".into(),
            region: "us-east-1".into(),
            path_style: false,
        };
        assert_eq!(
            ip.addressing().unwrap(),
            (Addressing::Path, Some("the endpoint is an IP address"))
        );
    }

    #[test]
    fn rejects_bad_targets_and_expiries() {
        let creds = Credentials::new(ACCESS, SECRET);
        let target = |endpoint: &str, bucket: &str| S3Target {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            path_style: true,
        };
        assert!(matches!(
            Signer::new(&target("ftp://x", "lake"), &creds, DEFAULT_EXPIRY),
            Err(PresignError::BadEndpoint(_))
        ));
        assert!(matches!(
            Signer::new(&target("http://x", "ab"), &creds, DEFAULT_EXPIRY),
            Err(PresignError::BadBucket(_))
        ));
        assert!(matches!(
            Signer::new(
                &target("http://x", "lake"),
                &creds,
                Duration::from_secs(604_801)
            ),
            Err(PresignError::BadExpiry(_))
        ));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds =
            Credentials::new(ACCESS, SECRET).with_session_token(Some("TOKENEXAMPLE".into()));
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("TOKENEXAMPLE"),
            "{shown}"
        );
    }
}
