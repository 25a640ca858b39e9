//! An embedded, real S3-compatible server: [`s3s`] with the [`s3s_fs`]
//! file-system backend, SigV4 authentication on, in-process.
//!
//! It serves a directory: every sub-directory of [`ServerConfig::dir`] is a
//! bucket and an object `key` of bucket `b` is the file `DIR/b/key` (s3s-fs
//! keeps its metadata in hidden `.bucket-*` files directly under `DIR`).
//! Requests are path-style (`http://127.0.0.1:PORT/bucket/key`).
//!
//! Behaviour on top of plain s3s-fs:
//!
//! * [`ServerConfig::create_buckets`] are created at start, validated with the
//!   same rule s3s applies to the bucket of every request
//!   ([`s3s::path::check_bucket_name`]); existing buckets are kept, like
//!   CreateBucket would refuse to replace them (s3s-fs answers 409
//!   `BucketAlreadyExists`).
//! * Object requests to a bucket that does not exist are answered 404
//!   `NoSuchBucket`, like S3; plain s3s-fs would silently create the bucket
//!   directory on PutObject.
//! * Every request must be signed (SigV4 header or presigned URL) with the one
//!   configured key pair; unsigned requests are 403 `AccessDenied`, and a
//!   signature scoped to another region than [`ServerConfig::region`] is 400
//!   `AuthorizationHeaderMalformed` naming the expected region, as S3 answers.
//! * Keys stay inside their bucket: a key with an empty, `.` or `..` segment is
//!   400 `InvalidArgument` (keys are file paths here), a key over 1024 bytes or
//!   with a segment over 255 bytes (a file name) is 400 `KeyTooLongError`, and a
//!   PUT with a body to a key ending in `/` is 501 `NotImplemented` (s3s-fs
//!   stores such keys as directories).
//! * Conditional PUTs (`If-None-Match`, `If-Match`) run one at a time, so of
//!   concurrent `If-None-Match: *` PUTs to a new key exactly one succeeds.
//! * Connections are bounded: a request head must arrive within
//!   [`ServerConfig::header_timeout`] (an idle keep-alive connection is closed
//!   after it), a request must be done within [`ServerConfig::request_timeout`],
//!   and at most [`ServerConfig::max_connections`] are served at once (more wait
//!   in the listen backlog).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::path::S3Path;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Result, s3_error};
use tokio::net::TcpListener;

use crate::server_thread::{BackgroundServer, StopSignal, accept_until, run_until_signal};

/// Configuration of the embedded S3 server.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The directory served; created if missing. Each sub-directory is a bucket.
    pub dir: PathBuf,
    /// The address to listen on. Default `127.0.0.1:0` (a free port).
    pub addr: SocketAddr,
    /// The access key id of the single credential accepted.
    pub access_key: String,
    /// The secret access key of that credential.
    pub secret_key: String,
    /// Buckets created at start if missing (S3 naming rules apply).
    pub create_buckets: Vec<String>,
    /// The region signatures must be scoped to. Default [`DEFAULT_REGION`].
    pub region: String,
    /// How long a client may take to send a request head, and how long an idle
    /// keep-alive connection stays open. Default [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// How long one request may take, body included. Default
    /// [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog. Default
    /// [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
}

/// The region the embedded server expects in signatures unless configured.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default [`ServerConfig::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServerConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Default [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl ServerConfig {
    /// A configuration serving `dir` on `127.0.0.1:0` with one key pair and
    /// no bucket to create.
    pub fn new(
        dir: impl Into<PathBuf>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            dir: dir.into(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            create_buckets: Vec::new(),
            region: DEFAULT_REGION.to_owned(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("dir", &self.dir)
            .field("addr", &self.addr)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("create_buckets", &self.create_buckets)
            .field("region", &self.region)
            .field("header_timeout", &self.header_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Checks a bucket name against the S3 naming rules s3s enforces: 3 to 63
/// characters of lowercase letters, digits, dots and hyphens, starting and
/// ending with a letter or digit, no `..`, not an IP address, no `xn--`
/// prefix.
///
/// # Errors
///
/// An error saying which rule `name` breaks.
pub fn validate_bucket_name(name: &str) -> anyhow::Result<()> {
    let len = name.len();
    if len < 3 {
        bail!("invalid bucket name {name:?}: shorter than 3 characters");
    }
    if len > 63 {
        bail!("invalid bucket name {name:?}: longer than 63 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        bail!(
            "invalid bucket name {name:?}: {c:?} is not allowed (only lowercase letters, digits, '.' and '-')"
        );
    }
    if !s3s::path::check_bucket_name(name) {
        bail!(
            "invalid bucket name {name:?}: it must start and end with a letter or digit, must not contain \"..\", be an IP address or start with \"xn--\""
        );
    }
    Ok(())
}

/// The longest key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;
/// The longest file name, which each `/`-separated part of a key becomes.
const MAX_SEGMENT_BYTES: usize = 255;

/// The length of the file name s3s-fs keeps an object's metadata in:
/// `.bucket-{b64(bucket)}.object-{b64(key)}.metadata.json` (URL-safe base64, no
/// padding), the longest of its per-object files outside multipart uploads.
fn metadata_file_name_len(bucket: &str, key: &str) -> usize {
    let b64 = |n: usize| (n * 4).div_ceil(3);
    ".bucket-".len()
        + b64(bucket.len())
        + ".object-".len()
        + b64(key.len())
        + ".metadata.json".len()
}

/// Why `key` cannot be an object of this file-backed server, as S3 would answer.
fn check_key(
    bucket: &str,
    key: &str,
    method: &hyper::http::Method,
    has_body: bool,
) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(s3_error!(
            KeyTooLongError,
            "Your key is too long: {} bytes, at most {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    if metadata_file_name_len(bucket, key) > MAX_SEGMENT_BYTES {
        let most = (0..key.len())
            .rev()
            .find(|&n| {
                metadata_file_name_len(bucket, &key[..n.min(key.len())]) <= MAX_SEGMENT_BYTES
            })
            .unwrap_or(0);
        return Err(s3_error!(
            KeyTooLongError,
            "Your key is too long for this server: {} bytes; s3s-fs names a file after the base64 of bucket and key, which allows at most {most} bytes in bucket {bucket:?} (S3 allows {MAX_KEY_BYTES})",
            key.len()
        ));
    }
    let (body, trailing_slash) = match key.strip_suffix('/') {
        Some(rest) => (rest, true),
        None => (key, false),
    };
    for segment in body.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(s3_error!(
                InvalidArgument,
                "this server stores keys as file paths: a key must not have an empty, \".\" or \"..\" segment"
            ));
        }
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err(s3_error!(
                KeyTooLongError,
                "this server stores each '/'-separated part of a key as a file name of at most {MAX_SEGMENT_BYTES} bytes"
            ));
        }
    }
    if trailing_slash && method == hyper::http::Method::PUT && has_body {
        return Err(s3_error!(
            NotImplemented,
            "this server stores a key ending in '/' as a directory: it cannot hold a body"
        ));
    }
    Ok(())
}

/// The region of a SigV4 credential scope `AKID/DATE/REGION/SERVICE/aws4_request`.
fn scope_region(credential: &str) -> Option<&str> {
    credential.split('/').nth(2)
}

/// The region a request is signed for: from `X-Amz-Credential` (presigned URL) or
/// the `Authorization` header's `Credential=`.
fn signed_region(cx: &S3AccessContext<'_>) -> Option<String> {
    if let Some(query) = cx.uri().query() {
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("X-Amz-Credential=") {
                // The scope's separators are percent-encoded in a query.
                let value = value.replace("%2F", "/").replace("%2f", "/");
                return scope_region(&value).map(str::to_owned);
            }
        }
    }
    let auth = cx
        .headers()
        .get(hyper::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let credential = credential.split([',', ' ']).next()?;
    scope_region(credential).map(str::to_owned)
}

/// Rejects unsigned requests, signatures for another region, keys that would leave
/// their bucket, and object requests to missing buckets.
struct AccessPolicy {
    root: PathBuf,
    region: String,
}

#[async_trait::async_trait]
impl S3Access for AccessPolicy {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        if let Some(region) = signed_region(cx)
            && region != self.region
        {
            return Err(s3_error!(
                AuthorizationHeaderMalformed,
                "the region '{region}' is wrong; expecting '{}'",
                self.region
            ));
        }
        let has_body = cx
            .headers()
            .get(hyper::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
        let method = cx.method().clone();
        if let S3Path::Object { bucket, key } = cx.s3_path() {
            check_key(bucket, key, &method, has_body)?;
            // The bucket name was validated by s3s: no '/' and no "..".
            let is_dir = tokio::fs::metadata(self.root.join(&**bucket))
                .await
                .is_ok_and(|m| m.is_dir());
            if !is_dir {
                return Err(s3_error!(NoSuchBucket));
            }
        }
        Ok(())
    }
}

/// Validates the configuration, binds the listener, then prepares the directory and
/// buckets and builds the S3 service: an address in use fails before anything is
/// created.
fn prepare(config: &ServerConfig) -> anyhow::Result<(S3Service, std::net::TcpListener)> {
    if config.access_key.is_empty() || config.secret_key.is_empty() {
        bail!("the S3 server needs a non-empty access key and secret key");
    }
    if config.max_connections == 0 {
        bail!("the S3 server needs max_connections of at least 1");
    }
    if config.header_timeout.is_zero() || config.request_timeout.is_zero() {
        bail!("the S3 server's header and request timeouts must be longer than 0");
    }
    for bucket in &config.create_buckets {
        validate_bucket_name(bucket)?;
    }
    let listener = bind(config.addr)?;
    std::fs::create_dir_all(&config.dir)
        .with_context(|| format!("create the S3 data directory {}", config.dir.display()))?;
    for bucket in &config.create_buckets {
        let path = config.dir.join(bucket);
        if path.exists() && !path.is_dir() {
            bail!(
                "cannot create bucket {bucket:?}: {} exists and is not a directory",
                path.display()
            );
        }
        std::fs::create_dir_all(&path)
            .with_context(|| format!("create bucket directory {}", path.display()))?;
    }
    let fs = s3s_fs::FileSystem::new(&config.dir).map_err(|err| {
        anyhow!(
            "open the S3 data directory {}: {err:?}",
            config.dir.display()
        )
    })?;
    let root = config
        .dir
        .canonicalize()
        .with_context(|| format!("resolve {}", config.dir.display()))?;

    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(
        config.access_key.clone(),
        config.secret_key.clone(),
    ));
    builder.set_access(AccessPolicy {
        root,
        region: config.region.clone(),
    });
    let service = builder.build();
    Ok((service, listener))
}

/// A non-blocking listener on `addr`, or an error naming the address (and, when it is
/// taken, saying so).
pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(
                "cannot listen on {addr}: the address is already in use (another server? choose another with --addr)"
            )
        } else {
            anyhow!("cannot listen on {addr}: {e}")
        }
    })?;
    listener
        .set_nonblocking(true)
        .context("make the listener non-blocking")?;
    Ok(listener)
}

/// Whether `req` is a PUT carrying a write condition, which must not interleave with
/// another one (s3s-fs checks the condition and writes in two steps).
fn is_conditional_put<B>(req: &hyper::http::Request<B>) -> bool {
    req.method() == hyper::http::Method::PUT
        && (req
            .headers()
            .contains_key(hyper::http::header::IF_NONE_MATCH)
            || req.headers().contains_key(hyper::http::header::IF_MATCH))
}

/// The limits [`serve`] applies to each connection and request.
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_timeout: Duration,
    request_timeout: Duration,
    max_connections: usize,
}

/// Serves `service` on `listener` until `stop` completes.
async fn serve(service: S3Service, listener: TcpListener, limits: Limits, stop: StopSignal) {
    // HTTP/1.1 only (what S3 clients speak): the auto builder's version detection
    // waits for a first byte with no timeout, so an idle socket would be kept forever.
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conditional = Arc::new(tokio::sync::Mutex::new(()));
    accept_until(
        "S3 server",
        listener,
        limits.max_connections,
        stop,
        |socket, _, permit, graceful| {
            let service = service.clone();
            let conditional = conditional.clone();
            let handler = service_fn(move |req: hyper::http::Request<hyper::body::Incoming>| {
                let service = service.clone();
                let conditional = conditional.clone();
                async move {
                    let _one_at_a_time = if is_conditional_put(&req) {
                        Some(conditional.lock_owned().await)
                    } else {
                        None
                    };
                    match tokio::time::timeout(
                        limits.request_timeout,
                        hyper::service::Service::call(&service, req),
                    )
                    .await
                    {
                        Ok(answer) => answer,
                        Err(_) => Err(s3s::HttpError::from_std_error(
                            format!("request not done within {:?}", limits.request_timeout).into(),
                        )),
                    }
                }
            });
            let conn = http.serve_connection(TokioIo::new(socket), handler);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    tracing::debug!("S3 server connection ended with an error: {err}");
                }
                drop(permit);
            });
        },
    )
    .await;
}

impl Limits {
    fn of(config: &ServerConfig) -> Self {
        Self {
            header_timeout: config.header_timeout,
            request_timeout: config.request_timeout,
            max_connections: config.max_connections,
        }
    }
}

/// A running embedded S3 server. It runs on its own tokio runtime in
/// background threads, so blocking code can use it. Stopped by
/// [`S3Server::shutdown`] or when dropped.
pub struct S3Server {
    addr: SocketAddr,
    server: BackgroundServer,
}

impl fmt::Debug for S3Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl S3Server {
    /// Starts on its own tokio runtime in background thread(s), so blocking code (tests, the demo) can use it.
    ///
    /// Returns once the server listens.
    ///
    /// # Errors
    ///
    /// An invalid bucket name in [`ServerConfig::create_buckets`], an empty
    /// key, a directory that cannot be created, or an address that cannot be
    /// bound.
    pub fn start(config: ServerConfig) -> anyhow::Result<S3Server> {
        let (service, listener) = prepare(&config)?;
        let addr = listener
            .local_addr()
            .context("read the listening address")?;
        let limits = Limits::of(&config);
        let server = BackgroundServer::spawn("sensorlake-s3", listener, move |listener, stop| {
            serve(service, listener, limits, stop)
        })?;
        tracing::info!(dir = %config.dir.display(), "S3 server listening on http://{addr}");
        Ok(S3Server { addr, server })
    }

    /// The address the server listens on (with the actual port when the
    /// configured port was 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for clients, `http://IP:PORT` (IPv6 in brackets).
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s)
    /// and waits for the server threads to end. Also done on drop.
    pub fn shutdown(mut self) {
        self.server.stop();
    }
}

/// Blocking: serve until Ctrl-C / SIGTERM (for `sensorlake serve`).
///
/// Calls `on_listening` with the bound address once the listener is bound and the
/// directory prepared (never before: a busy port fails first, with nothing created or
/// announced); in-flight requests get up to 5 s to finish after the signal.
///
/// # Errors
///
/// The same configuration errors as [`S3Server::start`], or a failure to
/// install the signal handlers.
pub fn serve_until_signal(
    config: ServerConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let (service, listener) = prepare(&config)?;
    let addr = listener
        .local_addr()
        .context("read the listening address")?;
    let limits = Limits::of(&config);
    run_until_signal("sensorlake-s3", listener, |listener, stop| async move {
        on_listening(addr);
        serve(service, listener, limits, stop).await;
        tracing::info!("S3 server stopped");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "sensor-lake", "a.b.c", "0-9", &"a".repeat(63)] {
            validate_bucket_name(ok).unwrap();
            assert!(s3s::path::check_bucket_name(ok), "{ok}");
        }
        for (bad, why) in [
            ("ab", "shorter than 3"),
            ("", "shorter than 3"),
            (&"a".repeat(64), "longer than 63"),
            ("Sensor", "'S' is not allowed"),
            ("a_b", "'_' is not allowed"),
            ("-abc", "start and end"),
            ("abc.", "start and end"),
            ("a..b", "start and end"),
            ("192.168.1.1", "IP address"),
            ("xn--abc", "xn--"),
        ] {
            let err = validate_bucket_name(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!s3s::path::check_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn keys_that_would_leave_the_bucket_or_the_file_system_are_refused() {
        let put = hyper::http::Method::PUT;
        let b = "sensorlake";
        let hive = format!(
            "raw/device_id={}/dt=2024-03-01/hour=08/1709280000000000-0123abcd.parquet",
            "d".repeat(64)
        );
        for ok in [
            "a",
            "raw/device_id=x/dt=2024-01-01/f.parquet",
            "a.b/..c/d..",
            "dir/",
            &hive,
        ] {
            check_key(b, ok, &put, false).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
        for (bad, code) in [
            ("..", S3ErrorCode::InvalidArgument),
            ("../other/x.bin", S3ErrorCode::InvalidArgument),
            ("a/../../b", S3ErrorCode::InvalidArgument),
            ("a/./b", S3ErrorCode::InvalidArgument),
            ("a//b", S3ErrorCode::InvalidArgument),
            ("/a", S3ErrorCode::InvalidArgument),
            (&"k".repeat(159), S3ErrorCode::KeyTooLongError),
            (&"a/".repeat(513), S3ErrorCode::KeyTooLongError),
        ] {
            let err = check_key(b, bad, &put, false).unwrap_err();
            assert_eq!(*err.code(), code, "{bad}");
        }
        // The longest key s3s-fs can keep in this bucket.
        check_key(b, &"k".repeat(158), &put, false).unwrap();
        assert_eq!(metadata_file_name_len(b, &"k".repeat(158)), 255);
        let err = check_key(b, "dir/", &put, true).unwrap_err();
        assert_eq!(*err.code(), S3ErrorCode::NotImplemented);
    }

    #[test]
    fn the_region_is_read_from_the_credential_scope() {
        assert_eq!(
            scope_region("AKIAIOSFODNN7EXAMPLE/20240301/eu-central-1/s3/aws4_request"),
            Some("eu-central-1")
        );
        assert_eq!(scope_region("AKID"), None);
    }

    #[test]
    fn config_debug_redacts_the_secret() {
        let config = ServerConfig::new(
            "/tmp/x",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("EXAMPLEKEY"), "{debug}");
        assert_eq!(config.addr, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
}
