//! A blocking HTTP/1.1 client for the host that implements
//! [`embedded_svc::http::client::Connection`], on [`ureq`].
//!
//! [`HostConnection`] is the host twin of ESP-IDF's `EspHttpConnection`: the
//! library's upload code is generic over `Connection`, so the exact code the
//! device runs can be exercised on a host (tests, the demo, the host agent)
//! through this adapter.
//!
//! Semantics mirrored from `EspHttpConnection`:
//!
//! * the state machine `initiate_request` → `write` (body) → `initiate_response`
//!   → `read`; a new request may be initiated while a response is still open,
//!   in which case the rest of it is discarded;
//! * the caller passes `Content-Length` among the headers and then writes
//!   exactly that many body bytes; without a `Content-Length`, `PUT`, `POST`
//!   and `PATCH` are sent with `Content-Length: 0`;
//! * the `Host` header is derived from the URI;
//! * response headers are looked up case-insensitively;
//! * [`Connection::raw_connection`] is not supported.
//!
//! Differences, on purpose:
//!
//! * the request body is buffered and sent at `initiate_response` (bodies are
//!   whole Parquet files or small forms);
//! * chunked *request* bodies are not supported (ESP-IDF uses them for `POST`
//!   without `Content-Length`): writing a body without a declared
//!   `Content-Length`, or past it, is an [`HttpErrorCategory::InvalidRequest`]
//!   error instead;
//! * redirects are never followed, and no proxy is used;
//! * misuse of the state machine returns [`HttpErrorCategory::InvalidState`]
//!   errors instead of panicking; [`Status::status`] is `0` and no header is
//!   found while no response is open;
//! * [`Status::status_message`] returns the standard reason phrase of the status.
//!
//! One [`ureq::Agent`] per connection keeps the socket alive between requests
//! when the response was read to its end; a body-less idempotent request whose
//! kept-alive socket was closed by the server before it answered is resent once.

use std::fmt;
use std::io::{self, Read as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use embedded_svc::http::client::Connection;
use embedded_svc::http::{Headers, Method, Status};
use embedded_svc::io::{ErrorKind, ErrorType, Read, Write};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use ureq::http;

/// How much of an unread response body is discarded to keep the socket for the
/// next request; a longer rest closes the socket instead.
const MAX_DRAIN_BYTES: u64 = 64 * 1024;
/// How long ureq keeps an idle socket (its default).
const MAX_IDLE: Duration = Duration::from_secs(15);
/// Request bodies larger than this are sent with `Expect: 100-continue`, so that a
/// server refusing the request before reading a body that does not fit the socket
/// buffers still gets its answer through (ureq cannot read a response after the
/// server stopped reading the body).
const EXPECT_CONTINUE_BYTES: usize = 1024 * 1024;

/// Configuration of a [`HostConnection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Timeout of establishing the TCP connection, per resolved address.
    /// Default: 5 s.
    pub connect_timeout: Duration,
    /// Timeout of every socket read and write (TLS handshake, request,
    /// response head and body): how long the server may stay silent.
    /// Default: 15 s.
    pub timeout: Duration,
    /// A PEM file with the CA certificate(s) to trust for `https`, for
    /// example the CA of a self-hosted MinIO. When `None`, the Mozilla roots
    /// of `webpki-roots` are trusted.
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            ca_file: None,
        }
    }
}

/// What went wrong in an [`HttpError`], for callers that classify failures
/// (retry later, or give up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpErrorCategory {
    /// The [`HttpConfig`] is unusable (zero timeout, unreadable CA file).
    Config,
    /// The request is invalid: bad URI, header, or body length.
    InvalidRequest,
    /// The `Connection` methods were called out of order.
    InvalidState,
    /// Resolving the host or connecting to it failed (other than by timeout).
    Connect,
    /// The TLS handshake failed for a reason other than the certificate.
    Tls,
    /// The server's certificate was rejected (unknown issuer, wrong name, expired...).
    Certificate,
    /// The server did not answer within the configured timeout.
    Timeout,
    /// The server closed the connection before the response was complete.
    ConnectionClosed,
    /// Another I/O error on the socket.
    Io,
    /// The response is not valid HTTP/1.x.
    MalformedResponse,
    /// The operation is not supported by this adapter.
    Unsupported,
}

/// The error of [`HostConnection`]: a category, an [`embedded_io`-style
/// kind](ErrorKind), and a message naming what failed and where.
///
/// `Debug` prints the message as a sentence, like `Display`: the library's generic
/// upload code (`sensorlake::upload`, the broker and STS clients) can format a
/// connection's error only through `Debug`, and that text reaches the agent's log.
#[derive(Clone)]
pub struct HttpError {
    category: HttpErrorCategory,
    kind: ErrorKind,
    message: String,
}

impl HttpError {
    fn new(category: HttpErrorCategory, message: impl Into<String>) -> Self {
        let kind = match category {
            HttpErrorCategory::Config | HttpErrorCategory::InvalidRequest => {
                ErrorKind::InvalidInput
            }
            HttpErrorCategory::InvalidState | HttpErrorCategory::Connect => ErrorKind::Other,
            HttpErrorCategory::Tls
            | HttpErrorCategory::Certificate
            | HttpErrorCategory::MalformedResponse => ErrorKind::InvalidData,
            HttpErrorCategory::Timeout => ErrorKind::TimedOut,
            HttpErrorCategory::ConnectionClosed => ErrorKind::ConnectionAborted,
            HttpErrorCategory::Io => ErrorKind::Other,
            HttpErrorCategory::Unsupported => ErrorKind::Unsupported,
        };
        Self {
            category,
            kind,
            message: message.into(),
        }
    }

    /// Classifies a ureq error of a request to `origin`; `what` names the step
    /// (`"send the request to"`, `"read the response body from"`).
    fn from_ureq(
        err: ureq::Error,
        what: &str,
        origin: &str,
        config: &HttpConfig,
        reused: bool,
    ) -> Self {
        use HttpErrorCategory as C;
        let tls = |tls: &rustls::Error| {
            let category = match tls {
                rustls::Error::InvalidCertificate(_) => C::Certificate,
                _ => C::Tls,
            };
            Self::new(
                category,
                format!("TLS handshake with {origin} failed: TLS error: {tls}"),
            )
        };
        let timeout = |after: Duration, what: &str| {
            Self::new(
                C::Timeout,
                format!("{what} {origin}: timed out after {after:?}"),
            )
        };
        match err {
            ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => {
                timeout(config.connect_timeout, "connect to")
            }
            ureq::Error::Timeout(_) => timeout(config.timeout, what),
            ureq::Error::Rustls(err) => tls(&err),
            ureq::Error::Io(err) => {
                if let Some(err) = err
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                {
                    return tls(err);
                }
                let (category, message) = match err.kind() {
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                        return timeout(config.timeout, what);
                    }
                    io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::NetworkDown
                    | io::ErrorKind::AddrNotAvailable => {
                        (C::Connect, format!("connect to {origin} failed: {err}"))
                    }
                    io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe => {
                        let kept = if reused { "kept-alive " } else { "" };
                        return Self::new(
                            C::ConnectionClosed,
                            format!(
                                "{origin} closed the {kept}connection without sending a response ({err})"
                            ),
                        );
                    }
                    _ => (C::Io, format!("{what} {origin} failed: {err}")),
                };
                let mut error = Self::new(category, message);
                error.kind = ErrorKind::from(err.kind());
                error
            }
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
                Self::new(C::Connect, format!("connect to {origin} failed: {err}"))
            }
            ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => Self::new(
                C::MalformedResponse,
                format!("malformed response from {origin}: {err}"),
            ),
            ureq::Error::Http(_) | ureq::Error::BadUri(_) => invalid_request(err.to_string()),
            ureq::Error::Tls(_) | ureq::Error::TlsRequired => {
                Self::new(C::Tls, format!("TLS handshake with {origin} failed: {err}"))
            }
            err => Self::new(C::Io, format!("{what} {origin} failed: {err}")),
        }
    }

    /// The category of the failure.
    #[must_use]
    pub fn category(&self) -> HttpErrorCategory {
        self.category
    }

    /// `true` when the server did not answer (or accept the connection)
    /// within the configured timeout.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.category == HttpErrorCategory::Timeout
    }

    /// The message, without the category.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

impl embedded_svc::io::Error for HttpError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

fn invalid_request(message: impl Into<String>) -> HttpError {
    HttpError::new(HttpErrorCategory::InvalidRequest, message)
}

fn config_error(message: String) -> HttpError {
    HttpError::new(HttpErrorCategory::Config, message)
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Delete => "DELETE",
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Copy => "COPY",
        Method::Lock => "LOCK",
        Method::MkCol => "MKCOL",
        Method::Move => "MOVE",
        Method::Propfind => "PROPFIND",
        Method::Proppatch => "PROPPATCH",
        Method::Search => "SEARCH",
        Method::Unlock => "UNLOCK",
        Method::Bind => "BIND",
        Method::Rebind => "REBIND",
        Method::Unbind => "UNBIND",
        Method::Acl => "ACL",
        Method::Report => "REPORT",
        Method::MkActivity => "MKACTIVITY",
        Method::Checkout => "CHECKOUT",
        Method::Merge => "MERGE",
        Method::MSearch => "M-SEARCH",
        Method::Notify => "NOTIFY",
        Method::Subscribe => "SUBSCRIBE",
        Method::Unsubscribe => "UNSUBSCRIBE",
        Method::Patch => "PATCH",
        Method::Purge => "PURGE",
        Method::MkCalendar => "MKCALENDAR",
        Method::Link => "LINK",
        Method::Unlink => "UNLINK",
    }
}

/// A request being written: sent at `initiate_response`.
#[derive(Debug)]
struct Pending {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    /// Scheme-less `host:port`, for messages and keep-alive.
    origin: String,
    /// `Content-Length` declared by the caller, if any.
    declared: Option<u64>,
    body: Vec<u8>,
}

/// Checks a request and turns it into a [`Pending`] one.
fn prepare(method: Method, uri: &str, headers: &[(&str, &str)]) -> Result<Pending, HttpError> {
    let uri = uri.split_once('#').map_or(uri, |(before, _)| before);
    let bad = |why: &str| invalid_request(format!("invalid URI {uri:?}: {why}"));
    let parsed: http::Uri = uri.parse().map_err(|err| bad(&format!("{err}")))?;
    let default_port = match parsed.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => 80,
        Some(s) if s.eq_ignore_ascii_case("https") => 443,
        Some(s) => {
            return Err(bad(&format!(
                "unsupported scheme {s:?} (expected http or https)"
            )));
        }
        None => return Err(bad("no scheme")),
    };
    let authority = parsed.authority().ok_or_else(|| bad("no host"))?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(bad("invalid host, or user information (not supported)"));
    }
    let port = match authority.as_str()[authority.host().len()..].strip_prefix(':') {
        None | Some("") => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(bad(&format!("invalid port {port:?}"))),
        },
    };
    let mut declared: Option<u64> = None;
    let mut map = http::HeaderMap::new();
    for &(name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            let len = value.trim().parse::<u64>().map_err(|_| {
                invalid_request(format!("invalid Content-Length header value {value:?}"))
            })?;
            if declared.is_some_and(|d| d != len) {
                return Err(invalid_request("conflicting Content-Length headers"));
            }
            declared = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::new(
                HttpErrorCategory::Unsupported,
                "Transfer-Encoding in requests is not supported: pass Content-Length and write exactly that many bytes",
            ));
        }
        let header = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid_request(format!("invalid header name {name:?}")))?;
        let value = http::HeaderValue::from_str(value.trim()).map_err(|_| {
            invalid_request(format!(
                "invalid value of header {name}: control characters are not allowed"
            ))
        })?;
        map.append(header, value);
    }
    Ok(Pending {
        method: http::Method::from_bytes(method_name(method).as_bytes())
            .map_err(|err| invalid_request(err.to_string()))?,
        origin: format!("{}:{port}", authority.host()),
        uri: parsed,
        headers: map,
        declared,
        body: Vec::new(),
    })
}

/// The status line and headers of the response: the [`Connection::Headers`]
/// of [`HostConnection`].
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    status: u16,
    reason: Option<&'static str>,
    headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// All response headers, in the order received (names in lower case).
    #[must_use]
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

impl Status for ResponseHead {
    fn status(&self) -> u16 {
        self.status
    }

    fn status_message(&self) -> Option<&'_ str> {
        self.reason
    }
}

impl Headers for ResponseHead {
    fn header(&self, name: &str) -> Option<&'_ str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where a [`ResponseBody`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    /// No response is open.
    Idle,
    Open,
    /// Read to its end.
    Done,
    /// Reading it failed; the socket was dropped.
    Failed,
}

/// The response body reader: the [`Connection::Read`] of [`HostConnection`].
pub struct ResponseBody {
    reader: Option<ureq::BodyReader<'static>>,
    state: BodyState,
    origin: String,
    config: HttpConfig,
    /// Bytes read so far, of `Content-Length` (if given).
    read: u64,
    length: Option<u64>,
    chunked: bool,
    /// Whether ureq keeps the socket once the body is read to its end.
    keep_alive: bool,
    /// When the body ended on a socket kept alive.
    kept_since: Option<Instant>,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("origin", &self.origin)
            .field("state", &self.state)
            .field("read", &self.read)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl ResponseBody {
    fn idle(config: HttpConfig) -> Self {
        Self {
            reader: None,
            state: BodyState::Idle,
            origin: String::new(),
            config,
            read: 0,
            length: None,
            chunked: false,
            keep_alive: false,
            kept_since: None,
        }
    }

    fn read_body(&mut self, out: &mut [u8]) -> Result<usize, HttpError> {
        let state_error = |message: &str| HttpError::new(HttpErrorCategory::InvalidState, message);
        let reader = match (self.state, self.reader.as_mut()) {
            (BodyState::Idle, _) => {
                return Err(state_error("read called before initiate_response"));
            }
            (BodyState::Failed, _) => {
                return Err(state_error(
                    "the response body is unavailable: an earlier read of it failed",
                ));
            }
            (BodyState::Done, _) | (BodyState::Open, None) => return Ok(0),
            _ if out.is_empty() => return Ok(0),
            (BodyState::Open, Some(reader)) => reader,
        };
        match reader.read(out) {
            Ok(0) => {
                self.state = BodyState::Done;
                self.reader = None;
                self.kept_since = self.keep_alive.then(Instant::now);
                Ok(0)
            }
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(err) => {
                self.state = BodyState::Failed;
                self.reader = None;
                let closed = matches!(
                    err.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                );
                let origin = &self.origin;
                let message = match (self.length, self.chunked) {
                    (Some(total), _) if closed => format!(
                        "{origin} closed the connection after {} of {total} response body bytes",
                        self.read
                    ),
                    (_, true) if closed => format!(
                        "{origin} closed the connection in the middle of a chunked response body"
                    ),
                    _ => {
                        let what = "read the response body from";
                        return Err(HttpError::from_ureq(
                            err.into(),
                            what,
                            origin,
                            &self.config,
                            false,
                        ));
                    }
                };
                Err(HttpError::new(HttpErrorCategory::ConnectionClosed, message))
            }
        }
    }

    /// Discards up to `limit` bytes of the rest of the body; `true` if it ended.
    fn drain(&mut self, limit: u64) -> bool {
        let mut scratch = [0_u8; 4096];
        let mut drained = 0_u64;
        while drained <= limit {
            match self.read_body(&mut scratch) {
                Ok(0) => return true,
                Ok(n) => drained += n as u64,
                Err(_) => return false,
            }
        }
        false
    }
}

impl ErrorType for ResponseBody {
    type Error = HttpError;
}

impl Read for ResponseBody {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.read_body(buf)
    }
}

/// Where the connection is in the `Connection` state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress (initial, or after a failure).
    Idle,
    /// The request was initiated; the body is being written.
    Request,
    /// The response head was read; the body is being read.
    Response,
}

/// A blocking HTTP/1.1 client connection (plain TCP or TLS via ureq's rustls
/// with ring) implementing [`embedded_svc::http::client::Connection`], the host
/// twin of ESP-IDF's `EspHttpConnection`. See the [module docs](self).
pub struct HostConnection {
    config: HttpConfig,
    agent_config: ureq::config::Config,
    agent: ureq::Agent,
    phase: Phase,
    pending: Option<Pending>,
    /// The origin whose socket ureq keeps alive, and since when.
    kept: Option<(String, Instant)>,
    head: ResponseHead,
    body: ResponseBody,
}

impl fmt::Debug for HostConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConnection")
            .field("config", &self.config)
            .field("phase", &self.phase)
            .field("status", &self.head.status)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// The roots to trust: the certificates of the CA file, or the webpki roots.
fn root_certs(config: &HttpConfig) -> Result<ureq::tls::RootCerts, HttpError> {
    let Some(path) = &config.ca_file else {
        return Ok(ureq::tls::RootCerts::WebPki);
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| config_error(format!("read CA file {}: {err}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| config_error(format!("parse CA file {}: {err}", path.display())))?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    let mut check = rustls::RootCertStore::empty();
    for cert in &certs {
        check.add(cert.clone()).map_err(|err| {
            config_error(format!(
                "CA file {}: unusable certificate: {err}",
                path.display()
            ))
        })?;
    }
    let certs: Vec<_> = certs
        .iter()
        .map(|cert| ureq::tls::Certificate::from_der(cert).to_owned())
        .collect();
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

impl HostConnection {
    /// Creates an idle connection; nothing is connected until the first
    /// request.
    ///
    /// # Errors
    ///
    /// An [`HttpErrorCategory::Config`] error if a timeout is zero or the CA
    /// file is unreadable or holds no usable PEM certificate.
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        if config.connect_timeout.is_zero() || config.timeout.is_zero() {
            return Err(config_error(
                "the HTTP connect timeout and I/O timeout must be greater than zero".to_owned(),
            ));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(root_certs(&config)?)
            .build();
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("sensorlake-host/", env!("CARGO_PKG_VERSION")))
            .accept("")
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.timeout))
            .timeout_per_write(Some(config.timeout))
            .timeout_await_100(Some((config.timeout / 2).min(Duration::from_secs(1))))
            .max_idle_age(MAX_IDLE)
            .tls_config(tls)
            .build();
        Ok(Self {
            agent: agent_config.new_agent(),
            agent_config,
            body: ResponseBody::idle(config.clone()),
            config,
            phase: Phase::Idle,
            pending: None,
            kept: None,
            head: ResponseHead::default(),
        })
    }

    /// The configuration this connection was created with.
    #[must_use]
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn state_error(&self, what: &str) -> HttpError {
        HttpError::new(
            HttpErrorCategory::InvalidState,
            format!("{what} is not allowed in the {:?} phase", self.phase),
        )
    }

    /// Sends the pending request once, with its body if it has or needs one.
    fn send(&self, p: &Pending) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let mut request = http::Request::builder()
            .method(p.method.clone())
            .uri(p.uri.clone())
            .body(())?;
        *request.headers_mut() = p.headers.clone();
        if p.body.len() > EXPECT_CONTINUE_BYTES && !p.headers.contains_key(http::header::EXPECT) {
            let continue_100 = http::HeaderValue::from_static("100-continue");
            request
                .headers_mut()
                .insert(http::header::EXPECT, continue_100);
        }
        let with_body = p.declared.unwrap_or(0) > 0
            || matches!(
                p.method,
                http::Method::PUT | http::Method::POST | http::Method::PATCH
            );
        if with_body {
            self.agent.run(request.map(|()| p.body.as_slice()))
        } else {
            self.agent.run(request)
        }
    }

    fn receive_response(&mut self, p: &Pending) -> Result<(), HttpError> {
        let declared = p.declared.unwrap_or(0);
        if (p.body.len() as u64) < declared {
            return Err(invalid_request(format!(
                "request body incomplete: {} of the {declared} bytes declared in Content-Length were written",
                p.body.len()
            )));
        }
        let reused = self
            .kept
            .take()
            .is_some_and(|(origin, since)| origin == p.origin && since.elapsed() < MAX_IDLE);
        let what = "send the request to";
        let classify = |err| HttpError::from_ureq(err, what, &p.origin, &self.config, reused);
        let idempotent = matches!(
            p.method,
            http::Method::GET
                | http::Method::HEAD
                | http::Method::PUT
                | http::Method::DELETE
                | http::Method::OPTIONS
                | http::Method::TRACE
        );
        let response = match self.send(p).map_err(classify) {
            // The kept-alive socket was closed by the server before it answered:
            // resend a body-less idempotent request once, on a fresh connection.
            Err(err)
                if reused
                    && idempotent
                    && declared == 0
                    && err.category() == HttpErrorCategory::ConnectionClosed =>
            {
                tracing::debug!(%err, "kept-alive socket was closed, retrying the request");
                self.send(p)
                    .map_err(|err| HttpError::from_ureq(err, what, &p.origin, &self.config, false))
            }
            other => other,
        }?;
        let (parts, body) = response.into_parts();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let has = |name: &str, token: &str| {
            headers.iter().any(|(n, v)| {
                n == name && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        };
        let request_close = p.headers.get_all(http::header::CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
        });
        let status = parts.status.as_u16();
        let length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        let chunked = has("transfer-encoding", "chunked");
        let no_body = p.method == http::Method::HEAD || status == 204 || status == 304;
        // A server that answers a request with a body by an error may not have
        // read that body, and closes the socket after the response.
        let body_consumed = declared == 0 || (200..300).contains(&status);
        if !body_consumed {
            // ureq would keep that socket: a fresh agent (pool) drops it once
            // the response is read.
            self.agent = self.agent_config.new_agent();
        }
        let keep_alive = parts.version == http::Version::HTTP_11
            && !has("connection", "close")
            && !request_close
            && body_consumed
            && (no_body || chunked || length.is_some());
        self.head = ResponseHead {
            status,
            reason: parts.status.canonical_reason(),
            headers,
        };
        self.body = ResponseBody {
            reader: Some(body.into_reader()),
            state: BodyState::Open,
            origin: p.origin.clone(),
            config: self.config.clone(),
            read: 0,
            length: length.filter(|_| !no_body),
            chunked,
            keep_alive,
            kept_since: None,
        };
        Ok(())
    }
}

impl Status for HostConnection {
    /// The status code of the open response, or `0` if none is open.
    fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase of the open response's status, if any.
    fn status_message(&self) -> Option<&'_ str> {
        self.head.status_message()
    }
}

impl Headers for HostConnection {
    /// A header of the open response, looked up case-insensitively.
    fn header(&self, name: &str) -> Option<&'_ str> {
        self.head.header(name)
    }
}

impl ErrorType for HostConnection {
    type Error = HttpError;
}

impl Read for HostConnection {
    /// Reads the response body; `Ok(0)` at its end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.phase != Phase::Response {
            return Err(self.state_error("read"));
        }
        Read::read(&mut self.body, buf)
    }
}

impl Write for HostConnection {
    /// Buffers request body bytes; all of `buf` is accepted or an error is returned.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let Some(pending) = self
            .pending
            .as_mut()
            .filter(|_| self.phase == Phase::Request)
        else {
            return Err(self.state_error("write"));
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(declared) = pending.declared else {
            return Err(invalid_request(
                "request body written without a Content-Length header (chunked request bodies are not supported)",
            ));
        };
        let written = pending.body.len() as u64;
        if written + buf.len() as u64 > declared {
            return Err(invalid_request(format!(
                "request body exceeds the declared Content-Length of {declared} bytes ({written} written, {} more offered)",
                buf.len()
            )));
        }
        pending.body.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        if self.phase != Phase::Request {
            return Err(self.state_error("flush"));
        }
        Ok(())
    }
}

impl Connection for HostConnection {
    type Headers = ResponseHead;

    type Read = ResponseBody;

    type RawConnectionError = HttpError;

    type RawConnection = Self;

    fn initiate_request<'a>(
        &'a mut self,
        method: Method,
        uri: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> Result<(), Self::Error> {
        if self.phase == Phase::Response {
            self.body.drain(MAX_DRAIN_BYTES);
        }
        // An undrained reader is dropped here, and ureq closes its socket.
        let body = std::mem::replace(&mut self.body, ResponseBody::idle(self.config.clone()));
        if let Some(since) = body.kept_since {
            self.kept = Some((body.origin, since));
        }
        self.phase = Phase::Idle;
        self.pending = None;
        self.head = ResponseHead::default();
        self.pending = Some(prepare(method, uri, headers)?);
        self.phase = Phase::Request;
        Ok(())
    }

    fn is_request_initiated(&self) -> bool {
        self.phase == Phase::Request
    }

    fn initiate_response(&mut self) -> Result<(), Self::Error> {
        if self.phase != Phase::Request {
            return Err(self.state_error("initiate_response"));
        }
        self.phase = Phase::Idle;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| self.state_error("initiate_response"))?;
        self.receive_response(&pending)?;
        self.phase = Phase::Response;
        Ok(())
    }

    fn is_response_initiated(&self) -> bool {
        self.phase == Phase::Response
    }

    fn split(&mut self) -> (&Self::Headers, &mut Self::Read) {
        (&self.head, &mut self.body)
    }

    /// Not supported (like `EspHttpConnection`): always an
    /// [`HttpErrorCategory::Unsupported`] error.
    fn raw_connection(&mut self) -> Result<&mut Self::RawConnection, Self::Error> {
        Err(HttpError::new(
            HttpErrorCategory::Unsupported,
            "raw_connection is not supported by HostConnection",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        let p = prepare(
            Method::Put,
            "http://127.0.0.1:9000/b/k%20x?X-Amz-Date=1#frag",
            &[],
        )
        .unwrap();
        assert_eq!(p.origin, "127.0.0.1:9000");
        assert_eq!(
            p.uri.to_string(),
            "http://127.0.0.1:9000/b/k%20x?X-Amz-Date=1"
        );
        assert_eq!(
            prepare(Method::Get, "HTTPS://example.com", &[])
                .unwrap()
                .origin,
            "example.com:443"
        );
        assert_eq!(
            prepare(Method::Get, "http://[::1]:8080/a", &[])
                .unwrap()
                .origin,
            "[::1]:8080"
        );
    }

    #[test]
    fn rejects_bad_uris() {
        for uri in [
            "",
            "example.com/a",
            "ftp://example.com/",
            "http:///a",
            "http://example.com:0/",
            "http://example.com:99999/",
            "http://user@example.com/",
            "http://example.com/a b",
            "http://exa mple.com/",
            "http://[::1/",
        ] {
            let err = prepare(Method::Get, uri, &[]).unwrap_err();
            assert_eq!(err.category(), HttpErrorCategory::InvalidRequest, "{uri}");
        }
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
        assert_eq!(
            Write::write(&mut conn, b"x").unwrap_err().category(),
            HttpErrorCategory::InvalidState
        );
        assert_eq!(
            conn.initiate_response().unwrap_err().category(),
            HttpErrorCategory::InvalidState
        );
        let mut buf = [0_u8; 4];
        assert_eq!(
            Read::read(&mut conn, &mut buf).unwrap_err().category(),
            HttpErrorCategory::InvalidState
        );
        let (_, body) = conn.split();
        assert_eq!(
            Read::read(body, &mut buf).unwrap_err().category(),
            HttpErrorCategory::InvalidState
        );
        assert_eq!(conn.status(), 0);
        assert_eq!(conn.header("content-length"), None);
        assert_eq!(
            conn.raw_connection().unwrap_err().category(),
            HttpErrorCategory::Unsupported
        );
    }

    #[test]
    fn rejects_bad_config() {
        let config = HttpConfig {
            timeout: Duration::ZERO,
            ..HttpConfig::default()
        };
        assert_eq!(
            HostConnection::new(config).unwrap_err().category(),
            HttpErrorCategory::Config
        );
        let config = HttpConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..HttpConfig::default()
        };
        let err = HostConnection::new(config).unwrap_err();
        assert_eq!(err.category(), HttpErrorCategory::Config);
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
