//! A blocking HTTP/1.1 client for the host that implements
//! [`embedded_svc::http::client::Connection`].
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
//! * chunked *request* bodies are not supported (ESP-IDF uses them for `POST`
//!   without `Content-Length`): writing a body without a declared
//!   `Content-Length`, or past it, is an [`HttpErrorCategory::InvalidRequest`]
//!   error instead;
//! * redirects are never followed;
//! * misuse of the state machine returns [`HttpErrorCategory::InvalidState`]
//!   errors instead of panicking; [`Status::status`] is `0` and no header is
//!   found while no response is open;
//! * [`Status::status_message`] returns the reason phrase of the response.
//!
//! The socket is kept alive and reused for the next request when the previous
//! response was read to its end (or had no body), the server did not ask to
//! close it, the previous request had no body or got a 2xx (a server answering
//! an error before reading a body closes the socket), it still looks open,
//! and the next URI has the same scheme, host and port.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use embedded_svc::http::client::Connection;
use embedded_svc::http::{Headers, Method, Status};
use embedded_svc::io::{ErrorKind, ErrorType, Read, Write};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// Largest response head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest number of response headers accepted.
const MAX_HEADERS: usize = 128;
/// Largest chunk-size or trailer line accepted in a chunked response body.
const MAX_LINE_BYTES: usize = 8 * 1024;
/// Size of the socket read buffer.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// How much of an unread response body is discarded to keep the socket for the
/// next request; a longer rest closes the socket instead.
const MAX_DRAIN_BYTES: u64 = 64 * 1024;

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

    /// Classifies an I/O error that happened while doing `what`.
    fn io(what: &str, err: &io::Error, timeout: Duration, fallback: HttpErrorCategory) -> Self {
        if let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            let category = match tls {
                rustls::Error::InvalidCertificate(_) => HttpErrorCategory::Certificate,
                _ => HttpErrorCategory::Tls,
            };
            return Self::new(category, format!("{what}: TLS error: {tls}"));
        }
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::new(
                HttpErrorCategory::Timeout,
                format!("{what}: timed out after {timeout:?}"),
            ),
            kind => {
                let mut error = Self::new(fallback, format!("{what}: {err}"));
                if fallback != HttpErrorCategory::Tls {
                    error.kind = ErrorKind::from(kind);
                }
                error
            }
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

/// Scheme, host and port: what a kept-alive socket is reused for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    tls: bool,
    /// Host name or IP address, without the brackets of an IPv6 literal.
    host: String,
    port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed request URI.
#[derive(Debug)]
struct Target {
    origin: Origin,
    /// The value of the `Host` header.
    host_header: String,
    /// Path and query, sent as given.
    path_and_query: String,
}

fn invalid_request(message: impl Into<String>) -> HttpError {
    HttpError::new(HttpErrorCategory::InvalidRequest, message)
}

fn parse_uri(uri: &str) -> Result<Target, HttpError> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| invalid_request(format!("invalid URI {uri:?}: no scheme")))?;
    let (tls, default_port) = if scheme.eq_ignore_ascii_case("http") {
        (false, 80)
    } else if scheme.eq_ignore_ascii_case("https") {
        (true, 443)
    } else {
        return Err(invalid_request(format!(
            "invalid URI {uri:?}: unsupported scheme {scheme:?} (expected http or https)"
        )));
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    let path_and_query = match tail.as_bytes().first() {
        None => "/".to_owned(),
        Some(b'?') => format!("/{tail}"),
        Some(_) => tail.to_owned(),
    };
    if let Some(bad) = path_and_query
        .bytes()
        .find(|b| b.is_ascii_control() || *b == b' ' || !b.is_ascii())
    {
        return Err(invalid_request(format!(
            "invalid URI {uri:?}: byte 0x{bad:02x} in the path or query must be percent-encoded"
        )));
    }
    if authority.contains('@') {
        return Err(invalid_request(format!(
            "invalid URI {uri:?}: user information in the URI is not supported"
        )));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid_request(format!("invalid URI {uri:?}: unclosed '['")))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                invalid_request(format!("invalid URI {uri:?}: junk after IPv6 address"))
            })?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:%".contains(&b))
    {
        return Err(invalid_request(format!(
            "invalid URI {uri:?}: invalid host {host:?}"
        )));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(invalid_request(format!(
                    "invalid URI {uri:?}: invalid port {port:?}"
                )));
            }
        },
    };
    let origin = Origin {
        tls,
        host: host.to_owned(),
        port,
    };
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let host_header = if port == default_port {
        bracketed
    } else {
        format!("{bracketed}:{port}")
    };
    Ok(Target {
        origin,
        host_header,
        path_and_query,
    })
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

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `true` if the comma-separated header `value` contains `token`.
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// The socket, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => &tls.sock,
        }
    }
}

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}

/// A connected socket with its read buffer.
struct Transport {
    stream: Stream,
    origin: Origin,
    timeout: Duration,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl Transport {
    fn connect(
        origin: &Origin,
        config: &HttpConfig,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Self, HttpError> {
        let addrs = (origin.host.as_str(), origin.port)
            .to_socket_addrs()
            .map_err(|err| {
                HttpError::new(
                    HttpErrorCategory::Connect,
                    format!("resolve {origin} failed: {err}"),
                )
            })?;
        let mut last_error = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, config.connect_timeout) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(err) => last_error = Some(err),
            }
        }
        let tcp = match (tcp, last_error) {
            (Some(tcp), _) => tcp,
            (None, Some(err)) => {
                return Err(HttpError::io(
                    &format!("connect to {origin}"),
                    &err,
                    config.connect_timeout,
                    HttpErrorCategory::Connect,
                ));
            }
            (None, None) => {
                return Err(HttpError::new(
                    HttpErrorCategory::Connect,
                    format!("connect to {origin} failed: the host has no address"),
                ));
            }
        };
        let setup = |err: io::Error| {
            HttpError::new(
                HttpErrorCategory::Connect,
                format!("set up the socket to {origin}: {err}"),
            )
        };
        tcp.set_read_timeout(Some(config.timeout)).map_err(setup)?;
        tcp.set_write_timeout(Some(config.timeout)).map_err(setup)?;
        tcp.set_nodelay(true).map_err(setup)?;
        let stream = if origin.tls {
            let name = ServerName::try_from(origin.host.clone()).map_err(|err| {
                HttpError::new(
                    HttpErrorCategory::InvalidRequest,
                    format!("invalid TLS server name {:?}: {err}", origin.host),
                )
            })?;
            let conn = rustls::ClientConnection::new(Arc::clone(tls), name).map_err(|err| {
                HttpError::new(
                    HttpErrorCategory::Tls,
                    format!("TLS handshake with {origin} failed: {err}"),
                )
            })?;
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).map_err(|err| {
                    HttpError::io(
                        &format!("TLS handshake with {origin} failed"),
                        &err,
                        config.timeout,
                        HttpErrorCategory::Tls,
                    )
                })?;
            }
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Self {
            stream,
            origin: origin.clone(),
            timeout: config.timeout,
            buf: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            pos: 0,
            end: 0,
        })
    }

    fn error(&self, what: &str, err: &io::Error) -> HttpError {
        HttpError::io(
            &format!("{what} {}", self.origin),
            err,
            self.timeout,
            HttpErrorCategory::Io,
        )
    }

    /// Buffered bytes, reading from the socket if there are none. Empty at EOF.
    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            let n = loop {
                match self.stream.read(&mut self.buf) {
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            };
            self.end = n;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Reads into `out`, from the buffer first. `Ok(0)` at EOF.
    fn read_into(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end && out.len() >= self.buf.len() {
            loop {
                match self.stream.read(out) {
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    other => return other,
                }
            }
        }
        let available = self.fill()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }

    /// Reads one line (without its CR LF); `None` at EOF before any byte.
    fn read_line(&mut self) -> Result<Option<String>, HttpError> {
        let mut line = Vec::new();
        loop {
            let available = match self.fill() {
                Ok(available) => available,
                Err(err) => return Err(self.error("read the response body from", &err)),
            };
            if available.is_empty() {
                if line.is_empty() {
                    return Ok(None);
                }
                return Err(HttpError::new(
                    HttpErrorCategory::ConnectionClosed,
                    format!(
                        "{} closed the connection in the middle of a chunked body",
                        self.origin
                    ),
                ));
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&available[..i]);
                    self.consume(i + 1);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
                }
                None => {
                    let n = available.len();
                    line.extend_from_slice(available);
                    self.consume(n);
                }
            }
            if line.len() > MAX_LINE_BYTES {
                return Err(HttpError::new(
                    HttpErrorCategory::MalformedResponse,
                    format!(
                        "malformed response from {}: chunked-body line longer than {MAX_LINE_BYTES} bytes",
                        self.origin
                    ),
                ));
            }
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)?;
        self.stream.flush()
    }

    /// `true` if the idle socket still looks usable: nothing buffered, and the
    /// server neither closed it nor sent anything unsolicited.
    fn is_idle_and_open(&self) -> bool {
        if self.pos != self.end {
            return false;
        }
        let tcp = self.stream.tcp();
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0_u8; 1];
        let peeked = tcp.peek(&mut byte);
        let restored = tcp.set_nonblocking(false).is_ok();
        restored && matches!(peeked, Err(err) if err.kind() == io::ErrorKind::WouldBlock)
    }
}

/// The state of a chunked response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes left.
    Data(u64),
    /// Expecting the CR LF after a chunk.
    DataEnd,
    /// After the last chunk, reading trailers up to the empty line.
    Trailers,
}

/// How the response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No response is open.
    Idle,
    /// `Content-Length`: this many bytes left, of `total`.
    Length { left: u64, total: u64 },
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunked),
    /// Until the server closes the connection.
    Close,
    /// The body was read to its end.
    Done,
    /// Reading the body failed; the socket was dropped.
    Failed,
}

/// The status line and headers of the response: the [`Connection::Headers`]
/// of [`HostConnection`].
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    status: u16,
    reason: Option<String>,
    headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// All response headers, in the order received (names as sent by the server).
    #[must_use]
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Status for ResponseHead {
    fn status(&self) -> u16 {
        self.status
    }

    fn status_message(&self) -> Option<&'_ str> {
        self.reason.as_deref()
    }
}

impl Headers for ResponseHead {
    fn header(&self, name: &str) -> Option<&'_ str> {
        self.all(name).next()
    }
}

/// The response body reader: the [`Connection::Read`] of [`HostConnection`].
/// It owns the socket while a response is open.
pub struct ResponseBody {
    transport: Option<Transport>,
    framing: Framing,
    /// Whether the socket may be reused once the body is read.
    keep_alive: bool,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("origin", &self.transport.as_ref().map(|t| &t.origin))
            .field("framing", &self.framing)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl ResponseBody {
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if !self.keep_alive {
            self.transport = None;
        }
    }

    fn fail(&mut self, error: HttpError) -> HttpError {
        self.transport = None;
        self.keep_alive = false;
        self.framing = Framing::Failed;
        error
    }

    fn read_body(&mut self, out: &mut [u8]) -> Result<usize, HttpError> {
        loop {
            match self.framing {
                Framing::Idle => {
                    return Err(HttpError::new(
                        HttpErrorCategory::InvalidState,
                        "read called before initiate_response",
                    ));
                }
                Framing::Done => return Ok(0),
                Framing::Failed => {
                    return Err(HttpError::new(
                        HttpErrorCategory::InvalidState,
                        "the response body is unavailable: an earlier read of it failed",
                    ));
                }
                Framing::Length { left: 0, .. } => {
                    self.finish();
                    return Ok(0);
                }
                _ if out.is_empty() => return Ok(0),
                Framing::Length { left, total } => {
                    let transport = self.transport.as_mut().ok_or_else(no_socket)?;
                    let want = usize::try_from(left).unwrap_or(usize::MAX).min(out.len());
                    let n = transport
                        .read_into(&mut out[..want])
                        .map_err(|err| transport.error("read the response body from", &err))?;
                    if n == 0 {
                        let origin = transport.origin.to_string();
                        return Err(HttpError::new(
                            HttpErrorCategory::ConnectionClosed,
                            format!(
                                "{origin} closed the connection after {} of {total} response body bytes",
                                total - left
                            ),
                        ));
                    }
                    let left = left - n as u64;
                    self.framing = Framing::Length { left, total };
                    if left == 0 {
                        self.finish();
                    }
                    return Ok(n);
                }
                Framing::Close => {
                    let transport = self.transport.as_mut().ok_or_else(no_socket)?;
                    match transport.read_into(out) {
                        Ok(0) => {
                            self.finish();
                            return Ok(0);
                        }
                        Ok(n) => return Ok(n),
                        // A TLS server may close without close_notify; the body
                        // is delimited by the close anyway.
                        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                            self.finish();
                            return Ok(0);
                        }
                        Err(err) => {
                            return Err(transport.error("read the response body from", &err));
                        }
                    }
                }
                Framing::Chunked(state) => {
                    let transport = self.transport.as_mut().ok_or_else(no_socket)?;
                    match state {
                        Chunked::Size => {
                            let line = transport
                                .read_line()?
                                .ok_or_else(|| closed_in_chunked(&transport.origin))?;
                            let size = line.split(';').next().unwrap_or("").trim();
                            let size = if size.is_empty() || size.len() > 16 {
                                None
                            } else {
                                u64::from_str_radix(size, 16).ok()
                            };
                            let Some(size) = size else {
                                return Err(malformed(
                                    &transport.origin,
                                    &format!("invalid chunk size line {line:?}"),
                                ));
                            };
                            self.framing = Framing::Chunked(if size == 0 {
                                Chunked::Trailers
                            } else {
                                Chunked::Data(size)
                            });
                        }
                        Chunked::Data(left) => {
                            let want = usize::try_from(left).unwrap_or(usize::MAX).min(out.len());
                            let n = transport.read_into(&mut out[..want]).map_err(|err| {
                                transport.error("read the response body from", &err)
                            })?;
                            if n == 0 {
                                return Err(closed_in_chunked(&transport.origin));
                            }
                            let left = left - n as u64;
                            self.framing = Framing::Chunked(if left == 0 {
                                Chunked::DataEnd
                            } else {
                                Chunked::Data(left)
                            });
                            return Ok(n);
                        }
                        Chunked::DataEnd => {
                            let line = transport
                                .read_line()?
                                .ok_or_else(|| closed_in_chunked(&transport.origin))?;
                            if !line.is_empty() {
                                return Err(malformed(
                                    &transport.origin,
                                    "chunk data longer than its declared size",
                                ));
                            }
                            self.framing = Framing::Chunked(Chunked::Size);
                        }
                        Chunked::Trailers => {
                            let line = transport
                                .read_line()?
                                .ok_or_else(|| closed_in_chunked(&transport.origin))?;
                            if line.is_empty() {
                                self.finish();
                                return Ok(0);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Discards up to `limit` bytes of the rest of the body; `true` if the
    /// body ended (and the socket is still usable if kept alive).
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

fn no_socket() -> HttpError {
    HttpError::new(
        HttpErrorCategory::InvalidState,
        "the connection has no open socket",
    )
}

fn closed_in_chunked(origin: &Origin) -> HttpError {
    HttpError::new(
        HttpErrorCategory::ConnectionClosed,
        format!("{origin} closed the connection in the middle of a chunked response body"),
    )
}

fn malformed(origin: &Origin, what: &str) -> HttpError {
    HttpError::new(
        HttpErrorCategory::MalformedResponse,
        format!("malformed response from {origin}: {what}"),
    )
}

impl ErrorType for ResponseBody {
    type Error = HttpError;
}

impl Read for ResponseBody {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        match self.read_body(buf) {
            Ok(n) => Ok(n),
            Err(err) if err.category() == HttpErrorCategory::InvalidState => Err(err),
            Err(err) => Err(self.fail(err)),
        }
    }
}

/// Where the connection is in the `Connection` state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress (initial, or after a failure).
    Idle,
    /// The request head was sent; the body is being written.
    Request,
    /// The response head was read; the body is being read.
    Response,
}

/// The request being sent.
#[derive(Debug, Default)]
struct Outgoing {
    /// `Content-Length` declared by the caller, if any.
    declared: Option<u64>,
    /// Body bytes accepted so far.
    written: u64,
    /// Whether the response to this request has no body (`HEAD`).
    head_only: bool,
    /// The request head, kept to resend a body-less request once if a reused
    /// socket turns out to be closed.
    head: Vec<u8>,
    /// Whether the request went out on a reused socket.
    reused: bool,
    /// Whether the caller asked for `Connection: close`.
    close: bool,
    /// Whether the method is idempotent (may be resent after a stale socket).
    idempotent: bool,
    /// Whether any byte of a response was received.
    answered: bool,
    /// Set when the server closed the connection while the body was being
    /// written; the rest of the body is discarded and the server's (early)
    /// response is still read, like curl does.
    send_aborted: Option<String>,
}

/// A blocking HTTP/1.1 client connection (plain TCP or TLS via rustls with
/// ring) implementing [`embedded_svc::http::client::Connection`], the host
/// twin of ESP-IDF's `EspHttpConnection`. See the [module docs](self).
pub struct HostConnection {
    config: HttpConfig,
    tls: Arc<rustls::ClientConfig>,
    phase: Phase,
    outgoing: Outgoing,
    head: ResponseHead,
    body: ResponseBody,
}

impl fmt::Debug for HostConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConnection")
            .field("config", &self.config)
            .field("phase", &self.phase)
            .field("outgoing", &self.outgoing.declared)
            .field("status", &self.head.status)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

fn config_error(message: String) -> HttpError {
    HttpError::new(HttpErrorCategory::Config, message)
}

fn tls_config(config: &HttpConfig) -> Result<rustls::ClientConfig, HttpError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
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
            for cert in certs {
                roots.add(cert).map_err(|err| {
                    config_error(format!(
                        "CA file {}: unusable certificate: {err}",
                        path.display()
                    ))
                })?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| config_error(format!("TLS configuration: {err}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
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
        let tls = Arc::new(tls_config(&config)?);
        Ok(Self {
            config,
            tls,
            phase: Phase::Idle,
            outgoing: Outgoing::default(),
            head: ResponseHead::default(),
            body: ResponseBody {
                transport: None,
                framing: Framing::Idle,
                keep_alive: false,
            },
        })
    }

    /// The configuration this connection was created with.
    #[must_use]
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Drops the socket and returns to the idle phase, returning `error`.
    fn fail(&mut self, error: HttpError) -> HttpError {
        self.body.transport = None;
        self.body.framing = Framing::Idle;
        self.body.keep_alive = false;
        self.head = ResponseHead::default();
        self.phase = Phase::Idle;
        error
    }

    fn state_error(&self, what: &str) -> HttpError {
        HttpError::new(
            HttpErrorCategory::InvalidState,
            format!("{what} is not allowed in the {:?} phase", self.phase),
        )
    }

    fn send_request(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), HttpError> {
        let target = parse_uri(uri)?;
        let method = method_name(method);

        let mut declared: Option<u64> = None;
        let mut has_host = false;
        let mut has_user_agent = false;
        let mut close = false;
        for &(name, value) in headers {
            if !is_token(name) {
                return Err(invalid_request(format!("invalid header name {name:?}")));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(invalid_request(format!(
                    "invalid value of header {name}: CR, LF and NUL are not allowed"
                )));
            }
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
            } else if name.eq_ignore_ascii_case("host") {
                has_host = true;
            } else if name.eq_ignore_ascii_case("user-agent") {
                has_user_agent = true;
            } else if name.eq_ignore_ascii_case("connection") && has_token(value, "close") {
                close = true;
            }
        }

        let mut head = format!("{method} {} HTTP/1.1\r\n", target.path_and_query);
        if !has_host {
            head.push_str("Host: ");
            head.push_str(&target.host_header);
            head.push_str("\r\n");
        }
        for &(name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value.trim());
            head.push_str("\r\n");
        }
        if declared.is_none() && matches!(method, "PUT" | "POST" | "PATCH") {
            head.push_str("Content-Length: 0\r\n");
        }
        if !has_user_agent {
            head.push_str(concat!(
                "User-Agent: sensorlake-host/",
                env!("CARGO_PKG_VERSION"),
                "\r\n"
            ));
        }
        head.push_str("\r\n");
        let head = head.into_bytes();

        self.outgoing = Outgoing {
            declared,
            written: 0,
            head_only: method == "HEAD",
            head,
            reused: false,
            close,
            idempotent: matches!(
                method,
                "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
            ),
            answered: false,
            send_aborted: None,
        };
        self.write_head(&target.origin)
    }

    /// Sends the request head on a kept-alive socket to `origin` if there is
    /// one, else on a new connection.
    fn write_head(&mut self, origin: &Origin) -> Result<(), HttpError> {
        let reusable = self
            .body
            .transport
            .as_ref()
            .is_some_and(|t| t.origin == *origin && t.is_idle_and_open());
        if reusable {
            if let Some(transport) = self.body.transport.as_mut()
                && transport.write_all(&self.outgoing.head).is_ok()
            {
                self.outgoing.reused = true;
                return Ok(());
            }
            tracing::debug!(%origin, "kept-alive socket unusable, reconnecting");
        }
        self.body.transport = None;
        let mut transport = Transport::connect(origin, &self.config, &self.tls)?;
        transport
            .write_all(&self.outgoing.head)
            .map_err(|err| transport.error("send the request to", &err))?;
        self.body.transport = Some(transport);
        self.outgoing.reused = false;
        Ok(())
    }

    fn write_body(&mut self, buf: &[u8]) -> Result<usize, HttpError> {
        let Some(declared) = self.outgoing.declared else {
            return Err(invalid_request(
                "request body written without a Content-Length header (chunked request bodies are not supported)",
            ));
        };
        let written = self.outgoing.written;
        if written + buf.len() as u64 > declared {
            return Err(invalid_request(format!(
                "request body exceeds the declared Content-Length of {declared} bytes ({written} written, {} more offered)",
                buf.len()
            )));
        }
        if self.outgoing.send_aborted.is_none() {
            let transport = self.body.transport.as_mut().ok_or_else(no_socket)?;
            if let Err(err) = transport.write_all(buf) {
                match err.kind() {
                    io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted => {
                        tracing::debug!(origin = %transport.origin, %err, "server closed the connection while the request body was being sent");
                        self.outgoing.send_aborted = Some(err.to_string());
                    }
                    _ => return Err(transport.error("send the request body to", &err)),
                }
            }
        }
        self.outgoing.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn receive_response(&mut self) -> Result<(), HttpError> {
        let declared = self.outgoing.declared.unwrap_or(0);
        if self.outgoing.written < declared {
            return Err(invalid_request(format!(
                "request body incomplete: {} of the {declared} bytes declared in Content-Length were written",
                self.outgoing.written
            )));
        }
        match self.read_head() {
            Ok(()) => Ok(()),
            Err(err)
                if (err.category() == HttpErrorCategory::ConnectionClosed
                    || err.kind == ErrorKind::ConnectionReset)
                    && !self.outgoing.answered
                    && self.outgoing.reused
                    && self.outgoing.idempotent
                    && declared == 0 =>
            {
                // The kept-alive socket was closed by the server before it
                // answered: resend the (body-less, idempotent) request once on
                // a fresh connection. Requests with a body cannot be resent:
                // it was streamed by the caller.
                tracing::debug!(%err, "kept-alive socket was closed, retrying the request");
                let origin = self
                    .body
                    .transport
                    .as_ref()
                    .map(|t| t.origin.clone())
                    .ok_or_else(no_socket)?;
                self.body.transport = None;
                self.write_head(&origin)?;
                self.read_head()
            }
            Err(err) => Err(err),
        }
    }

    /// Reads the response head, skipping interim (1xx) responses, and sets up
    /// the body framing.
    fn read_head(&mut self) -> Result<(), HttpError> {
        let transport = self.body.transport.as_mut().ok_or_else(no_socket)?;
        let origin = transport.origin.clone();
        loop {
            let mut raw = Vec::new();
            let (status, reason, version, headers) = loop {
                let available = match transport.fill() {
                    Ok(available) => available,
                    Err(err) => {
                        let mut error = transport.error("read the response from", &err);
                        if let Some(aborted) = &self.outgoing.send_aborted {
                            error.message = format!(
                                "{}; the server had closed the connection while the request body was being sent ({aborted})",
                                error.message
                            );
                        }
                        return Err(error);
                    }
                };
                if available.is_empty() {
                    let mut message = if raw.is_empty() && self.outgoing.reused {
                        format!(
                            "{origin} closed the kept-alive connection without sending a response"
                        )
                    } else if raw.is_empty() {
                        format!("{origin} closed the connection without sending a response")
                    } else {
                        format!("{origin} closed the connection in the middle of the response head")
                    };
                    if let Some(aborted) = &self.outgoing.send_aborted {
                        message.push_str(&format!(
                            " (it stopped accepting the request body: {aborted})"
                        ));
                    }
                    return Err(HttpError::new(HttpErrorCategory::ConnectionClosed, message));
                }
                let taken = available.len();
                self.outgoing.answered = true;
                raw.extend_from_slice(available);
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut slots);
                match response.parse(&raw) {
                    Ok(httparse::Status::Complete(len)) => {
                        let extra = raw.len() - len;
                        transport.consume(taken - extra);
                        let status = response.code.unwrap_or(0);
                        let reason = response.reason.filter(|r| !r.is_empty()).map(str::to_owned);
                        let version = response.version.unwrap_or(1);
                        let headers = response
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_owned(),
                                    String::from_utf8_lossy(h.value).trim().to_owned(),
                                )
                            })
                            .collect::<Vec<_>>();
                        break (status, reason, version, headers);
                    }
                    Ok(httparse::Status::Partial) => {
                        transport.consume(taken);
                        if raw.len() > MAX_HEAD_BYTES {
                            return Err(malformed(
                                &origin,
                                &format!("response head larger than {MAX_HEAD_BYTES} bytes"),
                            ));
                        }
                    }
                    Err(err) => {
                        return Err(malformed(&origin, &format!("invalid response head: {err}")));
                    }
                }
            };

            if status == 101 {
                return Err(HttpError::new(
                    HttpErrorCategory::Unsupported,
                    format!("{origin} switched protocols (101), which is not supported"),
                ));
            }
            if (100..200).contains(&status) {
                continue;
            }

            let head = ResponseHead {
                status,
                reason,
                headers,
            };
            let framing = if self.outgoing.head_only || status == 204 || status == 304 {
                Framing::Length { left: 0, total: 0 }
            } else if let Some(te) = head.all("transfer-encoding").last() {
                let last = te.rsplit(',').next().unwrap_or("").trim();
                if last.eq_ignore_ascii_case("chunked") {
                    Framing::Chunked(Chunked::Size)
                } else {
                    Framing::Close
                }
            } else {
                let mut length: Option<u64> = None;
                for value in head.all("content-length") {
                    for part in value.split(',') {
                        let parsed = part.trim().parse::<u64>().map_err(|_| {
                            malformed(&origin, &format!("invalid Content-Length {value:?}"))
                        })?;
                        if length.is_some_and(|l| l != parsed) {
                            return Err(malformed(&origin, "conflicting Content-Length headers"));
                        }
                        length = Some(parsed);
                    }
                }
                match length {
                    Some(total) => Framing::Length { left: total, total },
                    None => Framing::Close,
                }
            };
            let server_close = head.all("connection").any(|v| has_token(v, "close"));
            // A server that answers a request with a body by an error may not
            // have read that body; it then closes the socket right after the
            // response (hyper does, without `Connection: close`), racing the
            // next request. So only a success proves the socket reusable.
            let body_consumed =
                self.outgoing.declared.unwrap_or(0) == 0 || (200..300).contains(&status);
            let keep_alive = version == 1
                && !server_close
                && body_consumed
                && !self.outgoing.close
                && self.outgoing.send_aborted.is_none()
                && framing != Framing::Close;
            self.head = head;
            self.body.framing = framing;
            self.body.keep_alive = keep_alive;
            if framing == (Framing::Length { left: 0, total: 0 }) {
                self.body.finish();
            }
            return Ok(());
        }
    }
}

impl Status for HostConnection {
    /// The status code of the open response, or `0` if none is open.
    fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase of the open response, if any.
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
    /// Writes request body bytes; all of `buf` is accepted or an error is returned.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if self.phase != Phase::Request {
            return Err(self.state_error("write"));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match self.write_body(buf) {
            Ok(n) => Ok(n),
            Err(err) if err.category() == HttpErrorCategory::InvalidRequest => Err(err),
            Err(err) => Err(self.fail(err)),
        }
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
        match self.phase {
            Phase::Idle => {}
            Phase::Request => {
                // The previous request was abandoned half-sent: its socket is unusable.
                self.body.transport = None;
            }
            Phase::Response => {
                if !self.body.drain(MAX_DRAIN_BYTES) {
                    self.body.transport = None;
                }
            }
        }
        self.phase = Phase::Idle;
        self.head = ResponseHead::default();
        self.body.framing = Framing::Idle;
        self.body.keep_alive = false;
        match self.send_request(method, uri, headers) {
            Ok(()) => {
                self.phase = Phase::Request;
                Ok(())
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    fn is_request_initiated(&self) -> bool {
        self.phase == Phase::Request
    }

    fn initiate_response(&mut self) -> Result<(), Self::Error> {
        if self.phase != Phase::Request {
            return Err(self.state_error("initiate_response"));
        }
        match self.receive_response() {
            Ok(()) => {
                self.phase = Phase::Response;
                Ok(())
            }
            Err(err) => Err(self.fail(err)),
        }
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
        let t = parse_uri("http://127.0.0.1:9000/b/k%20x?X-Amz-Date=1#frag").unwrap();
        assert_eq!(
            t.origin,
            Origin {
                tls: false,
                host: "127.0.0.1".into(),
                port: 9000
            }
        );
        assert_eq!(t.host_header, "127.0.0.1:9000");
        assert_eq!(t.path_and_query, "/b/k%20x?X-Amz-Date=1");

        let t = parse_uri("HTTPS://example.com").unwrap();
        assert!(t.origin.tls);
        assert_eq!(t.origin.port, 443);
        assert_eq!(t.host_header, "example.com");
        assert_eq!(t.path_and_query, "/");

        let t = parse_uri("https://example.com:443?x=1").unwrap();
        assert_eq!(t.host_header, "example.com");
        assert_eq!(t.path_and_query, "/?x=1");

        let t = parse_uri("http://[::1]:8080/a").unwrap();
        assert_eq!(t.origin.host, "::1");
        assert_eq!(t.host_header, "[::1]:8080");
        assert_eq!(t.origin.to_string(), "[::1]:8080");
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
            let err = parse_uri(uri).unwrap_err();
            assert_eq!(err.category(), HttpErrorCategory::InvalidRequest, "{uri}");
        }
    }

    #[test]
    fn tokens() {
        assert!(has_token("keep-alive, Close", "close"));
        assert!(!has_token("closed", "close"));
        assert!(is_token("x-amz-date"));
        assert!(!is_token("bad name"));
        assert!(!is_token(""));
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
