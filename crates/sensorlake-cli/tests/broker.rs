//! The presign broker against the real embedded S3 server (SigV4 on): devices holding
//! only a token get URLs for exactly the files they declare, and the attack list of
//! issue 7 — each gets no URL, a clear 4xx and an audit line; the attacks that need a
//! URL (expired, other key, other body) are rejected by the S3 server itself.
//!
//! Keys follow AWS's documentation convention (they contain `EXAMPLE`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use embedded_svc::http::client::Connection as _;
use embedded_svc::http::{Headers as _, Method, Status as _};
use embedded_svc::io::{Read as _, Write as _};
use sensorlake::batch::{Batch, Value};
use sensorlake::broker_client::BrokerClient;
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{Credentials, PresignedPut, PutRequest, S3Target, content_md5, md5_hex};
use sensorlake::schema::{Channel, Schema};
use sensorlake::upload::{Outcome, classify, put_presigned};
use sensorlake::url_source::{UrlError, UrlSource};
use sensorlake_cli::broker::registry::Registry;
use sensorlake_cli::broker::{Broker, BrokerConfig, RateLimit, TlsFiles};
use sensorlake_cli::http::{HostConnection, HttpConfig};
use sensorlake_cli::s3server::{S3Server, ServerConfig};
use serde_json::Value as Json;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BUCKET: &str = "lake";
const HOUR_US: i64 = 3_600_000_000;

struct Env {
    dir: tempfile::TempDir,
    _s3: S3Server,
    broker: Broker,
    registry: Registry,
    tokens: HashMap<&'static str, String>,
}

/// S3 server, registry with gw-1, gw-2 (hive, prefix raw), st-7 (opensensor, prefix os)
/// and old-1 (revoked), and a broker configured by `tweak`.
fn start(tweak: impl FnOnce(&mut BrokerConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = ServerConfig::new(dir.path().join("s3"), ACCESS_KEY, SECRET_KEY);
    s3.create_buckets = vec![BUCKET.into()];
    let s3 = S3Server::start(s3).unwrap();
    let registry = Registry::new(dir.path().join("devices.json"));
    let mut tokens = HashMap::new();
    for (id, layout, prefix) in [
        ("gw-1", Layout::Hive, "raw"),
        ("gw-2", Layout::Hive, "raw"),
        ("st-7", Layout::OpenSensor, "os"),
        ("old-1", Layout::Hive, "raw"),
    ] {
        let template = KeyTemplate::new(layout, prefix).unwrap();
        let token = registry
            .add_device(&DeviceId::new(id).unwrap(), &template, false)
            .unwrap();
        tokens.insert(id, token);
    }
    registry
        .revoke_device(&DeviceId::new("old-1").unwrap())
        .unwrap();
    let target = S3Target {
        endpoint: s3.endpoint(),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        path_style: true,
    };
    let mut config = BrokerConfig::new(
        registry.path(),
        dir.path().join("audit.jsonl"),
        target,
        Credentials::new(ACCESS_KEY, SECRET_KEY),
    );
    tweak(&mut config);
    let broker = Broker::start(config).unwrap();
    Env {
        dir,
        _s3: s3,
        broker,
        registry,
        tokens,
    }
}

impl Env {
    fn token(&self, device: &str) -> &str {
        &self.tokens[device]
    }

    fn client(&self, device: &str) -> BrokerClient {
        BrokerClient::new(&self.broker.url(), self.token(device)).unwrap()
    }

    fn stored(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join("s3").join(BUCKET).join(key)).ok()
    }

    fn audit(&self) -> Vec<Json> {
        std::fs::read_to_string(self.broker.audit_log())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The audit line for `key` (or for the whole request when `key` is None) with `outcome`.
    fn audited(&self, device: Option<&str>, key: Option<&str>, outcome: &str, status: u16) -> Json {
        let lines = self.audit();
        lines
            .iter()
            .find(|l| {
                l["outcome"] == outcome
                    && l["status"] == status
                    && l["key"].as_str() == key
                    && l["device"].as_str() == device
            })
            .unwrap_or_else(|| {
                panic!("no audit line {device:?} {key:?} {outcome} {status} in {lines:#?}")
            })
            .clone()
    }

    fn post(&self, token: Option<&str>, body: &[u8]) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        request(
            Method::Post,
            &format!("{}/v1/presign", self.broker.url()),
            &headers,
            body,
        )
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Json {
        serde_json::from_str(&self.text).unwrap_or(Json::Null)
    }

    /// No URL anywhere in the answer.
    fn assert_no_url(&self) {
        assert!(
            !self.text.contains("X-Amz-Signature") && self.json().get("urls").is_none(),
            "{}",
            self.text
        );
    }
}

fn request(method: Method, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let length = body.len().to_string();
    let mut all = headers.to_vec();
    all.push(("content-length", &length));
    conn.initiate_request(method, url, &all).unwrap();
    conn.write_all(body).unwrap();
    conn.initiate_response().unwrap();
    let status = conn.status();
    let mut response_headers = HashMap::new();
    for name in [
        "retry-after",
        "www-authenticate",
        "content-type",
        "cache-control",
    ] {
        if let Some(v) = conn.header(name) {
            response_headers.insert(name.to_string(), v.to_string());
        }
    }
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    Reply {
        status,
        headers: response_headers,
        text: String::from_utf8_lossy(&text).into_owned(),
    }
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// A real encoded batch of `device` starting `ts0` and its key in `layout`/`prefix`.
fn file_in(layout: Layout, prefix: &str, device: &str, ts0: i64, value: f32) -> (String, Vec<u8>) {
    let schema = Arc::new(Schema::new(vec![Channel::f32("t")]).unwrap());
    let rows: Vec<(i64, Vec<Value>)> = (0..20)
        .map(|i| (ts0 + i * 1_000_000, vec![Value::F32(value + i as f32)]))
        .collect();
    let batch =
        Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
    let device = DeviceId::new(device).unwrap();
    let key = KeyTemplate::new(layout, prefix)
        .unwrap()
        .render(&device, &batch)
        .unwrap();
    let bytes = Encoder::new(schema, EncodeOptions::default())
        .unwrap()
        .encode_to_vec(
            &batch,
            &FileMetadata {
                device_id: &device,
                object_key: &key,
            },
        )
        .unwrap();
    (key, bytes)
}

/// A file of a Hive device (prefix `raw`) in the last hour.
fn file(device: &str, value: f32) -> (String, Vec<u8>) {
    let now = now_us();
    let hour_start = now - now.rem_euclid(HOUR_US) - HOUR_US;
    file_in(
        Layout::Hive,
        "raw",
        device,
        hour_start + (value as i64) * 60_000_000,
        value,
    )
}

fn declare(key: &str, body: &[u8]) -> Json {
    serde_json::json!({"key": key, "content_length": body.len(), "content_md5": content_md5(body)})
}

fn files_body(files: &[Json]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "files": files })).unwrap()
}

fn upload(put: &PresignedPut, body: &[u8]) -> Outcome {
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let response = put_presigned(&mut conn, put, body).unwrap();
    classify(&response, &md5_hex(body))
}

#[test]
fn devices_with_only_a_token_upload_exactly_their_files() {
    let env = start(|_| {});
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let files: Vec<(String, Vec<u8>)> = (1..=3).map(|i| file("gw-1", i as f32)).collect();
    let requests: Vec<PutRequest> = files
        .iter()
        .map(|(k, b)| PutRequest::for_body(k, b))
        .collect();
    let now = SystemTime::now();
    let urls = env
        .client("gw-1")
        .presign(&mut conn, &requests, now)
        .unwrap();
    assert_eq!(urls.len(), 3);
    for ((key, body), put) in files.iter().zip(&urls) {
        assert!(
            put.url.contains(
                "X-Amz-SignedHeaders=content-length%3Bcontent-md5%3Bhost%3Bif-none-match"
            ),
            "{}",
            put.url
        );
        assert!(put.url.contains("X-Amz-Expires=300"), "{}", put.url);
        assert_eq!(put.expires_at, now + Duration::from_secs(300));
        assert_eq!(upload(put, body), Outcome::Stored);
        assert_eq!(env.stored(key).as_deref(), Some(body.as_slice()));
        let line = env.audited(Some("gw-1"), Some(key), "issued", 200);
        assert_eq!(line["content_length"], body.len());
        assert_eq!(line["content_md5"], content_md5(body));
        assert_eq!(line["expires_in_s"], 300);
        assert_eq!(line["authenticated"], true);
    }
    // The same batch again: If-None-Match makes it 412, which means already stored.
    let again = env
        .client("gw-1")
        .presign(&mut conn, &requests[..1], SystemTime::now())
        .unwrap();
    assert_eq!(upload(&again[0], &files[0].1), Outcome::AlreadyStored);
    assert_eq!(env.broker.stats().issued, 4);
    // The broker also signs a GET of the same key, so the device can check that what
    // the 412 found is this file; it reads exactly the stored bytes.
    let get = again[0]
        .verify_url
        .as_deref()
        .expect("a GET URL with each PUT");
    assert!(get.contains(&files[0].0.replace('=', "%3D")), "{get}");
    let mut reader = HostConnection::new(HttpConfig::default()).unwrap();
    assert_eq!(
        sensorlake::upload::read_back(&mut reader, get, &files[0].1).unwrap(),
        sensorlake::upload::ReadBack::Same
    );

    // The OpenSensor layout, for a device registered with it.
    let now = now_us();
    let (key, body) = file_in(
        Layout::OpenSensor,
        "os",
        "st-7",
        now - now.rem_euclid(HOUR_US) - HOUR_US,
        1.0,
    );
    assert!(key.starts_with("os/station=st-7/year="), "{key}");
    let urls = env
        .client("st-7")
        .presign(
            &mut conn,
            &[PutRequest::for_body(&key, &body)],
            SystemTime::now(),
        )
        .unwrap();
    assert_eq!(upload(&urls[0], &body), Outcome::Stored);
    // ... and not the Hive layout, which it is not registered for.
    let (hive_key, hive_body) = file_in(Layout::Hive, "os", "st-7", now - HOUR_US, 1.0);
    let refused = env
        .client("st-7")
        .presign(
            &mut conn,
            &[PutRequest::for_body(&hive_key, &hive_body)],
            SystemTime::now(),
        )
        .unwrap_err();
    assert!(
        matches!(refused, UrlError::Refused { index: 0, .. }),
        "{refused:?}"
    );
}

#[test]
fn keys_outside_the_devices_scope_get_no_url() {
    let env = start(|_| {});
    let (key, body) = file("gw-1", 1.0);
    let name = key.rsplit('/').next().unwrap().to_string();
    let (other_device_key, _) = file("gw-2", 1.0);
    let now = now_us();
    let (old_key, _) = file_in(Layout::Hive, "raw", "gw-1", now - 60 * 24 * HOUR_US, 1.0);
    let (future_key, _) = file_in(Layout::Hive, "raw", "gw-1", now + 2 * HOUR_US, 1.0);
    let dt = &key[key.find("dt=").unwrap()..][..13];
    let attacks: Vec<(&str, String, &str)> = vec![
        (
            "another device's prefix",
            other_device_key,
            "belongs to device \"gw-2\"",
        ),
        (
            "..",
            key.replace("/dt=", "/../device_id=gw-2/dt="),
            "expected",
        ),
        (
            "%2e%2e",
            key.replace("device_id=gw-1", "device_id=gw-1/%2e%2e/device_id=gw-2"),
            "expected",
        ),
        (
            "encoded /",
            key.replace("device_id=gw-1", "device_id=gw-1%2F..%2Fgw-2"),
            "device id",
        ),
        (
            "backslash",
            key.replace("device_id=gw-1", "device_id=gw-1\\..\\gw-2"),
            "device id",
        ),
        (
            "NUL",
            key.replace(&name, &format!("{name}\0.csv")),
            "file name",
        ),
        (
            "over-long id",
            key.replace("gw-1", &"g".repeat(65)),
            "device id",
        ),
        (
            "over-long key",
            format!("raw/{}", "a/".repeat(600)),
            "longer than 1024",
        ),
        (
            "wrong date format",
            key.replace(dt, &dt.replace('-', "")),
            "YYYY-MM-DD",
        ),
        (
            "extra segment",
            key.replace("/hour=", "/extra/hour="),
            "segment",
        ),
        (
            "other prefix",
            key.replacen("raw/", "raw2/", 1),
            "must start with \"raw\"/",
        ),
        ("leading slash", format!("/{key}"), "must start with"),
        ("far in the past", old_key, "outside the accepted window"),
        ("in the future", future_key, "outside the accepted window"),
    ];
    for (what, attack_key, says) in &attacks {
        let reply = env.post(
            Some(env.token("gw-1")),
            &files_body(&[declare(attack_key, &body)]),
        );
        assert_eq!(reply.status, 422, "{what}: {}", reply.text);
        reply.assert_no_url();
        let reason = reply.json()["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reason.contains(says), "{what}: {reason}");
        let logged_key = if attack_key.len() > 1100 {
            None
        } else {
            Some(attack_key.as_str())
        };
        if let Some(logged_key) = logged_key {
            let line = env.audited(Some("gw-1"), Some(logged_key), "refused", 422);
            assert_eq!(line["reason"].as_str(), Some(reason.as_str()), "{what}");
        } else {
            assert!(env.audit().iter().any(|l| l["outcome"] == "refused"
                && l["key"].as_str().is_some_and(|k| k.ends_with("…(cut)"))));
        }
        assert_eq!(env.stored(attack_key), None);
    }
    // Body declarations are checked too.
    for (what, declaration, says) in [
        (
            "bad md5",
            serde_json::json!({"key": key, "content_length": body.len(), "content_md5": "not-md5"}),
            "content_md5",
        ),
        (
            "oversized object",
            serde_json::json!({"key": key, "content_length": 17u64 << 20, "content_md5": content_md5(&body)}),
            "content_length",
        ),
        (
            "empty object",
            serde_json::json!({"key": key, "content_length": 0, "content_md5": content_md5(&body)}),
            "content_length",
        ),
    ] {
        let reply = env.post(Some(env.token("gw-1")), &files_body(&[declaration]));
        assert_eq!(reply.status, 422, "{what}: {}", reply.text);
        reply.assert_no_url();
        assert!(reply.text.contains(says), "{what}: {}", reply.text);
    }
    // One refused file withholds the URLs of the others: nothing partial.
    let (good_key, good_body) = file("gw-1", 2.0);
    let reply = env.post(
        Some(env.token("gw-1")),
        &files_body(&[
            declare(&good_key, &good_body),
            declare(&attacks[0].1, &body),
        ]),
    );
    assert_eq!(reply.status, 422);
    reply.assert_no_url();
    assert_eq!(reply.json()["refused"][0]["index"], 1);
    env.audited(Some("gw-1"), Some(&good_key), "withheld", 422);
    // The client maps it to Refused with the index in its own request list.
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let err = env
        .client("gw-1")
        .presign(
            &mut conn,
            &[
                PutRequest::for_body(&good_key, &good_body),
                PutRequest::for_body(&attacks[0].1, &body),
            ],
            SystemTime::now(),
        )
        .unwrap_err();
    match err {
        UrlError::Refused { index, reason } => {
            assert_eq!(index, 1);
            assert!(reason.contains("belongs to device \"gw-2\""), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.broker.stats().issued, 0);
}

#[test]
fn bad_missing_and_revoked_tokens_get_no_url() {
    let env = start(|_| {});
    let (key, body) = file("gw-1", 1.0);
    let request = files_body(&[declare(&key, &body)]);
    let good = env.token("gw-1").to_string();
    let wrong_secret = format!(
        "{}{}",
        &good[..good.len() - 1],
        if good.ends_with('A') { "B" } else { "A" }
    );
    let unknown = good.replace("sl1.gw-1.", "sl1.gw-9.");
    for (what, token, status, device, outcome) in [
        ("missing token", None, 401, None, "unauthorized"),
        (
            "wrong token",
            Some(wrong_secret.as_str()),
            401,
            Some("gw-1"),
            "unauthorized",
        ),
        (
            "unknown device",
            Some(unknown.as_str()),
            401,
            Some("gw-9"),
            "unauthorized",
        ),
        ("not a token", Some("hunter2"), 401, None, "unauthorized"),
        (
            "another device's token for gw-1's key",
            Some(env.token("gw-2")),
            422,
            Some("gw-2"),
            "refused",
        ),
        (
            "revoked",
            Some(env.token("old-1")),
            403,
            Some("old-1"),
            "revoked",
        ),
    ] {
        let reply = env.post(token, &request);
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        reply.assert_no_url();
        if status == 401 {
            assert_eq!(
                reply.headers.get("www-authenticate").map(String::as_str),
                Some("Bearer")
            );
            assert!(reply.json()["error"].as_str().is_some(), "{}", reply.text);
        }
        let audited_key = (status == 422).then_some(key.as_str());
        let line = env.audited(device, audited_key, outcome, status);
        assert_eq!(line["authenticated"], status == 422, "{what}");
    }
    // A Basic header is not a bearer token.
    let reply = request_with_auth(&env, "Basic Z3ctMTpodW50ZXIy", &request);
    assert_eq!(reply.status, 401);
    // Tokens never reach the audit log.
    let audit = std::fs::read_to_string(env.broker.audit_log()).unwrap();
    for token in env.tokens.values().chain([&wrong_secret, &unknown]) {
        let secret = token.rsplit('.').next().unwrap();
        assert!(!audit.contains(secret), "the audit log holds a token");
    }
    // The client maps 401/403 to Unauthorized: pause and report.
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let put = [PutRequest::for_body(&key, &body)];
    for client in [
        env.client("old-1"),
        BrokerClient::new(&env.broker.url(), &wrong_secret).unwrap(),
    ] {
        let err = client
            .clone()
            .presign(&mut conn, &put, SystemTime::now())
            .unwrap_err();
        assert!(matches!(err, UrlError::Unauthorized(_)), "{err:?}");
    }
}

fn request_with_auth(env: &Env, authorization: &str, body: &[u8]) -> Reply {
    request(
        Method::Post,
        &format!("{}/v1/presign", env.broker.url()),
        &[
            ("authorization", authorization),
            ("content-type", "application/json"),
        ],
        body,
    )
}

#[test]
fn revoking_a_running_device_takes_effect_at_its_next_request() {
    let env = start(|_| {});
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let (key, body) = file("gw-2", 1.0);
    let put = [PutRequest::for_body(&key, &body)];
    let mut client = env.client("gw-2");
    assert!(client.presign(&mut conn, &put, SystemTime::now()).is_ok());
    env.registry
        .revoke_device(&DeviceId::new("gw-2").unwrap())
        .unwrap();
    let err = client
        .presign(&mut conn, &put, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(err, UrlError::Unauthorized(ref m) if m.contains("revoked")),
        "{err:?}"
    );
    env.audited(Some("gw-2"), None, "revoked", 403);
}

#[test]
fn oversized_requests_and_too_many_files_get_413() {
    let env = start(|c| c.max_files = 4);
    let (key, body) = file("gw-1", 1.0);
    // A body over the limit (64 KiB).
    let padding = "x".repeat(70 * 1024);
    let big = serde_json::to_vec(
        &serde_json::json!({"files": [{"key": padding, "content_length": 1, "content_md5": "x"}]}),
    )
    .unwrap();
    let reply = env.post(Some(env.token("gw-1")), &big);
    assert_eq!(reply.status, 413, "{}", reply.text);
    reply.assert_no_url();
    assert!(
        reply.text.contains("larger than 65536 bytes"),
        "{}",
        reply.text
    );
    env.audited(Some("gw-1"), None, "body_too_large", 413);
    // More files than allowed in one request.
    let files: Vec<(String, Vec<u8>)> = (1..=5).map(|i| file("gw-1", i as f32)).collect();
    let declared: Vec<Json> = files.iter().map(|(k, b)| declare(k, b)).collect();
    let reply = env.post(Some(env.token("gw-1")), &files_body(&declared));
    assert_eq!(reply.status, 413, "{}", reply.text);
    reply.assert_no_url();
    assert_eq!(reply.json()["max_files"], 4);
    env.audited(Some("gw-1"), None, "too_many_files", 413);
    // Malformed requests are 400.
    for bad in [
        &b"{"[..],
        b"{\"files\":[]}",
        b"{\"files\":[],\"device\":\"gw-2\"}",
    ] {
        let reply = env.post(Some(env.token("gw-1")), bad);
        assert_eq!(reply.status, 400, "{}", reply.text);
    }
    env.audited(Some("gw-1"), None, "bad_request", 400);
    // A client configured for more learns the limit and splits its request.
    let requests: Vec<PutRequest> = files
        .iter()
        .map(|(k, b)| PutRequest::for_body(k, b))
        .collect();
    let mut client = env.client("gw-1").with_max_files(16);
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let urls = client
        .presign(&mut conn, &requests, SystemTime::now())
        .unwrap();
    assert_eq!(urls.len(), 5);
    assert_eq!(client.max_files(), 4);
    assert_eq!(upload(&urls[4], &files[4].1), Outcome::Stored);
    let _ = (key, body);
}

#[test]
fn rate_limit_excess_gets_429_with_retry_after() {
    let env = start(|c| {
        c.max_files = 2;
        c.rate_limit = Some(RateLimit {
            per_minute: 2,
            burst: 2,
        });
    });
    let files: Vec<(String, Vec<u8>)> = (1..=2).map(|i| file("gw-1", i as f32)).collect();
    let declared: Vec<Json> = files.iter().map(|(k, b)| declare(k, b)).collect();
    let first = env.post(Some(env.token("gw-1")), &files_body(&declared));
    assert_eq!(first.status, 200, "{}", first.text);
    let second = env.post(Some(env.token("gw-1")), &files_body(&declared[..1]));
    assert_eq!(second.status, 429, "{}", second.text);
    second.assert_no_url();
    let retry: u64 = second.headers["retry-after"].parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(second.json()["retry_after_s"], retry);
    env.audited(Some("gw-1"), None, "rate_limited", 429);
    // Another device has its own budget.
    let (key, body) = file("gw-2", 1.0);
    assert_eq!(
        env.post(
            Some(env.token("gw-2")),
            &files_body(&[declare(&key, &body)])
        )
        .status,
        200
    );
    // The client maps 429 to Unavailable: retry later.
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let err = env
        .client("gw-1")
        .presign(
            &mut conn,
            &[PutRequest::for_body(&files[0].0, &files[0].1)],
            SystemTime::now(),
        )
        .unwrap_err();
    assert!(
        matches!(err, UrlError::Unavailable(ref m) if m.contains("rate limit")),
        "{err:?}"
    );
}

/// An issued URL, and the audit line that issued it.
fn issued(env: &Env, device: &str, key: &str, body: &[u8]) -> PresignedPut {
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let put = env
        .client(device)
        .presign(
            &mut conn,
            &[PutRequest::for_body(key, body)],
            SystemTime::now(),
        )
        .unwrap()
        .remove(0);
    env.audited(Some(device), Some(key), "issued", 200);
    put
}

#[test]
fn an_expired_url_is_rejected_by_the_s3_server() {
    let env = start(|c| {
        c.url_expiry = Duration::from_secs(1);
        c.max_url_expiry = Duration::from_secs(1);
    });
    let (key, body) = file("gw-1", 1.0);
    let put = issued(&env, "gw-1", &key, &body);
    assert!(put.url.contains("X-Amz-Expires=1&"), "{}", put.url);
    // X-Amz-Date has whole seconds: after 2.1 s a 1-s URL has expired for sure.
    std::thread::sleep(Duration::from_millis(2100));
    match upload(&put, &body) {
        Outcome::Resign { reason, .. } => {
            assert!(
                reason.contains("403 AccessDenied: Request has expired"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.stored(&key), None);
    assert_eq!(
        env.audited(Some("gw-1"), Some(&key), "issued", 200)["expires_in_s"],
        1
    );
}

#[test]
fn a_url_for_key_a_does_not_put_key_b() {
    let env = start(|_| {});
    let (key_a, body_a) = file("gw-1", 1.0);
    let (key_b, body_b) = file("gw-1", 2.0);
    let mut put = issued(&env, "gw-1", &key_a, &body_a);
    let name_a = key_a.rsplit('/').next().unwrap();
    let name_b = key_b.rsplit('/').next().unwrap();
    put.url = put.url.replace(name_a, name_b);
    assert!(put.url.contains(name_b));
    for body in [&body_a, &body_b] {
        let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
        let response = put_presigned(&mut conn, &put, body).unwrap();
        assert_eq!(
            (response.status, response.code.as_deref()),
            (403, Some("SignatureDoesNotMatch"))
        );
    }
    assert_eq!(env.stored(&key_b), None);
    assert!(
        env.audit()
            .iter()
            .all(|l| l["key"].as_str() != Some(key_b.as_str()))
    );
}

#[test]
fn a_url_only_takes_the_declared_body() {
    let env = start(|_| {});
    let (key, body) = file("gw-1", 1.0);
    let put = issued(&env, "gw-1", &key, &body);
    // Same length, other bytes: the server checks the signed Content-MD5.
    let mut changed = body.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0xff;
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let response = put_presigned(&mut conn, &put, &changed).unwrap();
    assert_eq!(
        (response.status, response.code.as_deref()),
        (400, Some("BadDigest"))
    );
    // ... and with a Content-MD5 that matches the other bytes, the signature does not.
    let mut forged = put.clone();
    for (name, value) in &mut forged.headers {
        if name == "content-md5" {
            *value = content_md5(&changed);
        }
    }
    let response = put_presigned(&mut conn, &forged, &changed).unwrap();
    assert_eq!(
        (response.status, response.code.as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );
    // Other length: the signed Content-Length does not match.
    let mut longer = body.clone();
    longer.extend_from_slice(b"appended");
    let response = put_presigned(&mut conn, &put, &longer).unwrap();
    assert_eq!(
        (response.status, response.code.as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );
    assert_eq!(env.stored(&key), None);
    // The declared body itself goes through.
    assert_eq!(upload(&put, &body), Outcome::Stored);
    assert_eq!(env.stored(&key).as_deref(), Some(body.as_slice()));
}

#[test]
fn health_and_unknown_endpoints() {
    let env = start(|_| {});
    let reply = request(
        Method::Get,
        &format!("{}/healthz", env.broker.url()),
        &[],
        b"",
    );
    assert_eq!(
        (reply.status, reply.json()),
        (200, serde_json::json!({"status": "ok"}))
    );
    let reply = request(
        Method::Get,
        &format!("{}/v1/presign", env.broker.url()),
        &[],
        b"",
    );
    assert_eq!(reply.status, 405);
    let reply = request(
        Method::Get,
        &format!("{}/v1/other", env.broker.url()),
        &[],
        b"",
    );
    assert_eq!(reply.status, 404);
    let (key, body) = file("gw-1", 1.0);
    let reply = env.post(
        Some(env.token("gw-1")),
        &files_body(&[declare(&key, &body)]),
    );
    assert_eq!(
        reply.headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
}

/// Test PKI: a self-signed CA and a server certificate for localhost/127.0.0.1 (PEM).
fn pki(dir: &std::path::Path) -> (PathBuf, TlsFiles) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "sensorlake test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&leaf_key, &ca).unwrap();
    let files = TlsFiles {
        cert: dir.join("broker.pem"),
        key: dir.join("broker-key.pem"),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, leaf_key.serialize_pem()).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (ca_file, files)
}

#[test]
fn tls_serves_devices_and_plain_http_is_refused_off_loopback() {
    let pki_dir = tempfile::tempdir().unwrap();
    let (ca_file, tls) = pki(pki_dir.path());
    let env = start(|c| c.tls = Some(tls.clone()));
    assert!(env.broker.url().starts_with("https://127.0.0.1:"));
    let (key, body) = file("gw-1", 1.0);
    let put = [PutRequest::for_body(&key, &body)];
    let mut conn = HostConnection::new(HttpConfig {
        ca_file: Some(ca_file),
        ..HttpConfig::default()
    })
    .unwrap();
    let urls = env
        .client("gw-1")
        .presign(&mut conn, &put, SystemTime::now())
        .unwrap();
    assert_eq!(upload(&urls[0], &body), Outcome::Stored);
    // A device that does not trust the broker's CA gets nothing (and sends no token).
    let mut untrusting = HostConnection::new(HttpConfig::default()).unwrap();
    let err = env
        .client("gw-1")
        .presign(&mut untrusting, &put, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(err, UrlError::Unavailable(ref m) if m.contains("certificate") || m.contains("Certificate")),
        "{err:?}"
    );

    // Plain HTTP on a non-loopback address needs the explicit override.
    let dir = tempfile::tempdir().unwrap();
    let target = S3Target {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        path_style: true,
    };
    let mut config = BrokerConfig::new(
        dir.path().join("devices.json"),
        dir.path().join("audit.jsonl"),
        target,
        Credentials::new(ACCESS_KEY, SECRET_KEY),
    );
    config.addr = "0.0.0.0:0".parse().unwrap();
    let err = Broker::start(config.clone()).unwrap_err().to_string();
    assert!(err.contains("refusing to serve plain HTTP"), "{err}");
    config.allow_plain_http = true;
    Broker::start(config).unwrap().shutdown();
}

/// Sends a request head declaring `Content-Length: 1000` with a valid token, then one
/// body byte per `every` for up to `limit`; returns what the broker answered and when
/// the connection closed, or `None` if it was still open after `limit`.
fn trickle(env: &Env, every: Duration, limit: Duration) -> Option<(String, Duration)> {
    use std::io::{Read as _, Write as _};
    let addr = env.broker.url().trim_start_matches("http://").to_owned();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /v1/presign HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n",
        env.token("gw-1")
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.set_read_timeout(Some(every)).unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < limit {
        let mut buf = [0_u8; 4096];
        match socket.read(&mut buf) {
            Ok(0) => {
                return Some((
                    String::from_utf8_lossy(&answer).into_owned(),
                    started.elapsed(),
                ));
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Still open: one more byte, as a slow client would.
                if socket.write_all(b" ").is_err() {
                    return Some((
                        String::from_utf8_lossy(&answer).into_owned(),
                        started.elapsed(),
                    ));
                }
            }
            Err(_) => {
                return Some((
                    String::from_utf8_lossy(&answer).into_owned(),
                    started.elapsed(),
                ));
            }
        }
    }
    None
}

#[test]
fn a_body_that_trickles_in_gets_408_and_the_connection_is_closed() {
    let env = start(|c| c.body_timeout = Duration::from_secs(1));
    // Three slow clients at once, one byte every 500 ms: each is cut off long before
    // the 1000 declared bytes could arrive (500 s) or the generous limit below.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| trickle(&env, Duration::from_millis(500), Duration::from_secs(60))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for result in results {
        let (answer, _after) =
            result.expect("the broker kept a trickling connection open for 60 s");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("did not arrive within"), "{answer}");
    }
    let line = env.audited(Some("gw-1"), None, "body_timeout", 408);
    assert_eq!(line["authenticated"], true);
}

#[test]
fn connections_beyond_the_cap_wait_and_are_served_in_turn() {
    use std::io::{Read as _, Write as _};
    let env = start(|c| {
        c.max_connections = 2;
        c.body_timeout = Duration::from_secs(60);
    });
    let addr = env.broker.url().trim_start_matches("http://").to_owned();
    // Two connections hold both slots with a body that does not come.
    let holders: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            let head = format!(
                "POST /v1/presign HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-length: 1000\r\n\r\n",
                env.token("gw-2")
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    // A third one waits in the backlog: no answer while both slots are held ...
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0_u8; 4096];
    let early = third.read(&mut buf);
    assert!(
        early.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "served beyond the cap of 2: {early:?}"
    );
    // ... and is served as soon as one is freed.
    drop(holders);
    third
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut answer = Vec::new();
    third.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn an_idle_plain_http_connection_is_closed() {
    use std::io::Read as _;
    let env = start(|_| {});
    let addr = env.broker.url().trim_start_matches("http://").to_owned();
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    // The head timeout is 10 s; far more is allowed for a loaded machine.
    idle.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut buf = [0_u8; 16];
    match idle.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("an idle connection got {n} bytes"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "an idle connection stayed open for 120 s: {e}"
        ),
    }
}

#[test]
fn without_conditional_writes_only_keys_with_the_rows_hash_lose_the_condition() {
    let env = start(|c| c.conditional_writes = false);
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let (key, body) = file("gw-1", 1.0);
    let urls = env
        .client("gw-1")
        .presign(
            &mut conn,
            &[PutRequest::for_body(&key, &body)],
            SystemTime::now(),
        )
        .unwrap();
    assert!(urls[0].header("if-none-match").is_none(), "{:?}", urls[0]);
    assert!(!urls[0].url.contains("if-none-match"), "{}", urls[0].url);
    assert_eq!(upload(&urls[0], &body), Outcome::Stored);

    // A plain OpenSensor name (a whole window, no hash) keeps If-None-Match: two
    // different batches could share it.
    let now = now_us();
    let (hashed, body) = file_in(
        Layout::OpenSensor,
        "os",
        "st-7",
        now - now.rem_euclid(HOUR_US) - HOUR_US,
        1.0,
    );
    let plain = format!("{}.parquet", &hashed[..hashed.len() - ".parquet".len() - 9]);
    assert!(
        plain.ends_with("0.parquet") || plain.ends_with("5.parquet"),
        "{plain}"
    );
    let urls = env
        .client("st-7")
        .presign(
            &mut conn,
            &[PutRequest::for_body(&plain, &body)],
            SystemTime::now(),
        )
        .unwrap();
    assert_eq!(urls[0].header("if-none-match"), Some("*"), "{plain}");
}

/// The broker signs with its own clock: a clock-skew answer gets the device a fresh URL
/// once (enough when a URL expired on the way); if the server still says the time is
/// off, the device backs off saying that the broker host's clock needs fixing, and its
/// own clock offset stays as it was.
#[test]
fn a_clock_skew_answer_to_a_broker_url_asks_for_a_fresh_one_then_names_the_brokers_clock() {
    use common::fault_proxy::{Documented, Fault, FaultPlan, FaultProxy};
    use sensorlake::clock::SystemClock;
    use sensorlake::spool::{Spool, SpoolConfig};
    use sensorlake::storage::StdStorage;
    use sensorlake::uploader::{Event, UploadConfig, Uploader};

    let mut proxy = None;
    let env = start(|c| {
        let upstream = c
            .target
            .endpoint
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let p = FaultProxy::start(upstream, FaultPlan::pass()).unwrap();
        c.target.endpoint = p.endpoint();
        proxy = Some(p);
    });
    let proxy = proxy.unwrap();
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = std::sync::Mutex::new(
        Spool::open(StdStorage::new(spool_dir.path()), SpoolConfig::default()).unwrap(),
    );
    let (key, body) = file("gw-1", 1.0);
    spool.lock().unwrap().push(&body, None).unwrap();
    let mut uploader = Uploader::new(env.client("gw-1"), UploadConfig::default(), 3);
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let clock = SystemClock;

    proxy.script([Fault::Documented(Documented::R2ExpiredRequest); 2]);
    let step = uploader.step(&spool, &mut conn, &clock);
    assert!(
        matches!(step.event, Event::Resigned { offset_secs: 0, .. }),
        "{:?}",
        step.event
    );
    let step = uploader.step(&spool, &mut conn, &clock);
    let Event::Retry { reason, .. } = &step.event else {
        panic!("{:?}", step.event);
    };
    assert!(
        reason.contains("ExpiredRequest") && reason.contains("broker host's clock"),
        "{reason}"
    );
    assert_eq!(
        uploader.clock_offset_secs(),
        0,
        "the device clock is not the signer's"
    );
    uploader.wake();
    let step = uploader.step(&spool, &mut conn, &clock);
    assert!(
        matches!(step.event, Event::Uploaded { .. }),
        "{:?}",
        step.event
    );
    assert_eq!(env.stored(&key).as_deref(), Some(body.as_slice()));
}
