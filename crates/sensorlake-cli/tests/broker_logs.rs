//! Credentials are never logged: everything the broker, the broker client, the STS
//! signer, the HTTP client and the S3 server log at TRACE level (`tracing` and the
//! library's `log` records) is captured while devices succeed and fail, and must hold
//! no device token, no secret key, no session token and no URL signature.
//!
//! One test per process: the capturing subscriber is global.
//!
//! Not covered: the s3s-fs crate behind the embedded S3 server logs request URIs (with
//! `X-Amz-Signature` and `X-Amz-Security-Token`) at DEBUG; that target is captured at
//! INFO only. `sensorlake serve` logs it only when asked for DEBUG on `s3s_fs`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use embedded_svc::http::client::Connection;
use sensorlake::batch::{Batch, Value};
use sensorlake::broker_client::BrokerClient;
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{Credentials, PutRequest, S3Target, md5_hex};
use sensorlake::schema::{Channel, Schema};
use sensorlake::sts::{CredentialsProvider, StsSigner, TemporaryCredentials};
use sensorlake::upload::{Outcome, classify, put_presigned};
use sensorlake::url_source::{UrlError, UrlSource};
use sensorlake_cli::broker::registry::Registry;
use sensorlake_cli::broker::{Broker, BrokerConfig};
use sensorlake_cli::http::{HostConnection, HttpConfig};
use sensorlake_cli::s3server::{S3Server, ServerConfig};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENLOGS";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Temporary credentials that expire soon, then a provider that is down (so the
/// refresh-failure warning is logged too).
struct ShortLived {
    calls: u32,
}

impl CredentialsProvider for ShortLived {
    fn fetch<C: Connection>(
        &mut self,
        _conn: &mut C,
        now: SystemTime,
    ) -> Result<TemporaryCredentials, UrlError> {
        self.calls += 1;
        if self.calls > 1 {
            return Err(UrlError::Unavailable("credentials provider down".into()));
        }
        Ok(TemporaryCredentials {
            credentials: Credentials::new(ACCESS_KEY, SECRET_KEY)
                .with_session_token(Some(SESSION_TOKEN.into())),
            expires_at: now + Duration::from_secs(120),
        })
    }
}

fn file(device: &DeviceId, minute: i64) -> (String, Vec<u8>) {
    let schema = Arc::new(Schema::new(vec![Channel::f32("t")]).unwrap());
    let now = jiff::Timestamp::now().as_microsecond();
    let ts0 = now - now.rem_euclid(3_600_000_000) - 3_600_000_000 + minute * 60_000_000;
    let rows: Vec<(i64, Vec<Value>)> = (0..5)
        .map(|i| (ts0 + i, vec![Value::F32(i as f32)]))
        .collect();
    let batch =
        Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
    let key = KeyTemplate::new(Layout::Hive, "raw")
        .unwrap()
        .render(device, &batch)
        .unwrap();
    let bytes = Encoder::new(schema, EncodeOptions::default())
        .unwrap()
        .encode_to_vec(
            &batch,
            &FileMetadata {
                device_id: device,
                object_key: &key,
            },
        )
        .unwrap();
    (key, bytes)
}

#[test]
fn no_credential_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        // s3s-fs (the embedded S3 server's storage backend, a test stand-in for S3 here)
        // records whole request URIs, presigned query included, in DEBUG spans: it is
        // kept at INFO; ureq and ureq-proto (the host HTTP client) log whole URIs and
        // request bytes at TRACE: kept at INFO, as the binary does; everything of ours
        // is captured at TRACE.
        .with_env_filter("trace,s3s_fs=info,ureq=info,ureq_proto=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the capturing subscriber (and the log bridge) install");

    let dir = tempfile::tempdir().unwrap();
    let mut s3 = ServerConfig::new(dir.path().join("s3"), ACCESS_KEY, SECRET_KEY);
    s3.create_buckets = vec!["lake".into()];
    let s3 = S3Server::start(s3).unwrap();
    let target = S3Target {
        endpoint: s3.endpoint(),
        bucket: "lake".into(),
        region: "us-east-1".into(),
        path_style: true,
    };
    let registry = Registry::new(dir.path().join("devices.json"));
    let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
    let gw1 = DeviceId::new("gw-1").unwrap();
    let gw2 = DeviceId::new("gw-2").unwrap();
    let token1 = registry.add_device(&gw1, &template, false).unwrap();
    let token2 = registry.add_device(&gw2, &template, false).unwrap();
    registry.revoke_device(&gw2).unwrap();
    let broker = Broker::start(BrokerConfig::new(
        registry.path(),
        dir.path().join("audit.jsonl"),
        target.clone(),
        Credentials::new(ACCESS_KEY, SECRET_KEY),
    ))
    .unwrap();
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let mut urls = Vec::new();

    // Success, refusal, wrong token, revoked device, unreachable broker.
    let (key, body) = file(&gw1, 1);
    let put = BrokerClient::new(&broker.url(), &token1)
        .unwrap()
        .presign(
            &mut conn,
            &[PutRequest::for_body(&key, &body)],
            SystemTime::now(),
        )
        .unwrap()
        .remove(0);
    assert_eq!(
        classify(
            &put_presigned(&mut conn, &put, &body).unwrap(),
            &md5_hex(&body)
        ),
        Outcome::Stored
    );
    urls.push(put.url);
    let (other_key, other_body) = file(&gw2, 2);
    let wrong = format!("{}{}", &token1[..token1.len() - 2], "zz");
    for (token, request) in [
        (&token1, PutRequest::for_body(&other_key, &other_body)),
        (&wrong, PutRequest::for_body(&key, &body)),
        (&token2, PutRequest::for_body(&other_key, &other_body)),
    ] {
        let err = BrokerClient::new(&broker.url(), token)
            .unwrap()
            .presign(&mut conn, &[request], SystemTime::now())
            .unwrap_err();
        tracing::warn!("device would pause or quarantine: {err}");
    }
    let down = BrokerClient::new("http://127.0.0.1:9", &token1)
        .unwrap()
        .presign(
            &mut conn,
            &[PutRequest::for_body(&key, &body)],
            SystemTime::now(),
        )
        .unwrap_err();
    tracing::warn!("device would retry: {down}");

    // Temporary credentials: signed, then a failed refresh (logged as a warning).
    let (sts_key, sts_body) = file(&gw1, 3);
    let mut sts = StsSigner::new(target, ShortLived { calls: 0 });
    let t0 = SystemTime::now();
    let put = sts
        .presign(&mut conn, &[PutRequest::for_body(&sts_key, &sts_body)], t0)
        .unwrap()
        .remove(0);
    assert!(put.url.contains("X-Amz-Security-Token="));
    assert_eq!(
        classify(
            &put_presigned(&mut conn, &put, &sts_body).unwrap(),
            &md5_hex(&sts_body)
        ),
        Outcome::Stored
    );
    urls.push(put.url);
    let later = sts
        .presign(
            &mut conn,
            &[PutRequest::for_body(&sts_key, &sts_body)],
            t0 + Duration::from_secs(60),
        )
        .unwrap()
        .remove(0);
    urls.push(later.url);
    // Debug formatting of everything that holds a secret.
    tracing::debug!(
        "{:?} {:?} {:?}",
        BrokerClient::new(&broker.url(), &token1).unwrap(),
        sts,
        Credentials::new(ACCESS_KEY, SECRET_KEY)
    );
    broker.shutdown();
    drop(s3);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture works and saw every path.
    for expected in [
        "presign request denied",
        "file refused",
        "refreshing temporary credentials failed",
        "broker unreachable",
        "temporary credentials refreshed",
        "<redacted>",
    ] {
        assert!(
            logs.contains(expected),
            "the logs lack {expected:?}:\n{logs}"
        );
    }
    let mut secrets = vec![SECRET_KEY.to_string(), SESSION_TOKEN.to_string()];
    for token in [&token1, &token2, &wrong] {
        secrets.push(token.to_string());
        secrets.push(token.rsplit('.').next().unwrap().to_string());
    }
    for url in &urls {
        let signature = url.split("X-Amz-Signature=").nth(1).unwrap();
        secrets.push(signature.to_string());
    }
    secrets.push("X-Amz-Signature".into());
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a credential reached the logs: {secret}"
        );
    }
}
