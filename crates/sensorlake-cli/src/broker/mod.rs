//! `sensorlake broker`: the presign broker. It holds the S3 credentials and gives each
//! registered device presigned PUT URLs for exactly the files it declares — keys of its
//! own layout and prefix, timestamps near now, the declared `Content-Length` and
//! `Content-MD5` signed, `If-None-Match: *` signed — so a device holds only a revocable
//! token of its own.
//!
//! The protocol is [`sensorlake::broker_api`]; the device side is
//! [`sensorlake::broker_client::BrokerClient`]. Parts: [`registry`] (devices and token
//! hashes), [`audit`] (JSON-lines decisions), [`ratelimit`] (per-device token buckets),
//! [`service`] (the HTTP handler), [`cli`] (the subcommands). Here: configuration,
//! TLS, and the server loop.
//!
//! TLS (rustls) is on when a certificate and key are given. Plain HTTP is accepted only on
//! a loopback address (tests, the demo, a TLS-terminating proxy on the same host) unless
//! explicitly forced: a token sent in clear text is a token given away.

pub mod audit;
pub mod cli;
pub mod ratelimit;
pub mod registry;
pub mod service;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sensorlake::key::TimeWindow;
use sensorlake::presign::{Credentials, S3Target};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::server_thread::{BackgroundServer, StopSignal, accept_until, run_until_signal};

pub use ratelimit::RateLimit;
pub use service::Stats;

/// How long a client may take for its TLS handshake and its request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain (leaf first).
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// What the broker signs for, and its limits.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Address to listen on. Default `127.0.0.1:0` (a free port).
    pub addr: SocketAddr,
    /// The device registry file.
    pub registry: PathBuf,
    /// The audit log (JSON lines, appended).
    pub audit_log: PathBuf,
    /// Where objects go.
    pub target: S3Target,
    /// The credentials that sign (never leave the broker).
    pub credentials: Credentials,
    /// TLS certificate and key; `None` = plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Serve plain HTTP on a non-loopback address (tokens then cross the network in clear).
    pub allow_plain_http: bool,
    /// URL lifetime unless the device asks for another. Default 300 s.
    pub url_expiry: Duration,
    /// The longest URL lifetime a device may ask for. Default 900 s.
    pub max_url_expiry: Duration,
    /// Accepted key timestamps around now. Default 30 days back, 5 min ahead.
    pub window: TimeWindow,
    /// Files per request. Default [`sensorlake::broker_api::DEFAULT_MAX_FILES`].
    pub max_files: usize,
    /// Largest request body. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Largest declared object. Default 16 MiB.
    pub max_object_bytes: u64,
    /// Per-device rate limit; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Sign `If-None-Match: *` (the server refuses to overwrite). Default on; turn off
    /// only for servers without conditional writes.
    pub conditional_writes: bool,
    /// How long a client may take to send its request body once the head arrived;
    /// then it gets 408 and the connection is closed. Default [`DEFAULT_BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog. Default
    /// [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
}

/// Default [`BrokerConfig::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`BrokerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("addr", &self.addr)
            .field("registry", &self.registry)
            .field("audit_log", &self.audit_log)
            .field("target", &self.target)
            .field("credentials", &self.credentials)
            .field("tls", &self.tls)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("url_expiry", &self.url_expiry)
            .field("max_url_expiry", &self.max_url_expiry)
            .field("window", &self.window)
            .field("max_files", &self.max_files)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_object_bytes", &self.max_object_bytes)
            .field("rate_limit", &self.rate_limit)
            .field("conditional_writes", &self.conditional_writes)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl BrokerConfig {
    /// A configuration with the defaults listed on each field.
    pub fn new(
        registry: impl Into<PathBuf>,
        audit_log: impl Into<PathBuf>,
        target: S3Target,
        credentials: Credentials,
    ) -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            registry: registry.into(),
            audit_log: audit_log.into(),
            target,
            credentials,
            tls: None,
            allow_plain_http: false,
            url_expiry: sensorlake::presign::DEFAULT_EXPIRY,
            max_url_expiry: Duration::from_secs(900),
            window: TimeWindow::default(),
            max_files: sensorlake::broker_api::DEFAULT_MAX_FILES,
            max_body_bytes: 64 * 1024,
            max_object_bytes: 16 * 1024 * 1024,
            rate_limit: Some(RateLimit::default()),
            conditional_writes: true,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<()> {
        if self.tls.is_none() && !self.addr.ip().is_loopback() && !self.allow_plain_http {
            bail!(
                "refusing to serve plain HTTP on {}: device tokens would cross the network in clear text. Give --tls-cert and --tls-key, listen on a loopback address behind a TLS proxy, or force it with --insecure-http",
                self.addr
            );
        }
        if self.url_expiry < Duration::from_secs(1) || self.url_expiry > self.max_url_expiry {
            bail!(
                "URL expiry {:?} must be between 1 s and the maximum {:?}",
                self.url_expiry,
                self.max_url_expiry
            );
        }
        if self.max_url_expiry > sensorlake::presign::MAX_EXPIRY {
            bail!(
                "maximum URL expiry {:?} exceeds S3's 7 days",
                self.max_url_expiry
            );
        }
        if self.max_files == 0 {
            bail!("max files per request must be at least 1");
        }
        if let Some(limit) = self.rate_limit
            && (limit.per_minute == 0 || (limit.burst as usize) < self.max_files)
        {
            bail!(
                "rate limit: {} per minute with a burst of {} cannot serve a request of {} files; use a burst of at least --max-files",
                limit.per_minute,
                limit.burst,
                self.max_files
            );
        }
        if self.max_body_bytes < 1024 {
            bail!("max request body must be at least 1024 bytes");
        }
        if self.body_timeout.is_zero() {
            bail!("the body timeout must be longer than 0");
        }
        if self.max_connections == 0 {
            bail!("max connections must be at least 1");
        }
        // Fails early on a bad endpoint or bucket.
        sensorlake::presign::Signer::new(&self.target, &self.credentials, self.url_expiry)?;
        Ok(())
    }
}

/// A TLS acceptor for a PEM certificate chain and key.
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("cannot read the certificate {}", files.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", files.cert.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("{} is not a PEM private key", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match or are not supported")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Validates, opens the registry and audit log, binds the listener.
fn prepare(
    config: &BrokerConfig,
) -> Result<(
    Arc<service::State>,
    std::net::TcpListener,
    Option<TlsAcceptor>,
)> {
    config.validate()?;
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let state = Arc::new(service::State::new(config)?);
    let listener = std::net::TcpListener::bind(config.addr)
        .with_context(|| format!("listen on {}", config.addr))?;
    listener
        .set_nonblocking(true)
        .context("make the listener non-blocking")?;
    Ok((state, listener, tls))
}

/// Serves the broker on `listener` (behind TLS when `tls` is set) until `stop` completes.
async fn serve(
    state: Arc<service::State>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stop: StopSignal,
) {
    // HTTP/1.1 only: the auto builder's version detection waits for a first byte with
    // no timeout, so an idle plain-HTTP socket would hold a connection slot forever.
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT);
    let max_connections = state.max_connections();
    accept_until(
        "broker",
        listener,
        max_connections,
        stop,
        |socket, remote, permit, graceful| {
            let state = state.clone();
            let service = service_fn(move |req| {
                let state = state.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(service::handle(&state, remote, req).await)
                }
            });
            let http = http.clone();
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                let result = match tls {
                    None => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(socket), service))
                            .await
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket))
                                .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(err)) => {
                                    tracing::debug!(%remote, "broker: TLS handshake failed: {err}");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%remote, "broker: TLS handshake timed out");
                                    return;
                                }
                            };
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                };
                if let Err(err) = result {
                    tracing::debug!(%remote, "broker connection ended with an error: {err}");
                }
                drop(permit);
            });
        },
    )
    .await;
}

/// A running broker on its own tokio runtime in background threads (tests, the demo).
/// Stopped by [`Broker::shutdown`] or when dropped.
pub struct Broker {
    addr: SocketAddr,
    tls: bool,
    state: Arc<service::State>,
    server: BackgroundServer,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Starts the broker; returns once it listens.
    pub fn start(config: BrokerConfig) -> Result<Self> {
        let (state, listener, tls) = prepare(&config)?;
        let addr = listener
            .local_addr()
            .context("read the listening address")?;
        let tls_on = tls.is_some();
        let serving = state.clone();
        let server =
            BackgroundServer::spawn("sensorlake-broker", listener, move |listener, stop| {
                serve(serving, listener, tls, stop)
            })?;
        let scheme = if tls_on { "https" } else { "http" };
        tracing::info!(registry = %config.registry.display(), audit_log = %config.audit_log.display(), "broker listening on {scheme}://{addr}");
        Ok(Self {
            addr,
            tls: tls_on,
            state,
            server,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL devices use: `http(s)://IP:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Counts of decisions so far.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// The audit log file.
    pub fn audit_log(&self) -> &Path {
        self.state.audit_log()
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), waits for the threads.
    pub fn shutdown(mut self) {
        self.server.stop();
    }
}

/// Blocking: serve until Ctrl-C / SIGTERM (for `sensorlake broker serve`).
pub fn serve_until_signal(config: BrokerConfig) -> Result<()> {
    let (state, listener, tls) = prepare(&config)?;
    let addr = listener
        .local_addr()
        .context("read the listening address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    run_until_signal("sensorlake-broker", listener, |listener, stop| async move {
        tracing::info!(
            registry = %config.registry.display(),
            audit_log = %config.audit_log.display(),
            bucket = %config.target.bucket,
            "broker listening on {scheme}://{addr} (Ctrl-C to stop)"
        );
        serve(state, listener, tls, stop).await;
        tracing::info!("broker stopped");
    })
}
