//! An in-process TCP proxy on 127.0.0.1 that sits between an uploader and the embedded
//! S3 server and, by a seeded schedule, breaks requests the way networks and S3 do:
//! resets, stalls past the client's timeout, 500, 503 `SlowDown`, 429, a PUT forwarded
//! to the server whose answer is then dropped (the object is stored, the client sees an
//! error), a body corrupted on the way (the server answers `BadDigest`), a 400
//! `EntityTooLarge`, answers real services document, and answers of servers that do not
//! check what they store (a non-MD5 ETag, a 200 or 412 for bytes not stored). For
//! tests; every fault is counted by kind.
//!
//! Each client connection carries one request: the proxy forwards it with
//! `Connection: close` and closes after the answer.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sensorlake::backoff::Rng;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How long the proxy waits for a client or the server.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Forward it and relay the answer.
    Pass,
    /// Close the connection after the request head, before reading the body.
    Reset,
    /// Read the request, answer nothing for the stall time, then close.
    Stall,
    /// Answer 500 InternalError.
    Error500,
    /// Answer 503 SlowDown.
    SlowDown503,
    /// Answer 429 Too Many Requests.
    TooMany429,
    /// Forward it (the server stores the object), then close without answering.
    DropResponse,
    /// Flip one body byte on the way (the server answers 400 BadDigest).
    CorruptBody,
    /// Answer 400 EntityTooLarge.
    EntityTooLarge,
    /// Answer as a real service documents it (status, headers and XML body), without
    /// forwarding: answers the embedded server never gives.
    Documented(Documented),
    /// Forward it (the server stores the object) and replace the answer's ETag with one
    /// that is not an MD5, as SSE-KMS and some S3-compatibles answer.
    EtagNotMd5,
    /// Answer 200 with a non-MD5 ETag without forwarding: a server that acknowledges
    /// bytes it did not store.
    Unstored200,
    /// Answer 200 with the MD5 of other bytes as ETag without forwarding: a server that
    /// does not check Content-MD5 and stored a corrupted body (moto does so).
    CorruptedStored200,
    /// Answer 412 PreconditionFailed without forwarding, whether or not the key exists.
    Unfounded412,
}

/// Answers of S3 services, each as its documentation (or, for Garage, its source)
/// gives status, headers and XML body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Documented {
    /// AWS: 409 ConditionalRequestConflict (a concurrent conditional write; retry).
    ConditionalRequestConflict,
    /// AWS: 400 IncompleteBody (fewer bytes than Content-Length).
    IncompleteBody,
    /// AWS: 400 RequestTimeout (the socket was idle too long).
    RequestTimeout,
    /// AWS: 403 AccessDenied "Request is not yet valid" (the signer's clock is ahead).
    NotYetValid,
    /// Cloudflare R2: 403 ExpiredRequest (the URL's time is past).
    R2ExpiredRequest,
    /// Garage: 400 InvalidRequest "Bad request: Date is too old".
    GarageDateTooOld,
    /// A server without conditional writes: 501 NotImplemented for If-None-Match.
    NotImplemented,
    /// AWS: 301 PermanentRedirect with the bucket's endpoint and region.
    PermanentRedirect,
    /// AWS: 307 TemporaryRedirect with a temporary endpoint.
    TemporaryRedirect,
    /// AWS: 400 AuthorizationHeaderMalformed naming the bucket's region.
    WrongRegion,
    /// An answer no rule covers (418 with an unknown code).
    Unclassified,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 9] = [
        Self::Pass,
        Self::Reset,
        Self::Stall,
        Self::Error500,
        Self::SlowDown503,
        Self::TooMany429,
        Self::DropResponse,
        Self::CorruptBody,
        Self::EntityTooLarge,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Reset => "reset",
            Self::Stall => "stall past timeout",
            Self::Error500 => "500 InternalError",
            Self::SlowDown503 => "503 SlowDown",
            Self::TooMany429 => "429 Too Many Requests",
            Self::DropResponse => "stored, response dropped",
            Self::CorruptBody => "body corrupted (BadDigest)",
            Self::EntityTooLarge => "400 EntityTooLarge",
            Self::Documented(_) => "a documented answer",
            Self::EtagNotMd5 => "stored, ETag not an MD5",
            Self::Unstored200 => "200 but not stored",
            Self::CorruptedStored200 => "200 with another body's MD5",
            Self::Unfounded412 => "412 without an object",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The schedule: each request gets a fault drawn by weight from a seeded generator.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seed of the draws.
    pub seed: u64,
    /// Relative weights (faults not listed never happen).
    pub weights: Vec<(Fault, u32)>,
    /// How long a stalled request hangs before the proxy closes it.
    pub stall: Duration,
}

impl FaultPlan {
    /// Every request passes.
    pub fn pass() -> Self {
        Self {
            seed: 0,
            weights: vec![(Fault::Pass, 1)],
            stall: Duration::from_secs(2),
        }
    }

    /// A mix of every transient fault (no EntityTooLarge): `faulty_percent` of the
    /// requests fail, evenly spread over the kinds.
    pub fn transient_mix(seed: u64, faulty_percent: u32, stall: Duration) -> Self {
        let kinds = [
            Fault::Reset,
            Fault::Stall,
            Fault::Error500,
            Fault::SlowDown503,
            Fault::TooMany429,
            Fault::DropResponse,
            Fault::CorruptBody,
        ];
        let per_kind = faulty_percent.min(100) * 100 / kinds.len() as u32;
        let mut weights = vec![(Fault::Pass, (100 - faulty_percent.min(100)) * 100)];
        weights.extend(kinds.iter().map(|&k| (k, per_kind)));
        Self {
            seed,
            weights,
            stall,
        }
    }
}

#[derive(Debug)]
struct Inner {
    upstream: SocketAddr,
    plan: Mutex<(FaultPlan, Rng)>,
    script: Mutex<VecDeque<Fault>>,
    counts: Mutex<BTreeMap<Fault, u64>>,
    stop: AtomicBool,
}

impl Inner {
    fn next_fault(&self) -> (Fault, Duration) {
        let scripted = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        let stall = plan.0.stall;
        let fault = scripted.unwrap_or_else(|| {
            let total: u64 = plan.0.weights.iter().map(|(_, w)| u64::from(*w)).sum();
            let mut pick = plan.1.below(total.max(1));
            let mut chosen = Fault::Pass;
            for &(fault, weight) in &plan.0.weights {
                if pick < u64::from(weight) {
                    chosen = fault;
                    break;
                }
                pick -= u64::from(weight);
            }
            chosen
        });
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(fault)
            .or_default() += 1;
        (fault, stall)
    }
}

/// A running fault proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`.
    pub fn start(upstream: SocketAddr, plan: FaultPlan) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let seed = plan.seed;
        let inner = Arc::new(Inner {
            upstream,
            plan: Mutex::new((plan, Rng::new(seed))),
            script: Mutex::new(VecDeque::new()),
            counts: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
        });
        let accept = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("fault-proxy".into())
                .spawn(move || {
                    for client in listener.incoming() {
                        if inner.stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(client) = client else { continue };
                        let inner = inner.clone();
                        let _ = std::thread::Builder::new()
                            .name("fault-proxy-conn".into())
                            .spawn(move || {
                                let _ = handle(client, &inner);
                            });
                    }
                })?
        };
        Ok(Self {
            addr,
            inner,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`, the endpoint clients use instead of the server's.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the schedule (the generator restarts from the plan's seed).
    pub fn set_plan(&self, plan: FaultPlan) {
        let seed = plan.seed;
        *self.inner.plan.lock().unwrap_or_else(|e| e.into_inner()) = (plan, Rng::new(seed));
    }

    /// The next requests get these faults, in order, before the schedule resumes.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(faults);
    }

    /// Requests seen, by what the proxy did to them.
    pub fn counts(&self) -> BTreeMap<Fault, u64> {
        self.inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads up to the end of the head; returns the head and any body bytes read with it.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = buf.split_off(end + 4);
            return Ok(Some((buf, body)));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The value of header `name` (any case) in a head.
fn header_value(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

fn content_length(head: &[u8]) -> usize {
    header_value(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn read_body(stream: &mut TcpStream, mut body: Vec<u8>, len: usize) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    while body.len() < len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "body cut short",
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok(body)
}

/// `head` (up to and including its blank line) with every `name` header replaced by the
/// one header line `line`, placed last.
fn set_header(head: &[u8], name: &str, line: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len() + line.len() + 4);
    for kept in text.split("\r\n").filter(|l| !l.is_empty()) {
        let named = kept
            .split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name));
        if !named {
            out.push_str(kept);
            out.push_str("\r\n");
        }
    }
    out.push_str(line);
    out.push_str("\r\n\r\n");
    out.into_bytes()
}

/// The head with `Connection: close` instead of any `Connection` header.
fn closing_head(head: &[u8]) -> Vec<u8> {
    set_header(head, "connection", "Connection: close")
}

/// Sends the request to the server and returns its whole answer.
fn forward(upstream: SocketAddr, head: &[u8], body: &[u8]) -> io::Result<Vec<u8>> {
    let mut server = TcpStream::connect_timeout(&upstream, IO_TIMEOUT)?;
    server.set_read_timeout(Some(IO_TIMEOUT))?;
    server.set_write_timeout(Some(IO_TIMEOUT))?;
    server.write_all(&closing_head(head))?;
    server.write_all(body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    Ok(answer)
}

fn s3_error(status: u16, reason: &str, code: &str, message: &str) -> Vec<u8> {
    s3_error_with(status, reason, code, message, "", "")
}

/// An S3 error answer with `extra_headers` (CRLF-terminated lines) and `extra_xml`
/// elements after `<Message>`; `Date` is this machine's clock.
fn s3_error_with(
    status: u16,
    reason: &str,
    code: &str,
    message: &str,
    extra_headers: &str,
    extra_xml: &str,
) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra_xml}<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    );
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nDate: {date}\r\n{extra_headers}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether the request head has header `name` (lowercase).
fn has_header(head: &[u8], name: &str) -> bool {
    header_value(head, name).is_some()
}

/// A 200 answer to a PUT with this ETag (quoted) and no body.
fn ok_with_etag(etag: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

/// `answer` with its ETag header replaced by `etag` (quoted).
fn with_etag(answer: &[u8], etag: &str) -> Vec<u8> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |e| e + 4);
    let mut bytes = set_header(&answer[..end], "etag", &format!("ETag: {etag}"));
    bytes.extend_from_slice(&answer[end..]);
    bytes
}

/// The bytes of a documented answer.
fn documented(answer: Documented) -> Vec<u8> {
    const ELSEWHERE: &str = "lake.s3.eu-west-1.amazonaws.com";
    match answer {
        Documented::ConditionalRequestConflict => s3_error(
            409,
            "Conflict",
            "ConditionalRequestConflict",
            "A conflicting conditional operation is currently in progress against this resource. Please try again.",
        ),
        Documented::IncompleteBody => s3_error(
            400,
            "Bad Request",
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        ),
        Documented::RequestTimeout => s3_error(
            400,
            "Bad Request",
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        ),
        Documented::NotYetValid => {
            s3_error(403, "Forbidden", "AccessDenied", "Request is not yet valid")
        }
        Documented::R2ExpiredRequest => s3_error(
            403,
            "Forbidden",
            "ExpiredRequest",
            "The request has expired.",
        ),
        Documented::GarageDateTooOld => s3_error_with(
            400,
            "Bad Request",
            "InvalidRequest",
            "Bad request: Date is too old",
            "",
            "<Resource>/lake/raw</Resource><Region>garage</Region>",
        ),
        Documented::NotImplemented => s3_error_with(
            501,
            "Not Implemented",
            "NotImplemented",
            "A header you provided implies functionality that is not implemented.",
            "",
            "<Header>If-None-Match</Header>",
        ),
        Documented::PermanentRedirect => s3_error_with(
            301,
            "Moved Permanently",
            "PermanentRedirect",
            "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
            "x-amz-bucket-region: eu-west-1\r\n",
            &format!("<Endpoint>{ELSEWHERE}</Endpoint><Bucket>lake</Bucket>"),
        ),
        Documented::TemporaryRedirect => s3_error_with(
            307,
            "Temporary Redirect",
            "TemporaryRedirect",
            "Please re-send this request to the specified temporary endpoint. Continue to use the original request endpoint for future requests.",
            "Location: https://lake.s3-eu-west-1.amazonaws.com/\r\n",
            "<Endpoint>lake.s3-eu-west-1.amazonaws.com</Endpoint><Bucket>lake</Bucket>",
        ),
        Documented::WrongRegion => s3_error_with(
            400,
            "Bad Request",
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'",
            "",
            "<Region>eu-west-1</Region>",
        ),
        Documented::Unclassified => s3_error(
            418,
            "I'm a teapot",
            "TeapotError",
            "An answer no documentation lists.",
        ),
    }
}

fn handle(mut client: TcpStream, inner: &Inner) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let Some((head, early_body)) = read_head(&mut client)? else {
        return Ok(()); // the client only opened (or checked) the connection
    };
    let (fault, stall) = inner.next_fault();
    if fault == Fault::Reset {
        // Unread body bytes make the kernel answer the close with a reset.
        drop(client);
        return Ok(());
    }
    let mut body = read_body(&mut client, early_body, content_length(&head))?;
    let answer = match fault {
        Fault::Pass => forward(inner.upstream, &head, &body)?,
        Fault::CorruptBody => {
            if let Some(mid) = body.len().checked_sub(1).map(|l| l / 2) {
                body[mid] ^= 0x55;
            }
            forward(inner.upstream, &head, &body)?
        }
        Fault::DropResponse => {
            let _ = forward(inner.upstream, &head, &body)?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fault::Stall => {
            let until = Instant::now() + stall;
            while Instant::now() < until && !inner.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return Ok(());
        }
        Fault::Error500 => s3_error(
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        Fault::SlowDown503 => s3_error(
            503,
            "Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        Fault::TooMany429 => s3_error(
            429,
            "Too Many Requests",
            "TooManyRequests",
            "Please reduce your request rate.",
        ),
        Fault::EntityTooLarge => s3_error(
            400,
            "Bad Request",
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed object size.",
        ),
        // A server without conditional writes takes a PUT without the header.
        Fault::Documented(Documented::NotImplemented) if !has_header(&head, "if-none-match") => {
            forward(inner.upstream, &head, &body)?
        }
        Fault::Documented(answer) => documented(answer),
        Fault::EtagNotMd5 => with_etag(
            &forward(inner.upstream, &head, &body)?,
            "\"5d41402abc4b2a76b9719d911017c592-1\"",
        ),
        Fault::Unstored200 => ok_with_etag("\"e6b1e3c2f0a6a3c9\""),
        Fault::CorruptedStored200 => {
            if let Some(first) = body.first_mut() {
                *first ^= 0x55;
            }
            ok_with_etag(&format!("\"{}\"", sensorlake::presign::md5_hex(&body)))
        }
        Fault::Unfounded412 => s3_error(
            412,
            "Precondition Failed",
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        ),
        Fault::Reset => unreachable!("handled above"),
    };
    client.write_all(&answer)?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}
