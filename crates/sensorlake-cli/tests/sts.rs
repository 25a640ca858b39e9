//! Local signing with temporary credentials (`StsSigner`) and the AWS IoT credentials
//! provider.
//!
//! There is no AWS here, and the embedded S3 server does not validate session tokens
//! (it checks the signature with the key pair only). So these tests show exactly this:
//! the session token is signed into every URL (the server accepts the URL, and rejects it
//! when the token is altered, because the token is part of what is signed); credentials
//! are refreshed before they expire and URLs never outlive them; long-term keys from a
//! provider are refused; and the IoT provider sends the documented request and reads
//! the documented answer (from a local stand-in server). They do not show that AWS
//! accepts the token or that the X.509 client certificate works.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use embedded_svc::http::client::Connection;
use sensorlake::batch::{Batch, Value};
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{Credentials, PutRequest, S3Target, md5_hex};
use sensorlake::schema::{Channel, Schema};
use sensorlake::sts::{
    CredentialsProvider, IotCredentialsProvider, StsSigner, TemporaryCredentials,
};
use sensorlake::upload::{Outcome, classify, put_presigned};
use sensorlake::url_source::{UrlError, UrlSource};
use sensorlake_cli::http::{HostConnection, HttpConfig};
use sensorlake_cli::s3server::{S3Server, ServerConfig};

const ACCESS_KEY: &str = "ASIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BUCKET: &str = "lake";
const MINUTE: Duration = Duration::from_secs(60);

/// Issues temporary credentials valid `lifetime`, numbered tokens; can be made to fail.
struct Issuer {
    lifetime: Duration,
    fetched_at: Vec<SystemTime>,
    down: bool,
    long_term: bool,
}

impl Issuer {
    fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            fetched_at: Vec::new(),
            down: false,
            long_term: false,
        }
    }
}

fn token(n: usize) -> String {
    format!("IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN{n}")
}

impl CredentialsProvider for Issuer {
    fn fetch<C: Connection>(
        &mut self,
        _conn: &mut C,
        now: SystemTime,
    ) -> Result<TemporaryCredentials, UrlError> {
        if self.down {
            return Err(UrlError::Unavailable("credentials provider down".into()));
        }
        self.fetched_at.push(now);
        let session = (!self.long_term).then(|| token(self.fetched_at.len()));
        Ok(TemporaryCredentials {
            credentials: Credentials::new(ACCESS_KEY, SECRET_KEY).with_session_token(session),
            expires_at: now + self.lifetime,
        })
    }
}

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

    fn target(&self) -> S3Target {
        S3Target {
            endpoint: self.server.endpoint(),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            path_style: true,
        }
    }

    fn stored(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join(BUCKET).join(key)).ok()
    }
}

fn file() -> (String, Vec<u8>) {
    let schema = Arc::new(Schema::new(vec![Channel::f32("t")]).unwrap());
    let now = jiff::Timestamp::now().as_microsecond();
    let rows: Vec<(i64, Vec<Value>)> = (0..10)
        .map(|i| (now - 60_000_000 + i, vec![Value::F32(i as f32)]))
        .collect();
    let batch =
        Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
    let device = DeviceId::new("gw-1").unwrap();
    let key = KeyTemplate::new(Layout::Hive, "raw")
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

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn the_session_token_is_signed_into_every_url() {
    let env = Env::start();
    let (key, body) = file();
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let mut signer = StsSigner::new(env.target(), Issuer::new(15 * MINUTE));
    let put = signer
        .presign(
            &mut conn,
            &[PutRequest::for_body(&key, &body)],
            SystemTime::now(),
        )
        .unwrap()
        .remove(0);
    assert_eq!(
        query_param(&put.url, "X-Amz-Security-Token"),
        Some(token(1))
    );
    // Altering the token breaks the signature: it is signed, not merely attached.
    let mut altered = put.clone();
    altered.url = put.url.replace(&token(1), &token(9));
    let response = put_presigned(&mut conn, &altered, &body).unwrap();
    assert_eq!(
        (response.status, response.code.as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );
    assert_eq!(env.stored(&key), None);
    // The URL as signed is accepted (the embedded server checks the signature, not the token).
    let response = put_presigned(&mut conn, &put, &body).unwrap();
    assert_eq!(classify(&response, &md5_hex(&body)), Outcome::Stored);
    assert_eq!(env.stored(&key).as_deref(), Some(body.as_slice()));
}

#[test]
fn credentials_are_refreshed_before_they_expire_and_urls_never_outlive_them() {
    let env = Env::start();
    let (key, body) = file();
    let request = [PutRequest::for_body(&key, &body)];
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let mut signer = StsSigner::new(env.target(), Issuer::new(15 * MINUTE));
    let t0 = SystemTime::now();
    let token_at = |signer: &mut StsSigner<Issuer>, conn: &mut HostConnection, at| {
        let put = signer.presign(conn, &request, at).unwrap().remove(0);
        query_param(&put.url, "X-Amz-Security-Token").unwrap()
    };
    assert_eq!(token_at(&mut signer, &mut conn, t0), token(1));
    assert_eq!(signer.credentials_expire_at(), Some(t0 + 15 * MINUTE));
    // 9 minutes on, 6 are left (> the 5-minute margin): the same credentials.
    assert_eq!(token_at(&mut signer, &mut conn, t0 + 9 * MINUTE), token(1));
    assert_eq!(signer.fetches(), 1);
    // 10 minutes and a second on, less than 5 are left: refreshed, before expiry.
    let t1 = t0 + 10 * MINUTE + Duration::from_secs(1);
    assert_eq!(token_at(&mut signer, &mut conn, t1), token(2));
    assert_eq!(signer.provider().fetched_at, vec![t0, t1]);
    assert_eq!(signer.credentials_expire_at(), Some(t1 + 15 * MINUTE));

    // Without a margin, a URL signed a minute before the credentials expire lives a minute.
    let mut late =
        StsSigner::new(env.target(), Issuer::new(15 * MINUTE)).with_refresh_before(Duration::ZERO);
    late.presign(&mut conn, &request, t0).unwrap();
    let put = late
        .presign(&mut conn, &request, t0 + 14 * MINUTE)
        .unwrap()
        .remove(0);
    assert_eq!(
        query_param(&put.url, "X-Amz-Expires").as_deref(),
        Some("60")
    );
    assert_eq!(put.expires_at, t0 + 15 * MINUTE);

    // A failed refresh keeps the current credentials while they work ...
    let mut flaky = StsSigner::new(env.target(), Issuer::new(15 * MINUTE));
    assert_eq!(token_at(&mut flaky, &mut conn, t0), token(1));
    flaky.provider_mut().down = true;
    assert_eq!(token_at(&mut flaky, &mut conn, t0 + 11 * MINUTE), token(1));
    assert_eq!(flaky.fetches(), 2, "the refresh was tried");
    // ... but not once they expired: then the uploader retries later.
    let err = flaky
        .presign(
            &mut conn,
            &request,
            t0 + 15 * MINUTE + Duration::from_secs(1),
        )
        .unwrap_err();
    assert!(matches!(err, UrlError::Unavailable(_)), "{err:?}");
    flaky.provider_mut().down = false;
    assert_eq!(token_at(&mut flaky, &mut conn, t0 + 16 * MINUTE), token(2));
}

#[test]
fn a_provider_that_is_down_or_hands_out_long_term_keys() {
    let env = Env::start();
    let (key, body) = file();
    let request = [PutRequest::for_body(&key, &body)];
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let t0 = SystemTime::now();
    let mut issuer = Issuer::new(15 * MINUTE);
    issuer.down = true;
    let mut signer = StsSigner::new(env.target(), issuer);
    let err = signer.presign(&mut conn, &request, t0).unwrap_err();
    assert!(matches!(err, UrlError::Unavailable(_)), "{err:?}");

    let mut issuer = Issuer::new(15 * MINUTE);
    issuer.long_term = true;
    let err = StsSigner::new(env.target(), issuer)
        .presign(&mut conn, &request, t0)
        .unwrap_err();
    assert!(
        matches!(err, UrlError::Unauthorized(ref m) if m.contains("no session token")),
        "{err:?}"
    );
}

/// A local stand-in for the AWS IoT credentials endpoint: answers one request with
/// `status` and `body`, and hands back the request head it received.
fn iot_stand_in(status: &'static str, body: String) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(socket.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let mut socket = socket;
        write!(
            socket,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        head
    });
    (endpoint, handle)
}

#[test]
fn the_iot_credentials_provider_speaks_the_documented_protocol() {
    let env = Env::start();
    let (key, body) = file();
    let expiration = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600))
        .round(jiff::Unit::Second)
        .unwrap();
    // The answer's form, as the AWS IoT developer guide documents it.
    let answer = format!(
        r#"{{"credentials":{{"accessKeyId":"{ACCESS_KEY}","secretAccessKey":"{SECRET_KEY}","sessionToken":"{}","expiration":"{expiration}"}}}}"#,
        token(7)
    );
    let (endpoint, request) = iot_stand_in("200 OK", answer);
    let provider =
        IotCredentialsProvider::new(&endpoint, "sensorlake-uploader", Some("gw-1")).unwrap();
    let mut signer = StsSigner::new(env.target(), provider);
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let put = signer
        .presign(
            &mut conn,
            &[PutRequest::for_body(&key, &body)],
            SystemTime::now(),
        )
        .unwrap()
        .remove(0);
    let head = request.join().unwrap();
    assert!(
        head.starts_with("GET /role-aliases/sensorlake-uploader/credentials HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("x-amzn-iot-thingname: gw-1\r\n"),
        "{head}"
    );
    assert_eq!(
        query_param(&put.url, "X-Amz-Security-Token"),
        Some(token(7))
    );
    let expected_expiry =
        SystemTime::UNIX_EPOCH + Duration::from_secs(expiration.as_second() as u64);
    assert_eq!(signer.credentials_expire_at(), Some(expected_expiry));
    let response = put_presigned(&mut conn, &put, &body).unwrap();
    assert_eq!(classify(&response, &md5_hex(&body)), Outcome::Stored);

    // A refused certificate or policy pauses; a provider failure retries.
    for (status, expect_pause) in [("403 Forbidden", true), ("503 Service Unavailable", false)] {
        let (endpoint, request) = iot_stand_in(status, r#"{"message":"Access Denied"}"#.into());
        let mut provider =
            IotCredentialsProvider::new(&endpoint, "sensorlake-uploader", None).unwrap();
        let err = provider.fetch(&mut conn, SystemTime::now()).unwrap_err();
        request.join().unwrap();
        assert_eq!(
            matches!(err, UrlError::Unauthorized(_)),
            expect_pause,
            "{status}: {err:?}"
        );
        assert_eq!(
            matches!(err, UrlError::Unavailable(_)),
            !expect_pause,
            "{status}: {err:?}"
        );
    }
    // A 200 that is not the documented form is an error that does not echo the body.
    let (endpoint, request) = iot_stand_in("200 OK", format!(r#"{{"secret":"{SECRET_KEY}"}}"#));
    let mut provider = IotCredentialsProvider::new(&endpoint, "sensorlake-uploader", None).unwrap();
    let err = provider.fetch(&mut conn, SystemTime::now()).unwrap_err();
    request.join().unwrap();
    assert!(!err.to_string().contains(SECRET_KEY), "{err}");
}
