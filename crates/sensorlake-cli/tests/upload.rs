//! The device's upload path — batch → Parquet → `Signer::presign_put` →
//! `upload::put_presigned` over an embedded-svc `Connection` → `upload::classify` —
//! against the real embedded S3 server with SigV4 on. Each rejection is the answer S3
//! would give, and the outcome tells the uploader what to do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sensorlake::batch::{Batch, Value};
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{Credentials, PutRequest, S3Target, Signer, md5_hex};
use sensorlake::schema::{Channel, Schema};
use sensorlake::upload::{Outcome, classify, put_presigned};
use sensorlake_cli::http::{HostConnection, HttpConfig};
use sensorlake_cli::s3server::{S3Server, ServerConfig};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BUCKET: &str = "lake";

struct Env {
    dir: tempfile::TempDir,
    server: S3Server,
}

impl Env {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(dir.path(), ACCESS_KEY, SECRET_KEY);
        config.create_buckets = vec![BUCKET.into()];
        let server = S3Server::start(config).unwrap();
        Self { dir, server }
    }

    fn signer(&self, secret: &str) -> Signer {
        let target = S3Target {
            endpoint: self.server.endpoint(),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            path_style: true,
        };
        Signer::new(
            &target,
            &Credentials::new(ACCESS_KEY, secret),
            Duration::from_secs(300),
        )
        .unwrap()
    }

    fn stored(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join(BUCKET).join(key)).ok()
    }
}

/// A real encoded batch and its Hive key.
fn file(prefix: &str, first_value: f32) -> (String, Vec<u8>) {
    let schema =
        Arc::new(Schema::new(vec![Channel::f32("t"), Channel::f32("h").nullable()]).unwrap());
    let rows: Vec<(i64, Vec<Value>)> = (0..178)
        .map(|i| {
            let h = if i % 10 == 0 {
                Value::Null
            } else {
                Value::F32(40.0 + i as f32)
            };
            (
                1_709_280_000_000_000 + i * 5_000_000,
                vec![Value::F32(first_value + i as f32 / 8.0), h],
            )
        })
        .collect();
    let batch =
        Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
    let device = DeviceId::new("gw-1").unwrap();
    let key = KeyTemplate::new(Layout::Hive, prefix)
        .unwrap()
        .render(&device, &batch)
        .unwrap();
    let mut encoder = Encoder::new(schema, EncodeOptions::default()).unwrap();
    let bytes = encoder
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

fn put(signer: &Signer, key: &str, body: &[u8], signed_for: &[u8], at: SystemTime) -> Outcome {
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let presigned = signer
        .presign_put(&PutRequest::for_body(key, signed_for), at)
        .unwrap();
    let response = put_presigned(&mut conn, &presigned, body).unwrap();
    classify(&response, &md5_hex(body))
}

#[test]
fn presigned_put_is_stored_byte_for_byte() {
    let env = Env::start();
    // The prefix has a space; Hive partitions have '='.
    let (key, bytes) = file("raw data", 20.0);
    assert!(
        key.contains("device_id=gw-1/dt=2024-03-01/hour=08/"),
        "{key}"
    );
    let outcome = put(
        &env.signer(SECRET_KEY),
        &key,
        &bytes,
        &bytes,
        SystemTime::now(),
    );
    assert_eq!(outcome, Outcome::Stored);
    assert_eq!(env.stored(&key).as_deref(), Some(bytes.as_slice()));
}

#[test]
fn retried_upload_of_the_same_batch_is_not_a_duplicate() {
    let env = Env::start();
    let (key, bytes) = file("raw", 20.0);
    let signer = env.signer(SECRET_KEY);
    assert_eq!(
        put(&signer, &key, &bytes, &bytes, SystemTime::now()),
        Outcome::Stored
    );
    // Same batch again (e.g. the first response was lost): If-None-Match answers 412,
    // which means this batch is already stored.
    assert_eq!(
        put(&signer, &key, &bytes, &bytes, SystemTime::now()),
        Outcome::AlreadyStored
    );
    let objects: Vec<PathBuf> = walk(&env.dir.path().join(BUCKET));
    assert_eq!(objects.len(), 1, "{objects:?}");
}

#[test]
fn wrong_secret_pauses_and_stores_nothing() {
    let env = Env::start();
    let (key, bytes) = file("raw", 20.0);
    let signer = env.signer("wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGEXAMPLE");
    match put(&signer, &key, &bytes, &bytes, SystemTime::now()) {
        Outcome::Pause(reason) => assert!(reason.contains("403 SignatureDoesNotMatch"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(env.stored(&key), None);
}

#[test]
fn expired_url_asks_for_a_new_signature() {
    let env = Env::start();
    let (key, bytes) = file("raw", 20.0);
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    match put(&env.signer(SECRET_KEY), &key, &bytes, &bytes, an_hour_ago) {
        Outcome::Resign {
            server_date,
            reason,
        } => {
            assert!(reason.contains("Request has expired"), "{reason}");
            let date = server_date.expect("the server sends Date");
            let skew = date.duration_since(an_hour_ago).unwrap();
            assert!(skew >= Duration::from_secs(3590), "{skew:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.stored(&key), None);
}

#[test]
fn tampered_key_is_rejected() {
    let env = Env::start();
    let (key, bytes) = file("raw", 20.0);
    let signer = env.signer(SECRET_KEY);
    let mut presigned = signer
        .presign_put(&PutRequest::for_body(&key, &bytes), SystemTime::now())
        .unwrap();
    let other_key = key.replace("device_id=gw-1", "device_id=gw-2");
    presigned.url = presigned
        .url
        .replace("device_id%3Dgw-1", "device_id%3Dgw-2");
    assert!(presigned.url.contains("gw-2"));
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let response = put_presigned(&mut conn, &presigned, &bytes).unwrap();
    assert_eq!(response.status, 403);
    assert_eq!(response.code.as_deref(), Some("SignatureDoesNotMatch"));
    assert_eq!(env.stored(&other_key), None);
}

#[test]
fn body_not_matching_its_signed_md5_is_rejected_and_the_stored_object_kept() {
    let env = Env::start();
    let (key, bytes) = file("raw", 20.0);
    let signer = env.signer(SECRET_KEY);
    // First a plain URL (no If-None-Match) stores the real file.
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let mut request = PutRequest::for_body(&key, &bytes);
    request.if_none_match = false;
    let presigned = signer.presign_put(&request, SystemTime::now()).unwrap();
    let response = put_presigned(&mut conn, &presigned, &bytes).unwrap();
    assert_eq!(classify(&response, &md5_hex(&bytes)), Outcome::Stored);
    // Then a corrupted body of the same length under a URL that signed the real MD5.
    let mut corrupt = bytes.clone();
    corrupt[100] ^= 0xff;
    let response = put_presigned(&mut conn, &presigned, &corrupt).unwrap();
    assert_eq!(
        (response.status, response.code.as_deref()),
        (400, Some("BadDigest"))
    );
    assert!(matches!(
        classify(&response, &md5_hex(&corrupt)),
        Outcome::Reverify(_)
    ));
    assert_eq!(
        env.stored(&key).as_deref(),
        Some(bytes.as_slice()),
        "earlier object unchanged"
    );
}

#[test]
fn body_longer_than_signed_is_rejected() {
    let env = Env::start();
    let (key, bytes) = file("raw", 20.0);
    let (_, longer) = file("raw", 21.0);
    let mut longer = longer;
    longer.extend_from_slice(b"extra");
    // Signed for `bytes` (its length and MD5), sent with another, longer body: the
    // Content-Length sent differs from the signed one.
    let outcome = put(
        &env.signer(SECRET_KEY),
        &key,
        &longer,
        &bytes,
        SystemTime::now(),
    );
    assert!(
        matches!(outcome, Outcome::Pause(ref r) if r.contains("403")),
        "{outcome:?}"
    );
    assert_eq!(env.stored(&key), None);
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
