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
//!   configured key pair; unsigned requests are 403 `AccessDenied`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
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
}

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

/// Rejects unsigned requests and object requests to missing buckets.
struct AccessPolicy {
    root: PathBuf,
}

#[async_trait::async_trait]
impl S3Access for AccessPolicy {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        if let S3Path::Object { bucket, .. } = cx.s3_path() {
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
    builder.set_access(AccessPolicy { root });
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

/// Serves `service` on `listener` until `stop` completes.
async fn serve(service: S3Service, listener: TcpListener, stop: StopSignal) {
    let http = ConnBuilder::new(TokioExecutor::new());
    accept_until("S3 server", listener, stop, |socket, _, graceful| {
        let conn = http.serve_connection(TokioIo::new(socket), service.clone());
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!("S3 server connection ended with an error: {err}");
            }
        });
    })
    .await;
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
        let server = BackgroundServer::spawn("sensorlake-s3", listener, move |listener, stop| {
            serve(service, listener, stop)
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
    run_until_signal("sensorlake-s3", listener, |listener, stop| async move {
        on_listening(addr);
        serve(service, listener, stop).await;
        tracing::info!("S3 server stopped");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
