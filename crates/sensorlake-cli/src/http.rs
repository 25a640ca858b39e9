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

use self::HttpErrorCategory as C;

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
    /// Timeout of establishing the TCP connection. Default: 5 s.
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
            C::Config | C::InvalidRequest => ErrorKind::InvalidInput,
            C::Tls | C::Certificate | C::MalformedResponse => ErrorKind::InvalidData,
            C::Timeout => ErrorKind::TimedOut,
            C::ConnectionClosed => ErrorKind::ConnectionAborted,
            C::Unsupported => ErrorKind::Unsupported,
            C::InvalidState | C::Connect | C::Io => ErrorKind::Other,
        };
        let message = message.into();
        Self {
            category,
            kind,
            message,
        }
    }

    /// Classifies a ureq error of a request to `origin`; `what` names the step.
    fn from_ureq(
        err: ureq::Error,
        what: &str,
        origin: &str,
        config: &HttpConfig,
        reused: bool,
    ) -> Self {
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
        let timeout = |what: &str, after: Duration| {
            Self::new(
                C::Timeout,
                format!("{what} {origin}: timed out after {after:?}"),
            )
        };
        let err = match err {
            ureq::Error::Io(err) => err,
            ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => {
                return timeout("connect to", config.connect_timeout);
            }
            ureq::Error::Timeout(_) => return timeout(what, config.timeout),
            ureq::Error::Rustls(err) => return tls(&err),
            ureq::Error::Tls(_) | ureq::Error::TlsRequired => {
                return Self::new(C::Tls, format!("TLS handshake with {origin} failed: {err}"));
            }
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
                return Self::new(C::Connect, format!("connect to {origin} failed: {err}"));
            }
            ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => {
                return Self::new(
                    C::MalformedResponse,
                    format!("malformed response from {origin}: {err}"),
                );
            }
            ureq::Error::Http(_) | ureq::Error::BadUri(_) => {
                return invalid_request(err.to_string());
            }
            err => return Self::new(C::Io, format!("{what} {origin} failed: {err}")),
        };
        if let Some(err) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return tls(err);
        }
        use io::ErrorKind as K;
        let (category, message) = match err.kind() {
            K::TimedOut | K::WouldBlock => return timeout(what, config.timeout),
            K::ConnectionRefused
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::AddrNotAvailable => (C::Connect, format!("connect to {origin} failed: {err}")),
            K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                let kept = if reused { "kept-alive " } else { "" };
                let message = format!(
                    "{origin} closed the {kept}connection without sending a response ({err})"
                );
                return Self::new(C::ConnectionClosed, message);
            }
            _ => (C::Io, format!("{what} {origin} failed: {err}")),
        };
        Self {
            kind: ErrorKind::from(err.kind()),
            ..Self::new(category, message)
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
        self.category == C::Timeout
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
    HttpError::new(C::InvalidRequest, message)
}

fn config_error(message: String) -> HttpError {
    HttpError::new(C::Config, message)
}

/// A request being written: sent at `initiate_response`.
#[derive(Debug)]
struct Pending {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    /// `host:port`, for messages and keep-alive.
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
        _ => return Err(bad("unsupported scheme (expected http or https)")),
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
                C::Unsupported,
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
    // embedded_svc's method names are HTTP's in camel case.
    let method = match method {
        Method::MSearch => "M-SEARCH".to_owned(),
        method => format!("{method:?}").to_ascii_uppercase(),
    };
    Ok(Pending {
        method: http::Method::from_bytes(method.as_bytes())
            .map_err(|e| invalid_request(e.to_string()))?,
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

    /// Whether the comma-separated header `name` holds `token`.
    fn has(&self, name: &str, token: &str) -> bool {
        (self.headers.iter())
            .filter(|(n, _)| n == name)
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
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
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
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
    /// Whether ureq keeps the socket once the body is read to its end, and
    /// since when it does.
    keep_alive: bool,
    kept_since: Option<Instant>,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ResponseBody");
        f.field("origin", &self.origin)
            .field("state", &self.state)
            .field("read", &self.read);
        f.finish_non_exhaustive()
    }
}

impl ResponseBody {
    fn idle(config: HttpConfig) -> Self {
        let origin = String::new();
        let (read, length, chunked, keep_alive) = (0, None, false, false);
        let (reader, state, kept_since) = (None, BodyState::Idle, None);
        Self {
            reader,
            state,
            origin,
            config,
            read,
            length,
            chunked,
            keep_alive,
            kept_since,
        }
    }

    fn read_body(&mut self, out: &mut [u8]) -> Result<usize, HttpError> {
        let state_error = |message: &str| HttpError::new(C::InvalidState, message);
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
        let err = match reader.read(out) {
            Ok(0) => {
                (self.state, self.reader) = (BodyState::Done, None);
                self.kept_since = self.keep_alive.then(Instant::now);
                return Ok(0);
            }
            Ok(n) => {
                self.read += n as u64;
                return Ok(n);
            }
            Err(err) => err,
        };
        (self.state, self.reader) = (BodyState::Failed, None);
        let closed = matches!(
            err.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
        );
        let origin = &self.origin;
        let message = match (self.length, self.chunked) {
            (Some(total), _) if closed => {
                format!(
                    "{origin} closed the connection after {} of {total} response body bytes",
                    self.read
                )
            }
            (_, true) if closed => {
                format!("{origin} closed the connection in the middle of a chunked response body")
            }
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
        Err(HttpError::new(C::ConnectionClosed, message))
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
#[derive(Debug)]
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

/// The roots to trust: the certificates of the CA file, or the webpki roots.
fn root_certs(config: &HttpConfig) -> Result<ureq::tls::RootCerts, HttpError> {
    let Some(path) = &config.ca_file else {
        return Ok(ureq::tls::RootCerts::WebPki);
    };
    let path_error = |what: &str, err: &dyn fmt::Display| {
        config_error(format!("{what} CA file {}: {err}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| path_error("read", &err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| path_error("parse", &err))?;
    if certs.is_empty() {
        return Err(path_error("parse", &"no PEM certificate in it"));
    }
    let mut check = rustls::RootCertStore::empty();
    for cert in &certs {
        check
            .add(cert.clone())
            .map_err(|err| path_error("use", &err))?;
    }
    let certs: Vec<_> = certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
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
        let message = format!("{what} is not allowed in the {:?} phase", self.phase);
        HttpError::new(C::InvalidState, message)
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
        let kept = self.kept.take();
        let reused =
            kept.is_some_and(|(origin, since)| origin == p.origin && since.elapsed() < MAX_IDLE);
        let classify = |err, reused| {
            HttpError::from_ureq(err, "send the request to", &p.origin, &self.config, reused)
        };
        let idempotent = [
            http::Method::GET,
            http::Method::HEAD,
            http::Method::PUT,
            http::Method::DELETE,
        ]
        .contains(&p.method);
        let response = match self.send(p).map_err(|err| classify(err, reused)) {
            // The kept-alive socket was closed by the server before it answered:
            // resend a body-less idempotent request once, on a fresh connection.
            Err(err)
                if reused
                    && idempotent
                    && declared == 0
                    && err.category() == C::ConnectionClosed =>
            {
                tracing::debug!(%err, "kept-alive socket was closed, retrying the request");
                self.send(p).map_err(|err| classify(err, false))
            }
            other => other,
        }?;
        let (parts, body) = response.into_parts();
        let head = ResponseHead {
            status: parts.status.as_u16(),
            reason: parts.status.canonical_reason(),
            headers: (parts.headers.iter())
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).trim().to_owned(),
                    )
                })
                .collect(),
        };
        let length = head
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        let chunked = head.has("transfer-encoding", "chunked");
        let no_body = p.method == http::Method::HEAD || [204, 304].contains(&head.status);
        // A server answering an error to a request with a body may not have read
        // the body, and closes the socket after the response: ureq would keep it,
        // so a fresh agent (pool) drops it once the response is read.
        let body_consumed = declared == 0 || (200..300).contains(&head.status);
        if !body_consumed {
            self.agent = self.agent_config.new_agent();
        }
        let close = |v: &http::HeaderValue| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("close"))
        };
        let keep_alive = parts.version == http::Version::HTTP_11
            && body_consumed
            && !head.has("connection", "close")
            && !p
                .headers
                .get_all(http::header::CONNECTION)
                .iter()
                .any(close)
            && (no_body || chunked || length.is_some());
        self.head = head;
        self.body = ResponseBody {
            reader: Some(body.into_reader()),
            state: BodyState::Open,
            origin: p.origin.clone(),
            length: length.filter(|_| !no_body),
            chunked,
            keep_alive,
            ..ResponseBody::idle(self.config.clone())
        };
        Ok(())
    }
}

impl Status for HostConnection {
    /// The status code of the open response, or `0` if none is open.
    fn status(&self) -> u16 {
        self.head.status
    }

    /// The standard reason phrase of the open response's status, if any.
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
        self.body.read_body(buf)
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
        let Some(declared) = pending.declared.filter(|_| !buf.is_empty()) else {
            return match buf.is_empty() {
                true => Ok(0),
                false => Err(invalid_request(
                    "request body written without a Content-Length header (chunked request bodies are not supported)",
                )),
            };
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
        match self.phase {
            Phase::Request => Ok(()),
            _ => Err(self.state_error("flush")),
        }
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
            // Read the rest of the response (like EspHttpConnection) so that
            // ureq keeps the socket; a longer rest is dropped with it.
            let mut scratch = [0_u8; 4096];
            let mut drained = 0;
            while drained <= MAX_DRAIN_BYTES {
                match self.body.read_body(&mut scratch) {
                    Ok(n) if n > 0 => drained += n as u64,
                    _ => break,
                }
            }
        }
        let body = std::mem::replace(&mut self.body, ResponseBody::idle(self.config.clone()));
        if let Some(since) = body.kept_since {
            self.kept = Some((body.origin, since));
        }
        (self.phase, self.pending, self.head) = (Phase::Idle, None, ResponseHead::default());
        self.pending = Some(prepare(method, uri, headers)?);
        self.phase = Phase::Request;
        Ok(())
    }

    fn is_request_initiated(&self) -> bool {
        self.phase == Phase::Request
    }

    fn initiate_response(&mut self) -> Result<(), Self::Error> {
        let pending = match (self.phase, self.pending.take()) {
            (Phase::Request, Some(pending)) => pending,
            _ => return Err(self.state_error("initiate_response")),
        };
        self.phase = Phase::Idle;
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
            C::Unsupported,
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
