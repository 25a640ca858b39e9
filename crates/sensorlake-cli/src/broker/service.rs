//! The broker's HTTP handler: authenticate the token, read and check the request, apply
//! the rate limit, validate every file against the device's key template, sign, audit.
//! Every refusal is a 4xx with a JSON [`ErrorResponse`] and an audit line; no URL is
//! issued for any file of a request that has a refused one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use sensorlake::broker_api::{
    ErrorResponse, FileDeclaration, HEALTH_PATH, IssuedUrl, PRESIGN_PATH, PresignRequest,
    PresignResponse, RefusedFile,
};
use sensorlake::key::{DeviceId, KeyRefusal, KeyTemplate, TimeWindow};
use sensorlake::presign::{Credentials, PutRequest, S3Target, Signer};
use serde::Serialize;

use super::BrokerConfig;
use super::audit::{AuditLog, Event, Outcome};
use super::ratelimit::RateLimiter;
use super::registry::{DeviceRecord, Registry, claimed_device, token_matches};

/// Counts of the broker's decisions (files for issued/refused, requests for denied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// URLs issued.
    pub issued: u64,
    /// Files refused (422).
    pub refused: u64,
    /// Requests refused as a whole (401, 403, 413, 429, 400).
    pub denied: u64,
}

type Devices = Arc<BTreeMap<String, DeviceRecord>>;

/// Identity of the registry file's current version.
type FileIdentity = Option<(u64, Option<SystemTime>, u64)>;

fn identity(path: &Path) -> FileIdentity {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), meta.modified().ok(), inode))
}

/// The registry, re-read when the file changes.
struct RegistryCache {
    registry: Registry,
    cached: Mutex<Option<(FileIdentity, Devices)>>,
}

impl RegistryCache {
    fn current(&self) -> Result<Devices> {
        let now = identity(self.registry.path());
        let mut cached = self
            .cached
            .lock()
            .map_err(|_| anyhow::anyhow!("registry cache lock poisoned"))?;
        if let Some((seen, devices)) = cached.as_ref()
            && *seen == now
        {
            return Ok(devices.clone());
        }
        let devices: Devices = Arc::new(self.registry.load()?);
        tracing::debug!(devices = devices.len(), "device registry loaded");
        *cached = Some((now, devices.clone()));
        Ok(devices)
    }
}

/// Everything a request needs.
pub struct State {
    target: S3Target,
    credentials: Credentials,
    url_expiry: Duration,
    max_url_expiry: Duration,
    window: TimeWindow,
    max_files: usize,
    max_body_bytes: usize,
    body_timeout: Duration,
    max_connections: usize,
    max_object_bytes: u64,
    conditional_writes: bool,
    registry: RegistryCache,
    audit: AuditLog,
    limiter: Option<RateLimiter>,
    issued: AtomicU64,
    refused: AtomicU64,
    denied: AtomicU64,
}

impl State {
    /// Connections the broker serves at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Opens the audit log and reads the registry once (a broken registry fails the start).
    pub fn new(config: &BrokerConfig) -> Result<Self> {
        let registry = RegistryCache {
            registry: Registry::new(&config.registry),
            cached: Mutex::new(None),
        };
        registry.current()?;
        Ok(Self {
            target: config.target.clone(),
            credentials: config.credentials.clone(),
            url_expiry: config.url_expiry,
            max_url_expiry: config.max_url_expiry,
            window: config.window,
            max_files: config.max_files,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.body_timeout,
            max_connections: config.max_connections,
            max_object_bytes: config.max_object_bytes,
            conditional_writes: config.conditional_writes,
            registry,
            audit: AuditLog::open(&config.audit_log)?,
            limiter: config.rate_limit.map(RateLimiter::new),
            issued: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        Stats {
            issued: self.issued.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
        }
    }

    /// The audit log file.
    pub fn audit_log(&self) -> &Path {
        self.audit.path()
    }
}

type Answer = Response<Full<Bytes>>;

fn json<T: Serialize>(status: StatusCode, body: &T) -> Answer {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // URLs are capabilities: no cache keeps them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    json(status, &ErrorResponse::new(message))
}

/// Handles one request.
pub async fn handle(state: &State, remote: SocketAddr, req: Request<Incoming>) -> Answer {
    match (req.method(), req.uri().path()) {
        (&Method::GET, HEALTH_PATH) => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        (&Method::POST, PRESIGN_PATH) => presign(state, remote, req).await,
        (_, HEALTH_PATH | PRESIGN_PATH) => {
            let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            let allow = if req.uri().path() == HEALTH_PATH {
                "GET"
            } else {
                "POST"
            };
            answer
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            answer
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint: use POST /v1/presign",
        ),
    }
}

/// Who is asking, or why not.
enum Auth {
    Device(DeviceId, KeyTemplate),
    Denied {
        status: StatusCode,
        outcome: Outcome,
        device: Option<String>,
        message: &'static str,
    },
}

fn bearer(req: &Request<Incoming>) -> Result<&str, &'static str> {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or("missing token: send Authorization: Bearer <device token>")?;
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let text = value
        .to_str()
        .map_err(|_| "malformed Authorization header")?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or("malformed Authorization header: expected Bearer <token>")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err("malformed Authorization header: expected Bearer <token>");
    }
    Ok(token.trim())
}

fn authenticate(state: &State, req: &Request<Incoming>) -> Auth {
    let unauthorized = |device: Option<String>, message| Auth::Denied {
        status: StatusCode::UNAUTHORIZED,
        outcome: Outcome::Unauthorized,
        device,
        message,
    };
    let token = match bearer(req) {
        Ok(token) => token,
        Err(message) => return unauthorized(None, message),
    };
    let Some(claimed) = claimed_device(token) else {
        return unauthorized(None, "invalid token");
    };
    let devices = match state.registry.current() {
        Ok(devices) => devices,
        Err(e) => {
            tracing::error!("device registry unreadable, refusing all requests: {e:#}");
            return Auth::Denied {
                status: StatusCode::SERVICE_UNAVAILABLE,
                outcome: Outcome::Unavailable,
                device: Some(claimed.to_string()),
                message: "the broker cannot read its device registry",
            };
        }
    };
    let Some(record) = devices.get(claimed.as_str()) else {
        // Same answer as a wrong token: the registry's ids are not for guessing.
        return unauthorized(Some(claimed.to_string()), "invalid token");
    };
    if !token_matches(record, token) {
        return unauthorized(Some(claimed.to_string()), "invalid token");
    }
    if record.revoked_at.is_some() {
        return Auth::Denied {
            status: StatusCode::FORBIDDEN,
            outcome: Outcome::Revoked,
            device: Some(claimed.to_string()),
            message: "this device is revoked",
        };
    }
    match record.template() {
        Ok(template) => Auth::Device(claimed, template),
        Err(e) => {
            tracing::error!(device = %claimed, "bad registry entry: {e:#}");
            Auth::Denied {
                status: StatusCode::SERVICE_UNAVAILABLE,
                outcome: Outcome::Unavailable,
                device: Some(claimed.to_string()),
                message: "the broker's entry for this device is broken",
            }
        }
    }
}

/// Records `events`; on failure answers 503 instead of `answer`.
fn audited(state: &State, events: &[Event], answer: Answer) -> Answer {
    match state.audit.record(events) {
        Ok(()) => answer,
        Err(e) => {
            tracing::error!("cannot write the audit log, issuing nothing: {e:#}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the broker cannot write its audit log",
            )
        }
    }
}

/// Denies the whole request: answer, count, audit.
/// A 413 that tells the device the broker's `max_files`, so it can split its requests.
fn too_large(
    state: &State,
    remote: SocketAddr,
    device: Option<&str>,
    outcome: Outcome,
    message: &str,
) -> Answer {
    let answer = json(
        StatusCode::PAYLOAD_TOO_LARGE,
        &ErrorResponse {
            max_files: Some(state.max_files),
            ..ErrorResponse::new(message.to_string())
        },
    );
    deny(state, remote, device, true, outcome, answer, message)
}

fn deny(
    state: &State,
    remote: SocketAddr,
    device: Option<&str>,
    authenticated: bool,
    outcome: Outcome,
    answer: Answer,
    reason: &str,
) -> Answer {
    state.denied.fetch_add(1, Ordering::Relaxed);
    tracing::info!(%remote, device = device.unwrap_or("-"), ?outcome, status = answer.status().as_u16(), "presign request denied: {reason}");
    let event = Event::request(
        remote,
        device,
        authenticated,
        outcome,
        answer.status().as_u16(),
    )
    .because(reason);
    audited(state, &[event], answer)
}

/// Why `file` cannot get a URL, if it cannot.
fn check_file(
    state: &State,
    device: &DeviceId,
    template: &KeyTemplate,
    file: &FileDeclaration,
    now_us: i64,
) -> Result<(), String> {
    template
        .validate_for(device, &file.key, now_us, &state.window)
        .map_err(|e| match e {
            KeyRefusal::OutsideWindow { .. } => format!(
                "{e}: the broker's window is set by `sensorlake broker serve --max-age` (default 720h) and `--max-ahead` (default 5min); the rows' times come from the device's clock, or for `sensorlake run`'s simulator from [source] start"
            ),
            e => e.to_string(),
        })?;
    let md5 = base64::engine::general_purpose::STANDARD
        .decode(&file.content_md5)
        .ok()
        .filter(|d| d.len() == 16);
    if md5.is_none() || file.content_md5.len() != 24 {
        return Err(format!(
            "content_md5 {:?} is not the base64 of a 16-byte MD5",
            file.content_md5.chars().take(64).collect::<String>()
        ));
    }
    if file.content_length == 0 || file.content_length > state.max_object_bytes {
        return Err(format!(
            "content_length {} is outside 1 ..= {} bytes",
            file.content_length, state.max_object_bytes
        ));
    }
    Ok(())
}

async fn presign(state: &State, remote: SocketAddr, req: Request<Incoming>) -> Answer {
    let (device, template) = match authenticate(state, &req) {
        Auth::Device(device, template) => (device, template),
        Auth::Denied {
            status,
            outcome,
            device,
            message,
        } => {
            let mut answer = error(status, message);
            if status == StatusCode::UNAUTHORIZED {
                answer
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return deny(
                state,
                remote,
                device.as_deref(),
                false,
                outcome,
                answer,
                message,
            );
        }
    };
    let id = Some(device.as_str());
    let read = Limited::new(req.into_body(), state.max_body_bytes).collect();
    let Ok(read) = tokio::time::timeout(state.body_timeout, read).await else {
        let message = format!(
            "the request body did not arrive within {:?}",
            state.body_timeout
        );
        let mut answer = error(StatusCode::REQUEST_TIMEOUT, message.clone());
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return deny(
            state,
            remote,
            id,
            true,
            Outcome::BodyTimeout,
            answer,
            &message,
        );
    };
    let body = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            let message = format!("request body is larger than {} bytes", state.max_body_bytes);
            return too_large(state, remote, id, Outcome::BodyTooLarge, &message);
        }
        Err(e) => {
            let message = format!("cannot read the request body: {e}");
            return deny(
                state,
                remote,
                id,
                true,
                Outcome::BadRequest,
                error(StatusCode::BAD_REQUEST, message.clone()),
                &message,
            );
        }
    };
    let request: PresignRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let message = format!(
                "body is not a presign request ({{\"files\":[{{\"key\",\"content_length\",\"content_md5\"}}]}}): {e}"
            );
            return deny(
                state,
                remote,
                id,
                true,
                Outcome::BadRequest,
                error(StatusCode::BAD_REQUEST, message.clone()),
                &message,
            );
        }
    };
    if request.files.is_empty() {
        let message = "the request names no files";
        return deny(
            state,
            remote,
            id,
            true,
            Outcome::BadRequest,
            error(StatusCode::BAD_REQUEST, message),
            message,
        );
    }
    if let Some(limiter) = &state.limiter {
        let cost = u32::try_from(request.files.len().min(state.max_files)).unwrap_or(u32::MAX);
        if let Err(wait) = limiter.take(device.as_str(), cost, Instant::now()) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let message = format!("rate limit exceeded; retry in {secs} s");
            let mut answer = json(
                StatusCode::TOO_MANY_REQUESTS,
                &ErrorResponse {
                    retry_after_s: Some(secs),
                    ..ErrorResponse::new(message.clone())
                },
            );
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return deny(
                state,
                remote,
                id,
                true,
                Outcome::RateLimited,
                answer,
                &message,
            );
        }
    }
    if request.files.len() > state.max_files {
        let message = format!(
            "{} files in one request; at most {} are allowed",
            request.files.len(),
            state.max_files
        );
        return too_large(state, remote, id, Outcome::TooManyFiles, &message);
    }

    let now = SystemTime::now();
    let now_us = jiff::Timestamp::try_from(now).map_or(0, |t| t.as_microsecond());
    let checks: Vec<Result<(), String>> = request
        .files
        .iter()
        .map(|file| check_file(state, &device, &template, file, now_us))
        .collect();
    let file_event = |file: &FileDeclaration, outcome: Outcome, status: u16| {
        Event::request(remote, id, true, outcome, status).file(
            &file.key,
            file.content_length,
            &file.content_md5,
        )
    };
    if checks.iter().any(Result::is_err) {
        let mut refused = Vec::new();
        let mut events = Vec::new();
        for (index, (file, check)) in request.files.iter().zip(&checks).enumerate() {
            match check {
                Err(reason) => {
                    tracing::info!(%remote, device = %device, index, "file refused: {reason}");
                    refused.push(RefusedFile {
                        index,
                        reason: reason.clone(),
                    });
                    events.push(file_event(file, Outcome::Refused, 422).because(reason.clone()));
                }
                Ok(()) => events.push(
                    file_event(file, Outcome::Withheld, 422)
                        .because("another file of the request was refused"),
                ),
            }
        }
        state
            .refused
            .fetch_add(refused.len() as u64, Ordering::Relaxed);
        let answer = json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ErrorResponse {
                refused,
                ..ErrorResponse::new("refused: no URL was issued for any file of this request")
            },
        );
        return audited(state, &events, answer);
    }

    let expiry = request
        .expires_in_s
        .map_or(state.url_expiry, |s| Duration::from_secs(s.max(1)))
        .min(state.max_url_expiry);
    let signer = match Signer::new(&state.target, &state.credentials, expiry) {
        Ok(signer) => signer,
        Err(e) => {
            tracing::error!("cannot sign: {e}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "the broker cannot sign");
        }
    };
    let mut urls = Vec::with_capacity(request.files.len());
    let mut events = Vec::with_capacity(request.files.len());
    for file in &request.files {
        let put = PutRequest {
            key: file.key.clone(),
            content_md5: Some(file.content_md5.clone()),
            content_length: Some(file.content_length),
            // Without conditional writes only a key that carries the rows' hash may be
            // written: a second PUT then stores the same rows again.
            if_none_match: state.conditional_writes
                || !template
                    .parse(&file.key)
                    .is_ok_and(|p| p.carries_rows_hash()),
        };
        match signer.presign_put(&put, now) {
            Ok(presigned) => {
                events.push(Event {
                    expires_in_s: Some(expiry.as_secs()),
                    ..file_event(file, Outcome::Issued, 200)
                });
                urls.push(IssuedUrl {
                    key: file.key.clone(),
                    url: presigned.url,
                    headers: presigned.headers.into_iter().collect(),
                    expires_in_s: expiry.as_secs(),
                    get_url: presigned.verify_url,
                });
            }
            Err(e) => {
                tracing::error!(device = %device, "cannot sign a validated key: {e}");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "the broker cannot sign");
            }
        }
    }
    let answer = audited(
        state,
        &events,
        json(StatusCode::OK, &PresignResponse { urls }),
    );
    if answer.status() == StatusCode::OK {
        state
            .issued
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        tracing::debug!(%remote, device = %device, files = events.len(), "URLs issued");
    }
    answer
}
